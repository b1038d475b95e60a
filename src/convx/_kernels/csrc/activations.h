/* Activation backward kernels (the forward pass is the epilogue, epilogue.h).
 *
 * dx from the forward *output* y and the upstream gradient dy, all (rows, cols)
 * C-contiguous; softmax works along each row. `dx` may be the same buffer as
 * `y` or `dy` (in place). Results are bit-identical for any `n_threads`.
 */
#ifndef CONVX_ACTIVATIONS_H
#define CONVX_ACTIVATIONS_H

#include "convx_common.h"

void cx_act_backward_f32(const float *y, const float *dy, float *dx, cx_int rows, cx_int cols, int act,
                         int n_threads);
void cx_act_backward_f64(const double *y, const double *dy, double *dx, cx_int rows, cx_int cols, int act,
                         int n_threads);

/* The same for any code: `x` is the activation's input, read only when
 * cx_act_needs_input(act, params) (activations_math.h) is 1, else it may be
 * NULL; `params` as for cx_act_forward (epilogue.h), NULL for the defaults. */
void cx_act_backward_x_f32(const float *x, const float *y, const float *dy, float *dx, cx_int rows, cx_int cols,
                           int act, const double *params, int n_threads);
void cx_act_backward_x_f64(const double *x, const double *y, const double *dy, double *dx, cx_int rows,
                           cx_int cols, int act, const double *params, int n_threads);
int cx_act_input_needed(int act, const double *params);
/* 1 when the AVX2 float32 kernels of activations_avx2.h are in use in this process. */
int cx_act_vector_kernels(void);

/* dtype-generic names for the Cython wrappers (convx_common.h) */
#define cx_act_backward_x(dtype, ...) CX_BY_DTYPE(dtype, cx_act_backward_x, __VA_ARGS__)

#endif
