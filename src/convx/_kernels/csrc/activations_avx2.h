/* AVX2 + FMA float32 kernels of the activations silu, gelu (exact and tanh), mish, softplus and
 * exponential (forward and backward) and sigmoid, tanh, elu and selu (forward), chosen at run time: used when the CPU has AVX2 and FMA and CONVX_ISA is
 * unset or "avx2" (CONVX_ISA=generic keeps the scalar libm loops). Included by epilogue.c and
 * activations.c; every element, tails included (masked loads and stores), goes through the same
 * vector formula, so a value does not depend on where it lies in a row or block: the fused
 * epilogue of a layer and the separate activation give the same bits, for any thread count.
 *
 * exp is Cephes' single-precision polynomial (about 1 ulp on [-87, 88]; below -87.3 it returns 0
 * rather than a denormal, above ln(FLT_MAX) = 88.72 inf, NaN for NaN). The formulas avoid cancellation:
 *   sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) below, e = exp(-|x|);
 *   gelu_tanh(x) = x * sigmoid(2u), u = sqrt(2 / pi) (x + 0.044715 x^3)   (0.5 (1 + tanh u) = sigmoid(2u));
 *   mish(x) = x * tanh(softplus(x)) = x * m / (m + 2), m = e^x (e^x + 2)   (x itself above 20).
 * tanh is Cephes' tanhf (odd polynomial below |x| = 0.625, 1 - 2 / (exp(2|x|) + 1) above); expm1
 * (elu, selu) a degree-8 Taylor polynomial below |x| = 0.5 (relative error 1.2e-7), exp(x) - 1 above.
 * softplus(x) = max(x, 0) + log1p(exp(-|x|)), log1p(u) = log(1 + u) u / ((1 + u) - 1) with Cephes'
 * logf; its backward 1 - exp(-y) = -expm1(-y).
 * The exact gelu's 0.5 (1 + erf(x / sqrt 2)) comes from erfc(|x| / sqrt 2) (Numerical Recipes'
 * Chebyshev fit, relative error 1.1e-7), accurate in the negative tail where 1 + erf cancels.
 */
#ifndef CONVX_ACTIVATIONS_AVX2_H
#define CONVX_ACTIVATIONS_AVX2_H

#include <stdlib.h>
#include <string.h>

#include "activations_math.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define CX_ACT_HAVE_AVX2 1
#include <immintrin.h>
#define CX_ACT_TARGET __attribute__((target("avx2,fma")))

/* Whether to use these kernels: decided once per process (benign race: all threads agree). */
static int cx_act_avx2(void)
{
    static int use = -1;
    if (use < 0) {
        const char *forced = getenv("CONVX_ISA");
        __builtin_cpu_init();
        use = (!forced || !*forced || strcmp(forced, "avx2") == 0 || strcmp(forced, "avx512") == 0)
              && __builtin_cpu_supports("avx2")
              && __builtin_cpu_supports("fma");
    }
    return use;
}

/* The codes with an AVX2 backward kernel; the forward kernels also cover sigmoid, tanh, elu and
 * selu (whose backward, from y, already vectorises). */
static inline int cx_act_has_avx2_kernel(int act)
{
    return act == CX_ACT_SILU || act == CX_ACT_GELU || act == CX_ACT_GELU_TANH || act == CX_ACT_MISH
           || act == CX_ACT_EXPONENTIAL || act == CX_ACT_SOFTPLUS;
}

CX_ACT_TARGET static inline __m256 cx_exp8(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.72283905206835f) /* ln(FLT_MAX) */, lo = _mm256_set1_ps(-87.3365447504f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ), over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q), input = x;
    x = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    /* 2^n for n in [-126, 127]: split in two factors so that n = 128 (x near 88.38) cannot overflow the exponent */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i half = _mm256_srai_epi32(ni, 1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), _mm256_set1_epi32(127)), 23));
    __m256 r = _mm256_andnot_ps(under, _mm256_mul_ps(_mm256_mul_ps(p, s1), s2));
    r = _mm256_blendv_ps(r, _mm256_set1_ps(INFINITY), over);
    return _mm256_blendv_ps(r, input, nan); /* NaN stays NaN */
}

