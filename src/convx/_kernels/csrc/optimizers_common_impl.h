/* Steps every optimizer shares (Keras 3's BaseOptimizer): weight decay, the
 * moving average of the weights (use_ema), gradient accumulation and the sums
 * of squares behind clipnorm / global_clipnorm. Written once in terms of `real`
 * and `FN(name)`.
 */

#ifndef CX_OPT_COMMON_ONCE
#define CX_OPT_COMMON_ONCE
/* Sums of squares add fixed blocks of this many elements in double, then the
 * block sums in order: the result does not depend on the team size. */
#define CX_SUMSQ_BLOCK 8192
#endif

#define CX_OPT_PARALLEL_FOR \
    _Pragma("omp parallel for num_threads(n_threads) schedule(static) if(n >= CX_OPT_PARALLEL_MIN)")

/* Keras: variable.assign_sub(variable * wd * lr). */
void FN(cx_opt_weight_decay)(real *restrict w, cx_int n, double weight_decay, double learning_rate,
                             int n_threads)
{
    const real wd = (real)weight_decay, lr = (real)learning_rate;
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++)
        w[i] -= w[i] * wd * lr;
}

/* average = momentum * average + (1 - momentum) * w. */
void FN(cx_opt_ema)(real *restrict average, const real *restrict w, cx_int n, double momentum,
                    int n_threads)
{
    const real mu = (real)momentum, c = (real)(1.0 - momentum);
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++)
        average[i] = mu * average[i] + c * w[i];
}

/* finish == 0: acc += g. finish != 0: out = (g + acc) / steps and acc = 0. */
void FN(cx_opt_accumulate)(real *restrict acc, const real *restrict g, real *restrict out, cx_int n,
                           int finish, double steps, int n_threads)
{
    const real k = (real)steps;
    cx_int i;
    if (!finish) {
        CX_OPT_PARALLEL_FOR
        for (i = 0; i < n; i++)
            acc[i] += g[i];
        return;
    }
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        out[i] = (g[i] + acc[i]) / k;
        acc[i] = 0;
    }
}

double FN(cx_opt_sum_squares)(const real *x, cx_int n, int n_threads)
{
    const cx_int blocks = (n + CX_SUMSQ_BLOCK - 1) / CX_SUMSQ_BLOCK;
    double small[64];
    double *partial = blocks <= 64 ? small : (double *)malloc((size_t)blocks * sizeof(double));
    double total = 0.0;
    cx_int b;
    if (partial == NULL)
        return -1.0;
    _Pragma("omp parallel for num_threads(n_threads) schedule(static) if(n >= CX_OPT_PARALLEL_MIN)")
    for (b = 0; b < blocks; b++) {
        const cx_int stop = (b + 1) * CX_SUMSQ_BLOCK < n ? (b + 1) * CX_SUMSQ_BLOCK : n;
        double s = 0.0;
        cx_int i;
        for (i = b * CX_SUMSQ_BLOCK; i < stop; i++)
            s += (double)x[i] * (double)x[i];
        partial[b] = s;
    }
    for (b = 0; b < blocks; b++)
        total += partial[b];
    if (partial != small)
        free(partial);
    return total;
}

#undef CX_OPT_PARALLEL_FOR
