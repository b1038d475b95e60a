/* Depthwise convolution and transposed-convolution kernels, written once for
 * `real` / FN(name) and instantiated per dtype by depthwise.c (see depthwise.h).
 *
 * Channels are the vector axis: an output pixel's C * M channels are computed
 * together from a list of taps (pointers to the source pixel and to the
 * kernel's tap), so each value is read once per tap and the loops run over
 * contiguous memory. With M > 1 the input rows are first widened into a
 * per-thread buffer (channel c repeated M times), so that every loop sees one
 * channel axis of C * M values.
 *
 * The SIMD bodies come from depthwise.c: DW_VEC_* macros (AVX2 + FMA, taken
 * when cx_isa_selected() says so) next to the portable loops here.
 */

/* ---- per-pixel and per-run bodies -------------------------------------- */

/* One pixel: out[c] = init[c] (0 when init is NULL) + sum_t src[t][shift + c] * ker[t][c]. */
static void FN(dw_pixel_generic)(cx_int cc, int ntaps, const real *const *src, const real *const *ker,
                                 const real *init, int relu, real *out, cx_int shift)
{
    cx_int c0 = 0;
    for (; c0 + 8 <= cc; c0 += 8) {
        real acc[8];
        for (int j = 0; j < 8; j++)
            acc[j] = init ? init[c0 + j] : (real)0;
        for (int t = 0; t < ntaps; t++) {
            const real *sp = src[t] + shift + c0, *kp = ker[t] + c0;
            for (int j = 0; j < 8; j++)
                acc[j] += sp[j] * kp[j];
        }
        for (int j = 0; j < 8; j++)
            out[c0 + j] = relu && acc[j] < (real)0 ? (real)0 : acc[j];
    }
    for (; c0 < cc; c0++) {
        real a = init ? init[c0] : (real)0;
        for (int t = 0; t < ntaps; t++)
            a += src[t][shift + c0] * ker[t][c0];
        out[c0] = relu && a < (real)0 ? (real)0 : a;
    }
}

/* For `count` pixels p (sources advancing by src_step, outputs by cc):
 * out[p * cc + c] = init[c] (0 when init is NULL) + sum_t src[t][p * src_step + c] * ker[t][c],
 * taps in order; relu'd (`v < 0 ? 0 : v`) when `relu`. Blocks of 8 channels. */
static void FN(dw_pixels_generic)(cx_int cc, int ntaps, const real *const *src, const real *const *ker,
                                  const real *init, int relu, real *out, cx_int count, cx_int src_step)
{
    for (cx_int p = 0; p < count; p++, out += cc)
        FN(dw_pixel_generic)(cc, ntaps, src, ker, init, relu, out, p * src_step);
}

/* dk[c] += sum_{i < count} xs[i * xstep + c] * dz[i * cc + c] (xs NULL: dz alone, the bias gradient). */
static void FN(dw_run_generic)(cx_int cc, cx_int count, const real *xs, cx_int xstep, const real *dz, real *dk)
{
    cx_int c0 = 0;
    for (; c0 + 8 <= cc; c0 += 8) {
        real acc[8] = {0};
        for (cx_int i = 0; i < count; i++) {
            const real *dp = dz + i * cc + c0;
            if (xs) {
                const real *xp = xs + i * xstep + c0;
                for (int j = 0; j < 8; j++)
                    acc[j] += xp[j] * dp[j];
            } else {
                for (int j = 0; j < 8; j++)
                    acc[j] += dp[j];
            }
        }
        for (int j = 0; j < 8; j++)
            dk[c0 + j] += acc[j];
    }
    for (; c0 < cc; c0++) {
        real a = 0;
        for (cx_int i = 0; i < count; i++)
            a += xs ? xs[i * xstep + c0] * dz[i * cc + c0] : dz[i * cc + c0];
        dk[c0] += a;
    }
}

#ifdef DW_VEC_WIDTH
/* The same sums, DW_VEC_WIDTH channels per register, four registers per block
 * (four independent FMA chains); the channel tail as in the portable loop. */
/* One pixel's channels [c0, cc) from V-wide blocks on, then the scalar tail. */
CX_TARGET_AVX2
static void FN(dw_pixel_rest_avx2)(cx_int c0, cx_int cc, int ntaps, const real *const *src, const real *const *ker,
                                   const real *init, int relu, real *out, cx_int shift)
{
    enum { V = DW_VEC_WIDTH };
    for (; c0 + V <= cc; c0 += V) {
        DW_VEC a = init ? DW_LOAD(init + c0) : DW_ZERO();
        for (int t = 0; t < ntaps; t++)
            a = DW_FMA(DW_LOAD(src[t] + shift + c0), DW_LOAD(ker[t] + c0), a);
        DW_STORE(out + c0, relu ? DW_MAX(DW_ZERO(), a) : a);
    }
    for (; c0 < cc; c0++) {
        real a = init ? init[c0] : (real)0;
        for (int t = 0; t < ntaps; t++)
            a = DW_FMA_SCALAR(src[t][shift + c0], ker[t][c0], a);
        out[c0] = relu && a < (real)0 ? (real)0 : a;
    }
}

/* The same sums with DW_VEC_WIDTH channels per register: blocks of 4 registers
 * for two pixels at once (8 independent FMA chains, each kernel vector loaded
 * once for both), then a pixel's remaining channels alone. `max(0, v)` keeps a
 * NaN, as `v < 0 ? 0 : v` does. */
