/* Pooling kernels, written once for `real` (see pool.c). */

#ifndef CX_POOL_IMPL_SHARED
#define CX_POOL_IMPL_SHARED

/* Serial below CX_POOL_PARALLEL_MIN input elements (cx_tuning.h). The row loops are scheduled
 * dynamically so that the caller does not wait for a worker that wakes late. */

/* Output rows per dynamically scheduled chunk of a pooling loop. */
#define CX_POOL_ROWS_PER_CHUNK 8

/* Real (unpadded) input range [*lo, *hi) of output cell `o` along one axis. */
static inline void cx_pool_window(cx_int o, cx_int stride, cx_int pad, cx_int k, cx_int size, cx_int *lo,
                                  cx_int *hi)
{
    cx_int start = o * stride - pad;
    *lo = CX_MAX(start, 0);
    *hi = CX_MIN(start + k, size);
}

/* Output cells [*lo, *hi) whose window covers input index `i` along one axis. */
static inline void cx_pool_covering(cx_int i, cx_int stride, cx_int pad, cx_int k, cx_int out, cx_int *lo,
                                    cx_int *hi)
{
    cx_int first = i + pad - k + 1; /* lowest window start that still reaches i */
    *lo = first <= 0 ? 0 : (first - 1) / stride + 1; /* ceil(first / stride) without overflow */
    *hi = CX_MIN((i + pad) / stride + 1, out);
}

static inline int cx_pool_parallel(const cx_pool_geom *g, int n_threads)
{
    return n_threads > 1 && g->n * g->h * g->w * g->c >= CX_POOL_PARALLEL_MIN;
}

#endif

/* Fold the window cell at element offset `cell` (from the window's first cell)
 * into the running maximum of channels [0, C). Float values and int32 offsets
 * share a vector width, so the branch-free
 * selects vectorise: the branchy form mispredicted on post-relu data (4 ns per
 * input element). Strict > keeps the first maximum; a NaN replaces a number so
 * it propagates. */
static inline void FN(max_fold)(const real *CX_RESTRICT xp, real *CX_RESTRICT best, int32_t *CX_RESTRICT which,
                                int32_t cell, cx_int C)
{
    for (cx_int c = 0; c < C; ++c) {
        const real v = xp[c], b = best[c];
        const int take = (v > b) | ((v != v) & (b == b));
        best[c] = take ? v : b;
        which[c] = take ? cell : which[c];
    }
}

#define CX_POOL_CHUNK 256

/* One output row (image n, row oh) of max pooling, channels in chunks.
 * Compiled for the baseline ISA and, where the GEMM runs AVX2, with AVX2 (the
 * folds then take 8 channels per instruction instead of 4). */
#define CX_MAX_POOL_ROW(name, attr)                                                                        \
    attr static void name(const real *x, real *y, int64_t *argmax, const cx_pool_geom *g, cx_int n, cx_int oh) \
    {                                                                                                      \
        real best[CX_POOL_CHUNK];                                                                          \
        int32_t which[CX_POOL_CHUNK];                                                                      \
        const cx_int C = g->c;                                                                             \
        cx_int h0, h1, w0, w1;                                                                             \
        cx_pool_window(oh, g->sh, g->ph, g->kh, g->h, &h0, &h1);                                           \
        for (cx_int ow = 0; ow < g->ow; ++ow) {                                                            \
            const cx_int out = ((n * g->oh + oh) * g->ow + ow) * C;                                        \
            cx_pool_window(ow, g->sw, g->pw, g->kw, g->w, &w0, &w1);                                       \
            /* TensorFlow's 'same' rule leaves at least one real cell in every window. */                  \
            for (cx_int c0 = 0; c0 < C; c0 += CX_POOL_CHUNK) {                                             \
                const cx_int cc = CX_MIN(CX_POOL_CHUNK, C - c0);                                           \
                const real *x0 = x + ((n * g->h + h0) * g->w + w0) * C + c0;                               \
                for (cx_int c = 0; c < cc; ++c) {                                                          \
                    best[c] = x0[c];                                                                       \
                    which[c] = 0;                                                                          \
                }                                                                                          \
                /* Offsets fit int32: the wrapper rejects windows spanning 2^31 elements. */               \
                for (cx_int h = h0; h < h1; ++h)                                                           \
                    for (cx_int w = (h == h0 ? w0 + 1 : w0); w < w1; ++w)                                  \
                        FN(max_fold)(x0 + ((h - h0) * g->w + (w - w0)) * C, best, which,                   \
                                     (int32_t)(((h - h0) * g->w + (w - w0)) * C), cc);                     \
                const cx_int first = ((n * g->h + h0) * g->w + w0) * C + c0;                               \
                for (cx_int c = 0; c < cc; ++c)                                                            \
                    y[out + c0 + c] = best[c];                                                             \
                if (argmax)                                                                                \
                    for (cx_int c = 0; c < cc; ++c)                                                        \
                        argmax[out + c0 + c] = first + which[c] + c;                                       \
            }                                                                                              \
        }                                                                                                  \
    }
