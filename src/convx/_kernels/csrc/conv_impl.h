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

/* Gather the patches of output rows [r0, r0 + rows) into buf (rows x KH*KW*C_in). */
static void FN(im2col_rows)(const cx_conv_shape *s, const real *x, cx_int r0, cx_int rows, real *buf)
{
    const cx_int per_image = s->oh * s->ow, patch = s->kh * s->kw * s->cin;
    for (cx_int r = 0; r < rows;) {
        const cx_int row = r0 + r, img = row / per_image, oy = (row % per_image) / s->ow, ox0 = row % s->ow;
        const cx_int count = CX_MIN(rows - r, s->ow - ox0);
        FN(im2col_run)(s, x + img * s->h * s->w * s->cin, oy, ox0, count, buf + r * patch);
        r += count;
    }
}

/* Scatter-add patch gradients of output rows [r0, r0 + rows) into dx. */
static void FN(col2im_rows)(const cx_conv_shape *s, const real *buf, cx_int r0, cx_int rows, real *dx)
{
    const cx_int per_image = s->oh * s->ow, cin = s->cin;
    for (cx_int r = 0; r < rows; r++) {
        const cx_int row = r0 + r, img = row / per_image, oy = (row % per_image) / s->ow, ox = row % s->ow;
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

/* A 1x1, stride-1, unpadded convolution is a plain matrix product on x itself. */
static int FN(is_pointwise)(const cx_conv_shape *s)
{
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->oh == s->h && s->ow == s->w;
}

/* Rows per tile: the tile's patch buffer stays within 256 KiB (L2-resident),
 * and tiles stay small enough (<= 512 rows) that a layer with few input
 * channels still splits into enough tiles to feed every thread. */
static cx_int FN(tile_rows)(const cx_conv_shape *s)
{
    const cx_int patch = s->kh * s->kw * s->cin;
    cx_int t = (256 * 1024 / (cx_int)sizeof(real)) / CX_MAX(patch, 1);
    return CX_MIN(512, CX_MAX(8, (t / 8) * 8));
}

static void FN(forward_tile)(const cx_conv_shape *s, const real *x, const real *kernel, const real *bias,
                             int act, real *y, cx_int r0, cx_int rows, real *buf, int n_threads)
{
    const cx_int patch = s->kh * s->kw * s->cin;
    real *yt = y + r0 * s->cout;
    FN(im2col_rows)(s, x, r0, rows, buf);
    FN(cx_gemm)(0, 0, rows, s->cout, patch, buf, patch, kernel, s->cout, 0, yt, s->cout, n_threads);
    FN(cx_bias_act)(yt, rows, s->cout, bias, act, n_threads);
}

void FN(cx_conv2d_forward)(const cx_conv_shape *s, const real *x, const real *kernel,
                           const real *bias, int act, real *y, int n_threads)
{
    const cx_int total = s->n * s->oh * s->ow, patch = s->kh * s->kw * s->cin;
    if (total == 0)
        return;
    if (FN(is_pointwise)(s)) {
        FN(cx_gemm)(0, 0, total, s->cout, s->cin, x, s->cin, kernel, s->cout, 0, y, s->cout, n_threads);
        FN(cx_bias_act)(y, total, s->cout, bias, act, n_threads);
        return;
    }
    const cx_int tile = CX_MIN(FN(tile_rows)(s), total), ntiles = (total + tile - 1) / tile;
    /* Many tiles: one thread per tile. Few: tiles in turn, threads inside the GEMM.
     * (Never a parallel GEMM inside a parallel region, even an inactive one:
     * libgomp would start a fresh nested team for every call.) */
    if (ntiles >= 2 * n_threads && n_threads > 1) {
#pragma omp parallel num_threads(n_threads)
        {
            real *buf = cx_aligned_alloc(sizeof(real) * tile * patch);
#pragma omp for schedule(static)
            for (cx_int t = 0; t < ntiles; t++)
                FN(forward_tile)(s, x, kernel, bias, act, y, t * tile, CX_MIN(tile, total - t * tile), buf, 1);
            cx_aligned_free(buf);
        }
    } else {
        real *buf = cx_aligned_alloc(sizeof(real) * tile * patch);
        for (cx_int t = 0; t < ntiles; t++)
            FN(forward_tile)(s, x, kernel, bias, act, y, t * tile, CX_MIN(tile, total - t * tile), buf, n_threads);
        cx_aligned_free(buf);
    }
}

static void FN(backward_input_image)(const cx_conv_shape *s, const real *dz, const real *kernel, real *dx,
                                     cx_int img, cx_int tile, real *buf, int n_threads)
{
    const cx_int per_image = s->oh * s->ow, patch = s->kh * s->kw * s->cin;
    for (cx_int r = 0; r < per_image; r += tile) {
        const cx_int r0 = img * per_image + r, rows = CX_MIN(tile, per_image - r);
        FN(cx_gemm)(0, 1, rows, patch, s->cout, dz + r0 * s->cout, s->cout, kernel, s->cout, 0, buf, patch,
                    n_threads);
        FN(col2im_rows)(s, buf, r0, rows, dx);
    }
}

void FN(cx_conv2d_backward_input)(const cx_conv_shape *s, const real *dz, const real *kernel,
                                  real *dx, int n_threads)
{
    const cx_int per_image = s->oh * s->ow, patch = s->kh * s->kw * s->cin;
    if (FN(is_pointwise)(s)) {
        FN(cx_gemm)(0, 1, s->n * per_image, s->cin, s->cout, dz, s->cout, kernel, s->cout, 0, dx, s->cin,
                    n_threads);
        return;
    }
    memset(dx, 0, sizeof(real) * s->n * s->h * s->w * s->cin);
    if (s->n == 0 || per_image == 0)
        return;
    const cx_int tile = CX_MIN(FN(tile_rows)(s), per_image);
    /* Each image is scattered by one thread, its tiles in order: no races, fixed order. */
    if (s->n >= n_threads && n_threads > 1) {
#pragma omp parallel num_threads(n_threads)
        {
            real *buf = cx_aligned_alloc(sizeof(real) * tile * patch);
#pragma omp for schedule(static)
            for (cx_int img = 0; img < s->n; img++)
                FN(backward_input_image)(s, dz, kernel, dx, img, tile, buf, 1);
            cx_aligned_free(buf);
        }
    } else {
        real *buf = cx_aligned_alloc(sizeof(real) * tile * patch);
        for (cx_int img = 0; img < s->n; img++)
            FN(backward_input_image)(s, dz, kernel, dx, img, tile, buf, n_threads);
        cx_aligned_free(buf);
    }
}

/* Weight and bias gradient of one fixed row group, accumulated tile by tile. */
static void FN(weight_grad_group)(const cx_conv_shape *s, const real *x, const real *dz, cx_int r0,
                                  cx_int rows, cx_int tile, real *buf, real *dk, real *db, int n_threads)
{
    const cx_int patch = s->kh * s->kw * s->cin, cout = s->cout;
    for (cx_int t = 0; t < rows; t += tile) {
        const cx_int tr = CX_MIN(tile, rows - t);
        const real *dzt = dz + (r0 + t) * cout;
        const real *a = x + (r0 + t) * s->cin;
        if (!FN(is_pointwise)(s)) {
            FN(im2col_rows)(s, x, r0 + t, tr, buf);
            a = buf;
        }
        FN(cx_gemm)(1, 0, patch, cout, tr, a, patch, dzt, cout, t == 0 ? 0 : 1, dk, cout, n_threads);
        if (db)
            for (cx_int r = 0; r < tr; r++)
                for (cx_int c = 0; c < cout; c++)
                    db[c] = (t == 0 && r == 0) ? dzt[c] : db[c] + dzt[r * cout + c];
    }
}

int FN(cx_conv2d_backward_weight)(const cx_conv_shape *s, const real *x, const real *dz,
                                  real *dkernel, real *dbias, int n_threads)
{
    const cx_int total = s->n * s->oh * s->ow, patch = s->kh * s->kw * s->cin, cout = s->cout;
    const cx_int wsize = patch * cout;
    if (total == 0) {
        memset(dkernel, 0, sizeof(real) * wsize);
        if (dbias)
            memset(dbias, 0, sizeof(real) * cout);
        return 0;
    }
    const cx_int tile = CX_MIN(FN(tile_rows)(s), total);
    /* Fixed groups (at most CX_WGRAD_GROUPS, whole tiles) summed in order afterwards. */
    const cx_int tiles = (total + tile - 1) / tile;
    const cx_int group_tiles = (tiles + CX_WGRAD_GROUPS - 1) / CX_WGRAD_GROUPS;
    const cx_int group_rows = group_tiles * tile, ngroups = (total + group_rows - 1) / group_rows;
    real *partial = dkernel, *partial_b = dbias;
    if (ngroups > 1) {
        partial = cx_aligned_alloc(sizeof(real) * ngroups * (wsize + cout));
        if (!partial)
            return -1;
        partial_b = partial + ngroups * wsize;
    }
    if (ngroups >= n_threads && n_threads > 1) {
#pragma omp parallel num_threads(n_threads)
        {
            real *buf = cx_aligned_alloc(sizeof(real) * tile * patch);
#pragma omp for schedule(static)
            for (cx_int g = 0; g < ngroups; g++)
                FN(weight_grad_group)(s, x, dz, g * group_rows, CX_MIN(group_rows, total - g * group_rows), tile,
                                      buf, partial + g * wsize, partial_b ? partial_b + g * cout : NULL, 1);
            cx_aligned_free(buf);
        }
    } else {
        real *buf = cx_aligned_alloc(sizeof(real) * tile * patch);
        for (cx_int g = 0; g < ngroups; g++)
            FN(weight_grad_group)(s, x, dz, g * group_rows, CX_MIN(group_rows, total - g * group_rows), tile,
                                  buf, partial + g * wsize, partial_b ? partial_b + g * cout : NULL, n_threads);
        cx_aligned_free(buf);
    }
    if (ngroups > 1) {
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1 && wsize > 65536)
        for (cx_int i = 0; i < wsize; i++) {
            real acc = partial[i];
            for (cx_int g = 1; g < ngroups; g++)
                acc += partial[g * wsize + i];
            dkernel[i] = acc;
        }
        if (dbias)
            for (cx_int c = 0; c < cout; c++) {
                real acc = partial_b[c];
                for (cx_int g = 1; g < ngroups; g++)
                    acc += partial_b[g * cout + c];
                dbias[c] = acc;
            }
        cx_aligned_free(partial);
    }
    return 0;
}
