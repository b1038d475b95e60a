/* Scalar activations, written once for `real` (see activations_math.h). */

static inline real FN(cx_act_sigmoid)(real x)
{
    if (x >= (real)0)
        return (real)1 / ((real)1 + CX_EXP(-x));
    real e = CX_EXP(x);
    return e / ((real)1 + e);
}

/* log(1 + exp(x)) without overflow. */
static inline real FN(cx_softplus)(real x)
{
    return x > (real)0 ? x + CX_LOG1P(CX_EXP(-x)) : CX_LOG1P(CX_EXP(x));
}

static inline real FN(cx_relu6)(real x)
{
    real r = x < (real)0 ? (real)0 : x;
    return r > (real)6 ? (real)6 : r;
}

static inline real FN(cx_hard_sigmoid)(real x)
{
    return FN(cx_relu6)(x + (real)3) / (real)6;
}

static inline real FN(cx_gelu)(real x)
{
    return (real)0.5 * x * ((real)1 + CX_ERF(x * (real)CX_SQRT_HALF));
}

static inline real FN(cx_gelu_tanh)(real x)
{
    real u = (real)CX_SQRT_2_OVER_PI * (x + (real)CX_GELU_CUBIC * x * x * x);
    return (real)0.5 * x * ((real)1 + CX_TANH(u));
}

/* Keras' relu(x, negative_slope, max_value, threshold) (activations.ReLU.static_call). */
static inline real FN(cx_relu_general)(real x, real slope, real max_value, real threshold)
{
    real r = threshold != (real)0 ? (x > threshold ? x : (real)0) : (x < (real)0 ? (real)0 : x);
    if (max_value < (real)INFINITY) {
        r = r < (real)0 ? (real)0 : r;
        r = r > max_value ? max_value : r;
    }
    if (slope != (real)0) {
        real neg = threshold - x;
        r -= slope * (neg > (real)0 ? neg : (real)0);
    }
    return r;
}

/* d relu_general / dx, as TensorFlow differentiates Keras' expression. */
static inline real FN(cx_relu_general_grad)(real x, real slope, real max_value, real threshold)
{
    real g = threshold != (real)0 ? (x > threshold ? (real)1 : (real)0) : (x > (real)0 ? (real)1 : (real)0);
    if (max_value < (real)INFINITY && x > max_value)
        g = 0;
    if (slope != (real)0 && threshold - x > (real)0)
        g += slope;
    return g;
}

/* The derivative of an elementwise activation from its input x and output y.
 * Codes for which cx_act_needs_input() is 0 read y only (x may be garbage):
 * the derivative TensorFlow computes from the output (EluGrad, SeluGrad, ...). */
static inline real FN(cx_act_grad)(int act, real x, real y, cx_act_params p)
{
    switch (act) {
    case CX_ACT_RELU:
        return y > (real)0 ? (real)1 : (real)0;
    case CX_ACT_SIGMOID:
        return y * ((real)1 - y);
    case CX_ACT_TANH:
        return (real)1 - y * y;
    case CX_ACT_SOFTPLUS: /* sigmoid(x) = 1 - exp(-softplus(x)) */
        return -CX_EXPM1(-y);
    case CX_ACT_SOFTSIGN: {
        real d = (real)1 + (x < (real)0 ? -x : x);
        return (real)1 / (d * d);
    }
    case CX_ACT_ELU: /* alpha > 0 from y (alpha * exp(x) = y + alpha below 0), else from x */
        if (p.p0 > 0)
            return y > (real)0 ? (real)1 : y + (real)p.p0;
        return x > (real)0 ? (real)1 : (real)p.p0 * CX_EXP(x);
    case CX_ACT_SELU:
        return y > (real)0 ? (real)CX_SELU_SCALE : y + (real)(CX_SELU_SCALE * CX_SELU_ALPHA);
    case CX_ACT_GELU:
        return (real)0.5 * ((real)1 + CX_ERF(x * (real)CX_SQRT_HALF))
               + x * (real)CX_INV_SQRT_2PI * CX_EXP((real)-0.5 * x * x);
    case CX_ACT_GELU_TANH: {
        real x2 = x * x;
        real t = CX_TANH((real)CX_SQRT_2_OVER_PI * (x + (real)CX_GELU_CUBIC * x2 * x));
        return (real)0.5 * ((real)1 + t)
               + (real)0.5 * x * ((real)1 - t * t) * (real)CX_SQRT_2_OVER_PI * ((real)1 + (real)(3 * CX_GELU_CUBIC) * x2);
    }
    case CX_ACT_SILU: {
        real s = FN(cx_act_sigmoid)(x);
        return s * ((real)1 + x * ((real)1 - s));
    }
    case CX_ACT_HARD_SIGMOID:
        return y > (real)0 && y < (real)1 ? (real)1 / (real)6 : (real)0;
    case CX_ACT_HARD_SILU:
        return x < (real)-3 ? (real)0 : (x > (real)3 ? (real)1 : ((real)2 * x + (real)3) / (real)6);
    case CX_ACT_LEAKY_RELU: /* slope > 0 from y (same sign as x), else from x */
        if (p.p0 > 0)
            return y > (real)0 ? (real)1 : (real)p.p0;
        return x > (real)0 ? (real)1 : (real)p.p0;
    case CX_ACT_RELU6:
        return y > (real)0 && y < (real)6 ? (real)1 : (real)0;
    case CX_ACT_MISH: {
        real t = CX_TANH(FN(cx_softplus)(x));
        return t + x * ((real)1 - t * t) * FN(cx_act_sigmoid)(x);
    }
    case CX_ACT_EXPONENTIAL:
        return y;
    case CX_ACT_RELU_GENERAL:
        return FN(cx_relu_general_grad)(x, (real)p.p0, (real)p.p1, (real)p.p2);
    default:
        return (real)1;
    }
}
