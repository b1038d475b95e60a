/* Loss kernels, written once for `real` (see losses.c and losses.h). */


/* One row: returns its loss and writes its gradient row `g` (already scaled by
 * `scale` = 1/n). `t` is the targets row (NULL for sparse forms), `label` the
 * class index (sparse forms only). */
typedef real (*FN(loss_row_fn))(const real *a, const real *t, cx_int label, cx_int c, real *g, real scale);

static void FN(loss_rows)(FN(loss_row_fn) row, const real *a, const real *t, const int64_t *labels, cx_int n,
                          cx_int c, real *loss, real *grad, int n_threads)
{
    cx_int r;
    real scale = (real)1 / (real)n;
    int parallel = n * c >= CX_LOSS_PARALLEL_MIN && n_threads > 1;
    if (n <= 0 || c <= 0)
        return;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (parallel)
    for (r = 0; r < n; ++r)
        loss[r] = row(a + r * c, t ? t + r * c : NULL, labels ? labels[r] : -1, c, grad + r * c, scale);
}

/* Keras' clip of probabilities to [eps, 1 - eps], with the bounds rounded to
 * `real` from double as NumPy does. Gradients are zero where the clip is active. */
#define CX_EPS ((real)1e-7)
#define CX_ONE_MINUS_EPS ((real)(1.0 - 1e-7))

static inline real FN(clip_prob)(real p)
{
    return p < CX_EPS ? CX_EPS : (p > CX_ONE_MINUS_EPS ? CX_ONE_MINUS_EPS : p);
}

static inline int FN(in_clip)(real p) { return p >= CX_EPS && p <= CX_ONE_MINUS_EPS; }

/* Writes exp(x - max) into g and returns their sum; *mx receives the max. The
 * shift keeps every exponent <= 0, so huge logits neither overflow nor lose the
 * loss to cancellation (the loss is formed from x - max, never from max + log). */
static real FN(shifted_exp)(const real *x, cx_int c, real *g, real *mx)
{
    cx_int i;
    real m = x[0], s = 0;
    for (i = 1; i < c; ++i)
        m = x[i] > m ? x[i] : m;
    for (i = 0; i < c; ++i) {
        g[i] = CX_EXP(x[i] - m);
        s += g[i];
    }
    *mx = m;
    return s;
}

static real FN(softmax_xent_sparse_row)(const real *x, const real *t, cx_int label, cx_int c, real *g, real scale)
{
    cx_int i;
    real m, s = FN(shifted_exp)(x, c, g, &m), k = scale / s;
    (void)t;
    for (i = 0; i < c; ++i)
        g[i] *= k;
    g[label] -= scale;
    return CX_LOG(s) - (x[label] - m);
}

static real FN(softmax_xent_row)(const real *x, const real *t, cx_int label, cx_int c, real *g, real scale)
{
    cx_int i;
    real m, loss = 0, tsum = 0, s = FN(shifted_exp)(x, c, g, &m), log_s = CX_LOG(s);
    (void)label;
    for (i = 0; i < c; ++i) {
        loss += t[i] * (log_s - (x[i] - m));
        tsum += t[i];
    }
    /* d/dx_j of -sum_i t_i log softmax_i = softmax_j * sum(t) - t_j (targets need not sum to 1). */
    for (i = 0; i < c; ++i)
        g[i] = (g[i] / s * tsum - t[i]) * scale;
    return loss;
}

static real FN(row_sum)(const real *a, cx_int c)
{
    cx_int i;
    real s = 0;
    for (i = 0; i < c; ++i)
        s += a[i];
    return s;
}

static real FN(xent_sparse_row)(const real *p, const real *t, cx_int label, cx_int c, real *g, real scale)
{
    cx_int i;
    real s = FN(row_sum)(p, c), q = p[label] / s;
    (void)t;
    /* With q = p / s: d(-log q_l)/dp_j = 1/s - [j == l] / p_l, zero when q_l is clipped. */
    if (!FN(in_clip)(q)) {
        for (i = 0; i < c; ++i)
            g[i] = 0;
    } else {
        for (i = 0; i < c; ++i)
            g[i] = scale / s;
        g[label] -= scale / p[label];
    }
    return -CX_LOG(FN(clip_prob)(q));
}

