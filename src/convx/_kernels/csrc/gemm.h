/* One packed GEMM for every matrix product in convx (conv, dense, backward).
 *
 * Row-major C = op(A) @ op(B) + beta * C, with op(A) m x k and op(B) k x n;
 * `trans_a` / `trans_b` select the transposed operand. GotoBLAS/BLIS structure:
 * cache-blocked loops, A and B packed into micro-panels, a register-blocked
 * micro-kernel chosen at run time (cpu_features.h). Every element of C is
 * accumulated in the same order whatever `n_threads` is, so results are
 * bit-identical for any thread count. When beta == 0, C is not read.
 */
#ifndef CONVX_GEMM_H
#define CONVX_GEMM_H

#include "convx_common.h"

void cx_gemm_f32(int trans_a, int trans_b, cx_int m, cx_int n, cx_int k,
                 const float *a, cx_int lda, const float *b, cx_int ldb,
                 float beta, float *c, cx_int ldc, int n_threads);
void cx_gemm_f64(int trans_a, int trans_b, cx_int m, cx_int n, cx_int k,
                 const double *a, cx_int lda, const double *b, cx_int ldb,
                 double beta, double *c, cx_int ldc, int n_threads);

#endif
