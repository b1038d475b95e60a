/* Bias + activation epilogue, written once for `real` (see epilogue.c). */

/* Elementwise work on a flat array is split in blocks of this size, so that a
 * single long row (rows = 1) still spreads over the team. */
#ifndef CX_EPILOGUE_BLOCK
#define CX_EPILOGUE_BLOCK 8192
#endif

CX_BRANCH_FREE_SELECTS
static void FN(act_inplace)(real *v, cx_int n, int act, cx_act_params p)
{
    cx_int i;
    if (FN(cx_act_forward_simd)(v, n, act, p)) /* activations_avx2.h */
        return;
    switch (act) {
    case CX_ACT_RELU:
        /* `v < 0 ? 0 : v` keeps NaN as NaN, like np.maximum and torch.relu. */
        for (i = 0; i < n; ++i)
            v[i] = v[i] < (real)0 ? (real)0 : v[i];
        break;
    case CX_ACT_SIGMOID:
        for (i = 0; i < n; ++i)
            v[i] = FN(cx_sigmoid)(v[i]);
        break;
    case CX_ACT_TANH:
        for (i = 0; i < n; ++i)
            v[i] = CX_TANH(v[i]);
        break;
    case CX_ACT_SOFTPLUS:
        for (i = 0; i < n; ++i)
            v[i] = FN(cx_softplus)(v[i]);
        break;
    case CX_ACT_SOFTSIGN:
        for (i = 0; i < n; ++i)
            v[i] = v[i] / ((real)1 + (v[i] < (real)0 ? -v[i] : v[i]));
        break;
    case CX_ACT_ELU: {
        const real alpha = (real)p.p0;
        for (i = 0; i < n; ++i)
            v[i] = v[i] > (real)0 ? v[i] : alpha * CX_EXPM1(v[i]);
        break;
    }
    case CX_ACT_SELU:
        for (i = 0; i < n; ++i)
            v[i] = v[i] > (real)0 ? (real)CX_SELU_SCALE * v[i]
                                  : (real)CX_SELU_SCALE * ((real)CX_SELU_ALPHA * CX_EXPM1(v[i]));
        break;
    case CX_ACT_GELU:
        for (i = 0; i < n; ++i)
            v[i] = FN(cx_gelu)(v[i]);
        break;
    case CX_ACT_GELU_TANH:
        for (i = 0; i < n; ++i)
            v[i] = FN(cx_gelu_tanh)(v[i]);
        break;
    case CX_ACT_SILU:
        for (i = 0; i < n; ++i)
            v[i] = v[i] * FN(cx_sigmoid)(v[i]);
        break;
    case CX_ACT_HARD_SIGMOID: /* branch-free min/max: vectorises */
        for (i = 0; i < n; ++i) {
            real r = v[i] + (real)3;
            r = r < (real)0 ? (real)0 : r;
            v[i] = (r > (real)6 ? (real)6 : r) / (real)6;
        }
        break;
    case CX_ACT_HARD_SILU:
        for (i = 0; i < n; ++i) {
            real r = v[i] + (real)3;
            r = r < (real)0 ? (real)0 : r;
            v[i] = v[i] * ((r > (real)6 ? (real)6 : r) / (real)6);
        }
        break;
    case CX_ACT_LEAKY_RELU: { /* both sides computed: a branch-free select */
        const real slope = (real)p.p0;
        for (i = 0; i < n; ++i) {
            const real x = v[i], neg = slope * x;
            v[i] = x > (real)0 ? x : neg;
        }
        break;
    }
    case CX_ACT_RELU6:
        for (i = 0; i < n; ++i) {
            real r = v[i] < (real)0 ? (real)0 : v[i];
            v[i] = r > (real)6 ? (real)6 : r;
        }
        break;
    case CX_ACT_MISH:
        for (i = 0; i < n; ++i)
            v[i] = v[i] * CX_TANH(FN(cx_softplus)(v[i]));
        break;
    case CX_ACT_EXPONENTIAL:
        for (i = 0; i < n; ++i)
            v[i] = CX_EXP(v[i]);
        break;
    case CX_ACT_RELU_GENERAL: {
        const real slope = (real)p.p0, max_value = (real)p.p1, threshold = (real)p.p2;
        if (slope == (real)0 && threshold == (real)0) { /* relu clipped at max_value: a vector loop */
            for (i = 0; i < n; ++i) {
                const real r = v[i] < (real)0 ? (real)0 : v[i];
                v[i] = r > max_value ? max_value : r;
            }
            break;
        }
        for (i = 0; i < n; ++i)
            v[i] = FN(cx_relu_general)(v[i], slope, max_value, threshold);
        break;
    }
    default:
        break;
    }
}

