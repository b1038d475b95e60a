/* Winograd F(2x2, 3x3) forward for 3x3, stride-1, undilated convolutions with
 * at least CX_WINO_MIN_CHANNELS input and output channels; included by
 * conv_tiles_impl.h (per dtype).
 *
 * Each 2x2 block of outputs ("tile") comes from the 4x4 input patch under it:
 * V = B^T d B per input channel, M = sum over input channels of V (.) U, where
 * U = G g G^T is the transformed kernel, and y = A^T M A. The sum over
 * channels is, for each of the 16 positions xi of the transform, a product
 * (tiles x C_in) @ (C_in x C_out): 16 multiply-adds per tile and channel pair
 * instead of the direct convolution's 36. Tiles go in blocks of CX_WINO_TILES
 * (transforms and products stay in L2), each product through the indirect
 * GEMM reading V's rows in place. A tile's result never depends on its block,
 * so any thread count gives the same bits; rounding differs from the direct
 * product by a few ulps (the transforms add and halve values).
 */

/* B^T d B for one tile: d[4 * a + b] points at the C_in values of patch row a,
 * column b (or zeros); v[xi * vstride + c] receives position xi, channel c. */
static void FN(wino_input_tile)(const real *const *d, cx_int cin, real *CX_RESTRICT v, cx_int vstride)
{
    cx_int c = 0;
#ifdef CX_WINO_INPUT_AVX2
    if (cx_isa_avx2_class())
        c = CX_WINO_INPUT_AVX2(d, cin, v, vstride);
#endif
    for (; c < cin; c++) {
        real t[4][4];
        for (int b = 0; b < 4; b++) {
            t[0][b] = d[b][c] - d[8 + b][c];
            t[1][b] = d[4 + b][c] + d[8 + b][c];
            t[2][b] = d[8 + b][c] - d[4 + b][c];
            t[3][b] = d[4 + b][c] - d[12 + b][c];
        }
        for (int a = 0; a < 4; a++) {
            v[(4 * a + 0) * vstride + c] = t[a][0] - t[a][2];
            v[(4 * a + 1) * vstride + c] = t[a][1] + t[a][2];
            v[(4 * a + 2) * vstride + c] = t[a][2] - t[a][1];
            v[(4 * a + 3) * vstride + c] = t[a][1] - t[a][3];
        }
    }
}

/* A^T M A for one tile: m[xi * mstride + c] holds position xi, channel c;
 * out receives the 2x2 outputs as rows (y0x0, y0x1, y1x0, y1x1) of C_out. */
static void FN(wino_output_tile)(const real *CX_RESTRICT m, cx_int mstride, cx_int cout, real *CX_RESTRICT out)
{
    cx_int c = 0;
#ifdef CX_WINO_OUTPUT_AVX2
    if (cx_isa_avx2_class())
        c = CX_WINO_OUTPUT_AVX2(m, mstride, cout, out);
#endif
    for (; c < cout; c++) {
        real s[4][2];
        for (int a = 0; a < 4; a++) {
            const real *r = m + 4 * a * mstride + c;
            s[a][0] = r[0] + r[mstride] + r[2 * mstride];
            s[a][1] = r[mstride] - r[2 * mstride] - r[3 * mstride];
        }
        for (int j = 0; j < 2; j++) {
            out[j * cout + c] = s[0][j] + s[1][j] + s[2][j];
            out[(2 + j) * cout + c] = s[1][j] - s[2][j] - s[3][j];
        }
    }
}

/* U[xi] = (G g G^T)[xi] for every (C_in, C_out) pair, each packed as the
 * indirect GEMM's B (one block of depth C_in), by the calling team (every
 * thread of it must get here; all have the whole of upack on return). */
