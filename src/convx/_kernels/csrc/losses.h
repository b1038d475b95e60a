/* Loss kernels: per-row losses and the gradient of their mean.
 *
 * Every function takes a (n, c) C-contiguous first argument (logits,
 * probabilities or predictions) and either a (n, c) `targets` array or (n,)
 * int64 `labels` already checked to lie in [0, c). It writes `loss[n]` (one
 * value per row) and `grad[n * c]`, the gradient of mean(loss) with respect to
 * the first argument (so it includes the 1/n factor). Rows are independent and
 * summed in a fixed order: results are bit-identical for any `n_threads`.
 * Semantics follow Keras 3 (epsilon 1e-7 clipping on probabilities; the
 * from-logits forms are the fused, numerically stable ones).
 */
#ifndef CONVX_LOSSES_H
#define CONVX_LOSSES_H

#include "convx_common.h"

void cx_softmax_xent_sparse_f32(const float *logits, const int64_t *labels, cx_int n, cx_int c, float *loss,
                                float *grad, int n_threads);
void cx_softmax_xent_f32(const float *logits, const float *targets, cx_int n, cx_int c, float *loss, float *grad,
                         int n_threads);
void cx_xent_sparse_f32(const float *probs, const int64_t *labels, cx_int n, cx_int c, float *loss, float *grad,
                        int n_threads);
void cx_xent_f32(const float *probs, const float *targets, cx_int n, cx_int c, float *loss, float *grad, int n_threads);
void cx_sigmoid_bce_f32(const float *logits, const float *targets, cx_int n, cx_int c, float *loss, float *grad,
                        int n_threads);
void cx_bce_f32(const float *probs, const float *targets, cx_int n, cx_int c, float *loss, float *grad, int n_threads);
void cx_mse_f32(const float *pred, const float *targets, cx_int n, cx_int c, float *loss, float *grad, int n_threads);

void cx_softmax_xent_sparse_f64(const double *logits, const int64_t *labels, cx_int n, cx_int c, double *loss,
                                double *grad, int n_threads);
void cx_softmax_xent_f64(const double *logits, const double *targets, cx_int n, cx_int c, double *loss, double *grad,
                         int n_threads);
void cx_xent_sparse_f64(const double *probs, const int64_t *labels, cx_int n, cx_int c, double *loss, double *grad,
                        int n_threads);
void cx_xent_f64(const double *probs, const double *targets, cx_int n, cx_int c, double *loss, double *grad, int n_threads);
void cx_sigmoid_bce_f64(const double *logits, const double *targets, cx_int n, cx_int c, double *loss, double *grad,
                        int n_threads);
void cx_bce_f64(const double *probs, const double *targets, cx_int n, cx_int c, double *loss, double *grad, int n_threads);
void cx_mse_f64(const double *pred, const double *targets, cx_int n, cx_int c, double *loss, double *grad, int n_threads);

/* The index of the first label outside [0, c), or -1 when all are inside. */
cx_int cx_first_label_outside(const int64_t *labels, cx_int n, cx_int c);

#endif
