/* GEMM driver, instantiated per dtype by gemm.c (see gemm.h for the contract).
 * Expects `real`, `FN(name)` and FN(select_ukernel) to be defined.
 */

/* Pack rows [i0, i0 + mc) x columns [p0, p0 + kc) of op(A) into MR-row panels,
 * zero-padding the last panel. */
static void FN(pack_a)(const FN(ukernel_t) *uk, int trans_a, const real *a, cx_int lda,
                       cx_int i0, cx_int mc, cx_int p0, cx_int kc, real *buf)
{
    const int MR = uk->mr;
    for (cx_int ir = 0; ir < mc; ir += MR, buf += MR * kc) {
        const int rows = (int)CX_MIN(MR, mc - ir);
        if (trans_a) {
            /* op(A) rows are columns of `a`: each k step reads `rows` contiguous values. */
            const real *src = a + p0 * lda + i0 + ir;
            if (rows == 6 && MR == 6) {
                for (cx_int p = 0; p < kc; p++)
                    memcpy(buf + p * 6, src + p * lda, 6 * sizeof(real));
                continue;
            }
            for (cx_int p = 0; p < kc; p++) {
                int r = 0;
                for (; r < rows; r++)
                    buf[p * MR + r] = src[p * lda + r];
                for (; r < MR; r++)
                    buf[p * MR + r] = 0;
            }
            continue;
        }
        if (rows == 6 && MR == 6) {
            /* The AVX2 panel: six row streams interleaved, contiguous writes. */
            const real *s0 = a + (i0 + ir) * lda + p0, *s1 = s0 + lda, *s2 = s1 + lda;
            const real *s3 = s2 + lda, *s4 = s3 + lda, *s5 = s4 + lda;
            for (cx_int p = 0; p < kc; p++) {
                real *dst = buf + p * 6;
                dst[0] = s0[p];
                dst[1] = s1[p];
                dst[2] = s2[p];
                dst[3] = s3[p];
                dst[4] = s4[p];
                dst[5] = s5[p];
            }
            continue;
        }
        for (int r = 0; r < MR; r++) {
            real *dst = buf + r;
            if (r >= rows) {
                for (cx_int p = 0; p < kc; p++)
                    dst[p * MR] = 0;
            } else {
                const real *src = a + (i0 + ir + r) * lda + p0;
                for (cx_int p = 0; p < kc; p++)
                    dst[p * MR] = src[p];
            }
        }
    }
}

/* Pack one NR-column panel (columns [j0, j0 + nr)) of rows [p0, p0 + kc) of op(B). */
static void FN(pack_b_panel)(const FN(ukernel_t) *uk, int trans_b, const real *b, cx_int ldb,
                             cx_int p0, cx_int kc, cx_int j0, int cols, real *buf)
{
    const int NR = uk->nr;
    if (trans_b) {
        /* op(B) columns are rows of `b`: read each along k, write with stride NR
         * (the panel stays in L1) instead of NR strided loads per k step */
        for (int j = 0; j < cols; j++) {
            const real *src = b + (j0 + j) * ldb + p0;
            for (cx_int p = 0; p < kc; p++)
                buf[p * NR + j] = src[p];
        }
        for (int j = cols; j < NR; j++)
            for (cx_int p = 0; p < kc; p++)
                buf[p * NR + j] = 0;
        return;
    }
    for (cx_int p = 0; p < kc; p++, buf += NR) {
        const real *src = b + (p0 + p) * ldb + j0;
        int j = 0;
        for (; j < cols; j++)
            buf[j] = src[j];
        for (; j < NR; j++)
            buf[j] = 0;
    }
}

/* Multiply a packed A block (mc x kc) by packed B panels [jp0, jp1) into C. */
static void FN(macro_kernel)(const FN(ukernel_t) *uk, cx_int mc, cx_int nc, cx_int kc,
                             const real *apack, const real *bpack, cx_int jp0, cx_int jp1,
                             real *c, cx_int ldc, real beta)
{
    const int MR = uk->mr, NR = uk->nr;
    for (cx_int jp = jp0; jp < jp1; jp++) {
        const cx_int j = jp * NR;
        const int cols = (int)CX_MIN(NR, nc - j);
        for (cx_int ir = 0; ir < mc; ir += MR) {
            const int rows = (int)CX_MIN(MR, mc - ir);
            uk->run(kc, apack + ir * kc, bpack + jp * NR * kc, c + ir * ldc + j, ldc, rows, cols, beta);
        }
    }
}