/* sigmoid(x), and e = exp(-|x|) for the caller. */
CX_ACT_TARGET static inline __m256 cx_sigmoid8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 e = cx_exp8(_mm256_sub_ps(_mm256_setzero_ps(), ax));
    __m256 d = _mm256_add_ps(one, e);
    __m256 pos = _mm256_div_ps(one, d), neg = _mm256_div_ps(e, d);
    return _mm256_blendv_ps(pos, neg, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
}

CX_ACT_TARGET static inline __m256 cx_gelu_tanh_gate8(__m256 x) /* sigmoid(2u) = 0.5 (1 + tanh u) */
{
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 u = _mm256_mul_ps(_mm256_set1_ps((float)CX_SQRT_2_OVER_PI),
                             _mm256_fmadd_ps(_mm256_set1_ps((float)CX_GELU_CUBIC), x3, x));
    return cx_sigmoid8(_mm256_add_ps(u, u));
}

/* erfc(|z|), Numerical Recipes' Chebyshev fit (relative error 1.1e-7, no cancellation in the tails). */
CX_ACT_TARGET static inline __m256 cx_erfc_abs8(__m256 z)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    z = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.5f), z, one));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    return _mm256_mul_ps(t, cx_exp8(_mm256_fnmadd_ps(z, z, p)));
}

/* 0.5 (1 + erf(x / sqrt 2)) = Phi(x): 0.5 erfc(|z|) below 0, 1 - 0.5 erfc(|z|) above. */
CX_ACT_TARGET static inline __m256 cx_gelu_gate8(__m256 x)
{
    __m256 h = _mm256_mul_ps(_mm256_set1_ps(0.5f), cx_erfc_abs8(_mm256_mul_ps(x, _mm256_set1_ps((float)CX_SQRT_HALF))));
    return _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), h), h, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
}

CX_ACT_TARGET static inline __m256 cx_mish_tanh8(__m256 x) /* tanh(softplus(x)), 1 above x = 20 */
{
    const __m256 two = _mm256_set1_ps(2.0f);
    __m256 e = cx_exp8(_mm256_min_ps(x, _mm256_set1_ps(20.0f)));
    __m256 m = _mm256_mul_ps(e, _mm256_add_ps(e, two));
    return _mm256_div_ps(m, _mm256_add_ps(m, two));
}

CX_ACT_TARGET static inline __m256 cx_tanh8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(sign, x), z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(x, z), p, x);
    __m256 e = cx_exp8(_mm256_add_ps(ax, ax));
    __m256 large = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    large = _mm256_or_ps(large, _mm256_and_ps(sign, x));
    return _mm256_blendv_ps(large, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

CX_ACT_TARGET static inline __m256 cx_expm1_8(__m256 x)
{
    __m256 p = _mm256_set1_ps(1.0f / 40320.0f);
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 5040.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f));
    __m256 small = _mm256_mul_ps(p, x);
    __m256 large = _mm256_sub_ps(cx_exp8(x), _mm256_set1_ps(1.0f));
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    return _mm256_blendv_ps(large, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.5f), _CMP_LT_OQ));
}

/* log(w) for finite w > 0 (Cephes logf: w = m 2^e, m in [sqrt(1/2), sqrt 2)). */
CX_ACT_TARGET static inline __m256 cx_log8(__m256 w)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256i bits = _mm256_castps_si256(w);
    __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126)));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x807fffff)),
                                                   _mm256_set1_epi32(0x3f000000))); /* [0.5, 1) */
    __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm256_sub_ps(e, _mm256_and_ps(small, one));
    __m256 x = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), one);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(7.0376836292e-2f);
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(-1.1514610310e-1f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.1676998740e-1f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(-1.2420140846e-1f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.4249322787e-1f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(-1.6668057665e-1f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(2.0000714765e-1f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(-2.4999993993e-1f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(3.3333331174e-1f));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(x, z), p);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
    y = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, y);
    return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), _mm256_add_ps(x, y));
}

