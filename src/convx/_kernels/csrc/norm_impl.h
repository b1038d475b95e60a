/* Normalization kernels written once for `real` (see norm.c and norm.h). */

#ifndef CX_NORM_IMPL_ONCE
#define CX_NORM_IMPL_ONCE
/* Rows are taken in blocks of about this many elements: the blocks, fixed by the problem
 * size, partition every sum, never the threads. */
#define CX_NORM_BLOCK 16384
/* Scratch slots: 0-1 taken by the calling thread before a parallel region, 2-7 by each
 * thread inside one (slots are per thread: the calling thread is thread 0 of the team). */
enum { CX_NORM_SLOT_PART = 0, CX_NORM_SLOT_STATS = 1, CX_NORM_SLOT_T0 = 2 };

static cx_int norm_block_rows(cx_int row_len)
{
    const cx_int rows = CX_NORM_BLOCK / (row_len > 0 ? row_len : 1);
    return rows > 0 ? rows : 1;
}
#endif

/* Per channel ch < c, sums over `rows` rows of (c, inner) values, added to s1 and s2: with t = x - shift[ch],
 * s1 += sum t and s2 += sum t * t (w NULL), or s1 += sum w and s2 += sum w * t (w: dy, laid out as x). */
static void FN(row_sums)(const real *x, const real *w, cx_int rows, cx_int c, cx_int inner, const double *shift,
                         double *CX_RESTRICT s1, double *CX_RESTRICT s2)
{
    cx_int r, ch, i;
    for (r = 0; r < rows; ++r) {
        const real *CX_RESTRICT xr = x + r * c * inner;
        const real *CX_RESTRICT wr = w != NULL ? w + r * c * inner : NULL;
        if (inner == 1 && wr == NULL) {
            for (ch = 0; ch < c; ++ch) {
                const double t = (double)xr[ch] - shift[ch];
                s1[ch] += t;
                s2[ch] += t * t;
            }
        } else if (inner == 1) {
            for (ch = 0; ch < c; ++ch) {
                const double d = (double)wr[ch];
                s1[ch] += d;
                s2[ch] += d * ((double)xr[ch] - shift[ch]);
            }
        } else {
            for (ch = 0; ch < c; ++ch) {
                const double sh = shift[ch];
                double a = 0, q = 0;
                for (i = 0; i < inner; ++i) {
                    const double t = (double)xr[ch * inner + i] - sh;
                    const double d = wr != NULL ? (double)wr[ch * inner + i] : t;
                    a += d;
                    q += d * t;
                }
                s1[ch] += a;
                s2[ch] += q;
            }
        }
    }
}

/* Per channel, over `rows` rows of (c, inner) values: out = x * a[ch] + b[ch] (w NULL), or
 * out = a[ch] * w + e[ch] * (x - m[ch]) + b[ch] (w: dy, laid out as x). */
static void FN(row_write)(const real *x, const real *w, cx_int rows, cx_int c, cx_int inner, const real *a,
                          const real *bv, const real *e, const real *m, real *out)
{
    cx_int r, ch, i;
    for (r = 0; r < rows; ++r) {
        const real *CX_RESTRICT xr = x + r * c * inner;
        real *CX_RESTRICT orow = out + r * c * inner;
        if (w == NULL && inner == 1) {
            for (ch = 0; ch < c; ++ch)
                orow[ch] = xr[ch] * a[ch] + bv[ch];
        } else if (w == NULL) {
            for (ch = 0; ch < c; ++ch) {
                const real ac = a[ch], bc = bv[ch];
                for (i = 0; i < inner; ++i)
                    orow[ch * inner + i] = xr[ch * inner + i] * ac + bc;
            }
        } else {
            const real *CX_RESTRICT wr = w + r * c * inner;
            if (inner == 1) {
                for (ch = 0; ch < c; ++ch)
                    orow[ch] = a[ch] * wr[ch] + e[ch] * (xr[ch] - m[ch]) + bv[ch];
            } else {
                for (ch = 0; ch < c; ++ch) {
                    const real ac = a[ch], bc = bv[ch], ec = e[ch], mc = m[ch];
                    for (i = 0; i < inner; ++i)
                        orow[ch * inner + i] = ac * wr[ch * inner + i] + ec * (xr[ch * inner + i] - mc) + bc;
                }
            }
        }
    }
}