static void FN(scale_c)(cx_int m, cx_int n, real beta, real *c, cx_int ldc)
{
    for (cx_int i = 0; i < m; i++)
        for (cx_int j = 0; j < n; j++)
            c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
}

/* ----- serial GEMM on a B packed once (see gemm.h) ----- */

int FN(cx_gemm_mr)(void) { return FN(select_ukernel)()->mr; }

cx_int FN(cx_gemm_packed_b_size)(cx_int k, cx_int n)
{
    const int NR = FN(select_ukernel)()->nr;
    return CX_MAX(k, 1) * ((n + NR - 1) / NR) * NR;
}

cx_int FN(cx_gemm_apack_size)(void)
{
    return (CX_MC_TARGET + FN(select_ukernel)()->mr) * CX_GEMM_KC;
}

cx_int FN(cx_gemm_b_panels)(cx_int n)
{
    const int NR = FN(select_ukernel)()->nr;
    return (n + NR - 1) / NR;
}

void FN(cx_gemm_pack_b_panels)(int trans_b, cx_int k, cx_int n, const real *b, cx_int ldb, cx_int kc_block,
                               cx_int jp0, cx_int jp1, real *packed)
{
    const FN(ukernel_t) *uk = FN(select_ukernel)();
    const int NR = uk->nr;
    const cx_int npanels = (n + NR - 1) / NR;
    for (cx_int pc = 0; pc < k; pc += kc_block) {
        const cx_int kc = CX_MIN(kc_block, k - pc);
        real *block = packed + pc * npanels * NR;
        for (cx_int jp = jp0; jp < CX_MIN(jp1, npanels); jp++)
            FN(pack_b_panel)(uk, trans_b, b, ldb, pc, kc, jp * NR, (int)CX_MIN(NR, n - jp * NR),
                             block + jp * NR * kc);
    }
}

void FN(cx_gemm_pack_b_blocked)(int trans_b, cx_int k, cx_int n, const real *b, cx_int ldb, cx_int kc_block,
                                real *packed)
{
    FN(cx_gemm_pack_b_panels)(trans_b, k, n, b, ldb, kc_block, 0, FN(cx_gemm_b_panels)(n), packed);
}

void FN(cx_gemm_pack_b)(int trans_b, cx_int k, cx_int n, const real *b, cx_int ldb, real *packed)
{
    FN(cx_gemm_pack_b_blocked)(trans_b, k, n, b, ldb, CX_GEMM_KC, packed);
}

void FN(cx_gemm_indirect)(cx_int m, cx_int n, cx_int taps, cx_int cin, const real *const *ptrs,
                          const real *packed_b, cx_int block_taps, real *c, cx_int ldc)
{
    const FN(ukernel_t) *uk = FN(select_ukernel)();
    const int MR = uk->mr, NR = uk->nr;
    const cx_int npanels = (n + NR - 1) / NR;
    for (cx_int t0 = 0; t0 < taps; t0 += block_taps) {
        const cx_int bt = CX_MIN(block_taps, taps - t0), kc = bt * cin;
        const real *block = packed_b + t0 * cin * npanels * NR;
        const real beta = t0 == 0 ? 0 : (real)1;
        for (cx_int jp = 0; jp < npanels; jp++) {
            const int cols = (int)CX_MIN(NR, n - jp * NR);
            for (cx_int ir = 0; ir < m; ir += MR)
                uk->run_indirect(bt, cin, ptrs + (ir / MR) * taps * MR + t0 * MR, block + jp * NR * kc,
                                 c + ir * ldc + jp * NR, ldc, (int)CX_MIN(MR, m - ir), cols, beta);
        }
    }
}

int FN(cx_gemm_unpacked_applies)(cx_int m)
{
    const FN(ukernel_t) *uk = FN(select_ukernel)();
    return uk->run_unpacked != NULL && m <= CX_GEMM_UNPACKED_MAX_TILES * uk->mr;
}

