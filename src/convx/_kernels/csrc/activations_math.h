/* Scalar activation functions and derivatives shared by the forward epilogue
 * (epilogue.c) and the backward kernels (activations.c), instantiated for
 * float (`_f32`) and double (`_f64`) from activations_math_impl.h.
 *
 * Definitions follow Keras 3 (TensorFlow backend): hard_sigmoid is
 * relu6(x + 3) / 6, selu uses Klambauer et al.'s constants, elu with alpha
 * != 1 is alpha * (exp(x) - 1) below 0, gelu is exact (erf) or the tanh
 * approximation, mish is x * tanh(softplus(x)).
 */
#ifndef CONVX_ACTIVATIONS_MATH_H
#define CONVX_ACTIVATIONS_MATH_H

#include <math.h>

#include "convx_common.h"

/* Elementwise loops whose selects compute arithmetic on one side (leaky_relu's slope * x, elu's
 * y + alpha, ...): under GCC's default -ftrapping-math that arithmetic may not be executed
 * speculatively, so the loop keeps a branch per element (~10x slower on data of random sign).
 * No code here relies on floating-point traps, and no result changes (no reassociation). */
#if defined(__GNUC__) && !defined(__clang__)
#define CX_BRANCH_FREE_SELECTS __attribute__((optimize("no-trapping-math")))
#else
#define CX_BRANCH_FREE_SELECTS
#endif

#define CX_SELU_ALPHA 1.6732632423543772848170429916717
#define CX_SELU_SCALE 1.0507009873554804934193349852946
#define CX_SQRT_HALF 0.70710678118654752440084436210485
#define CX_INV_SQRT_2PI 0.39894228040143267793994605993438
#define CX_SQRT_2_OVER_PI 0.79788456080286535587989211986876
#define CX_GELU_CUBIC 0.044715

/* The parameters of the parameterised codes (elu, leaky_relu, relu_general),
 * with their defaults when `params` is NULL. */
typedef struct {
    double p0, p1, p2;
} cx_act_params;

static inline cx_act_params cx_act_params_for(int act, const double *params)
{
    cx_act_params p = {0.0, INFINITY, 0.0};
    if (act == CX_ACT_ELU)
        p.p0 = 1.0;
    else if (act == CX_ACT_LEAKY_RELU)
        p.p0 = 0.2;
    if (params) {
        p.p0 = params[0];
        p.p1 = params[1];
        p.p2 = params[2];
    }
    return p;
}

/* Whether the backward pass of `act` reads the activation's input (else only its output). */
static inline int cx_act_needs_input(int act, const double *params)
{
    cx_act_params p = cx_act_params_for(act, params);
    switch (act) {
    case CX_ACT_SOFTSIGN:
    case CX_ACT_GELU:
    case CX_ACT_GELU_TANH:
    case CX_ACT_SILU:
    case CX_ACT_HARD_SILU:
    case CX_ACT_MISH:
    case CX_ACT_RELU_GENERAL:
        return 1;
    case CX_ACT_ELU:
    case CX_ACT_LEAKY_RELU:
        return !(p.p0 > 0);
    default:
        return 0;
    }
}

#define real float
#define FN(name) name##_f32
#define CX_EXP expf
#define CX_EXPM1 expm1f
#define CX_LOG1P log1pf
#define CX_LOG logf
#define CX_ERF erff
#define CX_TANH tanhf
#include "activations_math_impl.h"
#undef real
#undef FN
#undef CX_EXP
#undef CX_EXPM1
#undef CX_LOG1P
#undef CX_LOG
#undef CX_ERF
#undef CX_TANH

#define real double
#define FN(name) name##_f64
#define CX_EXP exp
#define CX_EXPM1 expm1
#define CX_LOG1P log1p
#define CX_LOG log
#define CX_ERF erf
#define CX_TANH tanh
#include "activations_math_impl.h"
#undef real
#undef FN
#undef CX_EXP
#undef CX_EXPM1
#undef CX_LOG1P
#undef CX_LOG
#undef CX_ERF
#undef CX_TANH

#endif
