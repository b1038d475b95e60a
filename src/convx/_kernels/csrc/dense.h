/* Dense (fully connected) layer kernels on cx_gemm: x (N, in), kernel (in, out). */
#ifndef CONVX_DENSE_H
#define CONVX_DENSE_H

#include "convx_common.h"

/* y = act(x @ kernel + bias); bias may be NULL. */
void cx_dense_forward_f32(cx_int n, cx_int in, cx_int out, const float *x, const float *kernel,
                          const float *bias, int act, float *y, int n_threads);
void cx_dense_forward_f64(cx_int n, cx_int in, cx_int out, const double *x, const double *kernel,
                          const double *bias, int act, double *y, int n_threads);

/* dkernel = x^T dz, dbias = column sums of dz, dx = dz kernel^T (dx may be NULL). */
void cx_dense_backward_f32(cx_int n, cx_int in, cx_int out, const float *x, const float *kernel,
                           const float *dz, float *dx, float *dkernel, float *dbias, int n_threads);
void cx_dense_backward_f64(cx_int n, cx_int in, cx_int out, const double *x, const double *kernel,
                           const double *dz, double *dx, double *dkernel, double *dbias, int n_threads);

#endif