CX_MAX_POOL_ROW(FN(max_pool_row_generic), )
CX_MAX_POOL_ROW(FN(max_pool_row_avx2), CX_TARGET_AVX2)
#undef CX_MAX_POOL_ROW

static void FN(max_pool_row)(const real *x, real *y, int64_t *argmax, const cx_pool_geom *g, cx_int r, int avx2)
{
#ifdef CX_POOL_ROW_C8_AVX2
    if (avx2 && g->c % 8 == 0)
        CX_POOL_ROW_C8_AVX2(x, y, argmax, g, r / g->oh, r % g->oh);
    else
#endif
    if (avx2)
        FN(max_pool_row_avx2)(x, y, argmax, g, r / g->oh, r % g->oh);
    else
        FN(max_pool_row_generic)(x, y, argmax, g, r / g->oh, r % g->oh);
}

void FN(cx_max_pool2d_forward)(const real *x, real *y, int64_t *argmax, const cx_pool_geom *g, int n_threads)
{
    cx_int rows = g->n * g->oh, r;
    if (rows <= 0 || g->ow <= 0 || g->c <= 0)
        return;
    const int avx2 = cx_isa_avx2_class();
    if (!cx_pool_parallel(g, n_threads)) { /* no region: even a one-thread one costs ~1 us inside another */
        for (r = 0; r < rows; ++r)
            FN(max_pool_row)(x, y, argmax, g, r, avx2);
        return;
    }
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, CX_POOL_ROWS_PER_CHUNK)
    for (r = 0; r < rows; ++r)
        FN(max_pool_row)(x, y, argmax, g, r, avx2);
}

/* Overlapping windows may route several gradients to one cell, so each image is
 * zeroed and then scattered by one thread in a fixed order: race-free and
 * deterministic. The channel check is a mask when C is a power of two. */
cx_int FN(cx_max_pool2d_backward)(const real *dy, const int64_t *argmax, const real *relu_x, real *dx,
                                  cx_int n_images, cx_int per_image, cx_int c, cx_int image_size, int n_threads)
{
    cx_int i, bad = 0;
    int parallel = n_threads > 1 && n_images * image_size >= CX_POOL_PARALLEL_MIN;
    const int pow2 = c > 0 && (c & (c - 1)) == 0;
    if (n_images <= 0 || c <= 0)
        return 0;
#pragma omp parallel for num_threads(n_threads) schedule(static) reduction(+ : bad) if (parallel)
    for (i = 0; i < n_images; ++i) {
        const real *dyi = dy + i * per_image * c;
        const int64_t *ai = argmax + i * per_image * c;
        real *dxi = dx + i * image_size;
        cx_int lo = i * image_size, p, ch;
        memset(dxi, 0, sizeof(real) * image_size);
        for (p = 0; p < per_image; ++p) {
            for (ch = 0; ch < c; ++ch) {
                int64_t k = ai[p * c + ch] - lo;
                if (k < 0 || k >= image_size || (pow2 ? ((k - ch) & (c - 1)) != 0 : k % c != ch)) {
                    ++bad;
                    continue;
                }
                /* a select, not a branch: about one window in ten is all zeros after a relu */
                const real g = dyi[p * c + ch];
                dxi[k] += relu_x ? (relu_x[lo + k] > 0 ? g : (real)0) : g;
            }
        }
    }
    return bad;
}

/* Zero the cells of dx that output row (n, oh) owns but no window covers:
 * input rows from the end of window oh - 1 (or 0) to its own start, the rows
 * after the last window, and the columns between windows of its own rows. */
