/* Convolution kernels, instantiated per dtype by conv.c (see conv.h). */

/* Output columns [lo, hi) whose tap at kernel column offset `off` (= kx * dw -
 * pad_left) lands inside the input row of width `w`: 0 <= ox * sw + off < w. */
static inline void FN(valid_columns)(cx_int off, cx_int sw, cx_int w, cx_int ow, cx_int *lo, cx_int *hi)
{
    *lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
    *hi = w - 1 - off < 0 ? 0 : CX_MIN((w - 1 - off) / sw + 1, ow);
    if (*lo > *hi)
        *lo = *hi;
}

/* Patches of `count` consecutive outputs (image xi, output row oy, columns from
 * ox0) into dst, one row of KH*KW*C_in per output. Works tap by tap so that the
 * bounds are computed once per run instead of once per element. */
static void FN(im2col_run)(const cx_conv_shape *s, const real *xi, cx_int oy, cx_int ox0, cx_int count, real *dst)
{
    const cx_int cin = s->cin, patch = s->kh * s->kw * cin;
    for (cx_int ky = 0; ky < s->kh; ky++) {
        const cx_int iy = oy * s->sh - s->pad_top + ky * s->dh;
        for (cx_int kx = 0; kx < s->kw; kx++) {
            real *d = dst + (ky * s->kw + kx) * cin;
            const cx_int off = kx * s->dw - s->pad_left;
            cx_int lo, hi;
            FN(valid_columns)(off, s->sw, s->w, s->ow, &lo, &hi);
            if (iy < 0 || iy >= s->h)
                lo = hi = ox0;
            lo = CX_MIN(CX_MAX(lo, ox0), ox0 + count);
            hi = CX_MIN(CX_MAX(hi, lo), ox0 + count);
            cx_int ox = ox0;
            for (; ox < lo; ox++)
                for (cx_int c = 0; c < cin; c++)
                    d[(ox - ox0) * patch + c] = 0;
            const real *src = xi + (iy * s->w + off) * cin;
            if (cin == 1) {
                for (; ox < hi; ox++)
                    d[(ox - ox0) * patch] = src[ox * s->sw];
            } else {
                for (; ox < hi; ox++)
                    for (cx_int c = 0; c < cin; c++)
                        d[(ox - ox0) * patch + c] = src[ox * s->sw * cin + c];
            }
            for (; ox < ox0 + count; ox++)
                for (cx_int c = 0; c < cin; c++)
                    d[(ox - ox0) * patch + c] = 0;
        }
    }
}

/* Output pixel of row r of a pass: rows are output pixels, or (idx) the listed ones. */
static inline cx_int FN(row_at)(const cx_int *idx, cx_int r)
{
    return idx ? idx[r] : r;
}

/* Gather the patches of rows [r0, r0 + rows) into buf (rows x KH*KW*C_in). */
static void FN(im2col_rows)(const cx_conv_shape *s, const real *x, const cx_int *idx, cx_int r0, cx_int rows,
                            real *buf)
{
    const cx_int per_image = s->oh * s->ow, patch = s->kh * s->kw * s->cin;
    for (cx_int r = 0; r < rows;) {
        const cx_int row = FN(row_at)(idx, r0 + r), img = row / per_image, oy = (row % per_image) / s->ow;
        const cx_int ox0 = row % s->ow, most = CX_MIN(rows - r, s->ow - ox0);
        cx_int count = idx ? 1 : most; /* a run of adjacent pixels of one output row */
        while (count < most && idx[r0 + r + count] == row + count)
            count++;
        FN(im2col_run)(s, x + img * s->h * s->w * s->cin, oy, ox0, count, buf + r * patch);
        r += count;
    }
}

/* Scatter-add patch gradients of rows [r0, r0 + rows) into dx. */
static void FN(col2im_rows)(const cx_conv_shape *s, const real *buf, const cx_int *idx, cx_int r0, cx_int rows,
                            real *dx)
{
    const cx_int per_image = s->oh * s->ow, cin = s->cin;
    for (cx_int r = 0; r < rows; r++) {
        const cx_int row = FN(row_at)(idx, r0 + r), img = row / per_image, oy = (row % per_image) / s->ow;
        const cx_int ox = row % s->ow;
        real *dxi = dx + img * s->h * s->w * cin;
        const real *src = buf + r * s->kh * s->kw * cin;
        for (cx_int ky = 0; ky < s->kh; ky++) {
            const cx_int iy = oy * s->sh - s->pad_top + ky * s->dh;
            for (cx_int kx = 0; kx < s->kw; kx++, src += cin) {
                const cx_int ix = ox * s->sw - s->pad_left + kx * s->dw;
                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                    continue;
                real *dst = dxi + (iy * s->w + ix) * cin;
                for (cx_int c = 0; c < cin; c++)
                    dst[c] += src[c];
            }
        }
    }
}

static void FN(small_forward)(cx_int rows, cx_int patch, cx_int cout, const real *a, const real *kernel,
                              const real *bias, int relu, real *y)
{
    if (cx_isa_selected() == CX_ISA_AVX2)
        FN(small_forward_avx2)(rows, patch, cout, a, kernel, bias, relu, y);
    else
        FN(small_forward_generic)(rows, patch, cout, a, kernel, bias, relu, y);
}

static void FN(small_wgrad)(cx_int rows, cx_int patch, cx_int cout, const real *a, const real *dz, int first,
                            real *dk)
{
    if (cx_isa_selected() == CX_ISA_AVX2)
        FN(small_wgrad_avx2)(rows, patch, cout, a, dz, first, dk);
    else
        FN(small_wgrad_generic)(rows, patch, cout, a, dz, first, dk);
}

/* A 1x1, stride-1, unpadded convolution is a plain matrix product on x itself. */
static int FN(is_pointwise)(const cx_conv_shape *s)
{
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->oh == s->h && s->ow == s->w;
}

/* Rows whose patches fit a 256 KiB buffer (L2-resident), capped at 512. */
static cx_int FN(tile_cap)(cx_int patch)
{
    cx_int t = (256 * 1024 / (cx_int)sizeof(real)) / CX_MAX(patch, 1);
    return CX_MIN(512, CX_MAX(8, t));
}

/* Rows per tile for `total` rows: at most about `cap`, a tile count that is a
 * multiple of the team (every thread gets the same share), a multiple of the
 * micro-kernel's rows. Tiling never changes a result, only who computes it. */
static cx_int FN(split_rows)(cx_int total, cx_int cap, int nt)
{
    const cx_int mr = FN(cx_gemm_mr)();
    cx_int ntiles = (total + cap - 1) / cap;
    ntiles = ((ntiles + nt - 1) / nt) * nt;
    cx_int tile = (total + ntiles - 1) / ntiles;
    tile = ((tile + mr - 1) / mr) * mr;
    return CX_MAX(CX_MIN(tile, total), 1);
}

/* One parallel region per call, and only when the work repays waking the team. */
static int FN(team_for)(cx_int multiply_adds, cx_int units, int n_threads)
{
    if (n_threads <= 1 || multiply_adds < CX_CONV_PARALLEL_MIN)
        return 1;
    return (int)CX_MAX(1, CX_MIN((cx_int)n_threads, units));
}

