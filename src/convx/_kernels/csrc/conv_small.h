/* Convolutions with a small patch (KH * KW * C_in <= CX_SMALL_PATCH, e.g. a
 * first layer on grey or RGB images), instantiated per dtype by conv.c.
 *
 * With so few multiply-adds per output, packing the patches into GEMM panels
 * costs more than the product itself: instead each output row (forward) or
 * kernel row (weight gradient) is updated in place with rank-1 steps over its
 * C_out channels, a loop the compiler vectorises. It is compiled twice, for
 * the baseline ISA and with AVX2 + FMA, and the variant follows the GEMM's
 * run-time choice (cpu_features.h). Each output is summed in a fixed order
 * (patch elements, or the rows of a fixed group), independent of threads.
 */
#ifndef CONVX_CONV_SMALL_H
#define CONVX_CONV_SMALL_H

#include <string.h>

#include "cpu_features.h"
#include "gemm_ukernels.h"

#define CX_SMALL_PATCH 32

/* y[r, :] = bias + sum_p a[r, p] * kernel[p, :] for `rows` patch rows. */
#define CX_SMALL_FORWARD(real, name, attr)                                                               \
    attr static void name(cx_int rows, cx_int patch, cx_int cout, const real *CX_RESTRICT a,               \
                          const real *CX_RESTRICT kernel, const real *CX_RESTRICT bias, real *CX_RESTRICT y) \
    {                                                                                                    \
        for (cx_int r = 0; r < rows; r++) {                                                              \
            real *CX_RESTRICT yr = y + r * cout;                                                         \
            const real *ar = a + r * patch;                                                              \
            for (cx_int c = 0; c < cout; c++)                                                            \
                yr[c] = bias ? bias[c] : (real)0;                                                        \
            for (cx_int p = 0; p < patch; p++) {                                                         \
                const real av = ar[p];                                                                   \
                const real *CX_RESTRICT kp = kernel + p * cout;                                          \
                for (cx_int c = 0; c < cout; c++)                                                        \
                    yr[c] += av * kp[c];                                                                 \
            }                                                                                            \
        }                                                                                                \
    }

/* dk[p, :] (+)= sum_r a[r, p] * dz[r, :], rows in order; `first` starts from zero. */
#define CX_SMALL_WGRAD(real, name, attr)                                                                 \
    attr static void name(cx_int rows, cx_int patch, cx_int cout, const real *CX_RESTRICT a,               \
                          const real *CX_RESTRICT dz, int first, real *CX_RESTRICT dk)                     \
    {                                                                                                    \
        if (first)                                                                                       \
            memset(dk, 0, sizeof(real) * patch * cout);                                                  \
        for (cx_int r = 0; r < rows; r++) {                                                              \
            const real *CX_RESTRICT dzr = dz + r * cout;                                                 \
            for (cx_int p = 0; p < patch; p++) {                                                         \
                const real av = a[r * patch + p];                                                        \
                real *CX_RESTRICT dkp = dk + p * cout;                                                   \
                for (cx_int c = 0; c < cout; c++)                                                        \
                    dkp[c] += av * dzr[c];                                                               \
            }                                                                                            \
        }                                                                                                \
    }

CX_SMALL_FORWARD(float, small_forward_generic_f32, )
CX_SMALL_FORWARD(double, small_forward_generic_f64, )
CX_SMALL_WGRAD(float, small_wgrad_generic_f32, )
CX_SMALL_WGRAD(double, small_wgrad_generic_f64, )

/* Off x86 the "avx2" twins are plain copies that cx_isa_selected() never picks. */
#ifndef CX_HAVE_X86
#define CX_TARGET_AVX2
#endif
CX_SMALL_FORWARD(float, small_forward_loops_avx2_f32, CX_TARGET_AVX2)
CX_SMALL_FORWARD(double, small_forward_avx2_f64, CX_TARGET_AVX2)
CX_SMALL_WGRAD(float, small_wgrad_loops_avx2_f32, CX_TARGET_AVX2)
CX_SMALL_WGRAD(double, small_wgrad_avx2_f64, CX_TARGET_AVX2)

#ifdef CX_HAVE_X86
/* float32 with C_out a multiple of 8: the accumulators live in ymm registers
 * (the loop versions above go through memory for every patch element). */