CX_TARGET_AVX2
static void FN(dw_pixels_avx2)(cx_int cc, int ntaps, const real *const *src, const real *const *ker,
                               const real *init, int relu, real *out, cx_int count, cx_int src_step)
{
    enum { V = DW_VEC_WIDTH };
    const cx_int wide = cc / (4 * V) * (4 * V);
    cx_int p = 0;
    for (; p + 2 <= count; p += 2) {
        const cx_int s0 = p * src_step, s1 = s0 + src_step;
        real *o0 = out + p * cc, *o1 = o0 + cc;
        for (cx_int c0 = 0; c0 < wide; c0 += 4 * V) {
            DW_VEC a0, a1, a2, a3, b0, b1, b2, b3;
            if (init) {
                a0 = b0 = DW_LOAD(init + c0), a1 = b1 = DW_LOAD(init + c0 + V);
                a2 = b2 = DW_LOAD(init + c0 + 2 * V), a3 = b3 = DW_LOAD(init + c0 + 3 * V);
            } else {
                a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = DW_ZERO();
            }
            for (int t = 0; t < ntaps; t++) {
                const real *kp = ker[t] + c0, *x0 = src[t] + s0 + c0, *x1 = src[t] + s1 + c0;
                const DW_VEC k0 = DW_LOAD(kp), k1 = DW_LOAD(kp + V), k2 = DW_LOAD(kp + 2 * V),
                             k3 = DW_LOAD(kp + 3 * V);
                a0 = DW_FMA(DW_LOAD(x0), k0, a0), a1 = DW_FMA(DW_LOAD(x0 + V), k1, a1);
                a2 = DW_FMA(DW_LOAD(x0 + 2 * V), k2, a2), a3 = DW_FMA(DW_LOAD(x0 + 3 * V), k3, a3);
                b0 = DW_FMA(DW_LOAD(x1), k0, b0), b1 = DW_FMA(DW_LOAD(x1 + V), k1, b1);
                b2 = DW_FMA(DW_LOAD(x1 + 2 * V), k2, b2), b3 = DW_FMA(DW_LOAD(x1 + 3 * V), k3, b3);
            }
            if (relu) {
                a0 = DW_MAX(DW_ZERO(), a0), a1 = DW_MAX(DW_ZERO(), a1);
                a2 = DW_MAX(DW_ZERO(), a2), a3 = DW_MAX(DW_ZERO(), a3);
                b0 = DW_MAX(DW_ZERO(), b0), b1 = DW_MAX(DW_ZERO(), b1);
                b2 = DW_MAX(DW_ZERO(), b2), b3 = DW_MAX(DW_ZERO(), b3);
            }
            DW_STORE(o0 + c0, a0), DW_STORE(o0 + c0 + V, a1);
            DW_STORE(o0 + c0 + 2 * V, a2), DW_STORE(o0 + c0 + 3 * V, a3);
            DW_STORE(o1 + c0, b0), DW_STORE(o1 + c0 + V, b1);
            DW_STORE(o1 + c0 + 2 * V, b2), DW_STORE(o1 + c0 + 3 * V, b3);
        }
        FN(dw_pixel_rest_avx2)(wide, cc, ntaps, src, ker, init, relu, o0, s0);
        FN(dw_pixel_rest_avx2)(wide, cc, ntaps, src, ker, init, relu, o1, s1);
    }
    for (; p < count; p++)
        FN(dw_pixel_rest_avx2)(0, cc, ntaps, src, ker, init, relu, out + p * cc, p * src_step);
}

CX_TARGET_AVX2
static void FN(dw_run_avx2)(cx_int cc, cx_int count, const real *xs, cx_int xstep, const real *dz, real *dk)
{
    enum { V = DW_VEC_WIDTH };
    cx_int c0 = 0;
    for (; c0 + 2 * V <= cc; c0 += 2 * V) {
        DW_VEC a0 = DW_ZERO(), a1 = DW_ZERO(), b0 = DW_ZERO(), b1 = DW_ZERO();
        cx_int i = 0;
        /* two rows at a time into separate chains, added at the end: a fixed order */
        for (; i + 2 <= count; i += 2) {
            const real *d0 = dz + i * cc + c0, *d1 = d0 + cc;
            if (xs) {
                const real *x0 = xs + i * xstep + c0, *x1 = x0 + xstep;
                a0 = DW_FMA(DW_LOAD(x0), DW_LOAD(d0), a0);
                a1 = DW_FMA(DW_LOAD(x0 + V), DW_LOAD(d0 + V), a1);
                b0 = DW_FMA(DW_LOAD(x1), DW_LOAD(d1), b0);
                b1 = DW_FMA(DW_LOAD(x1 + V), DW_LOAD(d1 + V), b1);
            } else {
                a0 = DW_ADD(a0, DW_LOAD(d0)), a1 = DW_ADD(a1, DW_LOAD(d0 + V));
                b0 = DW_ADD(b0, DW_LOAD(d1)), b1 = DW_ADD(b1, DW_LOAD(d1 + V));
            }
        }
        for (; i < count; i++) {
            const real *d0 = dz + i * cc + c0;
            if (xs) {
                const real *x0 = xs + i * xstep + c0;
                a0 = DW_FMA(DW_LOAD(x0), DW_LOAD(d0), a0);
                a1 = DW_FMA(DW_LOAD(x0 + V), DW_LOAD(d0 + V), a1);
            } else {
                a0 = DW_ADD(a0, DW_LOAD(d0)), a1 = DW_ADD(a1, DW_LOAD(d0 + V));
            }
        }
        DW_STORE(dk + c0, DW_ADD(DW_LOAD(dk + c0), DW_ADD(a0, b0)));
        DW_STORE(dk + c0 + V, DW_ADD(DW_LOAD(dk + c0 + V), DW_ADD(a1, b1)));
    }
    for (; c0 < cc; c0++) {
        real a = 0;
        for (cx_int i = 0; i < count; i++)
            a = xs ? DW_FMA_SCALAR(xs[i * xstep + c0], dz[i * cc + c0], a) : a + dz[i * cc + c0];
        dk[c0] += a;
    }
}