void FN(cx_gemm_indirect_unpacked)(cx_int m, cx_int n, cx_int taps, cx_int cin, const real *const *ptrs,
                                   const real *b, cx_int ldb, cx_int block_taps, real *c, cx_int ldc)
{
    const FN(ukernel_t) *uk = FN(select_ukernel)();
    const int MR = uk->mr, NR = uk->nr;
    for (cx_int t0 = 0; t0 < taps; t0 += block_taps) {
        const cx_int bt = CX_MIN(block_taps, taps - t0);
        const real beta = t0 == 0 ? 0 : (real)1;
        for (cx_int j = 0; j < n; j += NR)
            for (cx_int ir = 0; ir < m; ir += MR)
                uk->run_unpacked(bt, cin, ptrs + (ir / MR) * taps * MR + t0 * MR, b + t0 * cin * ldb + j, ldb,
                                 c + ir * ldc + j, ldc, (int)CX_MIN(MR, m - ir), (int)CX_MIN(NR, n - j), beta);
    }
}

/* C = A @ B + beta * C for a few rows of A (row major), B read in place: row
 * pointers for the indirect kernels, K in the blocks of cx_gemm (its bits). */
static void FN(gemm_few_rows)(const FN(ukernel_t) *uk, cx_int m, cx_int n, cx_int k, const real *a, cx_int lda,
                              const real *b, cx_int ldb, real beta, real *c, cx_int ldc)
{
    const int MR = uk->mr, NR = uk->nr;
    const real *rows[32];
    for (cx_int pc = 0; pc < k; pc += CX_GEMM_KC) {
        const cx_int kc = CX_MIN(CX_GEMM_KC, k - pc);
        const real beta_block = pc == 0 ? beta : (real)1;
        for (cx_int ir = 0; ir < m; ir += MR) {
            for (int i = 0; i < MR; i++)
                rows[i] = a + (ir + CX_MIN(i, m - 1 - ir)) * lda + pc;
            for (cx_int j = 0; j < n; j += NR)
                uk->run_unpacked(1, kc, rows, b + pc * ldb + j, ldb, c + ir * ldc + j, ldc,
                                 (int)CX_MIN(MR, m - ir), (int)CX_MIN(NR, n - j), beta_block);
        }
    }
}

void FN(cx_gemm_prepacked)(int trans_a, cx_int m, cx_int n, cx_int k, const real *a, cx_int lda,
                           const real *packed_b, real beta, real *c, cx_int ldc, real *apack)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) {
        FN(scale_c)(m, n, beta, c, ldc);
        return;
    }
    const FN(ukernel_t) *uk = FN(select_ukernel)();
    const int MR = uk->mr, NR = uk->nr;
    const cx_int MC = MR * (cx_int)(CX_MC_TARGET / MR), npanels = (n + NR - 1) / NR;
    for (cx_int pc = 0; pc < k; pc += CX_GEMM_KC) {
        const cx_int kc = CX_MIN(CX_GEMM_KC, k - pc);
        const real beta_block = pc == 0 ? beta : (real)1;
        for (cx_int ic = 0; ic < m; ic += MC) {
            const cx_int mc = CX_MIN(MC, m - ic);
            FN(pack_a)(uk, trans_a, a, lda, ic, mc, pc, kc, apack);
            FN(macro_kernel)(uk, mc, n, kc, apack, packed_b + pc * npanels * NR, 0, npanels, c + ic * ldc, ldc,
                             beta_block);
        }
    }
}

