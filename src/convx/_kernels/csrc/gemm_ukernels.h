/* GEMM micro-kernels: acc = sum_p a[p, 0:MR] (outer) b[p, 0:NR] over packed
 * panels, then C[0:mr, 0:nr] = acc + beta * C (C not read when beta == 0).
 * `mr` / `nr` <= MR / NR are the valid rows / columns of an edge tile.
 */
#ifndef CONVX_GEMM_UKERNELS_H
#define CONVX_GEMM_UKERNELS_H

#include "convx_common.h"
#include "cpu_features.h"

/* Store an MR x NR accumulator tile held in memory into C with beta. */
#define CX_STORE_TILE(real, acc, NR, c, ldc, mr, nr, beta)                       \
    do {                                                                        \
        for (int i_ = 0; i_ < (mr); i_++)                                       \
            for (int j_ = 0; j_ < (nr); j_++) {                                 \
                real *dst_ = (c) + i_ * (ldc) + j_;                             \
                *dst_ = (beta) == 0 ? (acc)[i_ * (NR) + j_]                     \
                                    : (acc)[i_ * (NR) + j_] + (beta) * *dst_;   \
            }                                                                   \
    } while (0)

/* Portable kernels, written so that compilers vectorise them for the baseline ISA. */
#define CX_GENERIC_UKERNEL(real, name, MR, NR)                                          \
    static void name(cx_int kc, const real *a, const real *b, real *c, cx_int ldc,     \
                     int mr, int nr, real beta)                                        \
    {                                                                                  \
        real acc[(MR) * (NR)] = {0};                                                   \
        for (cx_int p = 0; p < kc; p++, a += (MR), b += (NR))                          \
            for (int i = 0; i < (MR); i++)                                             \
                for (int j = 0; j < (NR); j++)                                         \
                    acc[i * (NR) + j] += a[i] * b[j];                                  \
        CX_STORE_TILE(real, acc, NR, c, ldc, mr, nr, beta);                            \
    }

CX_GENERIC_UKERNEL(float, ukr_generic_f32, 4, 8)
CX_GENERIC_UKERNEL(double, ukr_generic_f64, 4, 4)

/* Indirect micro-kernels (convolution without im2col): row i of A is read
 * through pointers, ptrs[t * MR + i] for tap t, each to `cin` contiguous
 * values; B is packed as usual with taps * cin rows. */
#define CX_GENERIC_INDIRECT(real, name, MR, NR)                                         \
    static void name(cx_int taps, cx_int cin, const real *const *ptrs, const real *b,  \
                     real *c, cx_int ldc, int mr, int nr, real beta)                   \
    {                                                                                  \
        real acc[(MR) * (NR)] = {0};                                                   \
        for (cx_int t = 0; t < taps; t++, ptrs += (MR))                                \
            for (cx_int p = 0; p < cin; p++, b += (NR))                                \
                for (int i = 0; i < (MR); i++)                                         \
                    for (int j = 0; j < (NR); j++)                                     \
                        acc[i * (NR) + j] += ptrs[i][p] * b[j];                        \
        CX_STORE_TILE(real, acc, NR, c, ldc, mr, nr, beta);                            \
    }

CX_GENERIC_INDIRECT(float, ukr_indirect_generic_f32, 4, 8)
CX_GENERIC_INDIRECT(double, ukr_indirect_generic_f64, 4, 4)

/* Indirect micro-kernels on B in place ("unpacked"): B's row for k step q of
 * the block is b + q * ldb (nr valid columns, never read beyond), as for a
 * few rows, where packing B would cost more than the product. Each value of C
 * is the same chain of operations as in the packed kernels of the same
 * variant (the same bits); variants without such a twin (NEON, AVX2 float64)
 * have none and always pack. */
#define CX_GENERIC_UNPACKED(real, name, MR, NR)                                         \
    static void name(cx_int taps, cx_int cin, const real *const *ptrs, const real *b,  \
                     cx_int ldb, real *c, cx_int ldc, int mr, int nr, real beta)       \
    {                                                                                  \
        real acc[(MR) * (NR)] = {0};                                                   \
        for (cx_int t = 0; t < taps; t++, ptrs += (MR))                                \
            for (cx_int p = 0; p < cin; p++, b += ldb)                                 \
                for (int i = 0; i < (MR); i++)                                         \
                    for (int j = 0; j < nr; j++)                                       \
                        acc[i * (NR) + j] += ptrs[i][p] * b[j];                        \
        CX_STORE_TILE(real, acc, NR, c, ldc, mr, nr, beta);                            \
    }