/* Indirection buffer for cx_gemm_indirect: GEMM row i is cell (y, x) of a
 * (grid_h, grid_w) grid per image, and its tap (ky, kx) reads the `depth`
 * values of source cell (y * step + base + ky * dil, likewise for x) of an
 * (src_h, src_w) grid, or `zeros` outside it. Laid out in groups of mr rows,
 * tap-major; the last group is padded with copies of the last row.
 * Forward: rows are output pixels, the source is x. Input gradient at stride 1:
 * rows are input pixels, the source is dz, base = +pad and dil = -dilation. */
typedef struct {
    cx_int grid_h, grid_w, src_h, src_w, depth;
    cx_int step_y, step_x, base_y, base_x, dil_y, dil_x;
} FN(tap_map);

/* The forward's map: a (gh x gw) grid of output pixels reading x. */
static FN(tap_map) FN(taps_of_x)(const cx_conv_shape *s, cx_int gh, cx_int gw)
{
    const FN(tap_map) m = {gh, gw, s->h, s->w, s->cin, s->sh, s->sw, -s->pad_top, -s->pad_left, s->dh, s->dw};
    return m;
}

static void FN(indirection)(const cx_conv_shape *s, const FN(tap_map) *m, const real *src, cx_int r0, cx_int rows,
                            int mr, const real *zeros, const real **ptrs)
{
    const cx_int taps = s->kh * s->kw, per_image = m->grid_h * m->grid_w, padded = (rows + mr - 1) / mr * mr;
    for (cx_int i = 0; i < padded; i++) {
        const cx_int row = r0 + CX_MIN(i, rows - 1);
        const cx_int img = row / per_image, y = (row % per_image) / m->grid_w, x = row % m->grid_w;
        const real *image = src + img * m->src_h * m->src_w * m->depth;
        const real **dst = ptrs + (i / mr) * taps * mr + i % mr;
        for (cx_int ky = 0; ky < s->kh; ky++) {
            const cx_int sy = y * m->step_y + m->base_y + ky * m->dil_y;
            for (cx_int kx = 0; kx < s->kw; kx++, dst += mr) {
                const cx_int sx = x * m->step_x + m->base_x + kx * m->dil_x;
                *dst = (sy >= 0 && sy < m->src_h && sx >= 0 && sx < m->src_w)
                           ? image + (sy * m->src_w + sx) * m->depth : zeros;
            }
        }
    }
}

/* Taps per K block of the indirect GEMM: whole taps, blocks of equal depth
 * near CX_KC_CONV values (a thin last block would reload C for little work). */
static cx_int FN(block_taps)(cx_int taps, cx_int depth)
{
    const cx_int blocks = CX_MAX(1, (taps * depth + CX_KC_CONV - 1) / CX_KC_CONV);
    return (taps + CX_MIN(blocks, taps) - 1) / CX_MIN(blocks, taps);
}


/* Zero the outputs outside the computed window (rows >= gh or columns >= gw),
 * images taken dynamically by the calling team (every thread of it must get
 * here; no barrier: the computed outputs are elsewhere). */
static void FN(team_zero_outside)(const cx_conv_shape *s, cx_int gh, cx_int gw, real *y)
{
    const cx_int cout = s->cout;
#pragma omp for schedule(dynamic, 4) nowait
    for (cx_int i = 0; i < s->n; i++) {
        real *yi = y + i * s->oh * s->ow * cout;
        for (cx_int oy = 0; oy < gh; oy++)
            memset(yi + (oy * s->ow + gw) * cout, 0, sizeof(real) * (s->ow - gw) * cout);
        memset(yi + gh * s->ow * cout, 0, sizeof(real) * (s->oh - gh) * s->ow * cout);
    }
}

/* B of a GEMM packed by the calling team (every thread of it must get here;
 * all have the whole of it on return). Packing the weights before the
 * parallel region kept the other thread waiting: 50-150 us per layer call on
 * the seed at batch 128. Panels are taken dynamically, so that a worker
 * waking late leaves its share to the others instead of holding the barrier
 * (the team's phases are all shared out this way: see docs/kernels.md). */
static void FN(team_pack_b)(int trans_b, cx_int k, cx_int n, const real *b, cx_int ldb, cx_int kc_block,
                            real *packed)
{
    const cx_int npanels = FN(cx_gemm_b_panels)(n);
#pragma omp for schedule(dynamic, 1)
    for (cx_int jp = 0; jp < npanels; jp++)
        FN(cx_gemm_pack_b_panels)(trans_b, k, n, b, ldb, kc_block, jp, jp + 1, packed);
}

#include "conv_winograd.h"

/* Copy `rows` rows of a computed (gh x gw per image) grid, from grid row r0,
 * to their places in y (OH x OW per image). */
static void FN(place_rows)(const cx_conv_shape *s, cx_int gh, cx_int gw, const real *src, cx_int r0, cx_int rows,
                           real *y)
{
    for (cx_int r = 0; r < rows; r++) {
        const cx_int row = r0 + r, img = row / (gh * gw), oy = (row % (gh * gw)) / gw, ox = row % gw;
        memcpy(y + ((img * s->oh + oy) * s->ow + ox) * s->cout, src + r * s->cout, sizeof(real) * s->cout);
    }
}

/* Per-thread buffers of a forward pass over at most `rows` rows at a time:
 * the im2col tile (small patches) or the indirection pointers and zeros. */
typedef struct {
    int small;
    cx_int block_taps;
    real *buf, *zeros;
    const real **ptrs;
} FN(forward_work);

static int FN(forward_work_init)(const cx_conv_shape *s, int small, cx_int rows, FN(forward_work) *w)
{
    const cx_int patch = s->kh * s->kw * s->cin, taps = s->kh * s->kw, mr = FN(cx_gemm_mr)();
    w->small = small;
    w->block_taps = FN(block_taps)(taps, s->cin);
    w->buf = w->zeros = NULL;
    w->ptrs = NULL;
    if (small)
        return (w->buf = cx_scratch(CX_SLOT_TILE, sizeof(real) * rows * patch)) != NULL;
    w->ptrs = cx_scratch(CX_SLOT_TILE, sizeof(real *) * ((rows + mr - 1) / mr * mr) * taps);
    w->zeros = cx_scratch(CX_SLOT_ZEROS, sizeof(real) * s->cin);
    if (w->zeros)
        memset(w->zeros, 0, sizeof(real) * s->cin);
    return w->ptrs && w->zeros;
}

/* act(conv + bias) of rows [r0, r0 + rows) of the grid of `map` into dst (rows
 * x C_out). Small patches gather output rows (their grid is the whole output;
 * map and bpack are unused and may be NULL). */
