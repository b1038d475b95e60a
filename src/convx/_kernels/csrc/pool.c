#include "pool.h"

#include <string.h>

#include "convx_omp.h"
#include "cpu_features.h"

#ifdef CX_HAVE_X86
CX_TARGET_AVX2
static void max_pool_row_c8_avx2_f32(const float *x, float *y, int64_t *argmax, const cx_pool_geom *g, cx_int n,
                                     cx_int oh);
#define CX_POOL_ROW_C8_AVX2 max_pool_row_c8_avx2_f32
CX_TARGET_AVX2
static void max_pool_backward_row_c8_avx2_f32(const float *dy, const float *x, const float *y, int through_relu,
                                              float *dx, const cx_pool_geom *g, cx_int n, cx_int oh);
#define CX_POOL_BACKWARD_ROW_C8_AVX2 max_pool_backward_row_c8_avx2_f32
#endif

#define real float
#define FN(name) name##_f32
#include "pool_impl.h"
#undef real
#undef FN
#undef CX_POOL_ROW_C8_AVX2
#undef CX_POOL_BACKWARD_ROW_C8_AVX2

#ifdef CX_HAVE_X86
/* Lanes where v replaces the running maximum: strictly greater, or a NaN over a number. */
CX_TARGET_AVX2
static inline __m256 max_takes_avx2(__m256 v, __m256 best)
{
    return _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ),
                        _mm256_andnot_ps(_mm256_cmp_ps(best, best, _CMP_UNORD_Q), _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
}

/* One output row of max pooling for float32 with C a multiple of 8: eight
 * channels per register, maxima and first-max offsets kept in ymm registers.
 * Same rule as max_fold: strictly greater wins, a NaN replaces a number. */
CX_TARGET_AVX2
static void max_pool_row_c8_avx2_f32(const float *x, float *y, int64_t *argmax, const cx_pool_geom *g, cx_int n,
                                     cx_int oh)
{
    const cx_int C = g->c;
    cx_int h0, h1, w0, w1;
    cx_pool_window(oh, g->sh, g->ph, g->kh, g->h, &h0, &h1);
    for (cx_int ow = 0; ow < g->ow; ++ow) {
        const cx_int out = ((n * g->oh + oh) * g->ow + ow) * C;
        cx_pool_window(ow, g->sw, g->pw, g->kw, g->w, &w0, &w1);
        const cx_int first = ((n * g->h + h0) * g->w + w0) * C;
        if (!argmax) {
            for (cx_int c = 0; c < C; c += 8) {
                const float *x0 = x + first + c;
                __m256 best = _mm256_loadu_ps(x0);
                for (cx_int h = h0; h < h1; ++h)
                    for (cx_int w = (h == h0 ? w0 + 1 : w0); w < w1; ++w) {
                        const __m256 v = _mm256_loadu_ps(x0 + ((h - h0) * g->w + (w - w0)) * C);
                        best = _mm256_blendv_ps(best, v, max_takes_avx2(v, best));
                    }
                _mm256_storeu_ps(y + out + c, best);
            }
            continue;
        }
        for (cx_int c = 0; c < C; c += 8) {
            const float *x0 = x + first + c;
            __m256 best = _mm256_loadu_ps(x0);
            __m256i which = _mm256_setzero_si256();
            for (cx_int h = h0; h < h1; ++h)
                for (cx_int w = (h == h0 ? w0 + 1 : w0); w < w1; ++w) {
                    const int32_t cell = (int32_t)(((h - h0) * g->w + (w - w0)) * C);
                    const __m256 v = _mm256_loadu_ps(x0 + cell);
                    const __m256 take = max_takes_avx2(v, best);
                    best = _mm256_blendv_ps(best, v, take);
                    which = _mm256_castps_si256(_mm256_blendv_ps(
                        _mm256_castsi256_ps(which), _mm256_castsi256_ps(_mm256_set1_epi32(cell)), take));
                }
            _mm256_storeu_ps(y + out + c, best);
            if (argmax) {
                const __m256i base = _mm256_set1_epi64x(first + c);
                const __m256i lanes_lo = _mm256_setr_epi64x(0, 1, 2, 3), lanes_hi = _mm256_setr_epi64x(4, 5, 6, 7);
                const __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(which));
                const __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(which, 1));
                _mm256_storeu_si256((__m256i *)(argmax + out + c), _mm256_add_epi64(_mm256_add_epi64(lo, base), lanes_lo));
                _mm256_storeu_si256((__m256i *)(argmax + out + c + 4),
                                    _mm256_add_epi64(_mm256_add_epi64(hi, base), lanes_hi));
            }
        }
    }
}

/* The windows of one output row of the non-overlapping max-pool gradient for
 * float32 with C a multiple of 8 (same rule as the portable row in pool_impl.h). */
CX_TARGET_AVX2
static void max_pool_backward_row_c8_avx2_f32(const float *dy, const float *x, const float *y, int through_relu,
                                              float *dx, const cx_pool_geom *g, cx_int n, cx_int oh)
{
    const cx_int C = g->c, row = g->w * C;
    cx_int h0, h1, w0, w1;
    cx_pool_window(oh, g->sh, g->ph, g->kh, g->h, &h0, &h1);
    for (cx_int ow = 0; ow < g->ow; ++ow) {
        const cx_int out = ((n * g->oh + oh) * g->ow + ow) * C;
        cx_pool_window(ow, g->sw, g->pw, g->kw, g->w, &w0, &w1);
        for (cx_int c = 0; c < C; c += 8) {
            const __m256 m = _mm256_loadu_ps(y + out + c), grad = _mm256_loadu_ps(dy + out + c);
            const __m256 m_nan = _mm256_cmp_ps(m, m, _CMP_UNORD_Q);
            __m256 found = _mm256_setzero_ps();
            for (cx_int h = h0; h < h1; ++h)
                for (cx_int w = w0; w < w1; ++w) {
                    const cx_int cell = (n * g->h + h) * row + w * C + c;
                    const __m256 v = _mm256_loadu_ps(x + cell);
                    const __m256 same = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_EQ_OQ),
                                                     _mm256_and_ps(m_nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
                    const __m256 hit = _mm256_andnot_ps(found, same);
                    found = _mm256_or_ps(found, hit);
                    const __m256 keep =
                        through_relu ? _mm256_and_ps(hit, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ)) : hit;
                    _mm256_storeu_ps(dx + cell, _mm256_and_ps(keep, grad));
                }
        }
    }
}
#endif

#define real double
#define FN(name) name##_f64
#include "pool_impl.h"
#undef real
#undef FN