static real FN(xent_row)(const real *p, const real *t, cx_int label, cx_int c, real *g, real scale)
{
    cx_int i;
    real s = FN(row_sum)(p, c), loss = 0, a = 0;
    (void)label;
    /* d/dp_j of -sum_i t_i log q_i, q = p / s: (sum_i t_i m_i - t_j m_j / q_j) / s, m = unclipped mask. */
    for (i = 0; i < c; ++i) {
        real q = p[i] / s;
        loss -= t[i] * CX_LOG(FN(clip_prob)(q));
        if (FN(in_clip)(q)) {
            a += t[i];
            g[i] = t[i] / q;
        } else {
            g[i] = 0;
        }
    }
    for (i = 0; i < c; ++i)
        g[i] = (a - g[i]) * (scale / s);
    return loss;
}

static real FN(sigmoid_bce_row)(const real *x, const real *t, cx_int label, cx_int c, real *g, real scale)
{
    cx_int i;
    real loss = 0, gs = scale / (real)c;
    (void)label;
    for (i = 0; i < c; ++i) {
        /* max(x, 0) - x t + log(1 + exp(-|x|)): exact for any |x|, no overflow. */
        real z = x[i];
        loss += (z > 0 ? z : 0) - z * t[i] + CX_LOG1P(CX_EXP(-CX_FABS(z)));
        g[i] = (FN(cx_sigmoid)(z) - t[i]) * gs;
    }
    return loss / (real)c;
}

static real FN(bce_row)(const real *p, const real *t, cx_int label, cx_int c, real *g, real scale)
{
    cx_int i;
    real loss = 0, gs = scale / (real)c;
    (void)label;
    for (i = 0; i < c; ++i) {
        real pc = FN(clip_prob)(p[i]);
        loss -= t[i] * CX_LOG(pc) + ((real)1 - t[i]) * CX_LOG((real)1 - pc);
        g[i] = FN(in_clip)(p[i]) ? (((real)1 - t[i]) / ((real)1 - pc) - t[i] / pc) * gs : (real)0;
    }
    return loss / (real)c;
}

static real FN(mse_row)(const real *p, const real *t, cx_int label, cx_int c, real *g, real scale)
{
    cx_int i;
    real loss = 0, gs = (real)2 * scale / (real)c;
    (void)label;
    for (i = 0; i < c; ++i) {
        real d = p[i] - t[i];
        loss += d * d;
        g[i] = d * gs;
    }
    return loss / (real)c;
}

void FN(cx_softmax_xent_sparse)(const real *logits, const int64_t *labels, cx_int n, cx_int c, real *loss,
                                real *grad, int n_threads)
{
    FN(loss_rows)(FN(softmax_xent_sparse_row), logits, NULL, labels, n, c, loss, grad, n_threads);
}

void FN(cx_softmax_xent)(const real *logits, const real *targets, cx_int n, cx_int c, real *loss, real *grad,
                         int n_threads)
{
    FN(loss_rows)(FN(softmax_xent_row), logits, targets, NULL, n, c, loss, grad, n_threads);
}

void FN(cx_xent_sparse)(const real *probs, const int64_t *labels, cx_int n, cx_int c, real *loss, real *grad,
                        int n_threads)
{
    FN(loss_rows)(FN(xent_sparse_row), probs, NULL, labels, n, c, loss, grad, n_threads);
}

void FN(cx_xent)(const real *probs, const real *targets, cx_int n, cx_int c, real *loss, real *grad, int n_threads)
{
    FN(loss_rows)(FN(xent_row), probs, targets, NULL, n, c, loss, grad, n_threads);
}

void FN(cx_sigmoid_bce)(const real *logits, const real *targets, cx_int n, cx_int c, real *loss, real *grad,
                        int n_threads)
{
    FN(loss_rows)(FN(sigmoid_bce_row), logits, targets, NULL, n, c, loss, grad, n_threads);
}

void FN(cx_bce)(const real *probs, const real *targets, cx_int n, cx_int c, real *loss, real *grad, int n_threads)
{
    FN(loss_rows)(FN(bce_row), probs, targets, NULL, n, c, loss, grad, n_threads);
}

void FN(cx_mse)(const real *pred, const real *targets, cx_int n, cx_int c, real *loss, real *grad, int n_threads)
{
    FN(loss_rows)(FN(mse_row), pred, targets, NULL, n, c, loss, grad, n_threads);
}

#undef CX_EPS
#undef CX_ONE_MINUS_EPS