static void FN(forward_rows)(const cx_conv_shape *s, const FN(tap_map) *map, const real *x, const real *kernel,
                             const real *bpack, const real *bias, int act, cx_int r0, cx_int rows,
                             const FN(forward_work) *w, real *dst)
{
    const cx_int patch = s->kh * s->kw * s->cin, cout = s->cout;
    if (w->small) {
        FN(im2col_rows)(s, x, NULL, r0, rows, w->buf);
        FN(small_forward)(rows, patch, cout, w->buf, kernel, bias, act == CX_ACT_RELU, dst);
        if (act != CX_ACT_RELU)
            FN(cx_bias_act)(dst, rows, cout, NULL, act, 1);
        return;
    }
    FN(indirection)(s, map, x, r0, rows, FN(cx_gemm_mr)(), w->zeros, w->ptrs);
    FN(cx_gemm_indirect)(rows, cout, s->kh * s->kw, s->cin, w->ptrs, bpack, w->block_taps, dst, cout);
    FN(cx_bias_act)(dst, rows, cout, bias, act, 1);
}

/* Shared scratch for the kernel packed for the indirect GEMM (NULL without memory). */
static real *FN(forward_kernel_buffer)(const cx_conv_shape *s)
{
    return cx_scratch(CX_SLOT_KERNEL, sizeof(real) * FN(cx_gemm_packed_b_size)(s->kh * s->kw * s->cin, s->cout));
}

/* The kernel packed into bpack for the indirect GEMM, by the calling team. */
static void FN(team_pack_forward_kernel)(const cx_conv_shape *s, const real *kernel, real *bpack)
{
    FN(team_pack_b)(0, s->kh * s->kw * s->cin, s->cout, kernel, s->cout,
                    FN(block_taps)(s->kh * s->kw, s->cin) * s->cin, bpack);
}

/* Forward, one parallel region over row tiles. Small patches: im2col of the
 * tile and register-blocked loops; others: indirect GEMM on the kernel packed
 * once (no patch copies at all), over the used_h x used_w window of each
 * image when that is smaller. Bias and activation on each tile while hot. */
int FN(cx_conv2d_forward)(const cx_conv_shape *s, const real *x, const real *kernel,
                          const real *bias, int act, real *y, cx_int used_h, cx_int used_w, int n_threads)
{
    const cx_int patch = s->kh * s->kw * s->cin, cout = s->cout;
    if (s->n * s->oh * s->ow == 0)
        return 0;
    if (FN(is_pointwise)(s)) {
        const cx_int total = s->n * s->oh * s->ow;
        FN(cx_gemm)(0, 0, total, cout, s->cin, x, s->cin, kernel, cout, 0, y, cout, n_threads);
        FN(cx_bias_act)(y, total, cout, bias, act, n_threads);
        return 0;
    }
    const int small = patch <= CX_SMALL_PATCH;
    /* the grid of outputs computed per image: all of them, or the used window */
    const cx_int gh = small ? s->oh : CX_MIN(CX_MAX(used_h, 1), s->oh);
    const cx_int gw = small ? s->ow : CX_MIN(CX_MAX(used_w, 1), s->ow);
    const int windowed = gh < s->oh || gw < s->ow;
    if (!small && FN(winograd_applies)(s, gh, gw)) {
        const int status = FN(winograd_forward)(s, x, kernel, bias, act, y, gh, gw, NULL, NULL, n_threads);
        cx_scratch_trim();
        return status;
    }
    const cx_int total = s->n * gh * gw;
    int nt = FN(team_for)(total * patch * cout, total, n_threads), failed = 0;
    const cx_int tile = FN(split_rows)(total, FN(tile_cap)(patch), nt), ntiles = (total + tile - 1) / tile;
    const FN(tap_map) taps_x = FN(taps_of_x)(s, gh, gw);
    real *bpack = small ? NULL : FN(forward_kernel_buffer)(s);
    if (!small && !bpack)
        return -1;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : failed)
    {
        FN(forward_work) w;
        real *out = windowed ? cx_scratch(CX_SLOT_OUT, sizeof(real) * tile * cout) : NULL;
        failed = !FN(forward_work_init)(s, small, tile, &w) || (windowed && !out);
        if (!small)
            FN(team_pack_forward_kernel)(s, kernel, bpack);
        if (windowed)
            FN(team_zero_outside)(s, gh, gw, y);
#pragma omp for schedule(dynamic, 1)
        for (cx_int t = 0; t < ntiles; t++) {
            const cx_int r0 = t * tile, rows = CX_MIN(tile, total - r0);
            if (failed)
                continue;
            FN(forward_rows)(s, &taps_x, x, kernel, bpack, bias, act, r0, rows, &w, windowed ? out : y + r0 * cout);
            if (windowed)
                FN(place_rows)(s, gh, gw, out, r0, rows, y);
        }
    }
    cx_scratch_trim();
    return failed ? -1 : 0;
}

/* Bands of ph output rows (band_rows values each) per task of the fused
 * convolution + pooling passes: as many as the tile cap holds, at least one. */
static cx_int FN(bands_per_task)(cx_int patch, cx_int poh, cx_int band_rows)
{
    return CX_MIN(poh, CX_MAX(1, FN(tile_cap)(patch) / band_rows));
}

/* nb computed bands of ph rows x gw columns, seen by the pooling as nb images
 * of one row of pwid windows (ph x pw, equal strides). */
static cx_pool_geom FN(band_pooling)(cx_int nb, cx_int ph, cx_int pw, cx_int gw, cx_int pwid, cx_int cout)
{
    const cx_pool_geom g = {nb, ph, gw, cout, 1, pwid, ph, pw, ph, pw, 0, 0};
    return g;
}

/* Max pooling of nb bands of ph rows x gw columns (cout channels) over ph x
 * pw windows, pwid per band, into pooled, and each maximum's row-major
 * position in its window into codes: the pooling's own rule (the first
 * maximum in scan order; a NaN wins over a number), in branch-free selects. */
static void FN(pool_bands_with_codes)(const real *band, cx_int nb, cx_int ph, cx_int pw, cx_int gw, cx_int pwid,
                                      cx_int cout, real *CX_RESTRICT pooled, uint8_t *CX_RESTRICT codes)
{
    for (cx_int b = 0; b < nb; b++)
        for (cx_int wx = 0; wx < pwid; wx++) {
            const real *corner = band + (b * ph * gw + wx * pw) * cout;
            real *CX_RESTRICT best = pooled + (b * pwid + wx) * cout;
            uint8_t *CX_RESTRICT code = codes + (b * pwid + wx) * cout;
            memcpy(best, corner, sizeof(real) * cout);
            memset(code, 0, (size_t)cout);
            for (cx_int q = 1; q < ph * pw; q++) {
                const real *CX_RESTRICT v = corner + ((q / pw) * gw + q % pw) * cout;
                for (cx_int c = 0; c < cout; c++) {
                    const int take = (v[c] > best[c]) | ((v[c] != v[c]) & (best[c] == best[c]));
                    best[c] = take ? v[c] : best[c];
                    code[c] = take ? (uint8_t)q : code[c];
                }
            }
        }
}

/* Max pooling of act(conv(x) + bias) over ph x pw windows with equal strides
 * and no padding. Each task computes a few bands of ph output rows of one
 * image (only the columns the windows read, where the indirect GEMM is used)
 * into a per-thread buffer and pools them at once, so the convolution's output
 * never goes to memory. pooled: (N, OH / ph, OW / pw, C_out); codes (unless
 * NULL): each maximum's position in its window (see conv.h). 0, or -1
 * without memory. */
