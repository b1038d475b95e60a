/* int8 convolution / dense driver: im2col per task into u8 rows, the chosen micro-kernel, then
 * max pooling on the int32 sums and the scalar epilogue (see quant.h for the arithmetic). */
#include "quant.h"

#include <stdlib.h>
#include <string.h>

#include "convx_omp.h"
#include "cpu_features.h"
#include "quant_ukernels.h"

static const char *const q8_isa_names[CX_Q8_ISA_COUNT] = {"generic", "avx2", "avx_vnni", "avx512_vnni",
                                                           "neon_dot"};

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
static int has_dotprod(void) { return (getauxval(AT_HWCAP) >> 20) & 1; } /* HWCAP_ASIMDDP */
#elif defined(__aarch64__) && defined(__APPLE__)
static int has_dotprod(void) { return 1; } /* every Apple arm64 CPU has it */
#elif defined(__aarch64__)
static int has_dotprod(void) { return 0; } /* no portable way to ask: keep the generic kernel */
#endif

int cx_q8_isa_supported(int isa)
{
    switch (isa) {
    case CX_Q8_GENERIC:
        return 1;
#ifdef CX_Q8_X86
    case CX_Q8_AVX2:
        return cx_isa_supported(CX_ISA_AVX2);
    case CX_Q8_AVX_VNNI:
        __builtin_cpu_init();
        return cx_isa_supported(CX_ISA_AVX2) && __builtin_cpu_supports("avxvnni");
    case CX_Q8_AVX512_VNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
               && __builtin_cpu_supports("avx512vnni");
#endif
#ifdef CX_Q8_ARM64
    case CX_Q8_NEON_DOT:
        return has_dotprod();
#endif
    default:
        return 0;
    }
}

/* The fastest variant the CPU runs; CONVX_ISA=generic or avx2 (the float kernels' switch) caps it.
 * The variants are not ordered by speed across architectures, but a CPU supports one family only. */
int cx_q8_isa_best(void)
{
    static int best = -1; /* benign race: every thread computes the same value */
    if (best < 0) {
        int cap = CX_Q8_ISA_COUNT - 1;
        const char *forced = getenv("CONVX_ISA");
        if (forced && strcmp(forced, "generic") == 0)
            cap = CX_Q8_GENERIC;
        else if (forced && strcmp(forced, "avx2") == 0)
            cap = CX_Q8_AVX2;
        int isa = cap;
        while (isa > 0 && !cx_q8_isa_supported(isa))
            isa--;
        best = isa;
    }
    return best;
}

const char *cx_q8_isa_name(int isa)
{
    return (isa >= 0 && isa < CX_Q8_ISA_COUNT) ? q8_isa_names[isa] : "unknown";
}

static q8_ukernel q8_kernel(int isa)
{
#ifdef CX_Q8_ARM64
    if (isa == CX_Q8_NEON_DOT)
        return q8_ukr_neon_dot;
#endif
#ifdef CX_Q8_X86
    if (isa == CX_Q8_AVX512_VNNI)
        return q8_ukr_avx512_vnni;
    if (isa == CX_Q8_AVX_VNNI)
        return q8_ukr_avx_vnni;
    if (isa == CX_Q8_AVX2)
        return q8_ukr_avx2;
#endif
    (void)isa;
    return q8_ukr_generic;
}

cx_int cx_q8_packed_size(cx_int k, cx_int n)
{
    return ((k + 3) / 4) * 4 * ((n + Q8_PANEL - 1) / Q8_PANEL) * Q8_PANEL;
}

void cx_q8_pack(cx_int k, cx_int n, const int8_t *w, int8_t *packed)
{
    cx_int k4 = (k + 3) / 4, panels = (n + Q8_PANEL - 1) / Q8_PANEL;
    memset(packed, 0, (size_t)cx_q8_packed_size(k, n));
    for (cx_int p = 0; p < panels; p++)
        for (cx_int kk = 0; kk < k; kk++)
            for (cx_int j = 0; j < Q8_PANEL && p * Q8_PANEL + j < n; j++)
                packed[((p * k4 + kk / 4) * Q8_PANEL + j) * 4 + kk % 4] = w[kk * n + p * Q8_PANEL + j];
}

/* Rounding by the float32 magic constant 1.5 * 2^23: round half to even for |v| < 2^22, with
 * plain adds (no SSE4.1 needed, the same bits on every CPU; the AVX2 variant's cvtps2dq rounds
 * the same way). The clamps come first, so NaN becomes -limit, then 0. */
