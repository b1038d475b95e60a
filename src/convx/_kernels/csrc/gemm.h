/* One packed GEMM for every matrix product in convx (conv, dense, backward).
 *
 * Row-major C = op(A) @ op(B) + beta * C, with op(A) m x k and op(B) k x n;
 * `trans_a` / `trans_b` select the transposed operand. GotoBLAS/BLIS structure:
 * cache-blocked loops, A and B packed into micro-panels, a register-blocked
 * micro-kernel chosen at run time (cpu_features.h). Every element of C is
 * accumulated in the same order whatever `n_threads` is, so results are
 * bit-identical for any thread count. When beta == 0, C is not read.
 * cx_gemm returns CX_OK, or CX_ERR_NOMEM (C then unspecified) when its
 * packing buffers cannot be allocated.
 */
#ifndef CONVX_GEMM_H
#define CONVX_GEMM_H

#include "convx_common.h"

cx_status cx_gemm_f32(int trans_a, int trans_b, cx_int m, cx_int n, cx_int k,
                      const float *a, cx_int lda, const float *b, cx_int ldb,
                      float beta, float *c, cx_int ldc, int n_threads);
cx_status cx_gemm_f64(int trans_a, int trans_b, cx_int m, cx_int n, cx_int k,
                      const double *a, cx_int lda, const double *b, cx_int ldb,
                      double beta, double *c, cx_int ldc, int n_threads);

/* Serial building blocks for callers that run their own parallel loop (conv):
 * B is packed once with cx_gemm_pack_b into cx_gemm_packed_b_size(k, n)
 * elements (64-byte aligned), then any number of row blocks of C = op(A) @ B
 * + beta * C are computed by cx_gemm_prepacked, each with its own `apack`
 * scratch of cx_gemm_apack_size() elements. Every element is accumulated
 * exactly as cx_gemm does it, so the two give identical bits. cx_gemm_mr is the
 * micro-kernel's row count (tiles that are multiples of it waste no work).
 *
 * cx_gemm_pack_b_panels packs only the NR-column panels [jp0, jp1) of every
 * K block (of cx_gemm_b_panels(n)), so that a team can share the packing.
 *
 * Indirect GEMM (convolution without im2col, Dukhan 2019): C (m x n) = A @ B
 * where row i of A is the concatenation over taps t of the `cin` values at
 * ptrs[(i / MR) * taps * MR + t * MR + i % MR]; rows past m in the last group
 * of MR must hold any readable pointers. B (taps * cin x n) is packed by
 * cx_gemm_pack_b_blocked with kc_block = block_taps * cin.
 *
 * cx_gemm_indirect_unpacked is the same product with B read in place (row
 * major, ldb), for calls with few rows: when cx_gemm_unpacked_applies(m) says
 * so, it gives the packed route's bits without packing B. */
#define CX_GEMM_PREPACKED_DECL(real, sfx)                                                              \
    int cx_gemm_mr_##sfx(void);                                                                        \
    cx_int cx_gemm_packed_b_size_##sfx(cx_int k, cx_int n);                                            \
    cx_int cx_gemm_apack_size_##sfx(void);                                                             \
    void cx_gemm_pack_b_##sfx(int trans_b, cx_int k, cx_int n, const real *b, cx_int ldb, real *packed); \
    void cx_gemm_prepacked_##sfx(int trans_a, cx_int m, cx_int n, cx_int k, const real *a, cx_int lda,  \
                                 const real *packed_b, real beta, real *c, cx_int ldc, real *apack);   \
    void cx_gemm_pack_b_blocked_##sfx(int trans_b, cx_int k, cx_int n, const real *b, cx_int ldb,       \
                                      cx_int kc_block, real *packed);                                  \
    cx_int cx_gemm_b_panels_##sfx(cx_int n);                                                           \
    void cx_gemm_pack_b_panels_##sfx(int trans_b, cx_int k, cx_int n, const real *b, cx_int ldb,        \
                                     cx_int kc_block, cx_int jp0, cx_int jp1, real *packed);           \
    void cx_gemm_indirect_##sfx(cx_int m, cx_int n, cx_int taps, cx_int cin, const real *const *ptrs,  \
                                const real *packed_b, cx_int block_taps, real *c, cx_int ldc);         \
    int cx_gemm_unpacked_applies_##sfx(cx_int m);                                                      \
    void cx_gemm_indirect_unpacked_##sfx(cx_int m, cx_int n, cx_int taps, cx_int cin,                  \
                                         const real *const *ptrs, const real *b, cx_int ldb,           \
                                         cx_int block_taps, real *c, cx_int ldc);
/* dtype-generic name for the Cython wrapper (convx_common.h) */
#define cx_gemm(dtype, ...) CX_BY_DTYPE(dtype, cx_gemm, __VA_ARGS__)

CX_GEMM_PREPACKED_DECL(float, f32)
CX_GEMM_PREPACKED_DECL(double, f64)
#undef CX_GEMM_PREPACKED_DECL

#endif