CX_ACT_TARGET static inline __m256 cx_softplus8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 u = cx_exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x)));
    __m256 w = _mm256_add_ps(one, u), d = _mm256_sub_ps(w, one);
    __m256 l = _mm256_div_ps(_mm256_mul_ps(cx_log8(w), u), d);
    l = _mm256_blendv_ps(l, u, _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ)); /* log1p(u) = u for tiny u */
    return _mm256_add_ps(_mm256_max_ps(x, _mm256_setzero_ps()), l);
}

/* x > 0 ? x : alpha * expm1(x) (NaN stays NaN) */
CX_ACT_TARGET static inline __m256 cx_elu8(__m256 x, __m256 alpha)
{
    __m256 neg = _mm256_mul_ps(alpha, cx_expm1_8(_mm256_min_ps(x, _mm256_setzero_ps())));
    neg = _mm256_blendv_ps(neg, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    return _mm256_blendv_ps(neg, x, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ));
}

CX_ACT_TARGET static inline __m256i cx_tail_mask8(cx_int left)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left < 8 ? left : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

CX_ACT_TARGET static inline __m256 cx_act_forward8(__m256 x, int act, __m256 alpha)
{
    switch (act) {
    case CX_ACT_SIGMOID:
        return cx_sigmoid8(x);
    case CX_ACT_TANH:
        return cx_tanh8(x);
    case CX_ACT_SOFTPLUS:
        return cx_softplus8(x);
    case CX_ACT_ELU:
        return cx_elu8(x, alpha);
    case CX_ACT_SELU: /* scale * elu(x, alpha) with the SELU constants, as the scalar loop groups it */
        return _mm256_blendv_ps(
            _mm256_mul_ps(_mm256_set1_ps((float)CX_SELU_SCALE), cx_elu8(x, _mm256_set1_ps((float)CX_SELU_ALPHA))),
            _mm256_mul_ps(_mm256_set1_ps((float)CX_SELU_SCALE), x), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ));
    case CX_ACT_SILU:
        return _mm256_mul_ps(x, cx_sigmoid8(x));
    case CX_ACT_GELU:
        return _mm256_mul_ps(x, cx_gelu_gate8(x));
    case CX_ACT_GELU_TANH:
        return _mm256_mul_ps(x, cx_gelu_tanh_gate8(x));
    case CX_ACT_MISH:
        return _mm256_mul_ps(x, cx_mish_tanh8(x));
    default: /* CX_ACT_EXPONENTIAL */
        return cx_exp8(x);
    }
}

/* d act / dx at x (y = act(x) for exponential). */
CX_ACT_TARGET static inline __m256 cx_act_grad8(__m256 x, __m256 y, int act)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (act) {
    case CX_ACT_SILU: {
        __m256 s = cx_sigmoid8(x);
        return _mm256_mul_ps(s, _mm256_fmadd_ps(x, _mm256_sub_ps(one, s), one));
    }
    case CX_ACT_GELU: { /* 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi) */
        __m256 phi = cx_exp8(_mm256_mul_ps(_mm256_set1_ps(-0.5f), _mm256_mul_ps(x, x)));
        return _mm256_fmadd_ps(_mm256_mul_ps(x, _mm256_set1_ps((float)CX_INV_SQRT_2PI)), phi, cx_gelu_gate8(x));
    }
    case CX_ACT_GELU_TANH: { /* 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2), t = 2 g - 1 */
        __m256 g = cx_gelu_tanh_gate8(x);
        __m256 t = _mm256_fmsub_ps(_mm256_set1_ps(2.0f), g, one);
        __m256 x2 = _mm256_mul_ps(x, x);
        __m256 inner = _mm256_fmadd_ps(_mm256_set1_ps((float)(3 * CX_GELU_CUBIC)), x2, one);
        __m256 r = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps((float)(0.5 * CX_SQRT_2_OVER_PI)), x),
                                 _mm256_mul_ps(_mm256_fnmadd_ps(t, t, one), inner));
        return _mm256_add_ps(g, r);
    }
    case CX_ACT_MISH: { /* t + x (1 - t^2) sigmoid(x) */
        __m256 t = cx_mish_tanh8(x);
        return _mm256_fmadd_ps(_mm256_mul_ps(x, _mm256_fnmadd_ps(t, t, one)), cx_sigmoid8(x), t);
    }
    case CX_ACT_SOFTPLUS: /* sigmoid(x) = 1 - exp(-y) */
        return _mm256_sub_ps(_mm256_setzero_ps(), cx_expm1_8(_mm256_sub_ps(_mm256_setzero_ps(), y)));
    default: /* CX_ACT_EXPONENTIAL */
        return y;
    }
}