CX_GENERIC_UNPACKED(float, ukr_unpacked_generic_f32, 4, 8)
CX_GENERIC_UNPACKED(double, ukr_unpacked_generic_f64, 4, 4)

#ifdef CX_HAVE_X86
/* AVX2 + FMA: 6 x 16 floats (or 6 x 8 doubles) in 12 ymm accumulators. */
/* The 12 accumulators of a 6 x 16 float tile into C (with beta). */
CX_TARGET_AVX2
static inline void store_avx2_f32(const __m256 *rows, float *c, cx_int ldc, int mr, int nr, float beta)
{
    if (mr == 6 && nr == 16) {
        __m256 vb = _mm256_set1_ps(beta);
        for (int i = 0; i < 6; i++) {
            float *ci = c + i * ldc;
            if (beta == 0) {
                _mm256_storeu_ps(ci, rows[2 * i]);
                _mm256_storeu_ps(ci + 8, rows[2 * i + 1]);
            } else {
                _mm256_storeu_ps(ci, _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), rows[2 * i]));
                _mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), rows[2 * i + 1]));
            }
        }
        return;
    }
    float acc[6 * 16];
    for (int i = 0; i < 12; i++)
        _mm256_storeu_ps(acc + 8 * i, rows[i]);
    CX_STORE_TILE(float, acc, 16, c, ldc, mr, nr, beta);
}

/* One k step of the 6 x 16 tile: row i's value a_i times the 16 values at b. */
#define CX_AVX2_F32_STEP(a0, a1, a2, a3, a4, a5, b)                                                       \
    do {                                                                                                \
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps((b) + 8), ai;                                \
        ai = _mm256_broadcast_ss(a0); c00 = _mm256_fmadd_ps(ai, b0, c00); c01 = _mm256_fmadd_ps(ai, b1, c01); \
        ai = _mm256_broadcast_ss(a1); c10 = _mm256_fmadd_ps(ai, b0, c10); c11 = _mm256_fmadd_ps(ai, b1, c11); \
        ai = _mm256_broadcast_ss(a2); c20 = _mm256_fmadd_ps(ai, b0, c20); c21 = _mm256_fmadd_ps(ai, b1, c21); \
        ai = _mm256_broadcast_ss(a3); c30 = _mm256_fmadd_ps(ai, b0, c30); c31 = _mm256_fmadd_ps(ai, b1, c31); \
        ai = _mm256_broadcast_ss(a4); c40 = _mm256_fmadd_ps(ai, b0, c40); c41 = _mm256_fmadd_ps(ai, b1, c41); \
        ai = _mm256_broadcast_ss(a5); c50 = _mm256_fmadd_ps(ai, b0, c50); c51 = _mm256_fmadd_ps(ai, b1, c51); \
    } while (0)

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define CX_ASM_AVX2_F32 1
/* Four k steps of the 6 x 16 tile in assembly (x86-64: ymm12-15 are scratch): compilers given the same loop
 * as intrinsics rename and spill accumulators (GCC 12: two stack round trips
 * and several register moves per four steps; benchmarks/run.py --cases gemm).
 * One step: two B loads, then per row a broadcast of A and two FMAs. */
