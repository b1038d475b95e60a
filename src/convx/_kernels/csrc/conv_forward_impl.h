/* Convolution forward pass (cx_conv2d_forward; see conv.h), instantiated per
 * dtype by conv.c after conv_tiles_impl.h. */

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
 * map and bpack are unused and may be NULL); others multiply by the kernel
 * packed in bpack, or read in place when bpack is NULL (see forward_packing). */
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
    if (bpack)
        FN(cx_gemm_indirect)(rows, cout, s->kh * s->kw, s->cin, w->ptrs, bpack, w->block_taps, dst, cout);
    else
        FN(cx_gemm_indirect_unpacked)(rows, cout, s->kh * s->kw, s->cin, w->ptrs, kernel, cout, w->block_taps, dst,
                                      cout);
    FN(cx_bias_act)(dst, rows, cout, bias, act, 1);
}

/* Whether a forward pass over `rows` output rows in all packs its kernel for the indirect GEMM: not
 * for small patches, nor for a few rows (cx_gemm_unpacked_applies: the same bits without the copy). */
static int FN(forward_packing)(int small, cx_int rows)
{
    return !small && !FN(cx_gemm_unpacked_applies)(rows);
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
    if (cx_conv_shape_check(s) != CX_OK)
        return CX_ERR_OVERFLOW;
    const cx_int patch = s->kh * s->kw * s->cin, cout = s->cout;
    if (s->n * s->oh * s->ow == 0)
        return 0;
    if (FN(is_pointwise)(s)) {
        const cx_int total = s->n * s->oh * s->ow;
        if (FN(cx_gemm)(0, 0, total, cout, s->cin, x, s->cin, kernel, cout, 0, y, cout, n_threads) != CX_OK)
            return CX_ERR_NOMEM;
        FN(cx_bias_act)(y, total, cout, bias, act, n_threads);
        return CX_OK;
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
    const int packing = FN(forward_packing)(small, total);
    real *bpack = packing ? FN(forward_kernel_buffer)(s) : NULL;
    if (packing && !bpack)
        return CX_ERR_NOMEM;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : failed)
    {
        FN(forward_work) w;
        real *out = windowed ? cx_scratch(CX_SLOT_OUT, sizeof(real) * tile * cout) : NULL;
        failed = !FN(forward_work_init)(s, small, tile, &w) || (windowed && !out);
        if (packing)
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
    return failed ? CX_ERR_NOMEM : CX_OK;
}