/* A fused relu: v = min(max(v, 0), top) over n values (NaN stays NaN, as the relu epilogue). */
static void FN(clamp)(real *CX_RESTRICT v, cx_int n, real top)
{
    cx_int i;
    for (i = 0; i < n; ++i) {
        const real r = v[i] < (real)0 ? (real)0 : v[i];
        v[i] = r > top ? top : r;
    }
}

/* The gradient through a fused relu: g = dy where 0 < y < top (y its output), else 0. */
static void FN(relu_mask)(const real *CX_RESTRICT dy, const real *CX_RESTRICT y, cx_int n, real top,
                          real *CX_RESTRICT g)
{
    cx_int i;
    for (i = 0; i < n; ++i) {
        /* both loads unconditional and no branch: the select vectorises (a branch per value
         * mispredicts on the half-zero outputs of a relu) */
        const real d = dy[i], v = y[i];
        g[i] = (v > (real)0) & (v < top) ? d : (real)0;
    }
}

/* The gradient w.r.t. a block's pre-relu values: dy itself without a fused relu (y NULL), else dy
 * through the relu's mask, written into `into` (the block of dx) or, when that is NULL, into a
 * per-thread buffer of `bytes` (NULL: no memory). */
static const real *FN(block_grad)(const real *dy, const real *y, cx_int n, double relu_max, real *into,
                                  size_t bytes)
{
    real *masked = into;
    if (y == NULL)
        return dy;
    if (masked == NULL)
        masked = (real *)cx_scratch(CX_NORM_SLOT_T0, bytes);
    if (masked != NULL)
        FN(relu_mask)(dy, y, n, (real)relu_max, masked);
    return masked;
}

/* In place over `rows` rows of (c, inner) values: g = a[ch] * g + e[ch] * (x - m[ch]) + b[ch]. */
static void FN(row_update)(const real *x, real *g, cx_int rows, cx_int c, cx_int inner, const real *a,
                           const real *bv, const real *e, const real *m)
{
    cx_int r, ch, i;
    for (r = 0; r < rows; ++r) {
        const real *CX_RESTRICT xr = x + r * c * inner;
        real *CX_RESTRICT gr = g + r * c * inner;
        if (inner == 1) {
            for (ch = 0; ch < c; ++ch)
                gr[ch] = a[ch] * gr[ch] + e[ch] * (xr[ch] - m[ch]) + bv[ch];
        } else {
            for (ch = 0; ch < c; ++ch) {
                const real ac = a[ch], bc = bv[ch], ec = e[ch], mc = m[ch];
                for (i = 0; i < inner; ++i)
                    gr[ch * inner + i] = ac * gr[ch * inner + i] + ec * (xr[ch * inner + i] - mc) + bc;
            }
        }
    }
}

/* Batch mean and biased variance per channel, in double, into stats[0 .. c) and stats[c .. 2c). */
static int FN(bn_moments)(const real *x, cx_int outer, cx_int c, cx_int inner, double *stats, int n_threads)
{
    const cx_int brows = norm_block_rows(c * inner), nb = (outer + brows - 1) / brows;
    const double count = (double)outer * (double)inner;
    double *part = (double *)cx_scratch(CX_NORM_SLOT_PART, (size_t)(nb * 3 + 1) * (size_t)c * sizeof(double));
    double *shift;
    cx_int b, ch;
    if (part == NULL)
        return CX_ERR_NOMEM;
    shift = part + nb * 2 * c;
    for (ch = 0; ch < c; ++ch)
        shift[ch] = outer > 0 ? (double)x[ch * inner] : 0.0;
#pragma omp parallel for num_threads(n_threads) schedule(static) \
    if (nb > 1 && outer * c * inner >= CX_NORM_PARALLEL_MIN && n_threads > 1)
    for (b = 0; b < nb; ++b) {
        double *s1 = part + b * 2 * c, *s2 = s1 + c;
        const cx_int r0 = b * brows;
        memset(s1, 0, (size_t)(2 * c) * sizeof(double));
        FN(row_sums)(x + r0 * c * inner, NULL, CX_MIN(outer, r0 + brows) - r0, c, inner, shift, s1, s2);
    }
    for (ch = 0; ch < c; ++ch) {
        double t1 = 0, t2 = 0, m, v;
        for (b = 0; b < nb; ++b) {
            t1 += part[b * 2 * c + ch];
            t2 += part[b * 2 * c + c + ch];
        }
        m = count > 0 ? t1 / count : 0.0;
        v = count > 0 ? t2 / count - m * m : 0.0;
        stats[ch] = shift[ch] + m;
        stats[c + ch] = v > 0 ? v : 0.0;
    }
    return 0;
}

