/* int8 GEMM micro-kernels: C[i, j] = sum_k A[i, k] B[k, j] exactly in int32, for MR rows of A
 * (u8, row stride lda, k padded to a multiple of 4) and one or two 16-column panels of packed B
 * (s8, [k/4][16][4]: the 4 consecutive k of a column are adjacent, as vpdpbusd reads them).
 * The caller pads A to whole MR-row tiles, so kernels never handle edge rows.
 */
#ifndef CONVX_QUANT_UKERNELS_H
#define CONVX_QUANT_UKERNELS_H

#include <string.h>

#include "quant.h"

#define Q8_PANEL 16
#define Q8_MR_MAX 8

typedef void (*q8_ukernel)(cx_int k4, const uint8_t *a, cx_int lda, const int8_t *b, cx_int bstride, int np,
                           int32_t *c, cx_int ldc, int wide);

static void q8_ukr_generic(cx_int k4, const uint8_t *a, cx_int lda, const int8_t *b, cx_int bstride, int np,
                           int32_t *c, cx_int ldc, int wide)
{
    (void)wide;
    for (int p = 0; p < np; p++) {
        const int8_t *bp = b + p * bstride;
        for (int i = 0; i < Q8_MR_MAX; i++) {
            int32_t acc[Q8_PANEL] = {0};
            const uint8_t *ai = a + i * lda;
            for (cx_int q = 0; q < k4; q++) {
                const int8_t *bq = bp + q * 4 * Q8_PANEL;
                const int32_t a0 = ai[4 * q], a1 = ai[4 * q + 1], a2 = ai[4 * q + 2], a3 = ai[4 * q + 3];
                for (int j = 0; j < Q8_PANEL; j++)
                    acc[j] += a0 * bq[4 * j] + a1 * bq[4 * j + 1] + a2 * bq[4 * j + 2] + a3 * bq[4 * j + 3];
            }
            memcpy(c + i * ldc + p * Q8_PANEL, acc, sizeof acc);
        }
    }
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define CX_Q8_X86 1
#include <immintrin.h>

/* AVX2: vpmaddubsw multiplies u8 x s8 and adds adjacent pairs into int16 with SATURATION: two
 * products 255 * 127 reach 64770 > 32767. With a <= 127 (the 7-bit activations convx's quantizer
 * can produce, or any input without its top bit set) a pair is at most 2 * 127 * 128 = 32512 and
 * never saturates. Otherwise (`wide`) each byte is split as a = lo + 128 hi, lo = a & 127,
 * hi = a >> 7 in {0, 1}: both halves go through vpmaddubsw without saturating, and vpmaddwd
 * (int16 pairs -> int32, exact) weights them by 1 and 128. Either way the int32 sums are exact. */
#define Q8_AVX2_MR 4
__attribute__((target("avx2"))) static void q8_ukr_avx2(cx_int k4, const uint8_t *a, cx_int lda, const int8_t *b,
                                                       cx_int bstride, int np, int32_t *c, cx_int ldc, int wide)
{
    const __m256i ones = _mm256_set1_epi16(1), w128 = _mm256_set1_epi16(128);
    const __m256i low7 = _mm256_set1_epi8(0x7f), bit0 = _mm256_set1_epi8(1);
    for (int p = 0; p < np; p++) {
        const int8_t *bp = b + p * bstride;
        for (int i0 = 0; i0 < Q8_MR_MAX; i0 += Q8_AVX2_MR) {
            __m256i acc[Q8_AVX2_MR][2];
            for (int i = 0; i < Q8_AVX2_MR; i++)
                acc[i][0] = acc[i][1] = _mm256_setzero_si256();
            const uint8_t *ai = a + i0 * lda;
            for (cx_int q = 0; q < k4; q++) {
                const __m256i b0 = _mm256_loadu_si256((const __m256i *)(bp + q * 64));
                const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + q * 64 + 32));
                for (int i = 0; i < Q8_AVX2_MR; i++) {
                    int32_t word;
                    memcpy(&word, ai + i * lda + 4 * q, 4);
                    const __m256i av = _mm256_set1_epi32(word);
                    if (!wide) {
                        acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones));
                        acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones));
                    } else {
                        const __m256i lo = _mm256_and_si256(av, low7);
                        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(av, 7), bit0);
                        acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_add_epi32(
                            _mm256_madd_epi16(_mm256_maddubs_epi16(lo, b0), ones),
                            _mm256_madd_epi16(_mm256_maddubs_epi16(hi, b0), w128)));
                        acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_add_epi32(
                            _mm256_madd_epi16(_mm256_maddubs_epi16(lo, b1), ones),
                            _mm256_madd_epi16(_mm256_maddubs_epi16(hi, b1), w128)));
                    }
                }
            }
            for (int i = 0; i < Q8_AVX2_MR; i++) {
                int32_t *ci = c + (i0 + i) * ldc + p * Q8_PANEL;
                _mm256_storeu_si256((__m256i *)ci, acc[i][0]);
                _mm256_storeu_si256((__m256i *)(ci + 8), acc[i][1]);
            }
        }
    }
}

/* AVX-VNNI: vpdpbusd adds the four u8 x s8 products of each int32 lane into it, in int32 (no
 * intermediate saturation): one instruction per 32 multiply-adds. */