int FN(cx_conv2d_maxpool_forward)(const cx_conv_shape *s, const real *x, const real *kernel, const real *bias,
                                  int act, cx_int ph, cx_int pw, real *pooled, uint8_t *codes, int n_threads)
{
    const cx_int patch = s->kh * s->kw * s->cin, cout = s->cout;
    const cx_int poh = s->oh / ph, pwid = s->ow / pw;
    if (s->n * poh == 0 || pwid == 0)
        return 0;
    const int small = patch <= CX_SMALL_PATCH;
    /* a Winograd tile is a 2x2 pooling window */
    if (!small && ph == 2 && pw == 2 && FN(winograd_applies)(s, 2 * poh, 2 * pwid)) {
        const int status = FN(winograd_forward)(s, x, kernel, bias, act, NULL, 2 * poh, 2 * pwid, pooled, codes,
                                                n_threads);
        cx_scratch_trim();
        return status;
    }
    /* the grid of outputs computed per image (im2col walks whole output rows) */
    const cx_int gh = small ? s->oh : poh * ph, gw = small ? s->ow : pwid * pw;
    const cx_int band_rows = ph * gw;
    cx_int per_task = FN(bands_per_task)(patch, poh, band_rows), tasks_per_image = (poh + per_task - 1) / per_task;
    cx_int images_per_task = 1;
    if (!small && per_task == poh) {
        /* small images (the seed's third layer: 2x2 computed outputs each): tasks of whole images,
         * whose grid rows and pooled rows follow on, so that the GEMM gets rows enough */
        cx_int ntasks = CX_MAX((s->n * poh * band_rows + FN(tile_cap)(patch) - 1) / FN(tile_cap)(patch), 1);
        ntasks = CX_MIN(((ntasks + n_threads - 1) / n_threads) * n_threads, s->n);
        images_per_task = (s->n + ntasks - 1) / ntasks;
        per_task = images_per_task * poh;
    }
    const cx_int tasks = images_per_task > 1 ? (s->n + images_per_task - 1) / images_per_task
                                             : s->n * tasks_per_image;
    const FN(tap_map) taps_x = FN(taps_of_x)(s, gh, gw);
    real *bpack = small ? NULL : FN(forward_kernel_buffer)(s);
    if (!small && !bpack)
        return -1;
    int nt = FN(team_for)(s->n * poh * band_rows * patch * cout, tasks, n_threads), failed = 0;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : failed)
    {
        FN(forward_work) w;
        real *band = cx_scratch(CX_SLOT_OUT, sizeof(real) * per_task * band_rows * cout);
        failed = !FN(forward_work_init)(s, small, per_task * band_rows, &w) || !band;
        if (!small)
            FN(team_pack_forward_kernel)(s, kernel, bpack);
#pragma omp for schedule(dynamic, 1)
        for (cx_int t = 0; t < tasks; t++) {
            /* the task's first band (image img, pooled row pr) and its number of bands */
            const cx_int img = images_per_task > 1 ? t * images_per_task : t / tasks_per_image;
            const cx_int pr = images_per_task > 1 ? 0 : (t % tasks_per_image) * per_task;
            const cx_int nb = images_per_task > 1 ? CX_MIN(images_per_task, s->n - img) * poh
                                                  : CX_MIN(per_task, poh - pr);
            const cx_pool_geom bands = FN(band_pooling)(nb, ph, pw, gw, pwid, cout);
            if (failed)
                continue;
            FN(forward_rows)(s, &taps_x, x, kernel, bpack, bias, act, (img * gh + pr * ph) * gw, nb * band_rows, &w,
                             band);
            const cx_int at = (img * poh + pr) * pwid * cout;
            if (codes)
                FN(pool_bands_with_codes)(band, nb, ph, pw, gw, pwid, cout, pooled + at, codes + at);
            else
                FN(cx_max_pool2d_forward)(band, pooled + at, NULL, &bands, 1);
        }
    }
    cx_scratch_trim();
    return failed ? -1 : 0;
}

/* dx of images [i0, i1): zero them, then scatter the patch gradients of
 * their rows [k0, k1) of dz (dz @ kernel^T, `chunk` rows at a time) in order. */
static void FN(backward_input_images)(const cx_conv_shape *s, const real *dz, const cx_int *idx, const real *bpack,
                                      real *dx, cx_int i0, cx_int i1, cx_int k0, cx_int k1, cx_int chunk, real *buf,
                                      real *apack)
{
    const cx_int patch = s->kh * s->kw * s->cin, image = s->h * s->w * s->cin;
    memset(dx + i0 * image, 0, sizeof(real) * (i1 - i0) * image);
    for (cx_int r0 = k0; r0 < k1; r0 += chunk) {
        const cx_int rows = CX_MIN(chunk, k1 - r0);
        FN(cx_gemm_prepacked)(0, rows, patch, s->cout, dz + r0 * s->cout, s->cout, bpack, 0, buf, patch, apack);
        FN(col2im_rows)(s, buf, idx, r0, rows, dx);
    }
}

/* sum[c] (+)= the rows of m (rows x cols), in a fixed order: pairs of rows are
 * added first, so the running sum is loaded and stored once per two rows. */
static void FN(add_rows)(cx_int rows, cx_int cols, const real *CX_RESTRICT m, int first, real *CX_RESTRICT sum)
{
    cx_int r = 0;
    if (first) {
        memcpy(sum, m, sizeof(real) * cols);
        r = 1;
    }
    for (; r + 2 <= rows; r += 2)
        for (cx_int c = 0; c < cols; c++)
            sum[c] += m[r * cols + c] + m[(r + 1) * cols + c];
    for (; r < rows; r++)
        for (cx_int c = 0; c < cols; c++)
            sum[c] += m[r * cols + c];
}

/* Kernel and bias gradient of rows [r0, r0 + rows), `tile` rows at a time. */
static void FN(weight_grad_group)(const cx_conv_shape *s, const real *x, const real *dz, const cx_int *idx,
                                  cx_int r0, cx_int rows, cx_int tile, real *buf, real *bpack, real *apack,
                                  real *dk, real *db)
{
    const cx_int patch = s->kh * s->kw * s->cin, cout = s->cout;
    for (cx_int t = 0; t < rows; t += tile) {
        const cx_int tr = CX_MIN(tile, rows - t);
        const real *dzt = dz + (r0 + t) * cout;
        const real *a = x + (r0 + t) * s->cin;
        if (!FN(is_pointwise)(s)) {
            FN(im2col_rows)(s, x, idx, r0 + t, tr, buf);
            a = buf;
        }
        if (patch <= CX_SMALL_PATCH) {
            FN(small_wgrad)(tr, patch, cout, a, dzt, t == 0, dk);
        } else {
            FN(cx_gemm_pack_b)(0, tr, cout, dzt, cout, bpack);
            FN(cx_gemm_prepacked)(1, patch, cout, tr, a, patch, bpack, t == 0 ? 0 : 1, dk, cout, apack);
        }
        if (db)
            FN(add_rows)(tr, cout, dzt, t == 0, db);
    }
}