static void FN(team_wino_kernel)(const cx_conv_shape *s, const real *kernel, real *u, real *upack)
{
    const cx_int cin = s->cin, cout = s->cout, plane = cin * cout;
#pragma omp for schedule(dynamic, CX_WINO_KERNEL_CHUNK)
    for (cx_int i = 0; i < plane; i++) {
        real g[3][3], t[4][3];
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++)
                g[ky][kx] = kernel[(ky * 3 + kx) * plane + i];
        for (int kx = 0; kx < 3; kx++) {
            t[0][kx] = g[0][kx];
            t[1][kx] = (g[0][kx] + g[1][kx] + g[2][kx]) * (real)0.5;
            t[2][kx] = (g[0][kx] - g[1][kx] + g[2][kx]) * (real)0.5;
            t[3][kx] = g[2][kx];
        }
        for (int a = 0; a < 4; a++) {
            u[(4 * a + 0) * plane + i] = t[a][0];
            u[(4 * a + 1) * plane + i] = (t[a][0] + t[a][1] + t[a][2]) * (real)0.5;
            u[(4 * a + 2) * plane + i] = (t[a][0] - t[a][1] + t[a][2]) * (real)0.5;
            u[(4 * a + 3) * plane + i] = t[a][2];
        }
    }
    const cx_int packed = FN(cx_gemm_packed_b_size)(cin, cout);
#pragma omp for schedule(dynamic, 1)
    for (int xi = 0; xi < 16; xi++)
        FN(cx_gemm_pack_b_blocked)(0, cin, cout, u + xi * plane, cout, cin, upack + xi * packed);
}

/* Winograd pays for a 3x3, stride-1, undilated kernel with enough channels,
 * when the call has enough tiles to amortise the kernel's transform (16 C_in x
 * C_out matrices per call) and the tiles are mostly inside the (gh x gw)
 * outputs wanted (a 3x3 output needs 2x2 tiles, 16 outputs for 9). */
static int FN(winograd_applies)(const cx_conv_shape *s, cx_int gh, cx_int gw)
{
    const cx_int tiles_h = (gh + 1) / 2, tiles_w = (gw + 1) / 2;
    return s->kh == 3 && s->kw == 3 && s->sh == 1 && s->sw == 1 && s->dh == 1 && s->dw == 1 &&
           s->cin >= CX_WINO_MIN_CHANNELS && s->cout >= CX_WINO_MIN_CHANNELS &&
           s->n * tiles_h * tiles_w >= CX_WINO_MIN_TILES && 4 * gh * gw >= 3 * 4 * tiles_h * tiles_w;
}

/* pooled[c] = the first maximum of the tile's 4 outputs (scan order; a NaN
 * wins over a number), i.e. a 2x2 max pooling of the tile; codes (unless
 * NULL) receive its position in the tile. */
static void FN(wino_pool_tile)(const real *CX_RESTRICT out, cx_int cout, real *CX_RESTRICT pooled,
                               uint8_t *CX_RESTRICT codes)
{
    memcpy(pooled, out, sizeof(real) * cout);
    if (codes) {
        memset(codes, 0, (size_t)cout);
        for (int q = 1; q < 4; q++)
            for (cx_int c = 0; c < cout; c++) {
                const real v = out[q * cout + c], best = pooled[c];
                const int take = (v > best) | ((v != v) & (best == best));
                pooled[c] = take ? v : best;
                codes[c] = take ? (uint8_t)q : codes[c];
            }
        return;
    }
    for (int q = 1; q < 4; q++) /* channel loops of branch-free selects: they vectorise */
        for (cx_int c = 0; c < cout; c++) {
            const real v = out[q * cout + c], best = pooled[c];
            const int take = (v > best) | ((v != v) & (best == best));
            pooled[c] = take ? v : best;
        }
}

/* The outputs of rows < gh and columns < gw of every image (the others are
 * set to 0), bias and activation included; or, when `pooled` is not NULL,
 * their 2x2 max pooling (gh, gw even) into pooled instead of y, with the
 * maxima's positions into codes unless NULL. 0, or -1 without memory. */
