/* Embedding kernels: index checks, the row gather (forward) and the row
 * scatter-add (backward) of Keras' Embedding.
 *
 * A table is (vocab, dim), C-contiguous; indices are int64 in [0, vocab)
 * (cx_embedding_indices_* converts and checks a caller's array first, so the
 * gather and scatter never read or write outside the table).
 *
 * The backward pass groups the positions by row with a stable radix sort, so
 * each row's gradient is the sum of its positions' dy in position order,
 * computed by one thread: results are bit-identical for any `n_threads`, and
 * only the rows seen in the batch are read or written (besides zeroing a dense
 * table when asked).
 */
#ifndef CONVX_EMBEDDING_H
#define CONVX_EMBEDDING_H

#include "convx_common.h"

/* idx[i] = x[i] for i < n; returns -1 when every x[i] is an integer in [0, vocab), else the first
 * position that is not (negative, too large, fractional, NaN or infinite). */
cx_int cx_embedding_indices_f32(const float *x, cx_int n, cx_int vocab, int64_t *idx);
cx_int cx_embedding_indices_f64(const double *x, cx_int n, cx_int vocab, int64_t *idx);
cx_int cx_embedding_indices_i32(const int32_t *x, cx_int n, cx_int vocab, int64_t *idx);
cx_int cx_embedding_indices_i64(const int64_t *x, cx_int n, cx_int vocab, int64_t *idx);

/* out[i, :] = table[idx[i], :] for i < n. */
void cx_embedding_forward_f32(const float *table, cx_int dim, const int64_t *idx, cx_int n, float *out,
                              int n_threads);
void cx_embedding_forward_f64(const double *table, cx_int dim, const int64_t *idx, cx_int n, double *out,
                              int n_threads);

/* Scatter-add of dy (n, dim) by idx into the rows seen: rows[0 .. *n_rows) gets the distinct indices in
 * ascending order. dense: `out` is the (vocab, dim) table gradient, zeroed and then written row by row;
 * else `out` is (n, dim) and its first *n_rows rows get the gradients of rows[]. Returns 0, or -1 when
 * scratch memory could not be allocated. */
int cx_embedding_backward_f32(const float *dy, const int64_t *idx, cx_int n, cx_int dim, cx_int vocab, int dense,
                              float *out, int64_t *rows, cx_int *n_rows, int n_threads);
int cx_embedding_backward_f64(const double *dy, const int64_t *idx, cx_int n, cx_int dim, cx_int vocab, int dense,
                              double *out, int64_t *rows, cx_int *n_rows, int n_threads);

#endif