/* out[i] = ((g_0[i] + g_1[i]) + g_2[i]) + ... for i < count, where group g
 * starts at partial + g * stride: a fixed order, vectorised along i. */
static void FN(sum_groups)(const real *partial, cx_int stride, cx_int ngroups, cx_int count, real *out)
{
    memcpy(out, partial, sizeof(real) * count);
    for (cx_int g = 1; g < ngroups; g++)
        for (cx_int i = 0; i < count; i++)
            out[i] += partial[g * stride + i];
}

/* dkernel = the ngroups partial kernel gradients summed in order, blocks
 * shared among the calling team (every thread of it must get here). */
static void FN(sum_kernel_partials)(const real *partial, cx_int wsize, cx_int ngroups, real *dkernel)
{
#pragma omp for schedule(dynamic, 1)
    for (cx_int i0 = 0; i0 < wsize; i0 += CX_WGRAD_SUM_BLOCK)
        FN(sum_groups)(partial + i0, wsize, ngroups, CX_MIN(CX_WGRAD_SUM_BLOCK, wsize - i0), dkernel + i0);
}

/* Row groups of the weight gradient: a power of two (so that 2 or 4 threads
 * share them evenly), at most CX_WGRAD_GROUPS, at least CX_WGRAD_MIN_ROWS rows
 * each. Fixed by the problem size alone, so the sum order never depends on
 * the thread count. */
static cx_int FN(weight_grad_groups)(cx_int total)
{
    cx_int groups = 1;
    while (groups < CX_WGRAD_GROUPS && total / (2 * groups) >= CX_WGRAD_MIN_ROWS)
        groups *= 2;
    return groups;
}

/* Weight-gradient groups [0, ngroups) split statically over the team (every
 * thread must reach the loop, so a thread without scratch memory skips its share). */
static void FN(weight_grad_groups_run)(const cx_conv_shape *s, const real *x, const real *dz, const cx_int *idx,
                                       cx_int total,
                                       cx_int group_rows, cx_int ngroups, cx_int tile, real *buf, real *bpack,
                                       real *apack, real *partial, real *partial_b, int skip, int nowait)
{
    const cx_int wsize = s->kh * s->kw * s->cin * s->cout;
#define CX_GROUP_BODY                                                                                   \
    FN(weight_grad_group)(s, x, dz, idx, g * group_rows, CX_MIN(group_rows, total - g * group_rows), tile, buf, \
                          bpack, apack, partial + g * wsize, partial_b ? partial_b + g * s->cout : NULL)
    if (nowait) {
#pragma omp for schedule(dynamic, 1) nowait
        for (cx_int g = 0; g < ngroups; g++)
            if (!skip)
                CX_GROUP_BODY;
    } else {
#pragma omp for schedule(dynamic, 1)
        for (cx_int g = 0; g < ngroups; g++)
            if (!skip)
                CX_GROUP_BODY;
    }
#undef CX_GROUP_BODY
}

/* Gradients of a convolution without output pixels (or pooled ones): zero. */
static int FN(no_rows_backward)(const cx_conv_shape *s, real *dx, real *dkernel, real *dbias)
{
    memset(dkernel, 0, sizeof(real) * s->kh * s->kw * s->cin * s->cout);
    if (dbias)
        memset(dbias, 0, sizeof(real) * s->cout);
    if (dx)
        memset(dx, 0, sizeof(real) * s->n * s->h * s->w * s->cin);
    return 0;
}

/* Kernel and bias gradients of a small-patch convolution with a relu or
 * linear activation followed by a max pooling (ph x pw windows, equal strides,
 * no padding), without the input gradient (a first layer; see conv.h). The
 * fused forward never stored the convolution's output, so each task computes
 * its bands of ph output rows again (a few multiply-adds per value for such
 * patches: less than moving the value through memory twice), finds their
 * gradient with the pooling's own backward while they are in cache (the dz
 * of the layer-by-layer backward, bit for bit) and folds it into the weight
 * gradient with the bands' patches still in the im2col buffer. Tasks form a
 * fixed number of groups, summed in order. */
int FN(cx_conv2d_maxpool_backward)(const cx_conv_shape *s, const real *x, const real *kernel, const real *bias,
                                   int act, cx_int ph, cx_int pw, const real *dy, const real *pooled,
                                   real *dkernel, real *dbias, int n_threads)
{
    const cx_int patch = s->kh * s->kw * s->cin, cout = s->cout, wsize = patch * cout;
    const cx_int poh = s->oh / ph, pwid = s->ow / pw, band_rows = ph * s->ow;
    if (patch > CX_SMALL_PATCH || (act != CX_ACT_RELU && act != CX_ACT_LINEAR))
        return -2;
    if (s->n * poh * pwid == 0)
        return FN(no_rows_backward)(s, NULL, dkernel, dbias);
    const cx_int per_task = FN(bands_per_task)(patch, poh, band_rows);
    const cx_int tasks_per_image = (poh + per_task - 1) / per_task, tasks = s->n * tasks_per_image;
    const cx_int groups = FN(weight_grad_groups)(s->n * poh * band_rows);
    const cx_int per_group = (tasks + groups - 1) / groups, ngroups = (tasks + per_group - 1) / per_group;
    real *partial = dkernel, *partial_b = dbias;
    if (ngroups > 1) {
        partial = cx_scratch(CX_SLOT_PARTIAL, sizeof(real) * ngroups * (wsize + cout));
        if (!partial)
            return -1;
        partial_b = partial + ngroups * wsize;
    }
    int nt = FN(team_for)(2 * s->n * poh * band_rows * wsize, ngroups, n_threads), failed = 0;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : failed)
    {
        FN(forward_work) w;
        real *band = cx_scratch(CX_SLOT_OUT, sizeof(real) * per_task * band_rows * cout);
        real *dz = cx_scratch(CX_SLOT_DZ, sizeof(real) * per_task * band_rows * cout);
        failed = !FN(forward_work_init)(s, 1, per_task * band_rows, &w) || !band || !dz;
#pragma omp for schedule(dynamic, 1)
        for (cx_int g = 0; g < ngroups; g++) {
            const cx_int t0 = g * per_group, t1 = CX_MIN(t0 + per_group, tasks);
            for (cx_int t = t0; t < t1 && !failed; t++) {
                const cx_int img = t / tasks_per_image, pr = (t % tasks_per_image) * per_task;
                const cx_int nb = CX_MIN(per_task, poh - pr), rows = nb * band_rows;
                const cx_int at = (img * poh + pr) * pwid * cout;
                const cx_pool_geom bands = FN(band_pooling)(nb, ph, pw, s->ow, pwid, cout);
                /* small patches: forward_rows needs neither a tap map nor a packed kernel */
                FN(forward_rows)(s, NULL, x, kernel, NULL, bias, act, (img * s->oh + pr * ph) * s->ow, rows, &w,
                                 band);
                FN(cx_max_pool2d_backward_windows)(dy + at, band, pooled + at, act == CX_ACT_RELU, dz, &bands, 1);
                FN(small_wgrad)(rows, patch, cout, w.buf, dz, t == t0, partial + g * wsize);
                FN(add_rows)(rows, cout, dz, t == t0, partial_b + g * cout);
            }
        }
        if (ngroups > 1)
            FN(sum_kernel_partials)(partial, wsize, ngroups, dkernel);
    }
    if (ngroups > 1)
        FN(sum_groups)(partial_b, cout, ngroups, cout, dbias);
    cx_scratch_trim();
    return failed ? -1 : 0;
}