#define Q8_VNNI_MR 4
__attribute__((target("avx2,avxvnni"))) static void q8_ukr_avx_vnni(cx_int k4, const uint8_t *a, cx_int lda,
                                                                   const int8_t *b, cx_int bstride, int np,
                                                                   int32_t *c, cx_int ldc, int wide)
{
    (void)wide;
    for (int p = 0; p < np; p++) {
        const int8_t *bp = b + p * bstride;
        for (int i0 = 0; i0 < Q8_MR_MAX; i0 += Q8_VNNI_MR) {
            __m256i acc[Q8_VNNI_MR][2];
            for (int i = 0; i < Q8_VNNI_MR; i++)
                acc[i][0] = acc[i][1] = _mm256_setzero_si256();
            const uint8_t *ai = a + i0 * lda;
            for (cx_int q = 0; q < k4; q++) {
                const __m256i b0 = _mm256_loadu_si256((const __m256i *)(bp + q * 64));
                const __m256i b1 = _mm256_loadu_si256((const __m256i *)(bp + q * 64 + 32));
                for (int i = 0; i < Q8_VNNI_MR; i++) {
                    int32_t word;
                    memcpy(&word, ai + i * lda + 4 * q, 4);
                    const __m256i av = _mm256_set1_epi32(word);
                    acc[i][0] = _mm256_dpbusd_avx_epi32(acc[i][0], av, b0);
                    acc[i][1] = _mm256_dpbusd_avx_epi32(acc[i][1], av, b1);
                }
            }
            for (int i = 0; i < Q8_VNNI_MR; i++) {
                int32_t *ci = c + (i0 + i) * ldc + p * Q8_PANEL;
                _mm256_storeu_si256((__m256i *)ci, acc[i][0]);
                _mm256_storeu_si256((__m256i *)(ci + 8), acc[i][1]);
            }
        }
    }
}

/* AVX-512 VNNI: a 16-column panel is one zmm; 8 rows x 2 panels in 16 accumulators. */
#define Q8_AVX512_TILE(NP)                                                                          \
    do {                                                                                            \
        __m512i acc[Q8_MR_MAX][NP];                                                                 \
        for (int i = 0; i < Q8_MR_MAX; i++)                                                         \
            for (int p = 0; p < (NP); p++)                                                          \
                acc[i][p] = _mm512_setzero_si512();                                                 \
        for (cx_int q = 0; q < k4; q++) {                                                           \
            __m512i bv[NP];                                                                         \
            for (int p = 0; p < (NP); p++)                                                          \
                bv[p] = _mm512_loadu_si512((const void *)(b + p * bstride + q * 64));               \
            for (int i = 0; i < Q8_MR_MAX; i++) {                                                   \
                int32_t word;                                                                       \
                memcpy(&word, a + i * lda + 4 * q, 4);                                              \
                const __m512i av = _mm512_set1_epi32(word);                                         \
                for (int p = 0; p < (NP); p++)                                                      \
                    acc[i][p] = _mm512_dpbusd_epi32(acc[i][p], av, bv[p]);                          \
            }                                                                                       \
        }                                                                                           \
        for (int i = 0; i < Q8_MR_MAX; i++)                                                         \
            for (int p = 0; p < (NP); p++)                                                          \
                _mm512_storeu_si512((void *)(c + i * ldc + p * Q8_PANEL), acc[i][p]);               \
    } while (0)

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void q8_ukr_avx512_vnni(
    cx_int k4, const uint8_t *a, cx_int lda, const int8_t *b, cx_int bstride, int np, int32_t *c, cx_int ldc,
    int wide)
{
    (void)wide;
    if (np == 2)
        Q8_AVX512_TILE(2);
    else
        Q8_AVX512_TILE(1);
}
#endif

#if defined(__aarch64__) && defined(__GNUC__)
#define CX_Q8_ARM64 1
#include <arm_neon.h>

/* arm64 dot product (ARMv8.2 sdot, signed x signed): u8 activations become s8 as a - 128 (a xor 0x80),
 * and sum a w = sum (a - 128) w + 128 sum w, the column sums by sdot with a vector of ones. */
#define Q8_NEON_MR 4
__attribute__((target("arch=armv8.2-a+dotprod"))) static void q8_ukr_neon_dot(
    cx_int k4, const uint8_t *a, cx_int lda, const int8_t *b, cx_int bstride, int np, int32_t *c, cx_int ldc,
    int wide)
{
    (void)wide;
    const int8x16_t ones = vdupq_n_s8(1);
    const uint32x4_t flip = vdupq_n_u32(0x80808080u);
    for (int p = 0; p < np; p++) {
        const int8_t *bp = b + p * bstride;
        for (int i0 = 0; i0 < Q8_MR_MAX; i0 += Q8_NEON_MR) {
            int32x4_t acc[Q8_NEON_MR][4], sums[4];
            for (int v = 0; v < 4; v++) {
                sums[v] = vdupq_n_s32(0);
                for (int i = 0; i < Q8_NEON_MR; i++)
                    acc[i][v] = vdupq_n_s32(0);
            }
            const uint8_t *ai = a + i0 * lda;
            for (cx_int q = 0; q < k4; q++) {
                int8x16_t bv[4];
                for (int v = 0; v < 4; v++) {
                    bv[v] = vld1q_s8(bp + q * 64 + 16 * v);
                    sums[v] = vdotq_s32(sums[v], bv[v], ones);
                }
                for (int i = 0; i < Q8_NEON_MR; i++) {
                    uint32_t word;
                    memcpy(&word, ai + i * lda + 4 * q, 4);
                    const int8x16_t av = vreinterpretq_s8_u32(veorq_u32(vdupq_n_u32(word), flip));
                    for (int v = 0; v < 4; v++)
                        acc[i][v] = vdotq_s32(acc[i][v], bv[v], av);
                }
            }
            for (int i = 0; i < Q8_NEON_MR; i++)
                for (int v = 0; v < 4; v++)
                    vst1q_s32(c + (i0 + i) * ldc + p * Q8_PANEL + 4 * v, vaddq_s32(acc[i][v], vshlq_n_s32(sums[v], 7)));
        }
    }
}
#endif

#endif