#define CX_ASM_STEP(i)                                                              \
    "vmovaps " #i "*64(%[b]), %%ymm12\n\t"                                          \
    "vmovaps " #i "*64+32(%[b]), %%ymm13\n\t"                                       \
    "vbroadcastss " #i "*24(%[a]), %%ymm14\n\t"                                     \
    "vfmadd231ps %%ymm12, %%ymm14, %[c00]\n\t"                                      \
    "vfmadd231ps %%ymm13, %%ymm14, %[c01]\n\t"                                      \
    "vbroadcastss " #i "*24+4(%[a]), %%ymm15\n\t"                                   \
    "vfmadd231ps %%ymm12, %%ymm15, %[c10]\n\t"                                      \
    "vfmadd231ps %%ymm13, %%ymm15, %[c11]\n\t"                                      \
    "vbroadcastss " #i "*24+8(%[a]), %%ymm14\n\t"                                   \
    "vfmadd231ps %%ymm12, %%ymm14, %[c20]\n\t"                                      \
    "vfmadd231ps %%ymm13, %%ymm14, %[c21]\n\t"                                      \
    "vbroadcastss " #i "*24+12(%[a]), %%ymm15\n\t"                                  \
    "vfmadd231ps %%ymm12, %%ymm15, %[c30]\n\t"                                      \
    "vfmadd231ps %%ymm13, %%ymm15, %[c31]\n\t"                                      \
    "vbroadcastss " #i "*24+16(%[a]), %%ymm14\n\t"                                  \
    "vfmadd231ps %%ymm12, %%ymm14, %[c40]\n\t"                                      \
    "vfmadd231ps %%ymm13, %%ymm14, %[c41]\n\t"                                      \
    "vbroadcastss " #i "*24+20(%[a]), %%ymm15\n\t"                                  \
    "vfmadd231ps %%ymm12, %%ymm15, %[c50]\n\t"                                      \
    "vfmadd231ps %%ymm13, %%ymm15, %[c51]\n\t"
#endif

/* AVX2 + FMA: 6 x 16 floats (or 6 x 8 doubles) in 12 ymm accumulators. */
CX_TARGET_AVX2
static void ukr_avx2_f32(cx_int kc, const float *a, const float *b, float *c, cx_int ldc,
                         int mr, int nr, float beta)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    /* C is needed only at the end: start its lines on their way now */
    for (int i = 0; i < 6 && i < mr; i++)
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    cx_int p = 0;
#ifdef CX_ASM_AVX2_F32
    cx_int quads = kc / 4;
    if (quads > 0) {
        __asm__ volatile(
            "1:\n\t"
            "prefetcht0 1024(%[b])\n\t"
            CX_ASM_STEP(0)
            CX_ASM_STEP(1)
            "prefetcht0 1152(%[b])\n\t"
            CX_ASM_STEP(2)
            CX_ASM_STEP(3)
            "add $96, %[a]\n\t"
            "add $256, %[b]\n\t"
            "dec %[n]\n\t"
            "jnz 1b\n\t"
            : [a] "+r"(a), [b] "+r"(b), [n] "+r"(quads),
              [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11),
              [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31),
              [c40] "+x"(c40), [c41] "+x"(c41), [c50] "+x"(c50), [c51] "+x"(c51)
            :
            : "cc", "memory", "xmm12", "xmm13", "xmm14", "xmm15");
        p = kc & ~(cx_int)3;
    }
#else
    for (; p + 4 <= kc; p += 4, a += 24, b += 64) {
        _mm_prefetch((const char *)(b + 256), _MM_HINT_T0);
        CX_AVX2_F32_STEP(a + 0, a + 1, a + 2, a + 3, a + 4, a + 5, b);
        CX_AVX2_F32_STEP(a + 6, a + 7, a + 8, a + 9, a + 10, a + 11, b + 16);
        _mm_prefetch((const char *)(b + 288), _MM_HINT_T0);
        CX_AVX2_F32_STEP(a + 12, a + 13, a + 14, a + 15, a + 16, a + 17, b + 32);
        CX_AVX2_F32_STEP(a + 18, a + 19, a + 20, a + 21, a + 22, a + 23, b + 48);
    }
#endif
    for (; p < kc; p++, a += 6, b += 16)
        CX_AVX2_F32_STEP(a + 0, a + 1, a + 2, a + 3, a + 4, a + 5, b);
    const __m256 rows[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    store_avx2_f32(rows, c, ldc, mr, nr, beta);
}

