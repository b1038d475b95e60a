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