/* Keras' inference form, in `real`: inv = 1 / sqrt(var + eps); a = inv * gamma; b = beta - mean * a. */
static void FN(bn_affine)(real mean, real var, const real *gamma, const real *beta, cx_int ch, double eps,
                          real *inv_out, real *a_out, real *b_out)
{
    const real inv = (real)(1.0 / sqrt((double)(var + (real)eps)));
    const real a = gamma != NULL ? inv * gamma[ch] : inv;
    *inv_out = inv;
    *a_out = a;
    *b_out = (beta != NULL ? beta[ch] : (real)0) - mean * a;
}

/* y = x * a[ch] + b[ch] over x viewed as (outer, c, inner). */
static void FN(bn_apply)(const real *x, cx_int outer, cx_int c, cx_int inner, const real *a, const real *bv,
                         double relu_max, real *y, int n_threads)
{
    const cx_int brows = norm_block_rows(c * inner), nb = (outer + brows - 1) / brows;
    cx_int b;
#pragma omp parallel for num_threads(n_threads) schedule(static) \
    if (nb > 1 && outer * c * inner >= CX_NORM_PARALLEL_MIN && n_threads > 1)
    for (b = 0; b < nb; ++b) {
        const cx_int r0 = b * brows, r1 = CX_MIN(outer, r0 + brows);
        FN(row_write)(x + r0 * c * inner, NULL, r1 - r0, c, inner, a, bv, NULL, NULL, y + r0 * c * inner);
        if (relu_max >= 0) /* the block is still in cache */
            FN(clamp)(y + r0 * c * inner, (r1 - r0) * c * inner, (real)relu_max);
    }
}

int FN(cx_bn_forward_train)(const real *x, cx_int outer, cx_int c, cx_int inner, const real *gamma, const real *beta,
                            double eps, double relu_max, real *y, real *mean, real *invstd, real *moving_mean,
                            real *moving_var, double momentum, int n_threads)
{
    double *stats = (double *)cx_scratch(CX_NORM_SLOT_STATS, (size_t)(2 * c) * sizeof(double) +
                                                                 (size_t)(2 * c) * sizeof(real));
    real *a, *bv;
    cx_int ch;
    if (stats == NULL || FN(bn_moments)(x, outer, c, inner, stats, n_threads) != 0)
        return CX_ERR_NOMEM;
    a = (real *)(stats + 2 * c);
    bv = a + c;
    for (ch = 0; ch < c; ++ch) {
        const real m = (real)stats[ch], v = (real)stats[c + ch];
        FN(bn_affine)(m, v, gamma, beta, ch, eps, &invstd[ch], &a[ch], &bv[ch]);
        mean[ch] = m;
        if (moving_mean != NULL) {
            /* Keras: moving * momentum + batch * (1 - momentum), in the variables' precision */
            const real keep = (real)momentum, take = (real)(1.0 - momentum);
            moving_mean[ch] = moving_mean[ch] * keep + m * take;
            moving_var[ch] = moving_var[ch] * keep + v * take;
        }
    }
    FN(bn_apply)(x, outer, c, inner, a, bv, relu_max, y, n_threads);
    return 0;
}

int FN(cx_bn_forward_infer)(const real *x, cx_int outer, cx_int c, cx_int inner, const real *mean, const real *var,
                            const real *gamma, const real *beta, double eps, double relu_max, real *y, real *invstd,
                            int n_threads)
{
    real *a = (real *)cx_scratch(CX_NORM_SLOT_STATS, (size_t)(2 * c) * sizeof(real)), *bv, inv;
    cx_int ch;
    if (a == NULL)
        return CX_ERR_NOMEM;
    bv = a + c;
    for (ch = 0; ch < c; ++ch) {
        FN(bn_affine)(mean[ch], var[ch], gamma, beta, ch, eps, &inv, &a[ch], &bv[ch]);
        if (invstd != NULL)
            invstd[ch] = inv;
    }
    if (y != NULL)
        FN(bn_apply)(x, outer, c, inner, a, bv, relu_max, y, n_threads);
    return 0;
}