/* Rows of dz (total x cout) holding a nonzero (or NaN) value, listed in order
 * into idx; returns how many. */
static cx_int FN(nonzero_rows)(const real *dz, cx_int total, cx_int cout, cx_int *idx)
{
    cx_int n = 0;
    for (cx_int r = 0; r < total; r++) {
        const real *z = dz + r * cout;
        int any = 0;
        for (cx_int c = 0; c < cout; c++)
            any |= z[c] != 0;
        idx[n] = r;
        n += any;
    }
    return n;
}

/* Whether a layer's backward may work on a list of dz's nonzero rows (a
 * pointwise weight gradient reads x in place, row for row; for small patches
 * the list and gather cost more than the rows they save), and whether it does
 * with `rows` of them: when at least an eighth of the rows are zero. */
static int FN(may_list_rows)(const cx_conv_shape *s)
{
    return !FN(is_pointwise)(s) && s->kh * s->kw * s->cin > CX_SMALL_PATCH;
}

static int FN(lists_rows)(const cx_conv_shape *s, cx_int rows)
{
    const cx_int total = s->n * s->oh * s->ow;
    return FN(may_list_rows)(s) && rows > 0 && 8 * (total - rows) >= total;
}

/* Scratch for listing rows: a stretch per image (image-relative), the list,
 * and n + 1 starts; NULL without memory. */
static cx_int *FN(row_list_buffer)(const cx_conv_shape *s)
{
    const cx_int total = s->n * s->oh * s->ow;
    return cx_scratch(CX_SLOT_ROWS, sizeof(cx_int) * (2 * total + s->n + 1));
}

/* Per-image counts in first[1..n] turned into starts (first[0] = 0); returns the total. */
static cx_int FN(starts_from_counts)(cx_int *first, cx_int n)
{
    first[0] = 0;
    for (cx_int i = 0; i < n; i++)
        first[i + 1] += first[i];
    return first[n];
}

/* Output pixels whose dz row is all zero add nothing to either gradient, and
 * a max pooling after the layer leaves many so: it passes each window's
 * gradient to one pixel per channel, and none to the rows and columns it
 * drops (the seed's 11x11 -> 5x5 pooling: 21 of 121 pixels; 3x3 -> 1x1: 5 of
 * 9); after a relu, more (over half of the seed's conv2 and conv3 rows on
 * MNIST: conv2 backward 2.6 -> 1.3 ms at batch 32). When at least an eighth
 * of the rows are zero, *idx lists the others, *dzg holds their dz rows
 * gathered in order and starts[i] is the first listed row of image i
 * (i <= N); returns the rows to work on. Which rows, and so
 * every bit, depends on the data, never on the threads. Images are scanned,
 * then gathered, in parallel: done serially this took 8% of the seed's conv2
 * backward at batch 128 on two threads (~0.4 ms of a 4 MB dz). -1: out of memory. */
static cx_int FN(skip_zero_rows)(const cx_conv_shape *s, const real *dz, const cx_int **idx, const cx_int **starts,
                                 const real **dzg, int n_threads)
{
    const cx_int total = s->n * s->oh * s->ow, cout = s->cout, per_image = s->oh * s->ow;
    *idx = *starts = NULL;
    *dzg = dz;
    if (!FN(may_list_rows)(s))
        return total;
    cx_int *scan = FN(row_list_buffer)(s);
    if (!scan)
        return -1;
    cx_int *list = scan + total, *first = list + total;
    const int nt = total * cout >= CX_SCAN_PARALLEL_MIN ? n_threads : 1;
    cx_int i;
#pragma omp parallel for num_threads(nt) schedule(dynamic, CX_ROW_SCAN_IMAGES) if (nt > 1)
    for (i = 0; i < s->n; i++)
        first[i + 1] = FN(nonzero_rows)(dz + i * per_image * cout, per_image, cout, scan + i * per_image);
    const cx_int rows = FN(starts_from_counts)(first, s->n);
    if (!FN(lists_rows)(s, rows))
        return total;
    real *gathered = cx_scratch(CX_SLOT_DZ, sizeof(real) * rows * cout);
    if (!gathered)
        return -1;
#pragma omp parallel for num_threads(nt) schedule(dynamic, CX_ROW_SCAN_IMAGES) if (nt > 1)
    for (i = 0; i < s->n; i++)
        for (cx_int k = first[i]; k < first[i + 1]; k++) {
            list[k] = i * per_image + scan[i * per_image + k - first[i]];
            memcpy(gathered + k * cout, dz + list[k] * cout, sizeof(real) * cout);
        }
    *idx = list;
    *starts = first;
    *dzg = gathered;
    return rows;
}

/* Stride 1 and an output nearly as large as the input ('same' padding, big
 * images): dx is itself a convolution of dz, computed by an indirect GEMM
 * over tiles of input pixels (each written once, no scatter; taps falling
 * outside dz cost work, hence the size condition). Otherwise dz @ kernel^T
 * is scattered back (col2im) by whole images per task, so no two threads
 * add into the same pixels. */
static int FN(dx_is_direct)(const cx_conv_shape *s)
{
    return s->sh == 1 && s->sw == 1 && 8 * s->oh * s->ow >= 7 * s->h * s->w;
}

/* Whether the input gradient reads every row of dz (not only the listed ones). */
static int FN(dx_reads_all_of_dz)(const cx_conv_shape *s)
{
    return FN(is_pointwise)(s) || FN(dx_is_direct)(s);
}

/* Both gradients from the `rows` rows of dz to work on (skip_zero_rows): idx
 * lists them (NULL: all, in order) with starts per image, dzg holds their dz;
 * dz itself (all rows) is read only when dx is wanted and
 * FN(dx_reads_all_of_dz). One parallel region (one team wake-up per layer):
 * the weight-gradient groups, then (when dx is wanted) whole-image
 * input-gradient tasks, then the in-order sum of the group partials. */