/* A run of pixels at stride 1 whose taps come in whole 3-wide rows of
 * adjacent source pixels (src[3 r + j] = src[3 r] + j * cc: the forward's kx,
 * or the input gradient's kx descending): along a row, source pixel i feeds
 * outputs i - 2 .. i, so each source vector is loaded once for three FMAs
 * (6 pixels x 8 channels per block, the row's 3 kernel vectors in registers)
 * instead of once per tap. Every output takes its taps in the list's order,
 * as dw_pixels_avx2 does: the same bits. Channels must be a multiple of DW_VEC_WIDTH; the last count % 6 pixels
 * go through dw_pixels_avx2. Taken for pixels of at most 128 bytes (32 floats):
 * with wider pixels the 8-channel blocks stride through memory (a block of 6
 * pixels reads 24 pixels' worth of lines per block) and the plain loop, which
 * walks each pixel's channels in order, is faster (benchmarks/run.py's
 * MobileNet-style model cases show it). */
CX_TARGET_AVX2
static void FN(dw_run3_avx2)(cx_int cc, int ntaps, const real *const *src, const real *const *ker,
                             const real *init, int relu, real *out, cx_int count)
{
    enum { V = DW_VEC_WIDTH, P = 6 };
    const int nky = ntaps / 3;
    cx_int p0 = 0;
    for (; p0 + P <= count; p0 += P)
        for (cx_int c0 = 0; c0 < cc; c0 += V) {
            DW_VEC a0, a1, a2, a3, a4, a5;
            a0 = init ? DW_LOAD(init + c0) : DW_ZERO();
            a1 = a2 = a3 = a4 = a5 = a0;
            for (int r = 0; r < nky; r++) {
                const real *xr = src[3 * r] + p0 * cc + c0;
                const DW_VEC k0 = DW_LOAD(ker[3 * r] + c0), k1 = DW_LOAD(ker[3 * r + 1] + c0),
                             k2 = DW_LOAD(ker[3 * r + 2] + c0);
                DW_VEC x = DW_LOAD(xr);
                a0 = DW_FMA(x, k0, a0);
                x = DW_LOAD(xr + cc);
                a0 = DW_FMA(x, k1, a0), a1 = DW_FMA(x, k0, a1);
                x = DW_LOAD(xr + 2 * cc);
                a0 = DW_FMA(x, k2, a0), a1 = DW_FMA(x, k1, a1), a2 = DW_FMA(x, k0, a2);
                x = DW_LOAD(xr + 3 * cc);
                a1 = DW_FMA(x, k2, a1), a2 = DW_FMA(x, k1, a2), a3 = DW_FMA(x, k0, a3);
                x = DW_LOAD(xr + 4 * cc);
                a2 = DW_FMA(x, k2, a2), a3 = DW_FMA(x, k1, a3), a4 = DW_FMA(x, k0, a4);
                x = DW_LOAD(xr + 5 * cc);
                a3 = DW_FMA(x, k2, a3), a4 = DW_FMA(x, k1, a4), a5 = DW_FMA(x, k0, a5);
                x = DW_LOAD(xr + 6 * cc);
                a4 = DW_FMA(x, k2, a4), a5 = DW_FMA(x, k1, a5);
                a5 = DW_FMA(DW_LOAD(xr + 7 * cc), k2, a5);
            }
            if (relu) {
                a0 = DW_MAX(DW_ZERO(), a0), a1 = DW_MAX(DW_ZERO(), a1), a2 = DW_MAX(DW_ZERO(), a2);
                a3 = DW_MAX(DW_ZERO(), a3), a4 = DW_MAX(DW_ZERO(), a4), a5 = DW_MAX(DW_ZERO(), a5);
            }
            real *o = out + p0 * cc + c0;
            DW_STORE(o, a0), DW_STORE(o + cc, a1), DW_STORE(o + 2 * cc, a2);
            DW_STORE(o + 3 * cc, a3), DW_STORE(o + 4 * cc, a4), DW_STORE(o + 5 * cc, a5);
        }
    if (p0 < count) {
        const real *shifted[3 * CX_DW_MAX_TAPS];
        for (int t = 0; t < ntaps; t++)
            shifted[t] = src[t] + p0 * cc;
        FN(dw_pixels_avx2)(cc, ntaps, shifted, ker, init, relu, out + p0 * cc, count - p0, cc);
    }
}

/* dk[t][c] += sum_{p < count} src[t][p * step + c] * dz[p * cc + c] for the 9
 * taps of a 3x3 kernel at once: the nine sums of a channel block stay in
 * registers, so dz is loaded once per pixel for all taps (the per-tap loop
 * loads it nine times and spends two loads per multiply-add). */