CX_TARGET_AVX2
static void ukr_indirect_avx2_f32(cx_int taps, cx_int cin, const float *const *ptrs, const float *b, float *c,
                                  cx_int ldc, int mr, int nr, float beta)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (cx_int t = 0; t < taps; t++, ptrs += 6) {
        const float *a0 = ptrs[0], *a1 = ptrs[1], *a2 = ptrs[2], *a3 = ptrs[3], *a4 = ptrs[4], *a5 = ptrs[5];
        for (cx_int p = 0; p < cin; p++, b += 16)
            CX_AVX2_F32_STEP(a0 + p, a1 + p, a2 + p, a3 + p, a4 + p, a5 + p, b);
    }
    const __m256 rows[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    store_avx2_f32(rows, c, ldc, mr, nr, beta);
}
/* The lanes of an 8-float vector below nr (all of them from nr >= 8), as a maskload mask. */
CX_TARGET_AVX2
static inline __m256i avx2_lanes_below(int nr)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

CX_TARGET_AVX2
static void ukr_unpacked_avx2_f32(cx_int taps, cx_int cin, const float *const *ptrs, const float *b, cx_int ldb,
                                  float *c, cx_int ldc, int mr, int nr, float beta)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const __m256i m0 = avx2_lanes_below(nr), m1 = avx2_lanes_below(nr - 8);
    for (cx_int t = 0; t < taps; t++, ptrs += 6) {
        const float *a0 = ptrs[0], *a1 = ptrs[1], *a2 = ptrs[2], *a3 = ptrs[3], *a4 = ptrs[4], *a5 = ptrs[5];
        for (cx_int p = 0; p < cin; p++, b += ldb) {
            const __m256 b0 = _mm256_maskload_ps(b, m0), b1 = _mm256_maskload_ps(b + 8, m1);
            __m256 ai;
            ai = _mm256_broadcast_ss(a0 + p); c00 = _mm256_fmadd_ps(ai, b0, c00); c01 = _mm256_fmadd_ps(ai, b1, c01);
            ai = _mm256_broadcast_ss(a1 + p); c10 = _mm256_fmadd_ps(ai, b0, c10); c11 = _mm256_fmadd_ps(ai, b1, c11);
            ai = _mm256_broadcast_ss(a2 + p); c20 = _mm256_fmadd_ps(ai, b0, c20); c21 = _mm256_fmadd_ps(ai, b1, c21);
            ai = _mm256_broadcast_ss(a3 + p); c30 = _mm256_fmadd_ps(ai, b0, c30); c31 = _mm256_fmadd_ps(ai, b1, c31);
            ai = _mm256_broadcast_ss(a4 + p); c40 = _mm256_fmadd_ps(ai, b0, c40); c41 = _mm256_fmadd_ps(ai, b1, c41);
            ai = _mm256_broadcast_ss(a5 + p); c50 = _mm256_fmadd_ps(ai, b0, c50); c51 = _mm256_fmadd_ps(ai, b1, c51);
        }
    }
    const __m256 rows[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    store_avx2_f32(rows, c, ldc, mr, nr, beta);
}
#undef CX_AVX2_F32_STEP

#define CX_AVX2_F64_STEP(a0, a1, a2, a3, a4, a5, b)                                                       \
    do {                                                                                                \
        __m256d b0 = _mm256_load_pd(b), b1 = _mm256_load_pd((b) + 4), ai;                               \
        ai = _mm256_broadcast_sd(a0); c00 = _mm256_fmadd_pd(ai, b0, c00); c01 = _mm256_fmadd_pd(ai, b1, c01); \
        ai = _mm256_broadcast_sd(a1); c10 = _mm256_fmadd_pd(ai, b0, c10); c11 = _mm256_fmadd_pd(ai, b1, c11); \
        ai = _mm256_broadcast_sd(a2); c20 = _mm256_fmadd_pd(ai, b0, c20); c21 = _mm256_fmadd_pd(ai, b1, c21); \
        ai = _mm256_broadcast_sd(a3); c30 = _mm256_fmadd_pd(ai, b0, c30); c31 = _mm256_fmadd_pd(ai, b1, c31); \
        ai = _mm256_broadcast_sd(a4); c40 = _mm256_fmadd_pd(ai, b0, c40); c41 = _mm256_fmadd_pd(ai, b1, c41); \
        ai = _mm256_broadcast_sd(a5); c50 = _mm256_fmadd_pd(ai, b0, c50); c51 = _mm256_fmadd_pd(ai, b1, c51); \
    } while (0)

