/* Merge kernels: the elementwise merges of Keras (Add, Subtract, Multiply,
 * Average, Maximum, Minimum) and concatenation, forward and backward.
 *
 * Elementwise merges work on k inputs of n elements each (flat C-contiguous
 * arrays of one shape), passed as an array of k pointers. They follow Keras'
 * left-to-right order: out = ((x0 op x1) op x2) ...; average is that sum
 * divided by k; maximum and minimum keep the left operand on ties and on a
 * NaN left operand (so a NaN propagates, the first one winning). Outputs never
 * alias inputs or each other (the Python wrapper rejects overlapping arrays).
 * Each element is computed alone, so results are bit-identical for any
 * `n_threads`.
 */
#ifndef CONVX_MERGE_H
#define CONVX_MERGE_H

#include "convx_common.h"

/* Must match MERGE_MODES in merge.pyx. */
enum convx_merge_mode {
    CX_MERGE_ADD = 0,
    CX_MERGE_SUBTRACT = 1,
    CX_MERGE_MULTIPLY = 2,
    CX_MERGE_AVERAGE = 3,
    CX_MERGE_MAXIMUM = 4,
    CX_MERGE_MINIMUM = 5
};

/* out = inputs[0] op inputs[1] op ... (subtract: k == 2). */
void cx_merge_forward_f32(const float *const *inputs, int k, float *out, cx_int n, int mode, int n_threads);
void cx_merge_forward_f64(const double *const *inputs, int k, double *out, cx_int n, int mode, int n_threads);

/* dx[i] = gradient of the merge w.r.t. inputs[i] given the upstream dy; dx[i] NULL: not wanted.
 * add: dy; subtract: dy, -dy; average: dy / k; multiply: dy * (product of the other inputs in
 * input order); maximum/minimum: dy where inputs[i] is the element the forward pass selected,
 * else 0. `inputs` is read only by multiply, maximum and minimum (may be NULL otherwise). */
void cx_merge_backward_f32(const float *dy, const float *const *inputs, int k, float *const *dx, cx_int n,
                           int mode, int n_threads);
void cx_merge_backward_f64(const double *dy, const double *const *inputs, int k, double *const *dx, cx_int n,
                           int mode, int n_threads);

/* Concatenation as a copy of (outer, part_len[i]) blocks: row o of `whole` holds row o of
 * parts[0], parts[1], ... side by side (part_len counts elements of elem_size bytes).
 * split == 0 gathers the parts into `whole` (forward); split != 0 scatters `whole` into
 * the parts (backward). */
void cx_concat(char *const *parts, const cx_int *part_len, int k, char *whole, cx_int outer, cx_int elem_size,
               int split, int n_threads);

#endif
