/* Activation backward, written once for `real` (see activations.c). */

/* Below this many elements a parallel region costs more than it saves. */
#ifndef CX_ACT_PARALLEL_MIN
#define CX_ACT_PARALLEL_MIN 131072
#endif
/* Elementwise work is split in flat blocks so that one long row still spreads. */
#ifndef CX_ACT_BLOCK
#define CX_ACT_BLOCK 8192
#endif

/* No `restrict`: dx may alias x, y or dy, and each element is read before written.
 * `x` is read only for the codes of cx_act_needs_input (it may be NULL otherwise). */
static void FN(act_backward_elementwise)(const real *x, const real *y, const real *dy, real *dx, cx_int n, int act,
                                         cx_act_params p)
{
    cx_int i;
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
    case CX_ACT_LINEAR:
        for (i = 0; i < n; ++i)
            dx[i] = dy[i];
        break;
    default:
        if (x)
            for (i = 0; i < n; ++i)
                dx[i] = dy[i] * FN(cx_act_grad)(act, x[i], y[i], p);
        else
            for (i = 0; i < n; ++i)
                dx[i] = dy[i] * FN(cx_act_grad)(act, (real)0, y[i], p);
        break;
    }
}

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