#define CX_AVX2_F64_STORE                                                                               \
    do {                                                                                                \
        const __m256d rows[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};          \
        double acc[6 * 8];                                                                              \
        for (int i = 0; i < 12; i++)                                                                    \
            _mm256_storeu_pd(acc + 4 * i, rows[i]);                                                     \
        CX_STORE_TILE(double, acc, 8, c, ldc, mr, nr, beta);                                            \
    } while (0)

CX_TARGET_AVX2
static void ukr_avx2_f64(cx_int kc, const double *a, const double *b, double *c, cx_int ldc,
                         int mr, int nr, double beta)
{
    __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256d c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (cx_int p = 0; p < kc; p++, a += 6, b += 8)
        CX_AVX2_F64_STEP(a + 0, a + 1, a + 2, a + 3, a + 4, a + 5, b);
    CX_AVX2_F64_STORE;
}

CX_TARGET_AVX2
static void ukr_indirect_avx2_f64(cx_int taps, cx_int cin, const double *const *ptrs, const double *b, double *c,
                                  cx_int ldc, int mr, int nr, double beta)
{
    __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256d c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (cx_int t = 0; t < taps; t++, ptrs += 6) {
        const double *a0 = ptrs[0], *a1 = ptrs[1], *a2 = ptrs[2], *a3 = ptrs[3], *a4 = ptrs[4], *a5 = ptrs[5];
        for (cx_int p = 0; p < cin; p++, b += 8)
            CX_AVX2_F64_STEP(a0 + p, a1 + p, a2 + p, a3 + p, a4 + p, a5 + p, b);
    }
    CX_AVX2_F64_STORE;
}
#undef CX_AVX2_F64_STEP
#undef CX_AVX2_F64_STORE

/* AVX-512 (float32 only; float64 keeps the AVX2 kernels): 8 x 32 floats in 16
 * zmm accumulators, c<i>0 / c<i>1 the two 16-float halves of row i. Each
 * value of C is the same chain of FMAs as in the AVX2 kernel (acc = a * b +
 * acc in k order, then beta * C + acc), so both give the same bits. Edge
 * tiles are stored through lane masks. */
CX_TARGET_AVX512
static inline void store_avx512_f32(const __m512 *rows, float *c, cx_int ldc, int mr, int nr, float beta)
{
    const __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32 ? (__mmask16)0xffff : nr <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nr - 16)) - 1);
    const __m512 vb = _mm512_set1_ps(beta);
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        __m512 r0 = rows[2 * i], r1 = rows[2 * i + 1];
        if (beta != 0) {
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
        }
        _mm512_mask_storeu_ps(ci, m0, r0);
        _mm512_mask_storeu_ps(ci + 16, m1, r1);
    }
}

#define CX_AVX512_ACC(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0
#define CX_AVX512_ROW(i, ai)                                                                            \
    do {                                                                                                \
        const __m512 a_ = _mm512_set1_ps(ai);                                                           \
        c##i##0 = _mm512_fmadd_ps(a_, b0, c##i##0);                                                     \
        c##i##1 = _mm512_fmadd_ps(a_, b1, c##i##1);                                                     \
    } while (0)
/* One k step: rows 0-7 take the values v0..v7 times the 32 values at b. */
#define CX_AVX512_STEP(b, v0, v1, v2, v3, v4, v5, v6, v7)                                               \
    do {                                                                                                \
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps((b) + 16);                           \
        CX_AVX512_ROW(0, v0); CX_AVX512_ROW(1, v1); CX_AVX512_ROW(2, v2); CX_AVX512_ROW(3, v3);         \
        CX_AVX512_ROW(4, v4); CX_AVX512_ROW(5, v5); CX_AVX512_ROW(6, v6); CX_AVX512_ROW(7, v7);         \
    } while (0)
#define CX_AVX512_ACCS CX_AVX512_ACC(0); CX_AVX512_ACC(1); CX_AVX512_ACC(2); CX_AVX512_ACC(3); \
    CX_AVX512_ACC(4); CX_AVX512_ACC(5); CX_AVX512_ACC(6); CX_AVX512_ACC(7)
