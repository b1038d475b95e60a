/* 2-D convolution on NHWC activations and HWIO kernels, built on cx_gemm.
 *
 * The output rows (n, oy, ox) are processed in tiles: each tile's patches are
 * gathered into a small buffer (im2col of the tile only, never of the whole
 * batch) and multiplied by the kernel viewed as a (KH*KW*C_in, C_out) matrix.
 * The kernel matrix is packed once per call and shared by all tiles; each call
 * is one parallel region over tiles (forward), whole images (input gradient)
 * or fixed row groups (weight gradient, summed in order), so every result is
 * bit-identical whatever `n_threads` is.
 */
#ifndef CONVX_CONV_H
#define CONVX_CONV_H

#include "convx_common.h"

typedef struct {
    cx_int n, h, w, cin;     /* input (N, H, W, C_in) */
    cx_int kh, kw, cout;     /* kernel (KH, KW, C_in, C_out) */
    cx_int oh, ow;           /* output (N, OH, OW, C_out) */
    cx_int sh, sw, dh, dw;   /* strides, dilation */
    cx_int pad_top, pad_left;
} cx_conv_shape;

/* Patches of at most this many values (KH * KW * C_in: a first layer on grey
 * or RGB images) skip GEMM packing (conv_small.h). */
#define CX_SMALL_PATCH 32

/* y = act(conv(x, kernel) + bias); bias may be NULL. Only output rows < used_h
 * and columns < used_w are computed (the others of y are set to 0) when they are
 * fewer than OH / OW: a consumer such as a valid max pooling reads no further.
 * Both kernels return 0, or -1 when scratch memory cannot be allocated. */
int cx_conv2d_forward_f32(const cx_conv_shape *s, const float *x, const float *kernel,
                           const float *bias, int act, float *y, cx_int used_h, cx_int used_w, int n_threads);
int cx_conv2d_forward_f64(const cx_conv_shape *s, const double *x, const double *kernel,
                           const double *bias, int act, double *y, cx_int used_h, cx_int used_w, int n_threads);

/* pooled = max pooling (ph x pw windows, strides ph x pw, no padding) of
 * act(conv(x, kernel) + bias), without the convolution's output ever going to
 * memory: shape (N, OH / ph, OW / pw, C_out). When codes is not NULL (same
 * shape, ph * pw <= 64), it receives each window's maximum's position in the
 * window (row-major; the pooling's first maximum, a NaN winning) for
 * cx_conv2d_maxpool_backward_codes. Returns 0, or -1 without memory. */
int cx_conv2d_maxpool_forward_f32(const cx_conv_shape *s, const float *x, const float *kernel, const float *bias,
                                  int act, cx_int ph, cx_int pw, float *pooled, uint8_t *codes, int n_threads);
int cx_conv2d_maxpool_forward_f64(const cx_conv_shape *s, const double *x, const double *kernel,
                                  const double *bias, int act, cx_int ph, cx_int pw, double *pooled, uint8_t *codes,
                                  int n_threads);

/* dkernel and dbias of the fused forward above in training, from the
 * pooling's output `pooled` and its gradient dy (both (N, OH / ph, OW / pw,
 * C_out)), without dx (a first layer). The convolution's output is computed
 * again band by band, so this is for small patches (KH * KW * C_in <= 32)
 * with a relu or linear activation: -2 otherwise. 0, or -1 without memory. */
int cx_conv2d_maxpool_backward_f32(const cx_conv_shape *s, const float *x, const float *kernel, const float *bias,
                                   int act, cx_int ph, cx_int pw, const float *dy, const float *pooled,
                                   float *dkernel, float *dbias, int n_threads);
int cx_conv2d_maxpool_backward_f64(const cx_conv_shape *s, const double *x, const double *kernel,
                                   const double *bias, int act, cx_int ph, cx_int pw, const double *dy,
                                   const double *pooled, double *dkernel, double *dbias, int n_threads);

