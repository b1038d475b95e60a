/* Activation backward, written once for `real` (see activations.c). */

/* Elementwise work is split in flat blocks so that one long row still spreads. */
#ifndef CX_ACT_BLOCK
#define CX_ACT_BLOCK 8192
#endif

/* One loop per code, the derivative `G` an expression of yi (the output) and, for the codes of
 * cx_act_needs_input, xi (the input): selects over values computed unconditionally compile to
 * branch-free vector code (a branch per element mispredicts on data of random sign, ~10x slower).
 * No `restrict`: dx may alias x, y or dy, and each element is read before written. */
#define CX_BWD_LOOP(VAR, SRC, G)                                                                                 \
    for (i = 0; i < n; ++i) {                                                                                  \
        const real VAR = SRC[i], dyi = dy[i];                                                                  \
        dx[i] = dyi * (G);                                                                                     \
    }                                                                                                          \
    break
#define CX_BWD_FROM_Y(G) CX_BWD_LOOP(yi, y, G)
#define CX_BWD_FROM_X(G) CX_BWD_LOOP(xi, x, G)

CX_BRANCH_FREE_SELECTS
static void FN(act_backward_elementwise)(const real *x, const real *y, const real *dy, real *dx, cx_int n, int act,
                                         cx_act_params p)
{
    cx_int i;
    const real zero = 0, one = 1, a = (real)p.p0;
    if (FN(cx_act_backward_simd)(x, y, dy, dx, n, act)) /* activations_avx2.h */
        return;
    switch (act) {
    case CX_ACT_RELU:
        /* Both loads unconditional, so the select compiles to a branch-free mask:
         * a branch per element mispredicts on the ~50% zeros after a relu (8x slower). */
        for (i = 0; i < n; ++i) {
            const real yi = y[i], dyi = dy[i];
            dx[i] = yi > (real)0 ? dyi : (real)0;
        }
        break;
    case CX_ACT_SIGMOID:
        for (i = 0; i < n; ++i)
            dx[i] = dy[i] * y[i] * ((real)1 - y[i]);
        break;
    case CX_ACT_TANH:
        for (i = 0; i < n; ++i)
            dx[i] = dy[i] * ((real)1 - y[i] * y[i]);
        break;
    case CX_ACT_SOFTPLUS: /* sigmoid(x) = 1 - exp(-softplus(x)) */
        CX_BWD_FROM_Y(-CX_EXPM1(-yi));
    case CX_ACT_SOFTSIGN:
        CX_BWD_FROM_X(one / ((one + (xi < zero ? -xi : xi)) * (one + (xi < zero ? -xi : xi))));
    case CX_ACT_ELU: /* alpha > 0: from y (alpha * exp(x) = y + alpha below 0, TensorFlow's EluGrad) */
        if (p.p0 > 0) {
            CX_BWD_FROM_Y(yi > zero ? one : yi + a);
        }
        CX_BWD_FROM_X(xi > zero ? one : a * CX_EXP(xi));
    case CX_ACT_SELU: {
        const real scale = (real)CX_SELU_SCALE, scale_alpha = (real)(CX_SELU_SCALE * CX_SELU_ALPHA);
        CX_BWD_FROM_Y(yi > zero ? scale : yi + scale_alpha);
    }
    case CX_ACT_GELU:
        CX_BWD_FROM_X((real)0.5 * (one + CX_ERF(xi * (real)CX_SQRT_HALF))
                      + xi * (real)CX_INV_SQRT_2PI * CX_EXP((real)-0.5 * xi * xi));
    case CX_ACT_GELU_TANH: {
        const real k = (real)CX_SQRT_2_OVER_PI, c = (real)CX_GELU_CUBIC, c3 = (real)(3 * CX_GELU_CUBIC);
        for (i = 0; i < n; ++i) {
            const real xi = x[i], x2 = xi * xi, t = CX_TANH(k * (xi + c * x2 * xi));
            dx[i] = dy[i] * ((real)0.5 * (one + t) + (real)0.5 * xi * (one - t * t) * k * (one + c3 * x2));
        }
        break;
    }
    case CX_ACT_SILU:
        for (i = 0; i < n; ++i) {
            const real xi = x[i], s = FN(cx_act_sigmoid)(xi);
            dx[i] = dy[i] * (s * (one + xi * (one - s)));
        }
        break;
    case CX_ACT_HARD_SIGMOID: {
        const real sixth = one / (real)6;
        CX_BWD_FROM_Y(yi > zero ? (yi < one ? sixth : zero) : zero);
    }
    case CX_ACT_HARD_SILU:
        CX_BWD_FROM_X(xi < (real)-3 ? zero : (xi > (real)3 ? one : ((real)2 * xi + (real)3) / (real)6));
    case CX_ACT_LEAKY_RELU: /* slope > 0: from y (same sign as x) */
        if (p.p0 > 0) {
            CX_BWD_FROM_Y(yi > zero ? one : a);
        }
        CX_BWD_FROM_X(xi > zero ? one : a);
    case CX_ACT_RELU6:
        CX_BWD_FROM_Y(yi > zero ? (yi < (real)6 ? one : zero) : zero);
    case CX_ACT_MISH:
        for (i = 0; i < n; ++i) {
            const real xi = x[i], t = CX_TANH(FN(cx_softplus)(xi));
            dx[i] = dy[i] * (t + xi * (one - t * t) * FN(cx_act_sigmoid)(xi));
        }
        break;
    case CX_ACT_EXPONENTIAL:
        CX_BWD_FROM_Y(yi);
    case CX_ACT_RELU_GENERAL: {
        const real slope = (real)p.p0, max_value = (real)p.p1, threshold = (real)p.p2;
        CX_BWD_FROM_X(FN(cx_relu_general_grad)(xi, slope, max_value, threshold));
    }
    default:
        for (i = 0; i < n; ++i)
            dx[i] = dy[i];
        break;
    }
}
#undef CX_BWD_FROM_Y
#undef CX_BWD_FROM_X
#undef CX_BWD_LOOP