static void quantize_generic(cx_int count, const float *restrict x, float inv_scale, int zp, int qmax,
                             uint8_t *restrict q)
{
    const float magic = 12582912.0f, limit = 4194304.0f;
    for (cx_int i = 0; i < count; i++) {
        float v = x[i] * inv_scale;
        v = v > -limit ? v : -limit;
        v = v < limit ? v : limit;
        int r = (int)((v + magic) - magic) + zp;
        q[i] = (uint8_t)(r < 0 ? 0 : (r > qmax ? qmax : r));
    }
}

#ifdef CX_Q8_X86
__attribute__((target("avx2"))) static void quantize_avx2(cx_int count, const float *x, float inv_scale, int zp,
                                                          int qmax, uint8_t *q)
{
    const __m256 inv = _mm256_set1_ps(inv_scale), lo = _mm256_set1_ps(-4194304.0f), hi = _mm256_set1_ps(4194304.0f);
    const __m256i vzp = _mm256_set1_epi32(zp);
    const __m128i top = _mm_set1_epi8((char)qmax);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    cx_int i = 0;
    for (; i + 32 <= count; i += 32) {
        __m256i r[4];
        for (int j = 0; j < 4; j++) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), inv);
            v = _mm256_min_ps(_mm256_max_ps(v, lo), hi); /* max(NaN, lo) = lo, as the generic code */
            r[j] = _mm256_add_epi32(_mm256_cvtps_epi32(v), vzp);
        }
        /* int32 -> int16 -> uint8 with saturation (clamps to [0, 255]), lanes back in order */
        const __m256i w01 = _mm256_packs_epi32(r[0], r[1]), w23 = _mm256_packs_epi32(r[2], r[3]);
        __m256i b = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(w01, w23), order);
        b = _mm256_min_epu8(b, _mm256_set_m128i(top, top));
        _mm256_storeu_si256((__m256i *)(q + i), b);
    }
    quantize_generic(count - i, x + i, inv_scale, zp, qmax, q + i);
}
#endif

void cx_q8_quantize(cx_int count, const float *x, float inv_scale, int zp, int qmax, uint8_t *q, int n_threads)
{
    const cx_int chunk = 1 << 16, chunks = (count + chunk - 1) / chunk;
#ifdef CX_Q8_X86
    const int avx2 = cx_q8_isa_best() >= CX_Q8_AVX2;
#endif
    #pragma omp parallel for schedule(static) num_threads(n_threads) if (chunks > 1)
    for (cx_int c = 0; c < chunks; c++) {
        const cx_int start = c * chunk, n = count - start < chunk ? count - start : chunk;
#ifdef CX_Q8_X86
        if (avx2) {
            quantize_avx2(n, x + start, inv_scale, zp, qmax, q + start);
            continue;
        }
#endif
        quantize_generic(n, x + start, inv_scale, zp, qmax, q + start);
    }
}

static int any_high_bit(cx_int count, const uint8_t *x)
{
    uint8_t acc = 0;
    for (cx_int i = 0; i < count; i++)
        acc |= x[i];
    return acc >> 7;
}

typedef struct {
    cx_int h, w, cin, kh, kw, sh, sw, dh, dw, pad_t, pad_l, k, kp;
    const uint8_t *x;
    int zp;
} q8_geometry;

/* One im2col row: the kh x kw x cin patch of output position (img, oy, ox), zero point outside. */
static inline __attribute__((always_inline)) void im2col_row(const q8_geometry *g, cx_int img, cx_int oy, cx_int ox, uint8_t *restrict dst)
{
    const cx_int cin = g->cin, iy0 = oy * g->sh - g->pad_t, ix0 = ox * g->sw - g->pad_l;
    const cx_int run = g->kw * cin; /* a kernel row's bytes, contiguous in x when dw == 1 and inside */
    const int inside_x = g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->w;
    for (cx_int a = 0; a < g->kh; a++) {
        const cx_int iy = iy0 + a * g->dh;
        const uint8_t *row = g->x + (img * g->h + iy) * g->w * cin;
        if (inside_x && iy >= 0 && iy < g->h) {
            const uint8_t *src = row + ix0 * cin;
            if (run == 3) { /* 3x3 kernels on one channel (grey images): the loop would cost more */
                dst[0] = src[0], dst[1] = src[1], dst[2] = src[2];
            } else {
                for (cx_int t = 0; t < run; t++)
                    dst[t] = src[t];
            }
            dst += run;
            continue;
        }
        for (cx_int b = 0; b < g->kw; b++, dst += cin) {
            const cx_int ix = ix0 + b * g->dw;
            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                memset(dst, g->zp, (size_t)cin);
            else
                memcpy(dst, row + ix * cin, (size_t)cin);
        }
    }
    for (cx_int t = g->k; t < g->kp; t++)
        *dst++ = 0;
}