CX_TARGET_AVX2
static void FN(dw_wgrad9_avx2)(cx_int cc, const real *const *src, cx_int step, const real *dz, cx_int count,
                               real *dk)
{
    enum { V = DW_VEC_WIDTH };
    cx_int c0 = 0;
    for (; c0 + V <= cc; c0 += V) {
        DW_VEC a0 = DW_ZERO(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0;
        const real *s0 = src[0] + c0, *s1 = src[1] + c0, *s2 = src[2] + c0, *s3 = src[3] + c0, *s4 = src[4] + c0,
                   *s5 = src[5] + c0, *s6 = src[6] + c0, *s7 = src[7] + c0, *s8 = src[8] + c0;
        for (cx_int p = 0; p < count; p++) {
            const DW_VEC d = DW_LOAD(dz + p * cc + c0);
            const cx_int o = p * step;
            a0 = DW_FMA(DW_LOAD(s0 + o), d, a0), a1 = DW_FMA(DW_LOAD(s1 + o), d, a1);
            a2 = DW_FMA(DW_LOAD(s2 + o), d, a2), a3 = DW_FMA(DW_LOAD(s3 + o), d, a3);
            a4 = DW_FMA(DW_LOAD(s4 + o), d, a4), a5 = DW_FMA(DW_LOAD(s5 + o), d, a5);
            a6 = DW_FMA(DW_LOAD(s6 + o), d, a6), a7 = DW_FMA(DW_LOAD(s7 + o), d, a7);
            a8 = DW_FMA(DW_LOAD(s8 + o), d, a8);
        }
        DW_STORE(dk + c0, DW_ADD(DW_LOAD(dk + c0), a0));
        DW_STORE(dk + cc + c0, DW_ADD(DW_LOAD(dk + cc + c0), a1));
        DW_STORE(dk + 2 * cc + c0, DW_ADD(DW_LOAD(dk + 2 * cc + c0), a2));
        DW_STORE(dk + 3 * cc + c0, DW_ADD(DW_LOAD(dk + 3 * cc + c0), a3));
        DW_STORE(dk + 4 * cc + c0, DW_ADD(DW_LOAD(dk + 4 * cc + c0), a4));
        DW_STORE(dk + 5 * cc + c0, DW_ADD(DW_LOAD(dk + 5 * cc + c0), a5));
        DW_STORE(dk + 6 * cc + c0, DW_ADD(DW_LOAD(dk + 6 * cc + c0), a6));
        DW_STORE(dk + 7 * cc + c0, DW_ADD(DW_LOAD(dk + 7 * cc + c0), a7));
        DW_STORE(dk + 8 * cc + c0, DW_ADD(DW_LOAD(dk + 8 * cc + c0), a8));
    }
    for (; c0 < cc; c0++)
        for (int t = 0; t < 9; t++) {
            real a = 0;
            for (cx_int p = 0; p < count; p++)
                a = DW_FMA_SCALAR(src[t][p * step + c0], dz[p * cc + c0], a);
            dk[t * cc + c0] += a;
        }
}
#endif

/* `run3`: the taps are whole undilated 3-wide kernel rows and the sources step
 * one pixel (src_step = cc) per output, so dw_run3_avx2 applies. */
static void FN(dw_pixels)(cx_int cc, int ntaps, const real *const *src, const real *const *ker, const real *init,
                          int relu, real *out, cx_int count, cx_int src_step, int run3)
{
#ifdef DW_VEC_WIDTH
    if (cx_isa_avx2_class()) {
        if (run3 && count >= 6 && src_step == cc && cc % DW_VEC_WIDTH == 0 && cc * (cx_int)sizeof(real) <= 128) {
            FN(dw_run3_avx2)(cc, ntaps, src, ker, init, relu, out, count);
            return;
        }
        FN(dw_pixels_avx2)(cc, ntaps, src, ker, init, relu, out, count, src_step);
        return;
    }
#endif
    FN(dw_pixels_generic)(cc, ntaps, src, ker, init, relu, out, count, src_step);
}

static void FN(dw_run)(cx_int cc, cx_int count, const real *xs, cx_int xstep, const real *dz, real *dk)
{
#ifdef DW_VEC_WIDTH
    if (cx_isa_avx2_class()) {
        FN(dw_run_avx2)(cc, count, xs, xstep, dz, dk);
        return;
    }
#endif
    FN(dw_run_generic)(cc, count, xs, xstep, dz, dk);
}

/* ---- geometry ------------------------------------------------------------ */

/* Output columns [lo, hi) whose tap at column offset `off` (kx * dw - pad_left)
 * falls inside the input: 0 <= ox * sw + off < w. */
static inline void FN(dw_columns)(cx_int off, cx_int sw, cx_int w, cx_int ow, cx_int *lo, cx_int *hi)
{
    *lo = off >= 0 ? 0 : (-off - 1) / sw + 1; /* ceil(-off / sw) without overflow for any sw */
    *hi = w - 1 - off < 0 ? 0 : CX_MIN((w - 1 - off) / sw + 1, ow);
    if (*lo > *hi)
        *lo = *hi;
}

/* Input row (image n, row iy) with C * M channels per pixel: x itself when
 * M = 1, else x's row widened into `wide` (channel c repeated M times). */
static const real *FN(dw_source_row)(const cx_dw_shape *s, const real *x, cx_int n, cx_int iy, real *wide)
{
    const real *row = x + (n * s->h + iy) * s->w * s->c;
    if (s->m == 1)
        return row;
    for (cx_int i = 0; i < s->w * s->c; i++)
        for (cx_int j = 0; j < s->m; j++)
            wide[i * s->m + j] = row[i];
    return wide;
}

/* Serial below CX_DW_PARALLEL_MIN multiply-adds (cx_tuning.h). */

static int FN(dw_team)(cx_int work, cx_int units, int n_threads)
{
    if (n_threads <= 1 || work < CX_DW_PARALLEL_MIN)
        return 1;
    return (int)CX_MAX(1, CX_MIN((cx_int)n_threads, units));
}

/* ---- forward ------------------------------------------------------------- */

/* Taps of output pixel ox (valid rows[ky], columns inside the input), in (ky, kx) order. */
static int FN(dw_forward_taps)(const cx_dw_shape *s, const real *const *rows, const real *kernel, cx_int ox,
                               const real **src, const real **ker)
{
    const cx_int cc = s->c * s->m, ix0 = ox * s->sw - s->pad_left;
    int nt = 0;
    for (cx_int ky = 0; ky < s->kh; ky++) {
        if (!rows[ky])
            continue;
        for (cx_int kx = 0; kx < s->kw; kx++) {
            const cx_int ix = ix0 + kx * s->dw;
            if (ix < 0 || ix >= s->w)
                continue;
            src[nt] = rows[ky] + ix * cc;
            ker[nt++] = kernel + (ky * s->kw + kx) * cc;
        }
    }
    return nt;
}

/* Output row (n, oy): the pixels whose taps all fall inside the input row as
 * one run (one tap list, shifted by sw pixels per output), the others alone. */
static void FN(dw_forward_row)(const cx_dw_shape *s, const real *x, const real *kernel, const real *bias, int act,
                               cx_int n, cx_int oy, real *wide, const real **src, const real **ker, real *y)
{
    const cx_int cc = s->c * s->m;
    const real *rows[CX_DW_MAX_TAPS];
    for (cx_int ky = 0; ky < s->kh; ky++) {
        const cx_int iy = oy * s->sh - s->pad_top + ky * s->dh;
        rows[ky] = iy < 0 || iy >= s->h ? NULL : FN(dw_source_row)(s, x, n, iy, wide + ky * s->w * cc);
    }
    real *yrow = y + (n * s->oh + oy) * s->ow * cc;
    cx_int lo, hi, lo_last, hi_first;
    FN(dw_columns)(-s->pad_left, s->sw, s->w, s->ow, &lo, &hi_first);
    FN(dw_columns)((s->kw - 1) * s->dw - s->pad_left, s->sw, s->w, s->ow, &lo_last, &hi);
    lo = CX_MAX(lo, lo_last), hi = CX_MIN(hi, hi_first);
    if (lo >= hi)
        lo = hi = s->ow;
    const int relu = act == CX_ACT_RELU, run3 = s->sw == 1 && s->kw == 3 && s->dw == 1;
    for (cx_int ox = 0; ox < s->ow; ox++) {
        const int nt = FN(dw_forward_taps)(s, rows, kernel, ox, src, ker);
        const cx_int count = ox == lo ? hi - lo : 1;
        FN(dw_pixels)(cc, nt, src, ker, bias, relu, yrow + ox * cc, count, s->sw * cc, run3 && count > 1);
        ox += count - 1;
    }
    if (act != CX_ACT_RELU && act != CX_ACT_LINEAR)
        FN(cx_bias_act)(yrow, s->ow, cc, NULL, act, 1);
}

int FN(cx_depthwise_forward)(const cx_dw_shape *s, const real *x, const real *kernel, const real *bias, int act,
                             real *y, int n_threads)
{
    const cx_int cc = s->c * s->m, taps = s->kh * s->kw, total = s->n * s->oh;
    if (total == 0 || s->ow == 0 || cc == 0)
        return 0;
    if (s->kh > CX_DW_MAX_TAPS) /* the per-row lists of kernel rows are on the stack */
        return CX_ERR_UNSUPPORTED;
    const int nt = FN(dw_team)(total * s->ow * cc * taps, total, n_threads);
    int failed = 0;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : failed)
    {
        real *wide = s->m > 1 ? cx_scratch(CX_DW_SLOT_WIDE, sizeof(real) * s->kh * s->w * cc) : NULL;
        const real **ptrs = cx_scratch(CX_DW_SLOT_PTRS, sizeof(real *) * 2 * taps);
        failed = !ptrs || (s->m > 1 && !wide);
#pragma omp for schedule(dynamic, 4)
        for (cx_int r = 0; r < total; r++)
            if (!failed)
                FN(dw_forward_row)(s, x, kernel, bias, act, r / s->oh, r % s->oh, wide, ptrs, ptrs + taps, y);
    }
    return failed ? CX_ERR_NOMEM : CX_OK;
}