CX_TARGET_AVX2
static void small_forward_avx2_f32(cx_int rows, cx_int patch, cx_int cout, const float *a, const float *kernel,
                                   const float *bias, float *y)
{
    if (cout % 8) {
        small_forward_loops_avx2_f32(rows, patch, cout, a, kernel, bias, y);
        return;
    }
    for (cx_int r = 0; r < rows; r++) {
        const float *ar = a + r * patch;
        float *yr = y + r * cout;
        cx_int c0 = 0;
        for (; c0 + 32 <= cout; c0 += 32) {
            __m256 y0 = bias ? _mm256_loadu_ps(bias + c0) : _mm256_setzero_ps();
            __m256 y1 = bias ? _mm256_loadu_ps(bias + c0 + 8) : _mm256_setzero_ps();
            __m256 y2 = bias ? _mm256_loadu_ps(bias + c0 + 16) : _mm256_setzero_ps();
            __m256 y3 = bias ? _mm256_loadu_ps(bias + c0 + 24) : _mm256_setzero_ps();
            const float *kp = kernel + c0;
            for (cx_int p = 0; p < patch; p++, kp += cout) {
                const __m256 av = _mm256_broadcast_ss(ar + p);
                y0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(kp), y0);
                y1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(kp + 8), y1);
                y2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(kp + 16), y2);
                y3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(kp + 24), y3);
            }
            _mm256_storeu_ps(yr + c0, y0);
            _mm256_storeu_ps(yr + c0 + 8, y1);
            _mm256_storeu_ps(yr + c0 + 16, y2);
            _mm256_storeu_ps(yr + c0 + 24, y3);
        }
        for (; c0 < cout; c0 += 8) {
            __m256 y0 = bias ? _mm256_loadu_ps(bias + c0) : _mm256_setzero_ps();
            const float *kp = kernel + c0;
            for (cx_int p = 0; p < patch; p++, kp += cout)
                y0 = _mm256_fmadd_ps(_mm256_broadcast_ss(ar + p), _mm256_loadu_ps(kp), y0);
            _mm256_storeu_ps(yr + c0, y0);
        }
    }
}

/* Rows [0, rows) into dk[p0 .. p0 + P, c0 .. c0 + 16): P kernel rows by two
 * ymm columns held in registers for the whole pass. */
#define CX_SMALL_WGRAD_BLOCK(P)                                                                       \
    do {                                                                                             \
        __m256 acc[P][2];                                                                            \
        for (int i = 0; i < (P); i++)                                                                \
            for (int j = 0; j < 2; j++)                                                              \
                acc[i][j] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(dk + (p0 + i) * cout + c0 + 8 * j); \
        for (cx_int r = 0; r < rows; r++) {                                                          \
            const __m256 d0 = _mm256_loadu_ps(dz + r * cout + c0), d1 = _mm256_loadu_ps(dz + r * cout + c0 + 8); \
            for (int i = 0; i < (P); i++) {                                                          \
                const __m256 av = _mm256_broadcast_ss(a + r * patch + p0 + i);                      \
                acc[i][0] = _mm256_fmadd_ps(av, d0, acc[i][0]);                                      \
                acc[i][1] = _mm256_fmadd_ps(av, d1, acc[i][1]);                                      \
            }                                                                                        \
        }                                                                                            \
        for (int i = 0; i < (P); i++)                                                                \
            for (int j = 0; j < 2; j++)                                                              \
                _mm256_storeu_ps(dk + (p0 + i) * cout + c0 + 8 * j, acc[i][j]);                      \
    } while (0)

CX_TARGET_AVX2
static void small_wgrad_avx2_f32(cx_int rows, cx_int patch, cx_int cout, const float *a, const float *dz, int first,
                                 float *dk)
{
    if (cout % 16) {
        small_wgrad_loops_avx2_f32(rows, patch, cout, a, dz, first, dk);
        return;
    }
    for (cx_int c0 = 0; c0 < cout; c0 += 16) {
        cx_int p0 = 0;
        for (; p0 + 4 <= patch; p0 += 4)
            CX_SMALL_WGRAD_BLOCK(4);
        for (; p0 < patch; p0++)
            CX_SMALL_WGRAD_BLOCK(1);
    }
}
#undef CX_SMALL_WGRAD_BLOCK
#else
#define small_forward_avx2_f32 small_forward_loops_avx2_f32
#define small_wgrad_avx2_f32 small_wgrad_loops_avx2_f32
#endif

#endif