static int FN(winograd_forward)(const cx_conv_shape *s, const real *x, const real *kernel, const real *bias,
                                int act, real *y, cx_int gh, cx_int gw, real *pooled, uint8_t *codes,
                                int n_threads)
{
    const cx_int cin = s->cin, cout = s->cout, th = (gh + 1) / 2, tw = (gw + 1) / 2, tb = CX_WINO_TILES;
    const cx_int tiles = s->n * th * tw, blocks = (tiles + tb - 1) / tb;
    const cx_int packed = FN(cx_gemm_packed_b_size)(cin, cout);
    real *u = cx_scratch(CX_SLOT_KT, sizeof(real) * 16 * cin * cout);
    real *upack = cx_scratch(CX_SLOT_KERNEL, sizeof(real) * 16 * packed);
    if (!u || !upack)
        return CX_ERR_NOMEM;
    int nt = FN(team_for)(tiles * 16 * cin * cout, blocks, n_threads), failed = 0;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : failed)
    {
        FN(team_wino_kernel)(s, kernel, u, upack);
        if (!pooled && (gh < s->oh || gw < s->ow))
            FN(team_zero_outside)(s, gh, gw, y);
        real *v = cx_scratch(CX_SLOT_TILE, sizeof(real) * 16 * tb * cin);
        real *m = cx_scratch(CX_SLOT_OUT, sizeof(real) * (16 + 4) * tb * cout);
        const real **rows = cx_scratch(CX_SLOT_PTRS, sizeof(real *) * tb);
        real *zeros = cx_scratch(CX_SLOT_ZEROS, sizeof(real) * cin);
        failed = !v || !m || !rows || !zeros;
        if (zeros)
            memset(zeros, 0, sizeof(real) * cin);
#pragma omp for schedule(dynamic, 1)
        for (cx_int blk = 0; blk < blocks; blk++) {
            const cx_int t0 = blk * tb, count = CX_MIN(tb, tiles - t0);
            real *out = m + 16 * tb * cout;
            if (failed)
                continue;
            for (cx_int t = 0; t < count; t++) {
                const cx_int tile = t0 + t, img = tile / (th * tw), ty = (tile % (th * tw)) / tw, tx = tile % tw;
                const real *d[16];
                for (int a = 0; a < 4; a++)
                    for (int b = 0; b < 4; b++) {
                        const cx_int iy = 2 * ty - s->pad_top + a, ix = 2 * tx - s->pad_left + b;
                        d[4 * a + b] = (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w)
                                           ? x + ((img * s->h + iy) * s->w + ix) * cin : zeros;
                    }
                FN(wino_input_tile)(d, cin, v + t * cin, tb * cin);
            }
            for (int xi = 0; xi < 16; xi++) {
                /* the rows of V_xi in place: one "tap" of C_in values per tile,
                 * the last repeated up to a whole micro-kernel panel */
                for (cx_int t = 0; t < tb; t++)
                    rows[t] = v + (xi * tb + CX_MIN(t, count - 1)) * cin;
                FN(cx_gemm_indirect)(count, cout, 1, cin, rows, upack + xi * packed, 1, m + xi * tb * cout, cout);
            }
            for (cx_int t = 0; t < count; t++)
                FN(wino_output_tile)(m + t * cout, tb * cout, cout, out + 4 * t * cout);
            FN(cx_bias_act)(out, 4 * count, cout, bias, act, 1);
            if (pooled) {
                for (cx_int t = 0; t < count; t++)
                    FN(wino_pool_tile)(out + 4 * t * cout, cout, pooled + (t0 + t) * cout,
                                       codes ? codes + (t0 + t) * cout : NULL);
                continue;
            }
            for (cx_int t = 0; t < count; t++) {
                const cx_int tile = t0 + t, img = tile / (th * tw), ty = (tile % (th * tw)) / tw, tx = tile % tw;
                for (int q = 0; q < 4; q++) {
                    const cx_int oy = 2 * ty + q / 2, ox = 2 * tx + q % 2;
                    if (oy < gh && ox < gw)
                        memcpy(y + ((img * s->oh + oy) * s->ow + ox) * cout, out + (4 * t + q) * cout,
                               sizeof(real) * cout);
                }
            }
        }
    }
    return failed ? CX_ERR_NOMEM : CX_OK;
}