static void FN(softmax_row)(real *v, cx_int n)
{
    cx_int i;
    real mx, sum = 0;
    if (n <= 0)
        return;
    mx = v[0];
    for (i = 1; i < n; ++i)
        mx = v[i] > mx ? v[i] : mx;
    for (i = 0; i < n; ++i) {
        v[i] = CX_EXP(v[i] - mx);
        sum += v[i];
    }
    for (i = 0; i < n; ++i)
        v[i] /= sum;
}

/* log_softmax: x - max - log(sum(exp(x - max))). */
static void FN(log_softmax_row)(real *v, cx_int n)
{
    cx_int i;
    real mx, sum = 0, lse;
    if (n <= 0)
        return;
    mx = v[0];
    for (i = 1; i < n; ++i)
        mx = v[i] > mx ? v[i] : mx;
    for (i = 0; i < n; ++i)
        sum += CX_EXP(v[i] - mx);
    lse = CX_LOG(sum);
    for (i = 0; i < n; ++i)
        v[i] = (v[i] - mx) - lse;
}

static void FN(bias_act_row)(real *v, cx_int n, const real *bias, int act, cx_act_params p)
{
    cx_int i;
    if (bias)
        for (i = 0; i < n; ++i)
            v[i] += bias[i];
    if (act == CX_ACT_SOFTMAX)
        FN(softmax_row)(v, n);
    else if (act == CX_ACT_LOG_SOFTMAX)
        FN(log_softmax_row)(v, n);
    else
        FN(act_inplace)(v, n, act, p);
}

void FN(cx_bias_act)(real *y, cx_int rows, cx_int cols, const real *bias, int act, int n_threads)
{
    FN(cx_act_forward)(y, rows, cols, bias, act, NULL, n_threads);
}

void FN(cx_act_forward)(real *y, cx_int rows, cx_int cols, const real *bias, int act, const double *params,
                        int n_threads)
{
    const cx_act_params p = cx_act_params_for(act, params);
    cx_int total = rows * cols;
    int parallel = total >= CX_EPILOGUE_PARALLEL_MIN && n_threads > 1;
    if (rows <= 0 || cols <= 0 || (act == CX_ACT_LINEAR && !bias))
        return;
    if (!bias && act != CX_ACT_SOFTMAX && act != CX_ACT_LOG_SOFTMAX) {
        /* Pure elementwise: the row structure is irrelevant, use flat blocks. */
        cx_int nblocks = (total + CX_EPILOGUE_BLOCK - 1) / CX_EPILOGUE_BLOCK, b;
        if (!parallel) { /* no region at all: even a one-thread region costs ~1 us inside another */
            FN(act_inplace)(y, total, act, p);
            return;
        }
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (b = 0; b < nblocks; ++b) {
            cx_int start = b * CX_EPILOGUE_BLOCK;
            FN(act_inplace)(y + start, CX_MIN(CX_EPILOGUE_BLOCK, total - start), act, p);
        }
        return;
    }
    {
        cx_int r;
        if (!parallel) {
            for (r = 0; r < rows; ++r)
                FN(bias_act_row)(y + r * cols, cols, bias, act, p);
            return;
        }
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (r = 0; r < rows; ++r)
            FN(bias_act_row)(y + r * cols, cols, bias, act, p);
    }
}
