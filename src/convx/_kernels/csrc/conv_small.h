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

#include "convx_common.h"
#include "cpu_features.h"

/* y[r, :] = bias + sum_p a[r, p] * kernel[p, :] for `rows` patch rows, then
 * relu(y) when `relu` (`v < 0 ? 0 : v`, NaN kept, as the epilogue does). */
#define CX_SMALL_FORWARD(real, name, attr)                                                               \
    attr static void name(cx_int rows, cx_int patch, cx_int cout, const real *CX_RESTRICT a,               \
                          const real *CX_RESTRICT kernel, const real *CX_RESTRICT bias, int relu,          \
                          real *CX_RESTRICT y)                                                             \
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
            if (relu)                                                                                    \
                for (cx_int c = 0; c < cout; c++)                                                        \
                    yr[c] = yr[c] < (real)0 ? (real)0 : yr[c];                                           \
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
CX_SMALL_FORWARD(float, small_forward_loops_avx2_f32, CX_TARGET_AVX2)
CX_SMALL_FORWARD(double, small_forward_avx2_f64, CX_TARGET_AVX2)
CX_SMALL_WGRAD(float, small_wgrad_loops_avx2_f32, CX_TARGET_AVX2)
CX_SMALL_WGRAD(double, small_wgrad_avx2_f64, CX_TARGET_AVX2)

#ifdef CX_HAVE_X86
/* Rows [r, r + R) of y, channels [c0, c0 + 8 * J): R x J ymm accumulators,
 * each kernel vector loaded once per patch element for all R rows (3 x 4 keeps
 * 12 independent FMA chains in flight; one row alone waits on FMA latency). */
#define CX_SMALL_FORWARD_BLOCK(R, J)                                                                  \
    do {                                                                                             \
        __m256 acc[R][J];                                                                            \
        for (int i = 0; i < (R); i++)                                                                \
            for (int j = 0; j < (J); j++)                                                            \
                acc[i][j] = bias ? _mm256_loadu_ps(bias + c0 + 8 * j) : _mm256_setzero_ps();         \
        const float *kp = kernel + c0;                                                               \
        for (cx_int p = 0; p < patch; p++, kp += cout) {                                             \
            __m256 k[J];                                                                             \
            for (int j = 0; j < (J); j++)                                                            \
                k[j] = _mm256_loadu_ps(kp + 8 * j);                                                  \
            for (int i = 0; i < (R); i++) {                                                          \
                const __m256 av = _mm256_broadcast_ss(a + (r + i) * patch + p);                     \
                for (int j = 0; j < (J); j++)                                                        \
                    acc[i][j] = _mm256_fmadd_ps(av, k[j], acc[i][j]);                                \
            }                                                                                        \
        }                                                                                            \
        for (int i = 0; i < (R); i++)                                                                \
            for (int j = 0; j < (J); j++)                                                            \
                _mm256_storeu_ps(y + (r + i) * cout + c0 + 8 * j,                                    \
                                 relu ? _mm256_max_ps(zero, acc[i][j]) : acc[i][j]);                 \
    } while (0)

/* float32 with C_out a multiple of 8: the accumulators live in ymm registers
 * (the loop versions above go through memory for every patch element). */
CX_TARGET_AVX2
static void small_forward_avx2_f32(cx_int rows, cx_int patch, cx_int cout, const float *a, const float *kernel,
                                   const float *bias, int relu, float *y)
{
    /* max(0, v) returns its second operand for a NaN: relu keeps NaN */
    const __m256 zero = _mm256_setzero_ps();
    if (cout % 8) {
        small_forward_loops_avx2_f32(rows, patch, cout, a, kernel, bias, relu, y);
        return;
    }
    cx_int c0 = 0, r;
    for (; c0 + 32 <= cout; c0 += 32) {
        for (r = 0; r + 3 <= rows; r += 3)
            CX_SMALL_FORWARD_BLOCK(3, 4);
        for (; r < rows; r++)
            CX_SMALL_FORWARD_BLOCK(1, 4);
    }
    for (; c0 < cout; c0 += 8) {
        for (r = 0; r + 3 <= rows; r += 3)
            CX_SMALL_FORWARD_BLOCK(3, 1);
        for (; r < rows; r++)
            CX_SMALL_FORWARD_BLOCK(1, 1);
    }
}
#undef CX_SMALL_FORWARD_BLOCK

/* Rows [0, rows) into dk[p0 .. p0 + P, c0 .. c0 + 8 * J): P kernel rows by J
 * ymm columns held in registers for the whole pass. */