static void FN(zero_uncovered)(real *dx, const cx_pool_geom *g, cx_int n, cx_int oh)
{
    const cx_int C = g->c, row = g->w * C;
    cx_int h0, h1, w0, w1, prev_h1 = 0;
    real *dxi = dx + n * g->h * row;
    cx_pool_window(oh, g->sh, g->ph, g->kh, g->h, &h0, &h1);
    if (oh > 0)
        cx_pool_window(oh - 1, g->sh, g->ph, g->kh, g->h, &w0, &prev_h1);
    if (h0 > prev_h1)
        memset(dxi + prev_h1 * row, 0, sizeof(real) * (h0 - prev_h1) * row);
    if (oh == g->oh - 1 && h1 < g->h)
        memset(dxi + h1 * row, 0, sizeof(real) * (g->h - h1) * row);
    for (cx_int h = h0; h < h1; ++h) {
        cx_int end = 0;
        for (cx_int ow = 0; ow <= g->ow; ++ow) {
            if (ow < g->ow)
                cx_pool_window(ow, g->sw, g->pw, g->kw, g->w, &w0, &w1);
            else
                w0 = w1 = g->w;
            if (w0 > end)
                memset(dxi + h * row + end * C, 0, sizeof(real) * (w0 - end) * C);
            end = w1;
        }
    }
}

/* Gradient of the windows of output row (n, oh) of a max pooling whose
 * windows do not overlap: each window cell is written once, with the window's
 * dy when it is the window's first maximum (found again from x and y in the
 * forward scan order: x == y, or both NaN), else 0; with through_relu also 0
 * where x <= 0 (the relu's own backward). Compiled for the baseline ISA and
 * AVX2, like the forward row. */
#define CX_MAX_POOL_BACKWARD_ROW(name, attr)                                                                 \
    attr static void name(const real *dy, const real *x, const real *y, int through_relu, real *dx,        \
                          const cx_pool_geom *g, cx_int n, cx_int oh)                                      \
    {                                                                                                        \
        const cx_int C = g->c, row = g->w * C;                                                             \
        cx_int h0, h1, w0, w1;                                                                             \
        int32_t found[CX_POOL_CHUNK];                                                                        \
        cx_pool_window(oh, g->sh, g->ph, g->kh, g->h, &h0, &h1);                                           \
        for (cx_int ow = 0; ow < g->ow; ++ow) {                                                              \
            const cx_int out = ((n * g->oh + oh) * g->ow + ow) * C;                                          \
            cx_pool_window(ow, g->sw, g->pw, g->kw, g->w, &w0, &w1);                                         \
            for (cx_int c0 = 0; c0 < C; c0 += CX_POOL_CHUNK) {                                               \
                const cx_int cc = CX_MIN(CX_POOL_CHUNK, C - c0);                                             \
                const real *CX_RESTRICT yo = y + out + c0, *CX_RESTRICT dyo = dy + out + c0;                 \
                for (cx_int c = 0; c < cc; ++c)                                                              \
                    found[c] = 0;                                                                            \
                for (cx_int h = h0; h < h1; ++h)                                                             \
                    for (cx_int w = w0; w < w1; ++w) {                                                       \
                        const cx_int cell = (n * g->h + h) * row + w * C + c0;                               \
                        const real *CX_RESTRICT xp = x + cell;                                               \
                        real *CX_RESTRICT dxp = dx + cell;                                                   \
                        for (cx_int c = 0; c < cc; ++c) {                                                    \
                            const real v = xp[c], m = yo[c];                                                 \
                            const int32_t hit = ((v == m) | ((v != v) & (m != m))) & !found[c];              \
                            const int32_t keep = hit & (!through_relu | (v > 0));                            \
                            found[c] |= hit;                                                                 \
                            dxp[c] = keep ? dyo[c] : (real)0;                                                \
                        }                                                                                    \
                    }                                                                                        \
            }                                                                                                \
        }                                                                                                    \
    }
CX_MAX_POOL_BACKWARD_ROW(FN(max_pool_backward_row_generic), )
CX_MAX_POOL_BACKWARD_ROW(FN(max_pool_backward_row_avx2), CX_TARGET_AVX2)
#undef CX_MAX_POOL_BACKWARD_ROW

/* Every dx cell of output row r (image r / OH): uncovered cells zeroed, windows scattered. */
static void FN(max_pool_backward_windows_row)(const real *dy, const real *x, const real *y, int through_relu,
                                              real *dx, const cx_pool_geom *g, cx_int r, int avx2)
{
    const cx_int n = r / g->oh, oh = r % g->oh;
    FN(zero_uncovered)(dx, g, n, oh);
#ifdef CX_POOL_BACKWARD_ROW_C8_AVX2
    if (avx2 && g->c % 8 == 0)
        CX_POOL_BACKWARD_ROW_C8_AVX2(dy, x, y, through_relu, dx, g, n, oh);
    else
#endif
    if (avx2)
        FN(max_pool_backward_row_avx2)(dy, x, y, through_relu, dx, g, n, oh);
    else
        FN(max_pool_backward_row_generic)(dy, x, y, through_relu, dx, g, n, oh);
}