static void FN(softmax_backward_row)(const real *y, const real *dy, real *dx, cx_int n)
{
    cx_int i;
    real dot = 0;
    for (i = 0; i < n; ++i)
        dot += dy[i] * y[i];
    for (i = 0; i < n; ++i)
        dx[i] = y[i] * (dy[i] - dot);
}

/* log_softmax: dx = dy - softmax(x) * sum(dy), softmax(x) = exp(y). */
static void FN(log_softmax_backward_row)(const real *y, const real *dy, real *dx, cx_int n)
{
    cx_int i;
    real sum = 0;
    for (i = 0; i < n; ++i)
        sum += dy[i];
    for (i = 0; i < n; ++i)
        dx[i] = dy[i] - CX_EXP(y[i]) * sum;
}

void FN(cx_act_backward)(const real *y, const real *dy, real *dx, cx_int rows, cx_int cols, int act,
                         int n_threads)
{
    FN(cx_act_backward_x)(NULL, y, dy, dx, rows, cols, act, NULL, n_threads);
}

void FN(cx_act_backward_x)(const real *x, const real *y, const real *dy, real *dx, cx_int rows, cx_int cols,
                           int act, const double *params, int n_threads)
{
    const cx_act_params p = cx_act_params_for(act, params);
    cx_int total = rows * cols;
    int parallel = total >= CX_ACT_PARALLEL_MIN && n_threads > 1;
    if (rows <= 0 || cols <= 0 || (act == CX_ACT_LINEAR && dx == dy))
        return;
    if (act == CX_ACT_SOFTMAX || act == CX_ACT_LOG_SOFTMAX) {
        cx_int r;
        const int log = act == CX_ACT_LOG_SOFTMAX;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (parallel)
        for (r = 0; r < rows; ++r) {
            if (log)
                FN(log_softmax_backward_row)(y + r * cols, dy + r * cols, dx + r * cols, cols);
            else
                FN(softmax_backward_row)(y + r * cols, dy + r * cols, dx + r * cols, cols);
        }
    } else {
        cx_int nblocks = (total + CX_ACT_BLOCK - 1) / CX_ACT_BLOCK, b;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (parallel)
        for (b = 0; b < nblocks; ++b) {
            cx_int s = b * CX_ACT_BLOCK;
            FN(act_backward_elementwise)(x ? x + s : NULL, y + s, dy + s, dx + s, CX_MIN(CX_ACT_BLOCK, total - s),
                                         act, p);
        }
    }
}