int FN(cx_bn_backward)(const real *x, const real *dy, const real *y, double relu_max, cx_int outer, cx_int c,
                       cx_int inner, const real *mean, const real *invstd, const real *gamma, int batch_stats,
                       real *dx, real *dgamma, real *dbeta, int n_threads)
{
    const cx_int brows = norm_block_rows(c * inner), nb = (outer + brows - 1) / brows;
    const double count = (double)outer * (double)inner;
    const int parallel = nb > 1 && outer * c * inner >= CX_NORM_PARALLEL_MIN && n_threads > 1;
    double *part = (double *)cx_scratch(CX_NORM_SLOT_PART, (size_t)(nb * 2 + 1) * (size_t)c * sizeof(double));
    real *coef = (real *)cx_scratch(CX_NORM_SLOT_STATS, (size_t)(3 * c) * sizeof(real));
    const size_t block_bytes = (size_t)(brows * c * inner) * sizeof(real);
    double *shift;
    int failed = 0;
    cx_int b, ch;
    if (part == NULL || coef == NULL)
        return CX_ERR_NOMEM;
    shift = part + nb * 2 * c;
    for (ch = 0; ch < c; ++ch)
        shift[ch] = (double)mean[ch];
    /* pass 1: per channel, sum g and sum g * (x - mean), g = dy (with a fused relu, y given: dy through the
     * relu's mask, written into dx, where pass 2 reads it back, or, without dx, into a per-thread buffer) */
#pragma omp parallel for num_threads(n_threads) schedule(static) if (parallel)
    for (b = 0; b < nb; ++b) {
        double *s1 = part + b * 2 * c, *s2 = s1 + c;
        const cx_int r0 = b * brows, r1 = CX_MIN(outer, r0 + brows), off = r0 * c * inner;
        const real *g = FN(block_grad)(dy + off, y != NULL ? y + off : NULL, (r1 - r0) * c * inner, relu_max,
                                       dx != NULL ? dx + off : NULL, block_bytes);
        memset(s1, 0, (size_t)(2 * c) * sizeof(double));
        if (g == NULL) {
#pragma omp atomic write
            failed = 1;
            continue;
        }
        FN(row_sums)(x + off, g, r1 - r0, c, inner, shift, s1, s2);
    }
    if (failed)
        return CX_ERR_NOMEM;
    {
        real *ca = coef, *cb = coef + c, *cc = coef + 2 * c;
        for (ch = 0; ch < c; ++ch) {
            double t1 = 0, t2 = 0;
            const double inv = (double)invstd[ch], gm = gamma != NULL ? (double)gamma[ch] : 1.0;
            for (b = 0; b < nb; ++b) {
                t1 += part[b * 2 * c + ch];
                t2 += part[b * 2 * c + c + ch];
            }
            dbeta[ch] = (real)t1;
            dgamma[ch] = (real)(t2 * inv);
            ca[ch] = (real)(inv * gm);
            if (batch_stats && count > 0) {
                cb[ch] = (real)(-inv * inv * inv * gm * t2 / count);
                cc[ch] = (real)(-inv * gm * t1 / count);
            } else {
                cb[ch] = 0;
                cc[ch] = 0;
            }
        }
    }
    if (dx == NULL)
        return 0;
    /* pass 2: dx = a * g + b * (x - mean) + c per channel */
#pragma omp parallel for num_threads(n_threads) schedule(static) if (parallel)
    for (b = 0; b < nb; ++b) {
        const cx_int r0 = b * brows, r1 = CX_MIN(outer, r0 + brows), off = r0 * c * inner;
        if (y != NULL)
            FN(row_update)(x + off, dx + off, r1 - r0, c, inner, coef, coef + 2 * c, coef + c, mean);
        else
            FN(row_write)(x + off, dy + off, r1 - r0, c, inner, coef, coef + 2 * c, coef + c, mean, dx + off);
    }
    return 0;
}

