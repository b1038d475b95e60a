/* Convolution building blocks shared by the passes (conv_forward_impl.h,
 * conv_backward_impl.h, conv_pool_impl.h): im2col of row tiles, tile sizes and
 * team sizes, the indirection pointers of the indirect GEMM, the kernel packed
 * by a team, and the Winograd forward (conv_winograd.h). Instantiated per
 * dtype by conv.c, in terms of `real` and FN(name). */

/* Output columns [lo, hi) whose tap at kernel column offset `off` (= kx * dw -
 * pad_left) lands inside the input row of width `w`: 0 <= ox * sw + off < w. */
static inline void FN(valid_columns)(cx_int off, cx_int sw, cx_int w, cx_int ow, cx_int *lo, cx_int *hi)
{
    *lo = off >= 0 ? 0 : (-off - 1) / sw + 1; /* ceil(-off / sw) without overflow for any sw */
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
    if (cx_isa_avx2_class())
        FN(small_forward_avx2)(rows, patch, cout, a, kernel, bias, relu, y);
    else
        FN(small_forward_generic)(rows, patch, cout, a, kernel, bias, relu, y);
}

static void FN(small_wgrad)(cx_int rows, cx_int patch, cx_int cout, const real *a, const real *dz, int first,
                            real *dk)
{
    if (cx_isa_avx2_class())
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
 * all have the whole of it on return): packing the weights before the
 * parallel region would keep the other threads waiting. Panels are taken dynamically, so that a worker
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
