/* Depthwise 2-D convolution on NHWC activations, and the forward pass of a
 * transposed convolution (a convolution's input gradient).
 *
 * Depthwise: kernel (KH, KW, C, M) (Keras' DepthwiseConv2D layout), output
 * channel c * M + m = sum over taps of x[.., c] * kernel[ky, kx, c, m]. Work is
 * vectorised over channels (AVX2 + FMA chosen at run time, portable C
 * otherwise); every output value, input-gradient value and weight-gradient
 * partial is summed by one thread in a fixed order, and the weight gradient is
 * the in-order sum of partials over row groups fixed by the problem size:
 * results are bit-identical for any `n_threads`.
 */
#ifndef CONVX_DEPTHWISE_H
#define CONVX_DEPTHWISE_H

#include "convx_common.h"

typedef struct {
    cx_int n, h, w, c, m;    /* input (N, H, W, C), depth multiplier M */
    cx_int kh, kw;           /* kernel (KH, KW, C, M) */
    cx_int oh, ow;           /* output (N, OH, OW, C * M) */
    cx_int sh, sw, dh, dw;   /* strides, dilation */
    cx_int pad_top, pad_left;
} cx_dw_shape;

/* y = act(depthwise(x, kernel) + bias); bias may be NULL. 0, or -1 without memory. */
int cx_depthwise_forward_f32(const cx_dw_shape *s, const float *x, const float *kernel, const float *bias, int act,
                             float *y, int n_threads);
int cx_depthwise_forward_f64(const cx_dw_shape *s, const double *x, const double *kernel, const double *bias,
                             int act, double *y, int n_threads);

/* From dz (N, OH, OW, C * M), the gradient w.r.t. the pre-activation output:
 * dx (unless NULL), dkernel, dbias (unless NULL). 0, or -1 without memory. */
int cx_depthwise_backward_f32(const cx_dw_shape *s, const float *x, const float *kernel, const float *dz, float *dx,
                              float *dkernel, float *dbias, int n_threads);
int cx_depthwise_backward_f64(const cx_dw_shape *s, const double *x, const double *kernel, const double *dz,
                              double *dx, double *dkernel, double *dbias, int n_threads);

/* sum[c] = sum over the rows of m (rows x cols), rows in a fixed order (the
 * bias gradient of a layer whose output is m): fixed groups summed in order. */
int cx_column_sums_f32(const float *m, cx_int rows, cx_int cols, float *sum, int n_threads);
int cx_column_sums_f64(const double *m, cx_int rows, cx_int cols, double *sum, int n_threads);

/* Transposed convolution forward: y = act(conv_input_gradient(x) + bias).
 * `s` describes the convolution whose input gradient this is: its input is y
 * (N, s->h, s->w, s->cin), its output x (N, s->oh, s->ow, s->cout), its
 * kernel (KH, KW, cin, cout). bias (cin) may be NULL. Computed by output rows
 * (so a single image still spreads over the team): the pixels of one row and
 * one stride phase read a fixed subset of the taps, one indirect GEMM each;
 * every output is written once, in a fixed order. 0, or -1 without memory. */
#include "conv.h"
int cx_conv_transpose_forward_f32(const cx_conv_shape *s, const float *x, const float *kernel, const float *bias,
                                  int act, float *y, int n_threads);
int cx_conv_transpose_forward_f64(const cx_conv_shape *s, const double *x, const double *kernel,
                                  const double *bias, int act, double *y, int n_threads);

/* dtype-generic names for the Cython wrappers (convx_common.h) */
#define cx_depthwise_forward(dtype, ...) CX_BY_DTYPE(dtype, cx_depthwise_forward, __VA_ARGS__)
#define cx_depthwise_backward(dtype, ...) CX_BY_DTYPE(dtype, cx_depthwise_backward, __VA_ARGS__)
#define cx_column_sums(dtype, ...) CX_BY_DTYPE(dtype, cx_column_sums, __VA_ARGS__)
#define cx_conv_transpose_forward(dtype, ...) CX_BY_DTYPE(dtype, cx_conv_transpose_forward, __VA_ARGS__)

#endif
