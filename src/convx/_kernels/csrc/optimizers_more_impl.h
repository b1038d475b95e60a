/* Update loops of the optimizers added after SGD/Adam/RMSprop, written once in
 * terms of `real` and `FN(name)` (included by optimizers.c after
 * optimizers_impl.h, whose CX_OPT_PARALLEL_MIN and CX_SQRT they use).
 *
 * Each rule follows the operation order of Keras 3's update_step, so float64
 * runs match a NumPy transcription of it to rounding. Scalars that depend only
 * on the step (bias corrections) arrive precomputed in double in `c[]`; see
 * optimizers.h for each kernel's layout of `c[]`. All loops are elementwise,
 * so a static OpenMP partition gives the same bits for any team size.
 */

#define CX_OPT_PARALLEL_FOR \
    _Pragma("omp parallel for num_threads(n_threads) schedule(static) if(n >= CX_OPT_PARALLEL_MIN)")

/* Adam with amsgrad: v_hat = max(v_hat, v) replaces v in the denominator. */
static void FN(amsgrad)(real *restrict w, const real *restrict g, real *restrict m, real *restrict v,
                        real *restrict vh, cx_int n, const double *c, int n_threads)
{
    const real alpha = (real)c[0], c1 = (real)c[1], c2 = (real)c[2], eps = (real)c[3];
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real gi = g[i];
        const real mi = m[i] + (gi - m[i]) * c1;
        const real vi = v[i] + (gi * gi - v[i]) * c2;
        const real hi = vh[i] > vi ? vh[i] : vi;
        m[i] = mi;
        v[i] = vi;
        vh[i] = hi;
        w[i] -= (mi * alpha) / (CX_SQRT(hi) + eps);
    }
}

static void FN(adamax)(real *restrict w, const real *restrict g, real *restrict m, real *restrict u,
                       cx_int n, const double *c, int n_threads)
{
    const real lr = (real)c[0], c1 = (real)c[1], b2 = (real)c[2], eps = (real)c[3], corr = (real)c[4];
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real gi = g[i];
        const real ag = gi < 0 ? -gi : gi;
        const real mi = m[i] + (gi - m[i]) * c1;
        const real bu = b2 * u[i];
        const real ui = bu > ag ? bu : ag;
        m[i] = mi;
        u[i] = ui;
        w[i] -= (lr * mi) / (corr * (ui + eps));
    }
}

static void FN(nadam)(real *restrict w, const real *restrict g, real *restrict m, real *restrict v,
                      cx_int n, const double *c, int n_threads)
{
    const real lr = (real)c[0], c1 = (real)c[1], c2 = (real)c[2], eps = (real)c[3];
    const real u_next = (real)c[4], d_next = (real)c[5], k_now = (real)c[6], d_now = (real)c[7];
    const real d_v = (real)c[8];
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real gi = g[i];
        const real mi = m[i] + (gi - m[i]) * c1;
        const real vi = v[i] + (gi * gi - v[i]) * c2;
        const real m_hat = (u_next * mi) / d_next + (k_now * gi) / d_now;
        m[i] = mi;
        v[i] = vi;
        w[i] -= (m_hat * lr) / (CX_SQRT(vi / d_v) + eps);
    }
}

static void FN(adagrad)(real *restrict w, const real *restrict g, real *restrict acc, cx_int n,
                        const double *c, int n_threads)
{
    const real lr = (real)c[0], eps = (real)c[1];
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real gi = g[i];
        const real ai = acc[i] + gi * gi;
        acc[i] = ai;
        w[i] -= (lr * gi) / CX_SQRT(ai + eps);
    }
}

static void FN(adadelta)(real *restrict w, const real *restrict g, real *restrict ag,
                         real *restrict ad, cx_int n, const double *c, int n_threads)
{
    const real lr = (real)c[0], rho = (real)c[1], c1 = (real)c[2], eps = (real)c[3];
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real gi = g[i];
        const real gsq = rho * ag[i] + c1 * (gi * gi);
        const real delta = -((CX_SQRT(ad[i] + eps) * gi) / CX_SQRT(gsq + eps));
        ag[i] = gsq;
        ad[i] = rho * ad[i] + c1 * (delta * delta);
        w[i] += lr * delta;
    }
}

/* p = -learning_rate_power (0.5 by default, where pow is a square root). */
static inline real FN(ftrl_pow)(real x, real p)
{
    return p == (real)0.5 ? CX_SQRT(x) : (real)pow((double)x, (double)p);
}

static void FN(ftrl)(real *restrict w, const real *restrict g, real *restrict acc, real *restrict lin,
                     cx_int n, const double *c, int n_threads)
{
    const real lr = (real)c[0], p = (real)c[1], l1 = (real)c[2], l2 = (real)c[3], shrink = (real)c[4];
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real gi = g[i], wi = w[i];
        const real grad_to_use = gi + shrink * wi;
        const real new_acc = acc[i] + gi * gi;
        const real pow_new = FN(ftrl_pow)(new_acc, p);
        const real li = lin[i] + (grad_to_use - ((pow_new - FN(ftrl_pow)(acc[i], p)) / lr) * wi);
        const real quadratic = pow_new / lr + l2;
        const real clipped = li < -l1 ? -l1 : (li > l1 ? l1 : li);
        lin[i] = li;
        w[i] = (clipped - li) / quadratic;
        acc[i] = new_acc;
    }
}

static void FN(lion)(real *restrict w, const real *restrict g, real *restrict m, cx_int n,
                     const double *c, int n_threads)
{
    const real lr = (real)c[0], b1 = (real)c[1], b2 = (real)c[2];
    const real c1 = (real)(1.0 - c[1]), c2 = (real)(1.0 - c[2]);
    cx_int i;
    CX_OPT_PARALLEL_FOR
    for (i = 0; i < n; i++) {
        const real gi = g[i];
        const real d = m[i] * b1 + gi * c1;
        const real s = (real)((d > 0) - (d < 0));
        w[i] -= lr * s;
        m[i] = m[i] * b2 + gi * c2;
    }
}

void FN(cx_opt_step)(int rule, real *w, const real *g, real **slots, cx_int n, const double *c,
                     int n_threads)
{
    switch (rule) {
    case CX_OPT_AMSGRAD: FN(amsgrad)(w, g, slots[0], slots[1], slots[2], n, c, n_threads); break;
    case CX_OPT_ADAMAX: FN(adamax)(w, g, slots[0], slots[1], n, c, n_threads); break;
    case CX_OPT_NADAM: FN(nadam)(w, g, slots[0], slots[1], n, c, n_threads); break;
    case CX_OPT_ADAGRAD: FN(adagrad)(w, g, slots[0], n, c, n_threads); break;
    case CX_OPT_ADADELTA: FN(adadelta)(w, g, slots[0], slots[1], n, c, n_threads); break;
    case CX_OPT_FTRL: FN(ftrl)(w, g, slots[0], slots[1], n, c, n_threads); break;
    case CX_OPT_LION: FN(lion)(w, g, slots[0], n, c, n_threads); break;
    default: break;
    }
}

#undef CX_OPT_PARALLEL_FOR
