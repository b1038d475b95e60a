/* Dense (fully connected) layer kernels on cx_gemm: x (N, in), kernel (in, out). */
#ifndef CONVX_DENSE_H
#define CONVX_DENSE_H

#include "convx_common.h"

/* y = act(x @ kernel + bias); bias may be NULL. Both kernels return CX_OK, or
 * CX_ERR_NOMEM when cx_gemm's buffers cannot be allocated. */
cx_status cx_dense_forward_f32(cx_int n, cx_int in, cx_int out, const float *x, const float *kernel,
                          const float *bias, int act, float *y, int n_threads);
cx_status cx_dense_forward_f64(cx_int n, cx_int in, cx_int out, const double *x, const double *kernel,
                          const double *bias, int act, double *y, int n_threads);

/* dkernel = x^T dz, dbias = column sums of dz, dx = dz kernel^T (dx may be NULL). */
cx_status cx_dense_backward_f32(cx_int n, cx_int in, cx_int out, const float *x, const float *kernel,
                           const float *dz, float *dx, float *dkernel, float *dbias, int n_threads);
cx_status cx_dense_backward_f64(cx_int n, cx_int in, cx_int out, const double *x, const double *kernel,
                           const double *dz, double *dx, double *dkernel, double *dbias, int n_threads);

/* dtype-generic names for the Cython wrappers (convx_common.h) */
#define cx_dense_forward(dtype, ...) CX_BY_DTYPE(dtype, cx_dense_forward, __VA_ARGS__)
#define cx_dense_backward(dtype, ...) CX_BY_DTYPE(dtype, cx_dense_backward, __VA_ARGS__)

#endif
