/* Optimizer update loops, written once in terms of `real` and `FN(name)`.
 *
 * Every loop is elementwise, so a static OpenMP partition gives the same bits
 * for any team size. Each option combination has its own branch-free loop so
 * that gcc vectorises it at -O3 with baseline SIMD (sqrt and division map to
 * vector instructions because the build uses -fno-math-errno). The arithmetic
 * follows Keras' operation order so that float64 results match Keras' formulas
 * to rounding.
 */

#ifndef CX_OPTIMIZERS_IMPL_ONCE
#define CX_OPTIMIZERS_IMPL_ONCE
/* Below this many elements an update runs serially: Adam on 2 threads here,
 * median of 2000 calls, 1 vs 2 threads: 16384 elements 13.4 vs 13.5 us,
 * 32768: 26.1 vs 23.3, 110474 (the seed model): 77 vs 51. */
#define CX_OPT_PARALLEL_MIN 32768
/* sqrtf for float keeps the float32 loops in single precision (and vectorised). */
#define CX_SQRT(x) _Generic((x), float: sqrtf, default: sqrt)(x)
#endif

#define CX_OPT_PARALLEL_FOR \
    _Pragma("omp parallel for num_threads(n_threads) schedule(static) if(n >= CX_OPT_PARALLEL_MIN)")

static void FN(sgd_plain)(real *restrict w, const real *restrict g, cx_int n, real lr, int n_threads)
{
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++)
        w[i] -= g[i] * lr;
}

static void FN(sgd_momentum)(real *restrict w, const real *restrict g, real *restrict vel, cx_int n,
                             real lr, real mu, int n_threads)
{
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real v = vel[i] * mu - g[i] * lr;
        vel[i] = v;
        w[i] += v;
    }
}

static void FN(sgd_nesterov)(real *restrict w, const real *restrict g, real *restrict vel, cx_int n,
                             real lr, real mu, int n_threads)
{
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real v = vel[i] * mu - g[i] * lr;
        vel[i] = v;
        w[i] += v * mu - g[i] * lr;
    }
}

void FN(cx_sgd_update)(real *w, const real *g, real *velocity, cx_int n,
                       double learning_rate, double momentum, int nesterov, int n_threads)
{
    const real lr = (real)learning_rate, mu = (real)momentum;
    if (velocity == NULL || momentum == 0.0)
        FN(sgd_plain)(w, g, n, lr, n_threads);
    else if (nesterov)
        FN(sgd_nesterov)(w, g, velocity, n, lr, mu, n_threads);
    else
        FN(sgd_momentum)(w, g, velocity, n, lr, mu, n_threads);
}

void FN(cx_adam_update)(real *restrict w, const real *restrict g, real *restrict m, real *restrict v,
                        cx_int n, double learning_rate, double beta_1, double beta_2, double epsilon,
                        int64_t step, int n_threads)
{
    /* The bias correction is a scalar: computing it in double costs nothing
     * and keeps 1 - beta^t accurate for beta close to 1. */
    const double t = (double)step;
    const real alpha = (real)(learning_rate * sqrt(1.0 - pow(beta_2, t)) / (1.0 - pow(beta_1, t)));
    const real c1 = (real)(1.0 - beta_1), c2 = (real)(1.0 - beta_2), eps = (real)epsilon;
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real gi = g[i];
        const real mi = m[i] + (gi - m[i]) * c1;
        const real vi = v[i] + (gi * gi - v[i]) * c2;
        m[i] = mi;
        v[i] = vi;
        w[i] -= (mi * alpha) / (CX_SQRT(vi) + eps);
    }
}

/* RMSprop has one loop per (centered, momentum) combination so that no loop
 * carries a branch or touches a buffer it does not need. */
static void FN(rms_plain)(const real *restrict g, real *restrict vel, real *restrict w, cx_int n,
                          real lr, real rho, real c, real eps, int n_threads)
{
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real gi = g[i];
        const real vi = rho * vel[i] + c * (gi * gi);
        vel[i] = vi;
        w[i] -= (lr * gi) / CX_SQRT(vi + eps);
    }
}

static void FN(rms_plain_momentum)(const real *restrict g, real *restrict vel, real *restrict mb,
                                   real *restrict w, cx_int n, real lr, real rho, real c, real mu,
                                   real eps, int n_threads)
{
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real gi = g[i];
        const real vi = rho * vel[i] + c * (gi * gi);
        const real bi = mu * mb[i] + (lr * gi) / CX_SQRT(vi + eps);
        vel[i] = vi;
        mb[i] = bi;
        w[i] -= bi;
    }
}

static void FN(rms_centered)(const real *restrict g, real *restrict vel, real *restrict ag,
                             real *restrict w, cx_int n, real lr, real rho, real c, real eps,
                             int n_threads)
{
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real gi = g[i];
        const real vi = rho * vel[i] + c * (gi * gi);
        const real ai = rho * ag[i] + c * gi;
        vel[i] = vi;
        ag[i] = ai;
        w[i] -= (lr * gi) / CX_SQRT(vi - ai * ai + eps);
    }
}

static void FN(rms_centered_momentum)(const real *restrict g, real *restrict vel, real *restrict ag,
                                      real *restrict mb, real *restrict w, cx_int n, real lr,
                                      real rho, real c, real mu, real eps, int n_threads)
{
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real gi = g[i];
        const real vi = rho * vel[i] + c * (gi * gi);
        const real ai = rho * ag[i] + c * gi;
        const real bi = mu * mb[i] + (lr * gi) / CX_SQRT(vi - ai * ai + eps);
        vel[i] = vi;
        ag[i] = ai;
        mb[i] = bi;
        w[i] -= bi;
    }
}

void FN(cx_rmsprop_update)(real *w, const real *g, real *velocity, real *momentum_buffer,
                           real *average_grad, cx_int n, double learning_rate, double rho,
                           double momentum, double epsilon, int n_threads)
{
    const real lr = (real)learning_rate, r = (real)rho, c = (real)(1.0 - rho);
    const real mu = (real)momentum, eps = (real)epsilon;
    if (average_grad == NULL && momentum_buffer == NULL)
        FN(rms_plain)(g, velocity, w, n, lr, r, c, eps, n_threads);
    else if (average_grad == NULL)
        FN(rms_plain_momentum)(g, velocity, momentum_buffer, w, n, lr, r, c, mu, eps, n_threads);
    else if (momentum_buffer == NULL)
        FN(rms_centered)(g, velocity, average_grad, w, n, lr, r, c, eps, n_threads);
    else
        FN(rms_centered_momentum)(g, velocity, average_grad, momentum_buffer, w, n, lr, r, c, mu,
                                  eps, n_threads);
}

#undef CX_OPT_PARALLEL_FOR