#define CX_AVX512_STORE                                                                                 \
    do {                                                                                                \
        const __m512 rows_[16] = {c00, c01, c10, c11, c20, c21, c30, c31,                               \
                                  c40, c41, c50, c51, c60, c61, c70, c71};                              \
        store_avx512_f32(rows_, c, ldc, mr, nr, beta);                                                  \
    } while (0)

CX_TARGET_AVX512
static void ukr_avx512_f32(cx_int kc, const float *a, const float *b, float *c, cx_int ldc,
                           int mr, int nr, float beta)
{
    CX_AVX512_ACCS;
    for (int i = 0; i < 8 && i < mr; i++)
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
    for (cx_int p = 0; p < kc; p++, a += 8, b += 32)
        CX_AVX512_STEP(b, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    CX_AVX512_STORE;
}

CX_TARGET_AVX512
static void ukr_indirect_avx512_f32(cx_int taps, cx_int cin, const float *const *ptrs, const float *b, float *c,
                                    cx_int ldc, int mr, int nr, float beta)
{
    CX_AVX512_ACCS;
    for (cx_int t = 0; t < taps; t++, ptrs += 8) {
        const float *a0 = ptrs[0], *a1 = ptrs[1], *a2 = ptrs[2], *a3 = ptrs[3];
        const float *a4 = ptrs[4], *a5 = ptrs[5], *a6 = ptrs[6], *a7 = ptrs[7];
#pragma GCC unroll 4
        for (cx_int p = 0; p < cin; p++, b += 32)
            CX_AVX512_STEP(b, a0[p], a1[p], a2[p], a3[p], a4[p], a5[p], a6[p], a7[p]);
    }
    CX_AVX512_STORE;
}
CX_TARGET_AVX512
static void ukr_unpacked_avx512_f32(cx_int taps, cx_int cin, const float *const *ptrs, const float *b,
                                    cx_int ldb, float *c, cx_int ldc, int mr, int nr, float beta)
{
    CX_AVX512_ACCS;
    const __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32 ? (__mmask16)0xffff : nr <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nr - 16)) - 1);
    for (cx_int t = 0; t < taps; t++, ptrs += 8) {
        const float *a0 = ptrs[0], *a1 = ptrs[1], *a2 = ptrs[2], *a3 = ptrs[3];
        const float *a4 = ptrs[4], *a5 = ptrs[5], *a6 = ptrs[6], *a7 = ptrs[7];
        for (cx_int p = 0; p < cin; p++, b += ldb) {
            const __m512 b0 = _mm512_maskz_loadu_ps(m0, b), b1 = _mm512_maskz_loadu_ps(m1, b + 16);
            CX_AVX512_ROW(0, a0[p]); CX_AVX512_ROW(1, a1[p]); CX_AVX512_ROW(2, a2[p]); CX_AVX512_ROW(3, a3[p]);
            CX_AVX512_ROW(4, a4[p]); CX_AVX512_ROW(5, a5[p]); CX_AVX512_ROW(6, a6[p]); CX_AVX512_ROW(7, a7[p]);
        }
    }
    CX_AVX512_STORE;
}
#undef CX_AVX512_ACC
#undef CX_AVX512_ROW
#undef CX_AVX512_STEP
#undef CX_AVX512_ACCS
#undef CX_AVX512_STORE
#endif /* CX_HAVE_X86 */

#ifdef CX_HAVE_NEON
/* NEON (the arm64 baseline): 8 x 12 floats in 24 q-register accumulators, row
 * i's three vectors c<i>0..c<i>2; A is read as two vectors per k step (lanes
 * 0-3, 4-7) or, through pointers, broadcast value by value. */
#define CX_NEON_ACC(i) float32x4_t c##i##0 = vdupq_n_f32(0), c##i##1 = c##i##0, c##i##2 = c##i##0
#define CX_NEON_ROW(i, ai)                                                                              \
    do {                                                                                                \
        c##i##0 = vfmaq_f32(c##i##0, b0, ai);                                                           \
        c##i##1 = vfmaq_f32(c##i##1, b1, ai);                                                           \
        c##i##2 = vfmaq_f32(c##i##2, b2, ai);                                                           \
    } while (0)
