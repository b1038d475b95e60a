/* Elementwise merges, forward and backward, written once for `real` (see merge.c). */

#ifndef CX_MERGE_IMPL_ONCE
#define CX_MERGE_IMPL_ONCE
/* Serial below CX_MERGE_PARALLEL_MIN elements per input (cx_tuning.h). */
/* Elements are taken in flat blocks: each block runs through every input while it is in cache,
 * and the blocks, not the threads, fix the partition. */
#define CX_MERGE_BLOCK 2048
/* Whether the left operand a of a pairwise maximum (sign 1) or minimum (sign -1) is the one kept:
 * a >= b (a <= b), ties included, or a is NaN. The sign (an exact product) and `|` rather than
 * `||` keep the loops free of branches, so that they vectorise: a branch per element mispredicts
 * on random data (measured at 5-9 ns per element). */
#define CX_MERGE_KEEPS_LEFT(sign, a, b) (((sign) * (a) >= (sign) * (b)) | ((a) != (a)))
#endif

/* o = a op b over len elements; `a` may be `o` itself (the running result). */
static void FN(merge_pair)(const real *a, const real *b, real *o, cx_int len, int mode)
{
    cx_int i;
    switch (mode) {
    case CX_MERGE_SUBTRACT:
        for (i = 0; i < len; ++i)
            o[i] = a[i] - b[i];
        break;
    case CX_MERGE_MULTIPLY:
        for (i = 0; i < len; ++i)
            o[i] = a[i] * b[i];
        break;
    case CX_MERGE_MAXIMUM:
    case CX_MERGE_MINIMUM: {
        const real sign = mode == CX_MERGE_MAXIMUM ? 1 : -1;
        for (i = 0; i < len; ++i) {
            const real x = a[i], y = b[i];
            o[i] = CX_MERGE_KEEPS_LEFT(sign, x, y) ? x : y;
        }
        break;
    }
    default: /* add, average */
        for (i = 0; i < len; ++i)
            o[i] = a[i] + b[i];
        break;
    }
}

/* Elements [s, s + len) of the forward merge. */
static void FN(merge_forward_block)(const real *const *in, int k, real *out, cx_int s, cx_int len, int mode)
{
    real *o = out + s;
    cx_int i;
    int j;
    if (k == 1)
        memcpy(o, in[0] + s, (size_t)len * sizeof(real));
    for (j = 1; j < k; ++j)
        FN(merge_pair)(j == 1 ? in[0] + s : o, in[j] + s, o, len, mode);
    if (mode == CX_MERGE_AVERAGE) {
        /* Keras divides the sum by the count (a multiplication by 1/k rounds differently). */
        const real count = (real)k;
        for (i = 0; i < len; ++i)
            o[i] = o[i] / count;
    }
}

/* For elements [s, s + len), len <= CX_MERGE_BLOCK: the index of the input that the forward
 * maximum (sign 1) or minimum (sign -1) selected, replaying its left-to-right pairwise reduction.
 * The index is held as a `real` (exact below 2^24 inputs), the width of the data, so that the
 * selects vectorise. */
static void FN(merge_winners)(const real *const *in, int k, cx_int s, cx_int len, real sign,
                              real *CX_RESTRICT winner)
{
    real best[CX_MERGE_BLOCK];
    const real *first = in[0] + s;
    cx_int i;
    int j;
    for (i = 0; i < len; ++i) {
        best[i] = first[i];
        winner[i] = 0;
    }
    for (j = 1; j < k; ++j) {
        const real *CX_RESTRICT x = in[j] + s;
        const real index = (real)j;
        for (i = 0; i < len; ++i) {
            /* every load unconditional, and no aliasing: the selects need no branch */
            const real a = best[i], b = x[i], w = winner[i];
            const int keep = CX_MERGE_KEEPS_LEFT(sign, a, b);
            best[i] = keep ? a : b;
            winner[i] = keep ? w : index;
        }
    }
}

/* d = g * (product of the inputs other than `skip`, left to right) over elements [s, s + len). */
static void FN(merge_product_grad)(const real *g, const real *const *in, int k, int skip, real *d, cx_int s,
                                   cx_int len)
{
    const int first = skip == 0 ? 1 : 0;
    cx_int i;
    int j;
    memcpy(d, in[first] + s, (size_t)len * sizeof(real));
    for (j = first + 1; j < k; ++j) {
        const real *x = in[j] + s;
        if (j == skip)
            continue;
        for (i = 0; i < len; ++i)
            d[i] = d[i] * x[i];
    }
    for (i = 0; i < len; ++i)
        d[i] = g[i] * d[i];
}

/* Elements [s, s + len) of every wanted gradient. */
static void FN(merge_backward_block)(const real *dy, const real *const *in, int k, real *const *dx, cx_int s,
                                     cx_int len, int mode)
{
    const real *g = dy + s;
    const int select = (mode == CX_MERGE_MAXIMUM || mode == CX_MERGE_MINIMUM) && k > 1;
    real winner[CX_MERGE_BLOCK];
    cx_int t;
    int i;
    if (select)
        FN(merge_winners)(in, k, s, len, mode == CX_MERGE_MAXIMUM ? 1 : -1, winner);
    for (i = 0; i < k; ++i) {
        real *d = dx[i];
        if (d == NULL)
            continue;
        d += s;
        if (select) {
            for (t = 0; t < len; ++t) {
                const real gt = g[t];
                d[t] = winner[t] == (real)i ? gt : (real)0;
            }
        } else if (mode == CX_MERGE_MULTIPLY && k > 1) {
            FN(merge_product_grad)(g, in, k, i, d, s, len);
        } else if (mode == CX_MERGE_AVERAGE) {
            const real count = (real)k;
            for (t = 0; t < len; ++t)
                d[t] = g[t] / count;
        } else if (mode == CX_MERGE_SUBTRACT && i == 1) {
            for (t = 0; t < len; ++t)
                d[t] = -g[t];
        } else {
            memcpy(d, g, (size_t)len * sizeof(real));
        }
    }
}

void FN(cx_merge_forward)(const real *const *inputs, int k, real *out, cx_int n, int mode, int n_threads)
{
    const cx_int nblocks = (n + CX_MERGE_BLOCK - 1) / CX_MERGE_BLOCK;
    cx_int b;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n >= CX_MERGE_PARALLEL_MIN && n_threads > 1)
    for (b = 0; b < nblocks; ++b) {
        const cx_int s = b * CX_MERGE_BLOCK;
        FN(merge_forward_block)(inputs, k, out, s, CX_MIN(CX_MERGE_BLOCK, n - s), mode);
    }
}

void FN(cx_merge_backward)(const real *dy, const real *const *inputs, int k, real *const *dx, cx_int n, int mode,
                           int n_threads)
{
    const cx_int nblocks = (n + CX_MERGE_BLOCK - 1) / CX_MERGE_BLOCK;
    cx_int b;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n >= CX_MERGE_PARALLEL_MIN && n_threads > 1)
    for (b = 0; b < nblocks; ++b) {
        const cx_int s = b * CX_MERGE_BLOCK;
        FN(merge_backward_block)(dy, inputs, k, dx, s, CX_MIN(CX_MERGE_BLOCK, n - s), mode);
    }
}
