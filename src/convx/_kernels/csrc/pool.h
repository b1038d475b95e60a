/* Pooling kernels over C-contiguous NHWC activations.
 *
 * A window of output cell (oh, ow) covers input rows [oh * sh - ph, oh * sh - ph + kh)
 * and columns likewise; cells outside the input are padding and are ignored
 * (max never picks them, average divides by the count of real cells). Global
 * pools are the special case kh = H, kw = W, one output cell. Results are
 * bit-identical for any `n_threads`.
 */
#ifndef CONVX_POOL_H
#define CONVX_POOL_H

#include "convx_common.h"

typedef struct {
    cx_int n, h, w, c;    /* input (N, H, W, C) */
    cx_int oh, ow;        /* output spatial size */
    cx_int kh, kw;        /* pool size */
    cx_int sh, sw;        /* strides */
    cx_int ph, pw;        /* padding before (top, left) */
} cx_pool_geom;

/* y (N, OH, OW, C); argmax (may be NULL, e.g. for inference): flat index into
 * x of the first maximum of each window in row-major scan order (a NaN wins,
 * so it propagates). */
void cx_max_pool2d_forward_f32(const float *x, float *y, int64_t *argmax, const cx_pool_geom *g, int n_threads);
void cx_max_pool2d_forward_f64(const double *x, double *y, int64_t *argmax, const cx_pool_geom *g, int n_threads);

/* dx (n_images, image_size) is zeroed, then for every image i and each of its
 * `per_image` rows of `c` gradients, dx[argmax] += dy. An index outside image i
 * or pointing at another channel is skipped and counted: the return value is the
 * number of such indices (0 on valid input). When relu_x (the pooled input, of
 * dx's size) is not NULL, gradients reaching a cell where relu_x <= 0 (or NaN)
 * are dropped: the backward of a relu before the pool, fused. */
cx_int cx_max_pool2d_backward_f32(const float *dy, const int64_t *argmax, const float *relu_x, float *dx,
                                  cx_int n_images, cx_int per_image, cx_int c, cx_int image_size, int n_threads);
cx_int cx_max_pool2d_backward_f64(const double *dy, const int64_t *argmax, const double *relu_x, double *dx,
                                  cx_int n_images, cx_int per_image, cx_int c, cx_int image_size, int n_threads);

/* Max-pooling gradient for windows that do not overlap (stride >= pool size
 * on both axes), from the forward's input x and output y instead of indices:
 * every cell of dx (N, H, W, C) is written, dy (N, OH, OW, C) going to each
 * window's first maximum in row-major scan order (the cell argmax would name)
 * and 0 elsewhere. With through_relu (x is a relu's output), cells where x <= 0
 * get 0: the gradient w.r.t. the relu's input. */
void cx_max_pool2d_backward_windows_f32(const float *dy, const float *x, const float *y, int through_relu, float *dx,
                                        const cx_pool_geom *g, int n_threads);
void cx_max_pool2d_backward_windows_f64(const double *dy, const double *x, const double *y, int through_relu,
                                        double *dx, const cx_pool_geom *g, int n_threads);

/* y (N, OH, OW, C): the mean of the real cells of each window. */
void cx_avg_pool2d_forward_f32(const float *x, float *y, const cx_pool_geom *g, int n_threads);
void cx_avg_pool2d_forward_f64(const double *x, double *y, const cx_pool_geom *g, int n_threads);

/* dx (N, H, W, C) from dy (N, OH, OW, C); every element of dx is written. */
void cx_avg_pool2d_backward_f32(const float *dy, float *dx, const cx_pool_geom *g, int n_threads);
void cx_avg_pool2d_backward_f64(const double *dy, double *dx, const cx_pool_geom *g, int n_threads);

/* dtype-generic names for the Cython wrappers (convx_common.h) */
#define cx_max_pool2d_forward(dtype, ...) CX_BY_DTYPE(dtype, cx_max_pool2d_forward, __VA_ARGS__)
#define cx_max_pool2d_backward(dtype, ...) CX_BY_DTYPE(dtype, cx_max_pool2d_backward, __VA_ARGS__)
#define cx_max_pool2d_backward_windows(dtype, ...) CX_BY_DTYPE(dtype, cx_max_pool2d_backward_windows, __VA_ARGS__)
#define cx_avg_pool2d_forward(dtype, ...) CX_BY_DTYPE(dtype, cx_avg_pool2d_forward, __VA_ARGS__)
#define cx_avg_pool2d_backward(dtype, ...) CX_BY_DTYPE(dtype, cx_avg_pool2d_backward, __VA_ARGS__)

#endif
