/* Normalization kernels: Keras' BatchNormalization, LayerNormalization and
 * GroupNormalization, forward and backward, and the folding of an inference
 * BatchNormalization into the convolution or dense layer before it.
 *
 * Layouts (C-contiguous):
 *  - batch norm: x viewed as (outer, c, inner); statistics per channel over
 *    outer and inner (channels last: inner == 1, the fast path);
 *  - group norm: x viewed as (n, s, g, k, inner); statistics per (sample,
 *    group) over s, k and inner; gamma and beta per channel g * k + k'.
 *    GroupNormalization channels last is (N, H*W, G, C/G, 1); LayerNormalization
 *    over trailing axes of total size D is (rows, 1, 1, D, 1).
 *
 * Passes over the data: training forward 2 (statistics, then normalize);
 * backward 2 (one reduction of dy and x, one writing dx); inference forward 1.
 * Sums are accumulated in double, shifted by the first value of their group
 * (so that a mean far from 0 loses nothing to cancellation), over blocks of
 * rows fixed by the problem size, and the blocks' partial sums are added in
 * block order: results are bit-identical for any `n_threads`.
 *
 * Variances are biased (divided by the count), as Keras' moments. gamma or
 * beta NULL: scale 1 or shift 0 (Keras' scale=False, center=False).
 * Functions returning int: 0, or -1 when scratch memory could not be had.
 */
#ifndef CONVX_NORM_H
#define CONVX_NORM_H

#include "convx_common.h"

/* Training BatchNormalization: batch mean and variance per channel, y = x * a + b with
 * a = gamma / sqrt(var + eps), b = beta - mean * a (Keras' tf.nn.batch_normalization form).
 * relu_max >= 0: a relu that follows is fused, y = min(max(y, 0), relu_max) (INFINITY: plain
 * relu; 6: relu6); < 0: none.
 * Writes mean[c] and invstd[c] = 1 / sqrt(var + eps) (for backward), and when moving_mean
 * is not NULL updates moving = moving * momentum + batch * (1 - momentum) for both moving
 * statistics (the batch variance is the biased one). */
int cx_bn_forward_train_f32(const float *x, cx_int outer, cx_int c, cx_int inner, const float *gamma,
                            const float *beta, double eps, double relu_max, float *y, float *mean, float *invstd,
                            float *moving_mean, float *moving_var, double momentum, int n_threads);
int cx_bn_forward_train_f64(const double *x, cx_int outer, cx_int c, cx_int inner, const double *gamma,
                            const double *beta, double eps, double relu_max, double *y, double *mean, double *invstd,
                            double *moving_mean, double *moving_var, double momentum, int n_threads);

/* Inference BatchNormalization with given statistics: y = x * a + b as above (and the fused
 * relu); one pass.
 * invstd, when not NULL, receives 1 / sqrt(var + eps). */
int cx_bn_forward_infer_f32(const float *x, cx_int outer, cx_int c, cx_int inner, const float *mean,
                            const float *var, const float *gamma, const float *beta, double eps, double relu_max,
                            float *y, float *invstd, int n_threads);
int cx_bn_forward_infer_f64(const double *x, cx_int outer, cx_int c, cx_int inner, const double *mean,
                            const double *var, const double *gamma, const double *beta, double eps, double relu_max,
                            double *y, double *invstd, int n_threads);

/* BatchNormalization backward from x, dy and the statistics used forward. batch_stats != 0:
 * the statistics were the batch's (training); 0: fixed statistics (inference mode, e.g. a
 * frozen layer), so dx = dy * gamma * invstd. dbeta = sum dy, dgamma = sum dy * xhat.
 * y not NULL: the output of a fused relu (relu_max as forward), whose gradient mask
 * 0 < y < relu_max applies to dy first. dx may be NULL (not needed). */
int cx_bn_backward_f32(const float *x, const float *dy, const float *y, double relu_max, cx_int outer, cx_int c,
                       cx_int inner, const float *mean, const float *invstd, const float *gamma, int batch_stats,
                       float *dx, float *dgamma, float *dbeta, int n_threads);
int cx_bn_backward_f64(const double *x, const double *dy, const double *y, double relu_max, cx_int outer, cx_int c,
                       cx_int inner, const double *mean, const double *invstd, const double *gamma, int batch_stats,
                       double *dx, double *dgamma, double *dbeta, int n_threads);

/* Group (and layer) normalization: mean and invstd of shape (n, g). rms != 0: Keras'
 * LayerNormalization(rms_scaling=True): y = x * invstd * gamma (the variance is still the
 * centred one, the mean is not subtracted, beta is not used). */
int cx_gn_forward_f32(const float *x, cx_int n, cx_int s, cx_int g, cx_int k, cx_int inner, const float *gamma,
                      const float *beta, double eps, int rms, float *y, float *mean, float *invstd, int n_threads);
int cx_gn_forward_f64(const double *x, cx_int n, cx_int s, cx_int g, cx_int k, cx_int inner, const double *gamma,
                      const double *beta, double eps, int rms, double *y, double *mean, double *invstd,
                      int n_threads);

/* Backward of cx_gn_forward; dx, dgamma and dbeta may each be NULL. */
int cx_gn_backward_f32(const float *x, const float *dy, cx_int n, cx_int s, cx_int g, cx_int k, cx_int inner,
                       const float *mean, const float *invstd, const float *gamma, int rms, float *dx,
                       float *dgamma, float *dbeta, int n_threads);
int cx_gn_backward_f64(const double *x, const double *dy, cx_int n, cx_int s, cx_int g, cx_int k, cx_int inner,
                       const double *mean, const double *invstd, const double *gamma, int rms, double *dx,
                       double *dgamma, double *dbeta, int n_threads);

/* Folding an inference BatchNormalization into the layer before it: with
 * a = gamma / sqrt(var + eps) per output channel (the last axis of the kernel,
 * `rows` rows of c values), kernel_out = kernel * a and
 * bias_out = (bias - mean) * a + beta (bias NULL: 0). */
int cx_bn_fold_f32(const float *kernel, cx_int rows, cx_int c, const float *bias, const float *mean,
                   const float *var, const float *gamma, const float *beta, double eps, float *kernel_out,
                   float *bias_out);
int cx_bn_fold_f64(const double *kernel, cx_int rows, cx_int c, const double *bias, const double *mean,
                   const double *var, const double *gamma, const double *beta, double eps, double *kernel_out,
                   double *bias_out);

#endif