CX_ACT_TARGET static void cx_act_forward_avx2_f32(float *v, cx_int n, int act, float alpha)
{
    const __m256 a = _mm256_set1_ps(alpha);
    cx_int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(v + i, cx_act_forward8(_mm256_loadu_ps(v + i), act, a));
    if (i < n) {
        __m256i mask = cx_tail_mask8(n - i);
        _mm256_maskstore_ps(v + i, mask, cx_act_forward8(_mm256_maskload_ps(v + i, mask), act, a));
    }
}

/* x is read for silu, gelu, gelu_tanh and mish, y for exponential and softplus (the other may be NULL). */
CX_ACT_TARGET static void cx_act_backward_avx2_f32(const float *x, const float *y, const float *dy, float *dx,
                                                   cx_int n, int act)
{
    const int from_y = act == CX_ACT_EXPONENTIAL || act == CX_ACT_SOFTPLUS;
    const float *src = from_y ? y : x;
    for (cx_int i = 0; i < n; i += 8) {
        __m256i mask = cx_tail_mask8(n - i);
        __m256 s = _mm256_maskload_ps(src + i, mask), g = _mm256_maskload_ps(dy + i, mask);
        __m256 d = cx_act_grad8(from_y ? _mm256_setzero_ps() : s, s, act);
        _mm256_maskstore_ps(dx + i, mask, _mm256_mul_ps(g, d));
    }
}

/* The float32 hooks of the elementwise loops: 1 when the AVX2 kernel did the work. */
static inline int cx_act_forward_simd_f32(float *v, cx_int n, int act, cx_act_params p)
{
    if (!(cx_act_has_avx2_kernel(act) || act == CX_ACT_SIGMOID || act == CX_ACT_TANH || act == CX_ACT_ELU
          || act == CX_ACT_SELU) || !cx_act_avx2())
        return 0;
    cx_act_forward_avx2_f32(v, n, act, (float)p.p0);
    return 1;
}

static inline int cx_act_backward_simd_f32(const float *x, const float *y, const float *dy, float *dx, cx_int n,
                                           int act)
{
    if (!cx_act_has_avx2_kernel(act) || !cx_act_avx2())
        return 0;
    cx_act_backward_avx2_f32(x, y, dy, dx, n, act);
    return 1;
}
#else
static inline int cx_act_forward_simd_f32(float *v, cx_int n, int act, cx_act_params p) { return 0; }
static inline int cx_act_backward_simd_f32(const float *x, const float *y, const float *dy, float *dx, cx_int n,
                                           int act) { return 0; }
#endif

/* float64 has no vector kernels here. */
static inline int cx_act_forward_simd_f64(double *v, cx_int n, int act, cx_act_params p) { return 0; }
static inline int cx_act_backward_simd_f64(const double *x, const double *y, const double *dy, double *dx, cx_int n,
                                           int act) { return 0; }

#endif