/* ---------------------------------------------------------------- group and layer normalization */

/* One row of LayerNormalization over its d trailing values (the (rows, 1, 1, d, 1) case of group
 * normalization, without per-row arrays): sums in 4 lanes, then y = x * a + b per value. */
static void FN(ln_row_forward)(const real *CX_RESTRICT x, cx_int d, const real *gamma, const real *beta, double eps,
                               int rms, real *CX_RESTRICT y, real *mean, real *invstd)
{
    const double sh = d > 0 ? (double)x[0] : 0.0;
    double a1[4] = {0, 0, 0, 0}, a2[4] = {0, 0, 0, 0}, t1, t2, mu = 0, v = 0;
    real m, inv;
    cx_int i = 0;
    int l;
    for (; i + 4 <= d; i += 4)
        for (l = 0; l < 4; ++l) {
            const double t = (double)x[i + l] - sh;
            a1[l] += t;
            a2[l] += t * t;
        }
    for (; i < d; ++i) {
        const double t = (double)x[i] - sh;
        a1[0] += t;
        a2[0] += t * t;
    }
    t1 = (a1[0] + a1[1]) + (a1[2] + a1[3]);
    t2 = (a2[0] + a2[1]) + (a2[2] + a2[3]);
    if (d > 0) {
        mu = t1 / (double)d;
        v = t2 / (double)d - mu * mu;
    }
    m = (real)(sh + mu);
    inv = (real)(1.0 / sqrt((double)((real)(v > 0 ? v : 0.0) + (real)eps)));
    *mean = m;
    *invstd = inv;
    for (i = 0; i < d; ++i) {
        const real a = gamma != NULL ? inv * gamma[i] : inv;
        y[i] = rms ? x[i] * a : x[i] * a + ((beta != NULL ? beta[i] : (real)0) - m * a);
    }
}

/* Backward of ln_row_forward: dx (when not NULL) and the row's terms of dgamma / dbeta added to pg / pb. */
static void FN(ln_row_backward)(const real *CX_RESTRICT x, const real *CX_RESTRICT dy, cx_int d, real m, real inv_r,
                                const real *gamma, int rms, real *CX_RESTRICT dx, double *CX_RESTRICT pg,
                                double *CX_RESTRICT pb)
{
    const double inv = (double)inv_r, sh = rms ? 0.0 : (double)m;
    double a1[4] = {0, 0, 0, 0}, a2[4] = {0, 0, 0, 0}, t1, t2;
    real ce = 0, cb = 0;
    cx_int i = 0;
    int l;
    for (; i + 4 <= d; i += 4)
        for (l = 0; l < 4; ++l) {
            const double g = (double)dy[i + l], t = (double)x[i + l] - sh;
            const double gm = gamma != NULL ? (double)gamma[i + l] : 1.0;
            pb[i + l] += g;
            pg[i + l] += g * t * inv;
            a1[l] += gm * g;
            a2[l] += gm * g * t;
        }
    for (; i < d; ++i) {
        const double g = (double)dy[i], t = (double)x[i] - sh;
        const double gm = gamma != NULL ? (double)gamma[i] : 1.0;
        pb[i] += g;
        pg[i] += g * t * inv;
        a1[0] += gm * g;
        a2[0] += gm * g * t;
    }
    if (dx == NULL || d == 0)
        return;
    t1 = (a1[0] + a1[1]) + (a1[2] + a1[3]);
    t2 = (a2[0] + a2[1]) + (a2[2] + a2[3]);
    ce = (real)(-inv * inv * inv * t2 / (double)d);
    cb = rms ? (real)0 : (real)(-inv * t1 / (double)d);
    for (i = 0; i < d; ++i) {
        const real a = (real)(inv * (gamma != NULL ? (double)gamma[i] : 1.0));
        dx[i] = a * dy[i] + ce * (x[i] - m) + cb;
    }
}

