#include "pool.h"

#include <string.h>

#include "convx_omp.h"
#include "cpu_features.h"
#include "gemm_ukernels.h" /* CX_TARGET_AVX2 */

#ifndef CX_HAVE_X86
#define CX_TARGET_AVX2
#endif

#ifdef CX_HAVE_X86
CX_TARGET_AVX2
static void max_pool_row_c8_avx2_f32(const float *x, float *y, int64_t *argmax, const cx_pool_geom *g, cx_int n,
                                     cx_int oh);
#define CX_POOL_ROW_C8_AVX2 max_pool_row_c8_avx2_f32
#endif

#define real float
#define FN(name) name##_f32
#include "pool_impl.h"
#undef real
#undef FN
#undef CX_POOL_ROW_C8_AVX2

#ifdef CX_HAVE_X86
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
        for (cx_int c = 0; c < C; c += 8) {
            const float *x0 = x + first + c;
            __m256 best = _mm256_loadu_ps(x0);
            __m256i which = _mm256_setzero_si256();
            for (cx_int h = h0; h < h1; ++h)
                for (cx_int w = (h == h0 ? w0 + 1 : w0); w < w1; ++w) {
                    const int32_t cell = (int32_t)(((h - h0) * g->w + (w - w0)) * C);
                    const __m256 v = _mm256_loadu_ps(x0 + cell);
                    const __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ),
                                                     _mm256_andnot_ps(_mm256_cmp_ps(best, best, _CMP_UNORD_Q),
                                                                      _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
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
#endif

#define real double
#define FN(name) name##_f64
#include "pool_impl.h"
#undef real
#undef FN