/* A little-endian 32-bit word as the CPU reads it (byte order of the 3x3 one-channel im2col). */
static inline uint32_t cx_le32(uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap32(v);
#else
    return v;
#endif
}

/* The im2col rows of output row oy, columns 0..count-1, when no patch reaches the padding and
 * dilation is 1 (valid convolutions): each kernel row is a contiguous run of kw * cin bytes. */
static inline __attribute__((always_inline)) void im2col_inside(const q8_geometry *g, cx_int img, cx_int oy,
                                                                cx_int count, uint8_t *restrict dst)
{
    const cx_int cin = g->cin, run = g->kw * cin, step = g->sw * cin;
    const uint8_t *rows = g->x + ((img * g->h + oy * g->sh) * g->w) * cin;
    const cx_int pitch = g->w * cin;
    cx_int ox = 0;
    if (run == 3 && g->kh == 3 && g->kp == 12) {
        /* 3x3 kernels on one channel (grey images): each 12-byte row from three 4-byte loads (the last
         * column goes the byte way: its loads would read past the row, maybe past x) */
        for (; ox + 1 < count; ox++, dst += 12) {
            const uint8_t *src = rows + ox * step;
            uint32_t w0, w1, w2, out[3];
            memcpy(&w0, src, 4), memcpy(&w1, src + pitch, 4), memcpy(&w2, src + 2 * pitch, 4);
            w0 = cx_le32(w0), w1 = cx_le32(w1), w2 = cx_le32(w2);
            out[0] = cx_le32((w0 & 0xFFFFFFu) | (w1 << 24));
            out[1] = cx_le32(((w1 >> 8) & 0xFFFFu) | (w2 << 16));
            out[2] = cx_le32((w2 >> 16) & 0xFFu);
            memcpy(dst, out, 12);
        }
    }
    for (; ox < count; ox++, dst += g->kp) {
        uint8_t *d = dst;
        for (cx_int a = 0; a < g->kh; a++, d += run) {
            const uint8_t *src = rows + a * pitch + ox * step;
            if (run == 3) { /* 3x3 kernels on one channel (grey images): a loop would cost more */
                d[0] = src[0], d[1] = src[1], d[2] = src[2];
            } else {
                for (cx_int t = 0; t < run; t++)
                    d[t] = src[t];
            }
        }
        for (cx_int t = g->k; t < g->kp; t++)
            dst[t] = 0;
    }
}

#ifdef CX_Q8_X86
/* The uint8 epilogue on 8 channels at a time, the same operations as the scalar loop (cvtps2dq
 * rounds half to even as the magic constant does); returns the channels done. */
__attribute__((target("avx2"))) static cx_int requantize_avx2(const int32_t *acc, const int32_t *offset,
                                                              const float *scale, cx_int cout, int zp, int lo,
                                                              uint8_t *out)
{
    const __m256 low = _mm256_set1_ps(-4194304.0f), high = _mm256_set1_ps(4194304.0f);
    const __m256i vzp = _mm256_set1_epi32(zp), vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(255);
    cx_int c = 0;
    for (; c + 8 <= cout; c += 8) {
        const __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + c)),
                                           _mm256_loadu_si256((const __m256i *)(offset + c)));
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(scale + c));
        f = _mm256_min_ps(_mm256_max_ps(f, low), high);
        __m256i r = _mm256_add_epi32(_mm256_cvtps_epi32(f), vzp);
        r = _mm256_min_epi32(_mm256_max_epi32(r, vlo), vhi);
        const __m256i w = _mm256_packus_epi32(r, r), b = _mm256_packus_epi16(w, w);
        const __m128i both = _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
        _mm_storel_epi64((__m128i *)(out + c), both);
    }
    return c;
}
#endif