int FN(cx_gn_forward)(const real *x, cx_int n, cx_int s, cx_int g, cx_int k, cx_int inner, const real *gamma,
                      const real *beta, double eps, int rms, real *y, real *mean, real *invstd, int n_threads)
{
    const cx_int cc = g * k, len = s * cc * inner;
    const double count = (double)s * (double)k * (double)inner;
    int failed = 0;
    cx_int j;
    if (s == 1 && g == 1 && inner == 1) { /* layer normalization: one group per row */
#pragma omp parallel for num_threads(n_threads) schedule(static) \
    if (n > 1 && n * len >= CX_NORM_PARALLEL_MIN && n_threads > 1)
        for (j = 0; j < n; ++j)
            FN(ln_row_forward)(x + j * k, k, gamma, beta, eps, rms, y + j * k, mean + j, invstd + j);
        return 0;
    }
#pragma omp parallel for num_threads(n_threads) schedule(static) \
    if (n > 1 && n * len >= CX_NORM_PARALLEL_MIN && n_threads > 1)
    for (j = 0; j < n; ++j) {
        double *shift = (double *)cx_scratch(CX_NORM_SLOT_T0, (size_t)(3 * cc) * sizeof(double));
        real *a = (real *)cx_scratch(CX_NORM_SLOT_T0 + 1, (size_t)(2 * cc) * sizeof(real));
        const real *xs = x + j * len;
        cx_int gi, kk;
        if (shift == NULL || a == NULL) {
#pragma omp atomic write
            failed = 1;
            continue;
        }
        {
            double *s1 = shift + cc, *s2 = shift + 2 * cc;
            real *bv = a + cc;
            for (gi = 0; gi < g; ++gi)
                for (kk = 0; kk < k; ++kk)
                    shift[gi * k + kk] = len > 0 ? (double)xs[gi * k * inner] : 0.0;
            memset(s1, 0, (size_t)(2 * cc) * sizeof(double));
            FN(row_sums)(xs, NULL, s, cc, inner, shift, s1, s2);
            for (gi = 0; gi < g; ++gi) {
                double t1 = 0, t2 = 0, mu, v;
                real m, inv;
                for (kk = 0; kk < k; ++kk) {
                    t1 += s1[gi * k + kk];
                    t2 += s2[gi * k + kk];
                }
                mu = count > 0 ? t1 / count : 0.0;
                v = count > 0 ? t2 / count - mu * mu : 0.0;
                m = (real)(shift[gi * k] + mu);
                inv = (real)(1.0 / sqrt((double)((real)(v > 0 ? v : 0.0) + (real)eps)));
                mean[j * g + gi] = m;
                invstd[j * g + gi] = inv;
                for (kk = 0; kk < k; ++kk) {
                    const cx_int ch = gi * k + kk;
                    a[ch] = gamma != NULL ? inv * gamma[ch] : inv;
                    bv[ch] = rms ? (real)0 : (beta != NULL ? beta[ch] : (real)0) - m * a[ch];
                }
            }
            FN(row_write)(xs, NULL, s, cc, inner, a, bv, NULL, NULL, y + j * len);
        }
    }
    return failed ? CX_ERR_NOMEM : CX_OK;
}