void FN(cx_max_pool2d_backward_windows)(const real *dy, const real *x, const real *y, int through_relu, real *dx,
                                        const cx_pool_geom *g, int n_threads)
{
    cx_int rows = g->n * g->oh, r;
    if (g->n <= 0 || g->h <= 0 || g->w <= 0 || g->c <= 0)
        return;
    const int avx2 = cx_isa_avx2_class();
    if (!cx_pool_parallel(g, n_threads)) { /* no region: even a one-thread one costs ~1 us inside another */
        for (r = 0; r < rows; ++r)
            FN(max_pool_backward_windows_row)(dy, x, y, through_relu, dx, g, r, avx2);
        return;
    }
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, CX_POOL_ROWS_PER_CHUNK)
    for (r = 0; r < rows; ++r)
        FN(max_pool_backward_windows_row)(dy, x, y, through_relu, dx, g, r, avx2);
}

static void FN(avg_pool_row)(const real *x, real *y, const cx_pool_geom *g, cx_int n, cx_int oh)
{
    cx_int h0, h1, w0, w1, ow, h, w, c;
    cx_int C = g->c;
    cx_pool_window(oh, g->sh, g->ph, g->kh, g->h, &h0, &h1);
    for (ow = 0; ow < g->ow; ++ow) {
        real *yo = y + ((n * g->oh + oh) * g->ow + ow) * C;
        real count;
        cx_pool_window(ow, g->sw, g->pw, g->kw, g->w, &w0, &w1);
        count = (real)((h1 - h0) * (w1 - w0));
        for (c = 0; c < C; ++c)
            yo[c] = 0;
        for (h = h0; h < h1; ++h) {
            for (w = w0; w < w1; ++w) {
                const real *xp = x + ((n * g->h + h) * g->w + w) * C;
                for (c = 0; c < C; ++c)
                    yo[c] += xp[c];
            }
        }
        for (c = 0; c < C; ++c)
            yo[c] /= count;
    }
}

void FN(cx_avg_pool2d_forward)(const real *x, real *y, const cx_pool_geom *g, int n_threads)
{
    cx_int rows = g->n * g->oh, r;
    if (rows <= 0 || g->ow <= 0 || g->c <= 0)
        return;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (cx_pool_parallel(g, n_threads))
    for (r = 0; r < rows; ++r)
        FN(avg_pool_row)(x, y, g, r / g->oh, r % g->oh);
}

/* Gathers, for each input cell, dy / count from the windows covering it (in
 * (oh, ow) order), so input rows are independent and need no atomics. */
static void FN(avg_pool_backward_row)(const real *dy, real *dx, const cx_pool_geom *g, cx_int n, cx_int h)
{
    cx_int oh0, oh1, ow0, ow1, oh, ow, w, c, lo, hi;
    cx_int C = g->c;
    cx_pool_covering(h, g->sh, g->ph, g->kh, g->oh, &oh0, &oh1);
    for (w = 0; w < g->w; ++w) {
        real *dxp = dx + ((n * g->h + h) * g->w + w) * C;
        for (c = 0; c < C; ++c)
            dxp[c] = 0;
        cx_pool_covering(w, g->sw, g->pw, g->kw, g->ow, &ow0, &ow1);
        for (oh = oh0; oh < oh1; ++oh) {
            cx_int rows;
            cx_pool_window(oh, g->sh, g->ph, g->kh, g->h, &lo, &hi);
            rows = hi - lo;
            for (ow = ow0; ow < ow1; ++ow) {
                const real *dyp = dy + ((n * g->oh + oh) * g->ow + ow) * C;
                real count;
                cx_pool_window(ow, g->sw, g->pw, g->kw, g->w, &lo, &hi);
                count = (real)(rows * (hi - lo));
                for (c = 0; c < C; ++c)
                    dxp[c] += dyp[c] / count;
            }
        }
    }
}

void FN(cx_avg_pool2d_backward)(const real *dy, real *dx, const cx_pool_geom *g, int n_threads)
{
    cx_int rows = g->n * g->h, r;
    if (rows <= 0 || g->w <= 0 || g->c <= 0)
        return;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (cx_pool_parallel(g, n_threads))
    for (r = 0; r < rows; ++r)
        FN(avg_pool_backward_row)(dy, dx, g, r / g->h, r % g->h);
}