cx_status FN(cx_gemm)(int trans_a, int trans_b, cx_int m, cx_int n, cx_int k,
                      const real *a, cx_int lda, const real *b, cx_int ldb,
                      real beta, real *c, cx_int ldc, int n_threads)
{
    if (m <= 0 || n <= 0)
        return CX_OK;
    if (k <= 0) {
        FN(scale_c)(m, n, beta, c, ldc);
        return CX_OK;
    }
    const FN(ukernel_t) *uk = FN(select_ukernel)();
    const int MR = uk->mr, NR = uk->nr;
    const cx_int MC = MR * (cx_int)(CX_MC_TARGET / MR);
    const cx_int NC = NR * (cx_int)(CX_NC_TARGET / NR);
    const cx_int nc_max = CX_MIN(NC, ((n + NR - 1) / NR) * NR);
    const cx_int kc_max = CX_MIN(CX_GEMM_KC, k);

    /* Threads only when the product is big enough to repay the fork/join and a
     * barrier per K block (CX_GEMM_PARALLEL_MIN, cx_tuning.h). */
    int nt = (double)m * n * k < CX_GEMM_PARALLEL_MIN ? 1 : CX_MAX(n_threads, 1), failed = 0;
    if (nt == 1 && !trans_a && !trans_b && FN(cx_gemm_unpacked_applies)(m) && MR <= 32) {
        FN(gemm_few_rows)(uk, m, n, k, a, lda, b, ldb, beta, c, ldc);
        return CX_OK;
    }
    real *bpack = cx_scratch(CX_SLOT_GEMM_B, sizeof(real) * kc_max * nc_max);
    if (!bpack)
        return CX_ERR_NOMEM;

#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : failed)
    {
        real *apack = cx_scratch(CX_SLOT_GEMM_A, sizeof(real) * CX_MC_TARGET * kc_max + sizeof(real) * MR * kc_max);
        const int tid = convx_thread_id(), team = convx_team_size();
        /* every thread runs every loop and barrier below (work-sharing loops must be met by the whole
         * team); one without its A block skips the packing and multiplying only */
        failed = apack == NULL;
        for (cx_int jc = 0; jc < n; jc += NC) {
            const cx_int nc = CX_MIN(NC, n - jc);
            const cx_int npanels = (nc + NR - 1) / NR;
            for (cx_int pc = 0; pc < k; pc += CX_GEMM_KC) {
                const cx_int kc = CX_MIN(CX_GEMM_KC, k - pc);
                const real beta_block = pc == 0 ? beta : (real)1;
#pragma omp for schedule(dynamic, 1)
                for (cx_int jp = 0; jp < npanels; jp++)
                    FN(pack_b_panel)(uk, trans_b, b, ldb, pc, kc, jc + jp * NR,
                                     (int)CX_MIN(NR, nc - jp * NR), bpack + jp * NR * kc);
                const cx_int mblocks = (m + MC - 1) / MC;
                if (mblocks >= team) {
                    /* Enough rows: row blocks of whole micro-panels, equal to within a panel, at most MC rows
                     * and at least two per thread (a multiple of the team), each packed and multiplied by the
                     * thread that takes it: taken dynamically, so that a thread the machine slows down does
                     * fewer instead of the others waiting for its share. */
                    const cx_int panels = (m + MR - 1) / MR;
                    const cx_int blocks = CX_MIN(panels, (CX_MAX(mblocks, 2 * team) + team - 1) / team * team);
#pragma omp for schedule(dynamic, 1)
                    for (cx_int blk = 0; blk < blocks; blk++) {
                        const cx_int ic = panels * blk / blocks * MR;
                        const cx_int mc = CX_MIN(m, panels * (blk + 1) / blocks * MR) - ic;
                        if (failed)
                            continue;
                        FN(pack_a)(uk, trans_a, a, lda, ic, mc, pc, kc, apack);
                        FN(macro_kernel)(uk, mc, nc, kc, apack, bpack, 0, npanels,
                                         c + ic * ldc + jc, ldc, beta_block);
                    }
                } else {
                    /* Few rows: split the column panels, each thread packing A itself. */
                    const cx_int jp0 = npanels * tid / team, jp1 = npanels * (tid + 1) / team;
                    for (cx_int ic = 0; ic < m && jp0 < jp1 && !failed; ic += MC) {
                        const cx_int mc = CX_MIN(MC, m - ic);
                        FN(pack_a)(uk, trans_a, a, lda, ic, mc, pc, kc, apack);
                        FN(macro_kernel)(uk, mc, nc, kc, apack, bpack, jp0, jp1,
                                         c + ic * ldc + jc, ldc, beta_block);
                    }
#pragma omp barrier
                }
            }
        }
    }
    cx_scratch_trim();
    return failed ? CX_ERR_NOMEM : CX_OK;
}

