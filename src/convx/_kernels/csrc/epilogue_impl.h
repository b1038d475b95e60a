/* Bias + activation epilogue, written once for `real` (see epilogue.c). */

/* Below this many elements a parallel region costs more than it saves. */
#ifndef CX_EPILOGUE_PARALLEL_MIN
#define CX_EPILOGUE_PARALLEL_MIN 131072
#endif
/* Elementwise work on a flat array is split in blocks of this size, so that a
 * single long row (rows = 1) still spreads over the team. */
#ifndef CX_EPILOGUE_BLOCK
#define CX_EPILOGUE_BLOCK 8192
#endif

static void FN(act_inplace)(real *v, cx_int n, int act)
{
    cx_int i;
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

static void FN(bias_act_row)(real *v, cx_int n, const real *bias, int act)
{
    cx_int i;
    if (bias)
        for (i = 0; i < n; ++i)
            v[i] += bias[i];
    if (act == CX_ACT_SOFTMAX)
        FN(softmax_row)(v, n);
    else
        FN(act_inplace)(v, n, act);
}

void FN(cx_bias_act)(real *y, cx_int rows, cx_int cols, const real *bias, int act, int n_threads)
{
    cx_int total = rows * cols;
    int parallel = total >= CX_EPILOGUE_PARALLEL_MIN && n_threads > 1;
    if (rows <= 0 || cols <= 0 || (act == CX_ACT_LINEAR && !bias))
        return;
    if (!bias && act != CX_ACT_SOFTMAX) {
        /* Pure elementwise: the row structure is irrelevant, use flat blocks. */
        cx_int nblocks = (total + CX_EPILOGUE_BLOCK - 1) / CX_EPILOGUE_BLOCK, b;
        if (!parallel) { /* no region at all: even a one-thread region costs ~1 us inside another */
            FN(act_inplace)(y, total, act);
            return;
        }
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (b = 0; b < nblocks; ++b) {
            cx_int start = b * CX_EPILOGUE_BLOCK;
            FN(act_inplace)(y + start, CX_MIN(CX_EPILOGUE_BLOCK, total - start), act);
        }
        return;
    }
    {
        cx_int r;
        if (!parallel) {
            for (r = 0; r < rows; ++r)
                FN(bias_act_row)(y + r * cols, cols, bias, act);
            return;
        }
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (r = 0; r < rows; ++r)
            FN(bias_act_row)(y + r * cols, cols, bias, act);
    }
}