#define CX_SMALL_WGRAD_BLOCK(P, J)                                                                    \
    do {                                                                                             \
        __m256 acc[P][J];                                                                            \
        for (int i = 0; i < (P); i++)                                                                \
            for (int j = 0; j < (J); j++)                                                            \
                acc[i][j] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(dk + (p0 + i) * cout + c0 + 8 * j); \
        for (cx_int r = 0; r < rows; r++) {                                                          \
            __m256 d[J];                                                                             \
            for (int j = 0; j < (J); j++)                                                            \
                d[j] = _mm256_loadu_ps(dz + r * cout + c0 + 8 * j);                                  \
            for (int i = 0; i < (P); i++) {                                                          \
                const __m256 av = _mm256_broadcast_ss(a + r * patch + p0 + i);                      \
                for (int j = 0; j < (J); j++)                                                        \
                    acc[i][j] = _mm256_fmadd_ps(av, d[j], acc[i][j]);                                \
            }                                                                                        \
        }                                                                                            \
        for (int i = 0; i < (P); i++)                                                                \
            for (int j = 0; j < (J); j++)                                                            \
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
    cx_int c0 = 0;
    /* 3 x 4 blocks: 12 accumulators, each dz row loaded once per 3 kernel rows */
    for (; c0 + 32 <= cout; c0 += 32) {
        cx_int p0 = 0;
        for (; p0 + 3 <= patch; p0 += 3)
            CX_SMALL_WGRAD_BLOCK(3, 4);
        for (; p0 < patch; p0++)
            CX_SMALL_WGRAD_BLOCK(1, 4);
    }
    for (; c0 < cout; c0 += 16) {
        cx_int p0 = 0;
        for (; p0 + 4 <= patch; p0 += 4)
            CX_SMALL_WGRAD_BLOCK(4, 2);
        for (; p0 < patch; p0++)
            CX_SMALL_WGRAD_BLOCK(1, 2);
    }
}
#undef CX_SMALL_WGRAD_BLOCK

/* Winograd F(2x2, 3x3) transforms (conv_winograd.h) for float32, eight
 * channels per register; they return how many channels they did (a multiple
 * of 8), the portable loop does the rest. */
CX_TARGET_AVX2
static cx_int wino_input_avx2_f32(const float *const *d, cx_int cin, float *v, cx_int vstride)
{
    cx_int c = 0;
    for (; c + 8 <= cin; c += 8) {
        __m256 t[4][4];
        for (int b = 0; b < 4; b++) {
            const __m256 d0 = _mm256_loadu_ps(d[b] + c), d1 = _mm256_loadu_ps(d[4 + b] + c);
            const __m256 d2 = _mm256_loadu_ps(d[8 + b] + c), d3 = _mm256_loadu_ps(d[12 + b] + c);
            t[0][b] = _mm256_sub_ps(d0, d2);
            t[1][b] = _mm256_add_ps(d1, d2);
            t[2][b] = _mm256_sub_ps(d2, d1);
            t[3][b] = _mm256_sub_ps(d1, d3);
        }
        for (int a = 0; a < 4; a++) {
            float *o = v + 4 * a * vstride + c;
            _mm256_storeu_ps(o, _mm256_sub_ps(t[a][0], t[a][2]));
            _mm256_storeu_ps(o + vstride, _mm256_add_ps(t[a][1], t[a][2]));
            _mm256_storeu_ps(o + 2 * vstride, _mm256_sub_ps(t[a][2], t[a][1]));
            _mm256_storeu_ps(o + 3 * vstride, _mm256_sub_ps(t[a][1], t[a][3]));
        }
    }
    return c;
}

CX_TARGET_AVX2
static cx_int wino_output_avx2_f32(const float *m, cx_int mstride, cx_int cout, float *out)
{
    cx_int c = 0;
    for (; c + 8 <= cout; c += 8) {
        __m256 s[4][2];
        for (int a = 0; a < 4; a++) {
            const float *r = m + 4 * a * mstride + c;
            const __m256 r0 = _mm256_loadu_ps(r), r1 = _mm256_loadu_ps(r + mstride);
            const __m256 r2 = _mm256_loadu_ps(r + 2 * mstride), r3 = _mm256_loadu_ps(r + 3 * mstride);
            s[a][0] = _mm256_add_ps(_mm256_add_ps(r0, r1), r2);
            s[a][1] = _mm256_sub_ps(_mm256_sub_ps(r1, r2), r3);
        }
        for (int j = 0; j < 2; j++) {
            _mm256_storeu_ps(out + j * cout + c, _mm256_add_ps(_mm256_add_ps(s[0][j], s[1][j]), s[2][j]));
            _mm256_storeu_ps(out + (2 + j) * cout + c, _mm256_sub_ps(_mm256_sub_ps(s[1][j], s[2][j]), s[3][j]));
        }
    }
    return c;
}
#else
#define small_forward_avx2_f32 small_forward_loops_avx2_f32
#define small_wgrad_avx2_f32 small_wgrad_loops_avx2_f32
#endif

#endif