/* ---- backward ------------------------------------------------------------ */

/* Weight-gradient row groups: a power of two, at most CX_DW_GROUPS, at least
 * CX_DW_GROUP_ROWS output rows each, fixed by the problem size alone. */
static cx_int FN(dw_groups)(cx_int rows)
{
    cx_int groups = 1;
    while (groups < CX_DW_GROUPS && rows / (2 * groups) >= CX_DW_GROUP_ROWS)
        groups *= 2;
    return groups;
}

/* Kernel and bias gradient partials of output rows [r0, r1) into dk, db (zeroed first). */
static void FN(dw_wgrad_rows)(const cx_dw_shape *s, const real *x, const real *dz, cx_int r0, cx_int r1,
                              real *wide, real *dk, real *db)
{
    const cx_int cc = s->c * s->m, taps = s->kh * s->kw;
    memset(dk, 0, sizeof(real) * taps * cc);
    if (db)
        memset(db, 0, sizeof(real) * cc);
    /* 3x3 with M = 1 under AVX2: the output pixels every tap reaches, [lo, hi), go through
     * dw_wgrad9_avx2 when all three kernel rows fall inside the image; the rest tap by tap */
    cx_int lo = 0, hi = 0;
    int nine = 0;
#ifdef DW_VEC_WIDTH
    if (s->kh == 3 && s->kw == 3 && s->m == 1 && cx_isa_avx2_class()) {
        cx_int lo_last, hi_first;
        FN(dw_columns)(-s->pad_left, s->sw, s->w, s->ow, &lo, &hi_first);
        FN(dw_columns)(2 * s->dw - s->pad_left, s->sw, s->w, s->ow, &lo_last, &hi);
        lo = CX_MAX(lo, lo_last), hi = CX_MIN(hi, hi_first);
        nine = hi > lo;
    }
#endif
    for (cx_int r = r0; r < r1; r++) {
        const cx_int n = r / s->oh, oy = r % s->oh;
        const real *dzr = dz + r * s->ow * cc;
        const cx_int iy0 = oy * s->sh - s->pad_top;
        const int inner = nine && iy0 >= 0 && iy0 + (s->kh - 1) * s->dh < s->h;
#ifdef DW_VEC_WIDTH
        if (inner) {
            const real *src[9];
            for (int t = 0; t < 9; t++)
                src[t] = x + ((n * s->h + iy0 + (t / 3) * s->dh) * s->w + lo * s->sw + (t % 3) * s->dw - s->pad_left)
                             * cc;
            FN(dw_wgrad9_avx2)(cc, src, s->sw * cc, dzr + lo * cc, hi - lo, dk);
        }
#endif
        for (cx_int ky = 0; ky < s->kh; ky++) {
            const cx_int iy = iy0 + ky * s->dh;
            if (iy < 0 || iy >= s->h)
                continue;
            const real *row = FN(dw_source_row)(s, x, n, iy, wide);
            for (cx_int kx = 0; kx < s->kw; kx++) {
                const cx_int off = kx * s->dw - s->pad_left;
                real *dkt = dk + (ky * s->kw + kx) * cc;
                cx_int tlo, thi;
                FN(dw_columns)(off, s->sw, s->w, s->ow, &tlo, &thi);
                if (!inner) {
                    if (thi > tlo)
                        FN(dw_run)(cc, thi - tlo, row + (tlo * s->sw + off) * cc, s->sw * cc, dzr + tlo * cc, dkt);
                    continue;
                }
                /* the tap's columns outside [lo, hi) (its own range contains that one) */
                if (lo > tlo)
                    FN(dw_run)(cc, lo - tlo, row + (tlo * s->sw + off) * cc, s->sw * cc, dzr + tlo * cc, dkt);
                if (thi > hi)
                    FN(dw_run)(cc, thi - hi, row + (hi * s->sw + off) * cc, s->sw * cc, dzr + hi * cc, dkt);
            }
        }
        if (db)
            FN(dw_run)(cc, s->ow, NULL, 0, dzr, db);
    }
}

