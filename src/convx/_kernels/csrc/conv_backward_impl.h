/* Convolution backward pass (cx_conv2d_backward; see conv.h): the input
 * gradient by images, the weight gradient by fixed row groups summed in order,
 * the all-zero rows of dz skipped. Instantiated per dtype by conv.c after
 * conv_forward_impl.h. */

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
 * drops (an 11x11 -> 5x5 pooling: 21 of 121 pixels); after a relu, more
 * (over half of the rows of the MNIST example model's conv2 and conv3). When
 * at least an eighth of the rows are zero, *idx lists the others, *dzg holds
 * their dz rows gathered in order and starts[i] is the first listed row of
 * image i (i <= N); returns the rows to work on. Which rows, and so every bit,
 * depends on the data, never on the threads. Images are scanned, then
 * gathered, in parallel (a large dz is memory traffic both cores share;
 * benchmarks/run.py --cases train shows it). -1: out of memory. */
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
        if (FN(cx_gemm)(0, 1, total, s->cin, cout, dz, cout, kernel, cout, 0, dx, s->cin, n_threads) != CX_OK)
            return CX_ERR_NOMEM;
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
            return CX_ERR_NOMEM;
        partial_b = partial + ngroups * wsize;
    }
    real *kt = NULL;
    if (direct_dx) {
        kt = cx_scratch(CX_SLOT_KT, sizeof(real) * wsize);
        kpack = cx_scratch(CX_SLOT_KERNEL, sizeof(real) * FN(cx_gemm_packed_b_size)(taps * cout, s->cin));
        if (!kt || !kpack)
            return CX_ERR_NOMEM;
    } else if (dx) {
        kpack = cx_scratch(CX_SLOT_KERNEL, sizeof(real) * FN(cx_gemm_packed_b_size)(cout, patch));
        if (!kpack)
            return CX_ERR_NOMEM;
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
    return failed ? CX_ERR_NOMEM : CX_OK;
}

/* Gradients from dz of every output pixel; the all-zero rows are skipped. */
int FN(cx_conv2d_backward)(const cx_conv_shape *s, const real *x, const real *kernel, const real *dz, real *dx,
                           real *dkernel, real *dbias, int n_threads)
{
    if (cx_conv_shape_check(s) != CX_OK)
        return CX_ERR_OVERFLOW;
    if (s->n * s->oh * s->ow == 0)
        return FN(no_rows_backward)(s, dx, dkernel, dbias);
    const cx_int *idx, *starts;
    const real *dzg;
    const cx_int rows = FN(skip_zero_rows)(s, dz, &idx, &starts, &dzg, n_threads);
    if (rows < 0)
        return CX_ERR_NOMEM;
    return FN(backward_rows)(s, x, kernel, dz, rows, idx, starts, dzg, dx, dkernel, dbias, n_threads);
}