static int FN(backward_rows)(const cx_conv_shape *s, const real *x, const real *kernel, const real *dz, cx_int rows,
                             const cx_int *idx, const cx_int *starts, const real *dzg, real *dx, real *dkernel,
                             real *dbias, int n_threads)
{
    const cx_int total = s->n * s->oh * s->ow, patch = s->kh * s->kw * s->cin, cout = s->cout;
    const cx_int wsize = patch * cout, per_image = s->oh * s->ow;
    if (dx && FN(is_pointwise)(s)) {
        FN(cx_gemm)(0, 1, total, s->cin, cout, dz, cout, kernel, cout, 0, dx, s->cin, n_threads);
        dx = NULL;
    }
    const cx_int cap = FN(tile_cap)(patch);
    const cx_int group_rows = (rows + FN(weight_grad_groups)(rows) - 1) / FN(weight_grad_groups)(rows);
    const cx_int ngroups = (rows + group_rows - 1) / group_rows;
    /* equal tiles within a group: a short last tile would be a thin, slow GEMM */
    const cx_int tiles_per_group = (group_rows + cap - 1) / cap;
    const cx_int tile = (group_rows + tiles_per_group - 1) / tiles_per_group;
    int nt = FN(team_for)(rows * wsize * (dx ? 2 : 1), ngroups + (dx ? s->n : 0), n_threads), failed = 0;
    const int direct_dx = dx && FN(dx_is_direct)(s);
    const cx_int taps = s->kh * s->kw, in_rows = s->n * s->h * s->w, mr = FN(cx_gemm_mr)();
    const cx_int dx_tile = direct_dx ? FN(split_rows)(in_rows, FN(tile_cap)(taps * cout), nt) : 1;
    const cx_int dx_block_taps = FN(block_taps)(taps, cout);
    const FN(tap_map) taps_dz = {s->h, s->w, s->oh, s->ow, cout, 1, 1, s->pad_top, s->pad_left, -s->dh, -s->dw};
    cx_int images = 1, chunk = 1;
    if (dx && !direct_dx) {
        const cx_int fit = CX_MAX(cap / per_image, 1);
        const cx_int ntasks = CX_MIN(((((s->n + fit - 1) / fit) + nt - 1) / nt) * nt, s->n);
        images = (s->n + ntasks - 1) / ntasks;
        chunk = CX_MIN(cap, images * per_image);
    }
    real *partial = dkernel, *partial_b = dbias, *kpack = NULL;
    if (ngroups > 1) {
        partial = cx_scratch(CX_SLOT_PARTIAL, sizeof(real) * ngroups * (wsize + cout));
        if (!partial)
            return -1;
        partial_b = partial + ngroups * wsize;
    }
    real *kt = NULL;
    if (direct_dx) {
        kt = cx_scratch(CX_SLOT_KT, sizeof(real) * wsize);
        kpack = cx_scratch(CX_SLOT_KERNEL, sizeof(real) * FN(cx_gemm_packed_b_size)(taps * cout, s->cin));
        if (!kt || !kpack)
            return -1;
    } else if (dx) {
        kpack = cx_scratch(CX_SLOT_KERNEL, sizeof(real) * FN(cx_gemm_packed_b_size)(cout, patch));
        if (!kpack)
            return -1;
    }
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : failed)
    {
        real *buf = cx_scratch(CX_SLOT_TILE, sizeof(real) * CX_MAX(tile, chunk) * patch);
        real *bpack = cx_scratch(CX_SLOT_BPACK, sizeof(real) * FN(cx_gemm_packed_b_size)(tile, cout));
        real *apack = cx_scratch(CX_SLOT_APACK, sizeof(real) * FN(cx_gemm_apack_size)());
        failed = !buf || !bpack || !apack;
        if (direct_dx) {
            /* B[(t, co), ci] = kernel[t, ci, co]: each tap's (C_in, C_out) block transposed */
#pragma omp for schedule(dynamic, 1)
            for (cx_int t = 0; t < taps; t++)
                for (cx_int ci = 0; ci < s->cin; ci++)
                    for (cx_int co = 0; co < cout; co++)
                        kt[(t * cout + co) * s->cin + ci] = kernel[(t * s->cin + ci) * cout + co];
            FN(team_pack_b)(0, taps * cout, s->cin, kt, s->cin, dx_block_taps * cout, kpack);
        } else if (dx) {
            FN(team_pack_b)(1, cout, patch, kernel, cout, CX_GEMM_KC, kpack);
        }
        FN(weight_grad_groups_run)(s, x, dzg, idx, rows, group_rows, ngroups, tile, buf, bpack, apack, partial,
                                   partial_b, failed, dx != NULL);
        if (direct_dx) {
            const real **ptrs = cx_scratch(CX_SLOT_PTRS, sizeof(real *) * ((dx_tile + mr - 1) / mr * mr) * taps);
            real *zeros = cx_scratch(CX_SLOT_ZEROS, sizeof(real) * cout);
            failed |= !ptrs || !zeros;
            if (zeros)
                memset(zeros, 0, sizeof(real) * cout);
#pragma omp for schedule(dynamic, 1)
            for (cx_int r0 = 0; r0 < in_rows; r0 += dx_tile) {
                const cx_int rows = CX_MIN(dx_tile, in_rows - r0);
                if (failed)
                    continue;
                FN(indirection)(s, &taps_dz, dz, r0, rows, (int)mr, zeros, ptrs);
                FN(cx_gemm_indirect)(rows, s->cin, taps, cout, ptrs, kpack, dx_block_taps, dx + r0 * s->cin, s->cin);
            }
        } else if (dx) {
#pragma omp for schedule(dynamic, 1)
            for (cx_int i0 = 0; i0 < s->n; i0 += images) {
                const cx_int i1 = CX_MIN(i0 + images, s->n);
                if (!failed)
                    FN(backward_input_images)(s, dzg, idx, kpack, dx, i0, i1, starts ? starts[i0] : i0 * per_image,
                                              starts ? starts[i1] : i1 * per_image, chunk, buf, apack);
            }
        }
        if (ngroups > 1) /* a loop barrier has passed: every group is complete */
            FN(sum_kernel_partials)(partial, wsize, ngroups, dkernel);
    }
    if (ngroups > 1 && dbias)
        FN(sum_groups)(partial_b, cout, ngroups, cout, dbias);
    cx_scratch_trim();
    return failed ? -1 : 0;
}

/* Gradients from dz of every output pixel; the all-zero rows are skipped. */
int FN(cx_conv2d_backward)(const cx_conv_shape *s, const real *x, const real *kernel, const real *dz, real *dx,
                           real *dkernel, real *dbias, int n_threads)
{
    if (s->n * s->oh * s->ow == 0)
        return FN(no_rows_backward)(s, dx, dkernel, dbias);
    const cx_int *idx, *starts;
    const real *dzg;
    const cx_int rows = FN(skip_zero_rows)(s, dz, &idx, &starts, &dzg, n_threads);
    if (rows < 0)
        return -1;
    return FN(backward_rows)(s, x, kernel, dz, rows, idx, starts, dzg, dx, dkernel, dbias, n_threads);
}

/* The max pooling's backward from its codes: ph x pw windows (at most 64
 * cells) with equal strides and no padding over the (OH, OW) output. */
typedef struct {
    cx_int pwid, windows;  /* windows per row, per image */
    cx_int cells;          /* ph * pw */
    cx_int row_step;       /* ph * OW: from a window row's corner to the next */
    cx_int pw;
    const real *dy, *pooled;
    const uint8_t *codes;
    int relu;
    cx_int offset[64];     /* image pixel of window position q, from the window's corner */
} FN(pool_codes);