int FN(cx_gn_backward)(const real *x, const real *dy, cx_int n, cx_int s, cx_int g, cx_int k, cx_int inner,
                       const real *mean, const real *invstd, const real *gamma, int rms, real *dx, real *dgamma,
                       real *dbeta, int n_threads)
{
    const cx_int cc = g * k, len = s * cc * inner;
    const cx_int bsamples = norm_block_rows(len), nb = (n + bsamples - 1) / bsamples;
    const double count = (double)s * (double)k * (double)inner;
    double *part = (double *)cx_scratch(CX_NORM_SLOT_PART, (size_t)(nb * 2) * (size_t)cc * sizeof(double));
    int failed = 0;
    cx_int b, ch;
    if (part == NULL)
        return CX_ERR_NOMEM;
#pragma omp parallel for num_threads(n_threads) schedule(static) \
    if (nb > 1 && n * len >= CX_NORM_PARALLEL_MIN && n_threads > 1)
    for (b = 0; b < nb; ++b) {
        double *pg = part + b * 2 * cc, *pb = pg + cc;
        double *shift = (double *)cx_scratch(CX_NORM_SLOT_T0, (size_t)(3 * cc) * sizeof(double));
        real *coef = (real *)cx_scratch(CX_NORM_SLOT_T0 + 1, (size_t)(4 * cc) * sizeof(real));
        const cx_int j0 = b * bsamples, j1 = CX_MIN(n, j0 + bsamples);
        cx_int j, gi, kk;
        memset(pg, 0, (size_t)(2 * cc) * sizeof(double));
        if (s == 1 && g == 1 && inner == 1) { /* layer normalization: one group per row */
            for (j = j0; j < j1; ++j)
                FN(ln_row_backward)(x + j * k, dy + j * k, k, mean[j], invstd[j], gamma, rms,
                                    dx != NULL ? dx + j * k : NULL, pg, pb);
            continue;
        }
        if (shift == NULL || coef == NULL) {
#pragma omp atomic write
            failed = 1;
            continue;
        }
        for (j = j0; j < j1; ++j) {
            const real *xs = x + j * len, *gs = dy + j * len;
            double *s1 = shift + cc, *s2 = shift + 2 * cc;
            real *ca = coef, *cb = coef + cc, *ce = coef + 2 * cc, *cm = coef + 3 * cc;
            /* pass 1: per channel, sum dy and sum dy * (x - mean) (rms: dy * x) */
            for (gi = 0; gi < g; ++gi)
                for (kk = 0; kk < k; ++kk)
                    shift[gi * k + kk] = rms ? 0.0 : (double)mean[j * g + gi];
            memset(s1, 0, (size_t)(2 * cc) * sizeof(double));
            FN(row_sums)(xs, gs, s, cc, inner, shift, s1, s2);
            for (gi = 0; gi < g; ++gi) {
                const double inv = (double)invstd[j * g + gi];
                double t1 = 0, t2 = 0;
                for (kk = 0; kk < k; ++kk) {
                    const cx_int c2 = gi * k + kk;
                    const double gm = gamma != NULL ? (double)gamma[c2] : 1.0;
                    pb[c2] += s1[c2];
                    pg[c2] += s2[c2] * inv;
                    t1 += gm * s1[c2];
                    t2 += gm * s2[c2];
                }
                for (kk = 0; kk < k; ++kk) {
                    const cx_int c2 = gi * k + kk;
                    const double gm = gamma != NULL ? (double)gamma[c2] : 1.0;
                    ca[c2] = (real)(inv * gm);
                    ce[c2] = count > 0 ? (real)(-inv * inv * inv * t2 / count) : (real)0;
                    cb[c2] = rms || count <= 0 ? (real)0 : (real)(-inv * t1 / count);
                    cm[c2] = mean[j * g + gi];
                }
            }
            /* pass 2: dx = a * dy + e * (x - mean) + b */
            if (dx != NULL)
                FN(row_write)(xs, gs, s, cc, inner, ca, cb, ce, cm, dx + j * len);
        }
    }
    if (failed)
        return CX_ERR_NOMEM;
    for (ch = 0; ch < cc; ++ch) {
        double t1 = 0, t2 = 0;
        for (b = 0; b < nb; ++b) {
            t2 += part[b * 2 * cc + ch];
            t1 += part[b * 2 * cc + cc + ch];
        }
        if (dgamma != NULL)
            dgamma[ch] = (real)t2;
        if (dbeta != NULL)
            dbeta[ch] = (real)t1;
    }
    return 0;
}

int FN(cx_bn_fold)(const real *kernel, cx_int rows, cx_int c, const real *bias, const real *mean, const real *var,
                   const real *gamma, const real *beta, double eps, real *kernel_out, real *bias_out)
{
    double *a = (double *)cx_scratch(CX_NORM_SLOT_STATS, (size_t)c * sizeof(double));
    cx_int r, ch;
    if (a == NULL)
        return CX_ERR_NOMEM;
    for (ch = 0; ch < c; ++ch) {
        const double b0 = bias != NULL ? (double)bias[ch] : 0.0;
        a[ch] = (gamma != NULL ? (double)gamma[ch] : 1.0) / sqrt((double)var[ch] + eps);
        bias_out[ch] = (real)((b0 - (double)mean[ch]) * a[ch] + (beta != NULL ? (double)beta[ch] : 0.0));
    }
    for (r = 0; r < rows; ++r) {
        const real *CX_RESTRICT kr = kernel + r * c;
        real *CX_RESTRICT orow = kernel_out + r * c;
        for (ch = 0; ch < c; ++ch)
            orow[ch] = (real)((double)kr[ch] * a[ch]);
    }
    return 0;
}