#define CX_NEON_LANE_ROW(i, a, lane)                                                                    \
    do {                                                                                                \
        c##i##0 = vfmaq_laneq_f32(c##i##0, b0, a, lane);                                                \
        c##i##1 = vfmaq_laneq_f32(c##i##1, b1, a, lane);                                                \
        c##i##2 = vfmaq_laneq_f32(c##i##2, b2, a, lane);                                                \
    } while (0)
#define CX_NEON_ACCS CX_NEON_ACC(0); CX_NEON_ACC(1); CX_NEON_ACC(2); CX_NEON_ACC(3); \
    CX_NEON_ACC(4); CX_NEON_ACC(5); CX_NEON_ACC(6); CX_NEON_ACC(7)
#define CX_NEON_STORE                                                                                   \
    do {                                                                                                \
        const float32x4_t rows_[24] = {c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32,      \
                                       c40, c41, c42, c50, c51, c52, c60, c61, c62, c70, c71, c72};     \
        store_neon_f32(rows_, c, ldc, mr, nr, beta);                                                    \
    } while (0)

/* The 24 accumulators of an 8 x 12 float tile into C (with beta). */
static inline void store_neon_f32(const float32x4_t *rows, float *c, cx_int ldc, int mr, int nr, float beta)
{
    if (mr == 8 && nr == 12) {
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 3; j++) {
                float *cij = c + i * ldc + 4 * j;
                vst1q_f32(cij, beta == 0 ? rows[3 * i + j] : vfmaq_n_f32(rows[3 * i + j], vld1q_f32(cij), beta));
            }
        return;
    }
    float acc[8 * 12];
    for (int i = 0; i < 24; i++)
        vst1q_f32(acc + 4 * i, rows[i]);
    CX_STORE_TILE(float, acc, 12, c, ldc, mr, nr, beta);
}

static void ukr_neon_f32(cx_int kc, const float *a, const float *b, float *c, cx_int ldc, int mr, int nr,
                         float beta)
{
    CX_NEON_ACCS;
    for (cx_int p = 0; p < kc; p++, a += 8, b += 12) {
        const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        const float32x4_t lo = vld1q_f32(a), hi = vld1q_f32(a + 4);
        CX_NEON_LANE_ROW(0, lo, 0);
        CX_NEON_LANE_ROW(1, lo, 1);
        CX_NEON_LANE_ROW(2, lo, 2);
        CX_NEON_LANE_ROW(3, lo, 3);
        CX_NEON_LANE_ROW(4, hi, 0);
        CX_NEON_LANE_ROW(5, hi, 1);
        CX_NEON_LANE_ROW(6, hi, 2);
        CX_NEON_LANE_ROW(7, hi, 3);
    }
    CX_NEON_STORE;
}

static void ukr_indirect_neon_f32(cx_int taps, cx_int cin, const float *const *ptrs, const float *b, float *c,
                                  cx_int ldc, int mr, int nr, float beta)
{
    CX_NEON_ACCS;
    for (cx_int t = 0; t < taps; t++, ptrs += 8) {
        const float *a0 = ptrs[0], *a1 = ptrs[1], *a2 = ptrs[2], *a3 = ptrs[3];
        const float *a4 = ptrs[4], *a5 = ptrs[5], *a6 = ptrs[6], *a7 = ptrs[7];
        for (cx_int p = 0; p < cin; p++, b += 12) {
            const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
            CX_NEON_ROW(0, vld1q_dup_f32(a0 + p));
            CX_NEON_ROW(1, vld1q_dup_f32(a1 + p));
            CX_NEON_ROW(2, vld1q_dup_f32(a2 + p));
            CX_NEON_ROW(3, vld1q_dup_f32(a3 + p));
            CX_NEON_ROW(4, vld1q_dup_f32(a4 + p));
            CX_NEON_ROW(5, vld1q_dup_f32(a5 + p));
            CX_NEON_ROW(6, vld1q_dup_f32(a6 + p));
            CX_NEON_ROW(7, vld1q_dup_f32(a7 + p));
        }
    }
    CX_NEON_STORE;
}
#undef CX_NEON_ACC
#undef CX_NEON_ROW
#undef CX_NEON_LANE_ROW
#undef CX_NEON_ACCS
#undef CX_NEON_STORE
#endif /* CX_HAVE_NEON */

#endif