static inline __attribute__((always_inline)) void epilogue_row(const cx_q8_epilogue *e, const int32_t *restrict acc,
                                                                cx_int cout, void *y, cx_int index, int avx2)
{
    const int32_t *restrict offset = e->offset;
    if (!e->out_u8) {
        float *restrict out = (float *)y + index;
        const float *restrict scale = e->scale;
        if (e->relu) {
            for (cx_int c = 0; c < cout; c++) {
                const int32_t v = acc[c] + offset[c];
                out[c] = (float)(v & -(int32_t)(v > 0)) * scale[c]; /* max(v, 0) without a branch */
            }
        } else {
            for (cx_int c = 0; c < cout; c++)
                out[c] = (float)(acc[c] + offset[c]) * scale[c];
        }
        return;
    }
    /* the quantizer's arithmetic (cx_q8_quantize) on the float32 product */
    uint8_t *restrict out = (uint8_t *)y + index;
    const float *restrict scale = e->scale;
    const float magic = 12582912.0f, limit = 4194304.0f;
    const int zp = e->zp_out, lo = e->relu ? e->zp_out : 0;
    cx_int c = 0;
#ifdef CX_Q8_X86
    if (avx2)
        c = requantize_avx2(acc, offset, scale, cout, zp, lo, out);
#endif
    for (; c < cout; c++) {
        float v = (float)(acc[c] + offset[c]) * scale[c];
        v = v > -limit ? v : -limit;
        v = v < limit ? v : limit;
        const int r = (int)((v + magic) - magic) + zp;
        out[c] = (uint8_t)(r < lo ? lo : (r > 255 ? 255 : r));
    }
}

static inline __attribute__((always_inline)) void max_into(int32_t *restrict best, const int32_t *restrict row, cx_int n)
{
    for (cx_int c = 0; c < n; c++)
        best[c] = row[c] > best[c] ? row[c] : best[c];
}

/* Max over the ph x pw window (rows of the task's sum tile) of each channel, then the epilogue. */
static inline __attribute__((always_inline)) void pool_epilogue(const int32_t *c, cx_int ldc, cx_int owu, cx_int ph,
                                                                 cx_int pw, cx_int px, cx_int cout, int32_t *best,
                                                                 const cx_q8_epilogue *e, void *y, cx_int index,
                                                                 int avx2)
{
    if (ph == 1 && pw == 1) {
        epilogue_row(e, c + px * ldc, cout, y, index, avx2);
        return;
    }
    memcpy(best, c + px * pw * ldc, (size_t)cout * sizeof(int32_t));
    for (cx_int r = 0; r < ph; r++)
        for (cx_int s = 0; s < pw; s++)
            max_into(best, c + (r * owu + px * pw + s) * ldc, cout);
    epilogue_row(e, best, cout, y, index, avx2);
}

#define Q8_TASK_ROWS 64

typedef struct {
    q8_geometry g;
    cx_int k4, panels, ldc, poh, pow_, owu, unit_rows, units, group, max_rows, cout, ph, pw;
    const int8_t *packed;
    const cx_q8_epilogue *epi;
    void *y;
    q8_ukernel kernel;
    int wide, inside;
} q8_job;

/* One task: im2col of `group` units (ph conv rows each), the GEMM, pooling and epilogue. Written
 * once, inlined into a baseline and an AVX2 copy (the epilogue and pooling loops vectorise there;
 * no FMA is enabled, so the arithmetic is the same). */
static inline __attribute__((always_inline)) void run_task(const q8_job *j, cx_int t, uint8_t *abuf, int32_t *cbuf,
                                                            int avx2)
{
    const cx_int u0 = t * j->group, u1 = u0 + j->group < j->units ? u0 + j->group : j->units;
    const cx_int rows = (u1 - u0) * j->unit_rows, kp = j->g.kp, ldc = j->ldc;
    uint8_t *dst = abuf;
    for (cx_int u = u0; u < u1; u++) {
        const cx_int img = u / j->poh, oy0 = (u % j->poh) * j->ph;
        for (cx_int r = 0; r < j->ph; r++, dst += j->owu * kp) {
            if (j->inside)
                im2col_inside(&j->g, img, oy0 + r, j->owu, dst);
            else
                for (cx_int ox = 0; ox < j->owu; ox++)
                    im2col_row(&j->g, img, oy0 + r, ox, dst + ox * kp);
        }
    }
    for (cx_int p = 0; p < j->panels; p += 2)
        for (cx_int r = 0; r < rows; r += Q8_MR_MAX)
            j->kernel(j->k4, abuf + r * kp, kp, j->packed + p * j->k4 * 4 * Q8_PANEL, j->k4 * 4 * Q8_PANEL,
                      j->panels - p >= 2 ? 2 : 1, cbuf + r * ldc + p * Q8_PANEL, ldc, j->wide);
    for (cx_int u = u0; u < u1; u++)
        for (cx_int px = 0; px < j->pow_; px++)
            pool_epilogue(cbuf + (u - u0) * j->unit_rows * ldc, ldc, j->owu, j->ph, j->pw, px, j->cout,
                          cbuf + j->max_rows * ldc, j->epi, j->y, (u * j->pow_ + px) * j->cout, avx2);
}