/* dx (unless NULL), dkernel and dbias (may be NULL) of the fused forward
 * above in training, from the pooling's output `pooled`, its gradient dy and
 * the forward's codes, for any patch size with a relu or linear activation
 * and windows of at most 64 cells (-2 otherwise): the gradient w.r.t. the convolution's output is built from
 * them for the pixels that get one, never as a whole. Every bit is that of
 * cx_conv2d_backward after the pooling's (and relu's) backward. 0, -1
 * without memory, or -3 (nothing written) when a code is >= ph * pw. */
int cx_conv2d_maxpool_backward_codes_f32(const cx_conv_shape *s, const float *x, const float *kernel, int act,
                                         cx_int ph, cx_int pw, const float *dy, const float *pooled,
                                         const uint8_t *codes, float *dx, float *dkernel, float *dbias,
                                         int n_threads);
int cx_conv2d_maxpool_backward_codes_f64(const cx_conv_shape *s, const double *x, const double *kernel, int act,
                                         cx_int ph, cx_int pw, const double *dy, const double *pooled,
                                         const uint8_t *codes, double *dx, double *dkernel, double *dbias,
                                         int n_threads);

/* CX_OK when every size the kernels compute from `s` (the input, output and
 * kernel element counts, a patch times the output rows) fits in cx_int, else
 * CX_ERR_OVERFLOW; each entry point checks it first. */
static inline cx_status cx_conv_shape_check(const cx_conv_shape *s)
{
    const cx_int patch = cx_mul(cx_mul(s->kh, s->kw), s->cin);
    const cx_int rows = cx_mul(cx_mul(s->n, s->oh), s->ow);
    const cx_int in = cx_mul(cx_mul(cx_mul(s->n, s->h), s->w), s->cin);
    const cx_int span_h = cx_mul(s->kh - 1, s->dh), span_w = cx_mul(s->kw - 1, s->dw);
    const cx_int reach_h = cx_mul(CX_MAX(s->oh - 1, 0), s->sh), reach_w = cx_mul(CX_MAX(s->ow - 1, 0), s->sw);
    /* multiply-adds of a pass (what the team sizes compare), twice over for the backward's two products */
    const cx_int work = cx_mul(cx_mul(cx_mul(rows, patch), s->cout), 2);
    if (patch < 0 || rows < 0 || in < 0 || span_h < 0 || span_w < 0 || reach_h < 0 || reach_w < 0 || work < 0 ||
        s->sh < 1 || s->sw < 1 || s->dh < 1 || s->dw < 1 || s->cout < 0 || s->pad_top < 0 || s->pad_left < 0 ||
        span_h > INT64_MAX - reach_h || span_w > INT64_MAX - reach_w)
        return CX_ERR_OVERFLOW;
    return CX_OK;
}

/* Gradients from dz, the gradient w.r.t. the pre-activation output: dkernel,
 * dbias (may be NULL) and, unless dx is NULL, the input gradient dx. */
int cx_conv2d_backward_f32(const cx_conv_shape *s, const float *x, const float *kernel, const float *dz,
                           float *dx, float *dkernel, float *dbias, int n_threads);
int cx_conv2d_backward_f64(const cx_conv_shape *s, const double *x, const double *kernel, const double *dz,
                           double *dx, double *dkernel, double *dbias, int n_threads);

/* dtype-generic names for the Cython wrappers (convx_common.h) */
#define cx_conv2d_forward(dtype, ...) CX_BY_DTYPE(dtype, cx_conv2d_forward, __VA_ARGS__)
#define cx_conv2d_maxpool_forward(dtype, ...) CX_BY_DTYPE(dtype, cx_conv2d_maxpool_forward, __VA_ARGS__)
#define cx_conv2d_maxpool_backward(dtype, ...) CX_BY_DTYPE(dtype, cx_conv2d_maxpool_backward, __VA_ARGS__)
#define cx_conv2d_maxpool_backward_codes(dtype, ...) \
    CX_BY_DTYPE(dtype, cx_conv2d_maxpool_backward_codes, __VA_ARGS__)
#define cx_conv2d_backward(dtype, ...) CX_BY_DTYPE(dtype, cx_conv2d_backward, __VA_ARGS__)

#endif
