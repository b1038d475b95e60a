/* Convolution fused with the max pooling after it (see conv.h): the forward
 * pass that never stores the convolution's output, and the two backward
 * passes (recomputing small-patch bands; or from the forward's codes).
 * Instantiated per dtype by conv.c after conv_backward_impl.h, whose weight
 * gradient groups and row lists they use. */

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
    if (cx_conv_shape_check(s) != CX_OK)
        return CX_ERR_OVERFLOW;
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
        /* small images (the MNIST example model's third layer: 2x2 computed outputs each): tasks of whole images,
         * whose grid rows and pooled rows follow on, so that the GEMM gets rows enough */
        cx_int ntasks = CX_MAX((s->n * poh * band_rows + FN(tile_cap)(patch) - 1) / FN(tile_cap)(patch), 1);
        ntasks = CX_MIN(((ntasks + n_threads - 1) / n_threads) * n_threads, s->n);
        images_per_task = (s->n + ntasks - 1) / ntasks;
        per_task = images_per_task * poh;
    }
    const cx_int tasks = images_per_task > 1 ? (s->n + images_per_task - 1) / images_per_task
                                             : s->n * tasks_per_image;
    const FN(tap_map) taps_x = FN(taps_of_x)(s, gh, gw);
    const int packing = FN(forward_packing)(small, s->n * poh * band_rows);
    real *bpack = packing ? FN(forward_kernel_buffer)(s) : NULL;
    if (packing && !bpack)
        return CX_ERR_NOMEM;
    int nt = FN(team_for)(s->n * poh * band_rows * patch * cout, tasks, n_threads), failed = 0;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : failed)
    {
        FN(forward_work) w;
        real *band = cx_scratch(CX_SLOT_OUT, sizeof(real) * per_task * band_rows * cout);
        failed = !FN(forward_work_init)(s, small, per_task * band_rows, &w) || !band;
        if (packing)
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
    return failed ? CX_ERR_NOMEM : CX_OK;
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
    if (cx_conv_shape_check(s) != CX_OK)
        return CX_ERR_OVERFLOW;
    const cx_int patch = s->kh * s->kw * s->cin, cout = s->cout, wsize = patch * cout;
    const cx_int poh = s->oh / ph, pwid = s->ow / pw, band_rows = ph * s->ow;
    if (patch > CX_SMALL_PATCH || (act != CX_ACT_RELU && act != CX_ACT_LINEAR))
        return CX_ERR_UNSUPPORTED;
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
            return CX_ERR_NOMEM;
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
    return failed ? CX_ERR_NOMEM : CX_OK;
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
    if (cx_conv_shape_check(s) != CX_OK)
        return CX_ERR_OVERFLOW;
    const cx_int total = s->n * s->oh * s->ow, cout = s->cout, per_image = s->oh * s->ow;
    if ((act != CX_ACT_RELU && act != CX_ACT_LINEAR) || ph * pw > 64)
        return CX_ERR_UNSUPPORTED;
    if (total == 0)
        return FN(no_rows_backward)(s, dx, dkernel, dbias);
    FN(pool_codes) pc = {s->ow / pw, (s->oh / ph) * (s->ow / pw), ph * pw, ph * s->ow, pw, dy, pooled, codes,
                         act == CX_ACT_RELU, {0}};
    for (cx_int q = 0; q < ph * pw; q++)
        pc.offset[q] = (q / pw) * s->ow + q % pw;
    /* mark[p]: whether pixel p gets a gradient, then (listed) 1 + its row in the list */
    cx_int *mark = FN(row_list_buffer)(s);
    if (!mark)
        return CX_ERR_NOMEM;
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
        return CX_ERR_BAD_INDEX;
    const cx_int rows = FN(starts_from_counts)(first, s->n);
    const int listed = FN(lists_rows)(s, rows);
    /* gathered: the listed rows, then a spare row per thread for positions without a gradient (zeros) */
    real *gathered = listed ? cx_scratch(CX_SLOT_DZ, sizeof(real) * (rows + nt) * cout) : NULL;
    real *full = !listed || (dx && FN(dx_reads_all_of_dz)(s))
                     ? cx_scratch(CX_SLOT_DZ_FULL, sizeof(real) * total * cout) : NULL;
    if ((listed && !gathered) || (!listed && !full))
        return CX_ERR_NOMEM;
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
