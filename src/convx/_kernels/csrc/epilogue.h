/* Fused forward epilogue: bias add + activation, in place on a row-major matrix.
 *
 * y[r, c] = act(y[r, c] + bias[c]) for a (rows, cols) C-contiguous matrix, where
 * `bias` (length cols) may be NULL and `act` is a CX_ACT_* code. Softmax is
 * taken over each row (the last axis), subtracting the row maximum first,
 * and so is log_softmax.
 * Conv and dense call it on their GEMM output; activation_forward calls it with
 * bias = NULL. Every element is computed by one thread in a fixed order, so
 * results are bit-identical for any `n_threads`.
 */
#ifndef CONVX_EPILOGUE_H
#define CONVX_EPILOGUE_H

#include "convx_common.h"

void cx_bias_act_f32(float *y, cx_int rows, cx_int cols, const float *bias, int act, int n_threads);
void cx_bias_act_f64(double *y, cx_int rows, cx_int cols, const double *bias, int act, int n_threads);

/* The same with the parameters of a parameterised code (CX_ACT_ELU: alpha;
 * CX_ACT_LEAKY_RELU: negative_slope; CX_ACT_RELU_GENERAL: negative_slope,
 * max_value (INFINITY for none), threshold): `params` points to 3 doubles,
 * or is NULL for the defaults (cx_bias_act). */
void cx_act_forward_f32(float *y, cx_int rows, cx_int cols, const float *bias, int act, const double *params,
                        int n_threads);
void cx_act_forward_f64(double *y, cx_int rows, cx_int cols, const double *bias, int act, const double *params,
                        int n_threads);

/* Numerically stable logistic function, shared with the activation and loss kernels. */
#include <math.h>
static inline float cx_sigmoid_f32(float x)
{
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}
static inline double cx_sigmoid_f64(double x)
{
    if (x >= 0.0)
        return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* dtype-generic names for the Cython wrappers (convx_common.h) */
#define cx_act_forward(dtype, ...) CX_BY_DTYPE(dtype, cx_act_forward, __VA_ARGS__)

#endif