/* Input-gradient row (n, iy): each input pixel gathers dz over the taps that
 * read it (ky ascending, kx descending: the dz pixels they read ascend), then
 * sums its M channels per input channel. At stride 1 with M = 1, the pixels
 * that every kx reaches form one run (3-wide undilated rows: dw_run3_avx2). */
static void FN(dw_input_grad_row)(const cx_dw_shape *s, const real *kernel, const real *dz, cx_int n, cx_int iy,
                                  const real **src, const real **ker, real *acc, real *dx)
{
    const cx_int cc = s->c * s->m;
    const real *rows[CX_DW_MAX_TAPS];
    for (cx_int ky = 0; ky < s->kh; ky++) {
        const cx_int t = iy + s->pad_top - ky * s->dh;
        rows[ky] = t < 0 || t % s->sh || t / s->sh >= s->oh ? NULL : dz + (n * s->oh + t / s->sh) * s->ow * cc;
    }
    cx_int lo = s->w, hi = s->w;
    if (s->sw == 1 && s->m == 1) { /* 0 <= ix + pad_left - kx * dw < ow for every kx */
        lo = CX_MAX((s->kw - 1) * s->dw - s->pad_left, 0);
        hi = CX_MIN(s->ow - s->pad_left, s->w);
        if (lo >= hi)
            lo = hi = s->w;
    }
    real *dxrow = dx + (n * s->h + iy) * s->w * s->c;
    const int run3 = s->kw == 3 && s->dw == 1;
    for (cx_int ix = 0; ix < s->w; ix++) {
        int nt = 0;
        for (cx_int ky = 0; ky < s->kh; ky++) {
            if (!rows[ky])
                continue;
            for (cx_int kx = s->kw - 1; kx >= 0; kx--) {
                const cx_int u = ix + s->pad_left - kx * s->dw;
                if (u < 0 || u % s->sw || u / s->sw >= s->ow)
                    continue;
                src[nt] = rows[ky] + (u / s->sw) * cc;
                ker[nt++] = kernel + (ky * s->kw + kx) * cc;
            }
        }
        if (s->m == 1) {
            const cx_int count = ix == lo ? hi - lo : 1;
            FN(dw_pixels)(cc, nt, src, ker, NULL, 0, dxrow + ix * s->c, count, cc, count > 1 && run3);
            ix += count - 1;
            continue;
        }
        FN(dw_pixels)(cc, nt, src, ker, NULL, 0, acc, 1, 0, 0);
        for (cx_int c = 0; c < s->c; c++) {
            real v = acc[c * s->m];
            for (cx_int j = 1; j < s->m; j++)
                v += acc[c * s->m + j];
            dxrow[ix * s->c + c] = v;
        }
    }
}