static void run_task_generic(const q8_job *j, cx_int t, uint8_t *abuf, int32_t *cbuf)
{
    run_task(j, t, abuf, cbuf, 0);
}

#ifdef CX_Q8_X86
__attribute__((target("avx2"))) static void run_task_avx2(const q8_job *j, cx_int t, uint8_t *abuf, int32_t *cbuf)
{
    run_task(j, t, abuf, cbuf, 1);
}
#endif

int cx_q8_conv2d(cx_int n, cx_int h, cx_int w, cx_int cin, const uint8_t *x, int zp_x,
                 cx_int kh, cx_int kw, cx_int cout, const int8_t *packed,
                 cx_int sh, cx_int sw, cx_int dh, cx_int dw, cx_int pad_t, cx_int pad_l,
                 cx_int oh, cx_int ow, cx_int ph, cx_int pw,
                 const cx_q8_epilogue *epi, void *y, int isa, int n_threads)
{
    q8_job j;
    j.g = (q8_geometry){h, w, cin, kh, kw, sh, sw, dh, dw, pad_t, pad_l, kh * kw * cin, 0, x, zp_x};
    j.k4 = (j.g.k + 3) / 4;
    j.g.kp = 4 * j.k4;
    j.panels = (cout + Q8_PANEL - 1) / Q8_PANEL;
    j.ldc = j.panels * Q8_PANEL;
    j.poh = oh / ph, j.pow_ = ow / pw, j.owu = j.pow_ * pw, j.unit_rows = ph * j.owu, j.units = n * j.poh;
    if (j.units <= 0 || j.pow_ <= 0)
        return 0;
    j.group = j.unit_rows >= Q8_TASK_ROWS ? 1 : Q8_TASK_ROWS / j.unit_rows;
    j.max_rows = (j.group * j.unit_rows + Q8_MR_MAX - 1) / Q8_MR_MAX * Q8_MR_MAX;
    j.cout = cout, j.ph = ph, j.pw = pw, j.packed = packed, j.epi = epi, j.y = y;
    j.kernel = q8_kernel(isa);
    j.wide = isa == CX_Q8_AVX2 && any_high_bit(n * h * w * cin, x);
    j.inside = pad_t == 0 && pad_l == 0 && dh == 1 && dw == 1 && (oh - 1) * sh + kh <= h && (ow - 1) * sw + kw <= w;
    void (*task)(const q8_job *, cx_int, uint8_t *, int32_t *) = run_task_generic;
#ifdef CX_Q8_X86
    if (isa >= CX_Q8_AVX2 && isa <= CX_Q8_AVX512_VNNI)
        task = run_task_avx2;
#endif
    const cx_int tasks = (j.units + j.group - 1) / j.group;
    int failed = 0;
    #pragma omp parallel num_threads(n_threads) if (tasks > 1)
    {
        uint8_t *abuf = calloc((size_t)(j.max_rows * j.g.kp), 1);
        int32_t *cbuf = malloc((size_t)(j.max_rows * j.ldc + cout) * sizeof(int32_t));
        if (!abuf || !cbuf) {
            #pragma omp atomic write
            failed = 1;
        }
        /* dynamic: on a shared machine a descheduled thread's tasks go to the other ones (each task
         * writes its own outputs with integer sums: the same bits for any schedule) */
        #pragma omp for schedule(dynamic, 1)
        for (cx_int t = 0; t < tasks; t++)
            if (abuf && cbuf)
                task(&j, t, abuf, cbuf);
        free(abuf);
        free(cbuf);
    }
    return failed ? -1 : 0;
}