/* Image pixel of the first cell of window w (of an image). */
static inline cx_int FN(window_corner)(const FN(pool_codes) *pc, cx_int w)
{
    return (w / pc->pwid) * pc->row_step + (w % pc->pwid) * pc->pw;
}

/* The positions of window `at` (its channels' offset in dy) whose pixel gets
 * a nonzero (or NaN) gradient, as bits: a channel's gradient goes to its
 * maximum (the code) and is dy, or 0 when relu and the maximum is not > 0
 * (the relu's own backward). An OR chain in a register, no branch on data.
 * *bad is set when a code is not a position of the window. */
static inline uint64_t FN(window_hits)(const FN(pool_codes) *pc, cx_int at, cx_int cout, int *bad)
{
    const real *CX_RESTRICT g = pc->dy + at, *CX_RESTRICT m = pc->pooled + at;
    const uint8_t *CX_RESTRICT code = pc->codes + at;
    uint64_t bits = 0;
    int out = 0;
    for (cx_int c = 0; c < cout; c++) {
        const real v = (!pc->relu | (m[c] > 0)) ? g[c] : (real)0;
        bits |= (uint64_t)(v != 0) << (code[c] & 63);
        out |= code[c] >= pc->cells;
    }
    *bad |= out;
    return bits;
}

/* Scatter window `at`'s gradients: channel c's (see window_hits) to row
 * rows[code] of dst (cout values per row); rows of positions that get no
 * nonzero gradient may all be one spare row. */
static inline void FN(window_scatter)(const FN(pool_codes) *pc, cx_int at, cx_int cout, const cx_int *rows,
                                      real *CX_RESTRICT dst)
{
    const real *CX_RESTRICT g = pc->dy + at, *CX_RESTRICT m = pc->pooled + at;
    const uint8_t *CX_RESTRICT code = pc->codes + at;
    for (cx_int c = 0; c < cout; c++)
        dst[rows[code[c]] * cout + c] = (!pc->relu | (m[c] > 0)) ? g[c] : (real)0;
}

/* Gradients through the fused convolution + max pooling from the pooling's
 * output, its gradient and the forward's codes. The rows of dz to work on
 * (those skip_zero_rows would keep, so every bit matches the layer-by-layer
 * backward) are found window by window, listed in pixel order and written
 * (gathered), image by image in parallel; the whole dz only when the rows are
 * not worth listing or dx reads all of it. */
int FN(cx_conv2d_maxpool_backward_codes)(const cx_conv_shape *s, const real *x, const real *kernel, int act,
                                         cx_int ph, cx_int pw, const real *dy, const real *pooled,
                                         const uint8_t *codes, real *dx, real *dkernel, real *dbias, int n_threads)
{
    const cx_int total = s->n * s->oh * s->ow, cout = s->cout, per_image = s->oh * s->ow;
    if ((act != CX_ACT_RELU && act != CX_ACT_LINEAR) || ph * pw > 64)
        return -2;
    if (total == 0)
        return FN(no_rows_backward)(s, dx, dkernel, dbias);
    FN(pool_codes) pc = {s->ow / pw, (s->oh / ph) * (s->ow / pw), ph * pw, ph * s->ow, pw, dy, pooled, codes,
                         act == CX_ACT_RELU, {0}};
    for (cx_int q = 0; q < ph * pw; q++)
        pc.offset[q] = (q / pw) * s->ow + q % pw;
    /* mark[p]: whether pixel p gets a gradient, then (listed) 1 + its row in the list */
    cx_int *mark = FN(row_list_buffer)(s);
    if (!mark)
        return -1;
    cx_int *list = mark + total, *first = list + total;
    const int nt = total * cout >= CX_SCAN_PARALLEL_MIN ? n_threads : 1;
    int bad = 0;
    cx_int i;
#pragma omp parallel for num_threads(nt) schedule(dynamic, CX_ROW_SCAN_IMAGES) if (nt > 1) reduction(| : bad)
    for (i = 0; i < s->n; i++) {
        cx_int *mi = mark + i * per_image, count = 0;
        memset(mi, 0, sizeof(cx_int) * per_image);
        for (cx_int w = 0; w < pc.windows; w++) {
            const uint64_t bits = FN(window_hits)(&pc, (i * pc.windows + w) * cout, cout, &bad);
            const cx_int corner = FN(window_corner)(&pc, w);
            for (cx_int q = 0; q < pc.cells; q++)
                mi[corner + pc.offset[q]] = (cx_int)((bits >> q) & 1);
        }
        for (cx_int p = 0; p < per_image; p++)
            count += mi[p];
        first[i + 1] = count;
    }
    if (bad)
        return -3;
    const cx_int rows = FN(starts_from_counts)(first, s->n);
    const int listed = FN(lists_rows)(s, rows);
    /* gathered: the listed rows, then a spare row per thread for positions without a gradient (zeros) */
    real *gathered = listed ? cx_scratch(CX_SLOT_DZ, sizeof(real) * (rows + nt) * cout) : NULL;
    real *full = !listed || (dx && FN(dx_reads_all_of_dz)(s))
                     ? cx_scratch(CX_SLOT_DZ_FULL, sizeof(real) * total * cout) : NULL;
    if ((listed && !gathered) || (!listed && !full))
        return -1;
#pragma omp parallel for num_threads(nt) schedule(dynamic, CX_ROW_SCAN_IMAGES) if (nt > 1)
    for (i = 0; i < s->n; i++) {
        cx_int *mi = mark + i * per_image, k = first[i], slots[64];
        const cx_int spare = rows + convx_thread_id();
        if (full) { /* every pixel's row, zero but at the maxima */
            real *fi = full + i * per_image * cout;
            memset(fi, 0, sizeof(real) * per_image * cout);
            for (cx_int w = 0; w < pc.windows; w++) {
                const cx_int corner = FN(window_corner)(&pc, w);
                for (cx_int q = 0; q < pc.cells; q++)
                    slots[q] = corner + pc.offset[q];
                FN(window_scatter)(&pc, (i * pc.windows + w) * cout, cout, slots, fi);
            }
        }
        if (gathered) { /* the listed rows: zeroed, then each window's gradients */
            for (cx_int p = 0; p < per_image; p++)
                if (mi[p]) {
                    list[k] = i * per_image + p;
                    mi[p] = ++k; /* 1 + its row */
                }
            memset(gathered + first[i] * cout, 0, sizeof(real) * (first[i + 1] - first[i]) * cout);
            for (cx_int w = 0; w < pc.windows; w++) {
                const cx_int corner = FN(window_corner)(&pc, w);
                for (cx_int q = 0; q < pc.cells; q++) {
                    const cx_int row = mi[corner + pc.offset[q]];
                    slots[q] = row ? row - 1 : spare;
                }
                FN(window_scatter)(&pc, (i * pc.windows + w) * cout, cout, slots, gathered);
            }
        }
    }
    if (!listed)
        return FN(backward_rows)(s, x, kernel, full, total, NULL, NULL, full, dx, dkernel, dbias, n_threads);
    return FN(backward_rows)(s, x, kernel, full, rows, list, first, gathered, dx, dkernel, dbias, n_threads);
}