int FN(cx_depthwise_backward)(const cx_dw_shape *s, const real *x, const real *kernel, const real *dz, real *dx,
                              real *dkernel, real *dbias, int n_threads)
{
    const cx_int cc = s->c * s->m, taps = s->kh * s->kw, total = s->n * s->oh, wsize = taps * cc;
    if (s->kh > CX_DW_MAX_TAPS) /* the per-row lists of kernel rows are on the stack */
        return CX_ERR_UNSUPPORTED;
    if (total == 0 || s->ow == 0) {
        memset(dkernel, 0, sizeof(real) * wsize);
        if (dbias)
            memset(dbias, 0, sizeof(real) * cc);
        if (dx)
            memset(dx, 0, sizeof(real) * s->n * s->h * s->w * s->c);
        return 0;
    }
    const cx_int ngroups = FN(dw_groups)(total), group_rows = (total + ngroups - 1) / ngroups;
    const cx_int in_rows = dx ? s->n * s->h : 0;
    real *partial = dkernel, *partial_b = dbias;
    if (ngroups > 1) {
        partial = cx_scratch(CX_DW_SLOT_PARTIAL, sizeof(real) * ngroups * (wsize + cc));
        if (!partial)
            return CX_ERR_NOMEM;
        partial_b = partial + ngroups * wsize;
    }
    const int nt = FN(dw_team)(total * s->ow * cc * taps * (dx ? 2 : 1), ngroups + in_rows, n_threads);
    int failed = 0;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : failed)
    {
        real *wide = s->m > 1 ? cx_scratch(CX_DW_SLOT_WIDE, sizeof(real) * s->w * cc) : NULL;
        const real **ptrs = cx_scratch(CX_DW_SLOT_PTRS, sizeof(real *) * 2 * taps);
        real *acc = cx_scratch(CX_DW_SLOT_ACC, sizeof(real) * cc);
        failed = !ptrs || !acc || (s->m > 1 && !wide);
#pragma omp for schedule(dynamic, 1) nowait
        for (cx_int g = 0; g < ngroups; g++) {
            const cx_int r0 = g * group_rows, r1 = CX_MIN(r0 + group_rows, total);
            if (!failed && r0 < r1)
                FN(dw_wgrad_rows)(s, x, dz, r0, r1, wide, partial + g * wsize,
                                  partial_b ? partial_b + g * cc : NULL);
            else if (r0 >= r1) { /* an empty group adds zeros */
                memset(partial + g * wsize, 0, sizeof(real) * wsize);
                if (partial_b)
                    memset(partial_b + g * cc, 0, sizeof(real) * cc);
            }
        }
#pragma omp for schedule(dynamic, 4)
        for (cx_int r = 0; r < in_rows; r++)
            if (!failed)
                FN(dw_input_grad_row)(s, kernel, dz, r / s->h, r % s->h, ptrs, ptrs + taps, acc, dx);
        /* the loop's barrier has passed: every group is complete */
        if (ngroups > 1) {
#pragma omp for schedule(dynamic, 1)
            for (cx_int i0 = 0; i0 < wsize + cc; i0 += CX_DW_SUM_BLOCK) {
                const cx_int count = CX_MIN(CX_DW_SUM_BLOCK, wsize + cc - i0);
                for (cx_int i = i0; i < i0 + count; i++) {
                    const int bias_part = i >= wsize;
                    const real *p = bias_part ? partial_b + (i - wsize) : partial + i;
                    const cx_int stride = bias_part ? cc : wsize;
                    if (bias_part && !dbias)
                        continue;
                    real v = p[0];
                    for (cx_int g = 1; g < ngroups; g++)
                        v += p[g * stride];
                    (bias_part ? dbias + (i - wsize) : dkernel + i)[0] = v;
                }
            }
        }
    }
    cx_scratch_trim();
    return failed ? CX_ERR_NOMEM : CX_OK;
}

/* ---- column sums (bias gradients) ---------------------------------------- */

int FN(cx_column_sums)(const real *m, cx_int rows, cx_int cols, real *sum, int n_threads)
{
    const cx_int ngroups = FN(dw_groups)(rows / 8), group_rows = (rows + ngroups - 1) / ngroups;
    memset(sum, 0, sizeof(real) * cols);
    if (rows == 0 || cols == 0)
        return 0;
    real *partial = sum;
    if (ngroups > 1) {
        partial = cx_scratch(CX_DW_SLOT_PARTIAL, sizeof(real) * ngroups * cols);
        if (!partial)
            return CX_ERR_NOMEM;
    }
    const int nt = FN(dw_team)(rows * cols, ngroups, n_threads);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 1)
    for (cx_int g = 0; g < ngroups; g++) {
        const cx_int r0 = g * group_rows, r1 = CX_MIN(r0 + group_rows, rows);
        memset(partial + g * cols, 0, sizeof(real) * cols);
        if (r1 > r0)
            FN(dw_run)(cols, r1 - r0, NULL, 0, m + r0 * cols, partial + g * cols);
    }
    if (ngroups > 1)
        for (cx_int g = 0; g < ngroups; g++)
            for (cx_int c = 0; c < cols; c++)
                sum[c] = g == 0 ? partial[c] : sum[c] + partial[g * cols + c];
    cx_scratch_trim();
    return 0;
}

/* ---- transposed convolution forward -------------------------------------- */

/* Taps per K block of the indirect GEMM: whole taps, blocks of about 256 values. */
static cx_int FN(tc_block_taps)(cx_int taps, cx_int depth)
{
    const cx_int blocks = CX_MIN(CX_MAX(1, (taps * depth + 255) / 256), CX_MAX(taps, 1));
    return (taps + blocks - 1) / blocks;
}

/* The kernel's taps grouped by output phase: output pixel (Y, X) of the
 * transposed convolution (the convolution's input) is reached by tap (ky, kx)
 * iff (Y + pad_top - ky * dh) is a multiple of sh (likewise for X), i.e. iff
 * ky * dh = Y + pad_top (mod sh): the phase (q, r) = ((Y + pad_top) % sh,
 * (X + pad_left) % sw) fixes the taps. meta: start[phase] (taps list index,
 * nphase + 1 entries), offset[phase] into the packed kernels, then the list.
 * Returns the most taps of a phase. */
static cx_int FN(tc_phases)(const cx_conv_shape *s, cx_int *meta, cx_int *packed_size)
{
    const cx_int nphase = s->sh * s->sw;
    cx_int *start = meta, *offset = meta + nphase + 1, *list = offset + nphase, pos = 0, most = 0;
    *packed_size = 0;
    for (cx_int q = 0; q < s->sh; q++)
        for (cx_int r = 0; r < s->sw; r++) {
            const cx_int phase = q * s->sw + r;
            start[phase] = pos;
            for (cx_int ky = 0; ky < s->kh; ky++)
                for (cx_int kx = 0; kx < s->kw; kx++)
                    if ((ky * s->dh) % s->sh == q && (kx * s->dw) % s->sw == r)
                        list[pos++] = ky * s->kw + kx;
            offset[phase] = *packed_size;
            *packed_size += FN(cx_gemm_packed_b_size)((pos - start[phase]) * s->cout, s->cin);
            most = CX_MAX(most, pos - start[phase]);
        }
    start[nphase] = pos;
    return most;
}

/* Output row (n, Y): for each column phase, the row's pixels of that phase
 * (every sw-th) as one indirect GEMM over the phase's taps (x's pixels, or
 * zeros outside x) against its packed kernel, written in place (ldc = sw * F);
 * then bias and activation on the row. Each output is one GEMM row: a fixed order. */
static void FN(tc_row)(const cx_conv_shape *s, const real *x, const cx_int *meta, const real *packed, const real *bias,
                       int act, cx_int n, cx_int yy, const real *zeros, const real **ptrs, real *y)
{
    const cx_int nphase = s->sh * s->sw, F = s->cin, C = s->cout, mr = FN(cx_gemm_mr)();
    const cx_int *start = meta, *offset = meta + nphase + 1, *list = offset + nphase;
    const cx_int q = (yy + s->pad_top) % s->sh;
    real *yrow = y + (n * s->h + yy) * s->w * F;
    for (cx_int r = 0; r < s->sw; r++) {
        const cx_int phase = q * s->sw + r, taps = start[phase + 1] - start[phase];
        const cx_int x0 = ((r - s->pad_left) % s->sw + s->sw) % s->sw;
        const cx_int m = x0 < s->w ? (s->w - 1 - x0) / s->sw + 1 : 0;
        real *c = yrow + x0 * F;
        if (m == 0)
            continue;
        if (taps == 0) {
            for (cx_int i = 0; i < m; i++)
                memset(c + i * s->sw * F, 0, sizeof(real) * F);
            continue;
        }
        const cx_int padded = (m + mr - 1) / mr * mr;
        for (cx_int i = 0; i < padded; i++) {
            const cx_int xx = x0 + CX_MIN(i, m - 1) * s->sw;
            const real **dst = ptrs + (i / mr) * taps * mr + i % mr;
            for (cx_int t = 0; t < taps; t++, dst += mr) {
                const cx_int tap = list[start[phase] + t], ky = tap / s->kw, kx = tap % s->kw;
                const cx_int ty = yy + s->pad_top - ky * s->dh, tx = xx + s->pad_left - kx * s->dw;
                const cx_int oy = ty / s->sh, ox = tx / s->sw;
                *dst = ty >= 0 && tx >= 0 && oy < s->oh && ox < s->ow ? x + ((n * s->oh + oy) * s->ow + ox) * C : zeros;
            }
        }
        FN(cx_gemm_indirect)(m, F, taps, C, ptrs, packed + offset[phase], FN(tc_block_taps)(taps, C), c, s->sw * F);
    }
    FN(cx_bias_act)(yrow, s->w, F, bias, act, 1);
}

/* Rows of y taken dynamically by the team, after the team has transposed the
 * kernel's taps phase by phase (kt[(j, c), f] = kernel[tap j, f, c]) and packed
 * each phase's block for the indirect GEMM. No scatter, no patch buffer: every
 * output is written once. */
int FN(cx_conv_transpose_forward)(const cx_conv_shape *s, const real *x, const real *kernel, const real *bias,
                                  int act, real *y, int n_threads)
{
    if (cx_conv_shape_check(s) != CX_OK || cx_mul(s->sh, s->sw) < 0)
        return CX_ERR_OVERFLOW;
    const cx_int nphase = s->sh * s->sw, taps = s->kh * s->kw, F = s->cin, C = s->cout, rows = s->n * s->h;
    if (rows == 0 || s->w == 0 || F == 0)
        return CX_OK;
    cx_int *meta = cx_scratch(CX_DW_SLOT_META, sizeof(cx_int) * (2 * nphase + 1 + taps));
    if (!meta)
        return CX_ERR_NOMEM;
    cx_int packed_size;
    const cx_int most = FN(tc_phases)(s, meta, &packed_size);
    real *kt = cx_scratch(CX_DW_SLOT_KT, sizeof(real) * taps * C * F);
    real *packed = cx_scratch(CX_DW_SLOT_KPACK, sizeof(real) * packed_size);
    if (!kt || !packed)
        return CX_ERR_NOMEM;
    const cx_int *start = meta, *offset = meta + nphase + 1, *list = offset + nphase;
    const cx_int mr = FN(cx_gemm_mr)(), per_row = (s->w + s->sw - 1) / s->sw;
    const int nt = FN(dw_team)(rows * s->w * F * taps * C / nphase, rows, n_threads);
    int failed = 0;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : failed)
    {
        const real **ptrs = cx_scratch(CX_DW_SLOT_PTRS, sizeof(real *) * ((per_row + mr - 1) / mr * mr) * most);
        real *zeros = cx_scratch(CX_DW_SLOT_ACC, sizeof(real) * C);
        failed = !ptrs || !zeros;
        if (zeros)
            memset(zeros, 0, sizeof(real) * C);
#pragma omp for schedule(dynamic, 1)
        for (cx_int j = 0; j < taps; j++)
            for (cx_int c = 0; c < C; c++)
                for (cx_int f = 0; f < F; f++)
                    kt[(j * C + c) * F + f] = kernel[(list[j] * F + f) * C + c];
#pragma omp for schedule(dynamic, 1)
        for (cx_int phase = 0; phase < nphase; phase++) {
            const cx_int count = start[phase + 1] - start[phase];
            if (count)
                FN(cx_gemm_pack_b_blocked)(0, count * C, F, kt + start[phase] * C * F, F,
                                           FN(tc_block_taps)(count, C) * C, packed + offset[phase]);
        }
#pragma omp for schedule(dynamic, 2)
        for (cx_int r = 0; r < rows; r++)
            if (!failed)
                FN(tc_row)(s, x, meta, packed, bias, act, r / s->h, r % s->h, zeros, ptrs, y);
    }
    cx_scratch_trim();
    return failed ? CX_ERR_NOMEM : CX_OK;
}
