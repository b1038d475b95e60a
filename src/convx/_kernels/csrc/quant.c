/* int8 convolution / dense driver: im2col per task into u8 rows, the chosen micro-kernel, then
 * max pooling on the int32 sums and the scalar epilogue (see quant.h for the arithmetic). */
#include "quant.h"

#include <stdlib.h>
#include <string.h>

#include "convx_omp.h"
#include "cpu_features.h"
#include "quant_ukernels.h"

static const char *const q8_isa_names[CX_Q8_ISA_COUNT] = {"generic", "avx2", "avx_vnni", "avx512_vnni"};

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
    default:
        return 0;
    }
}

/* The fastest variant the CPU runs; CONVX_ISA=generic or avx2 (the float kernels' switch) caps it. */
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
 * plain adds (no SSE4.1 needed, vectorised by the compiler, the same bits on every CPU). */
void cx_q8_quantize(cx_int count, const float *x, float inv_scale, int zp, int qmax, uint8_t *q, int n_threads)
{
    const float magic = 12582912.0f, limit = 4194304.0f;
    #pragma omp parallel for schedule(static) num_threads(n_threads) if (count > 65536)
    for (cx_int i = 0; i < count; i++) {
        float v = x[i] * inv_scale;
        v = v > -limit ? v : -limit; /* NaN goes here, and to 0 below */
        v = v < limit ? v : limit;
        int r = (int)((v + magic) - magic) + zp;
        q[i] = (uint8_t)(r < 0 ? 0 : (r > qmax ? qmax : r));
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
static void im2col_row(const q8_geometry *g, cx_int img, cx_int oy, cx_int ox, uint8_t *dst)
{
    const cx_int cin = g->cin;
    for (cx_int a = 0; a < g->kh; a++) {
        const cx_int iy = oy * g->sh - g->pad_t + a * g->dh;
        for (cx_int b = 0; b < g->kw; b++, dst += cin) {
            const cx_int ix = ox * g->sw - g->pad_l + b * g->dw;
            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) {
                memset(dst, g->zp, (size_t)cin);
                continue;
            }
            const uint8_t *src = g->x + ((img * g->h + iy) * g->w + ix) * cin;
            if (cin < 16) { /* a call per pixel would cost more than the copy (grey images: 1 byte) */
                for (cx_int c = 0; c < cin; c++)
                    dst[c] = src[c];
            } else {
                memcpy(dst, src, (size_t)cin);
            }
        }
    }
    memset(dst, 0, (size_t)(g->kp - g->k));
}

static inline void epilogue_row(const cx_q8_epilogue *e, const int32_t *acc, cx_int cout, void *y, cx_int index)
{
    if (!e->out_u8) {
        float *out = (float *)y + index;
        for (cx_int c = 0; c < cout; c++) {
            int32_t v = acc[c] + e->offset[c];
            if (e->relu && v < 0)
                v = 0;
            out[c] = (float)v * e->scale[c];
        }
        return;
    }
    uint8_t *out = (uint8_t *)y + index;
    const int lo = e->relu ? (e->zp_out < 0 ? 0 : e->zp_out) : 0;
    for (cx_int c = 0; c < cout; c++) {
        const int64_t v = (int64_t)acc[c] + e->offset[c];
        const int s = e->shift[c];
        int64_t r = ((v * e->mult[c] + ((int64_t)1 << (s - 1))) >> s) + e->zp_out;
        r = r < lo ? lo : (r > 255 ? 255 : r);
        out[c] = (uint8_t)r;
    }
}

/* Max over the ph x pw window (rows of the task's sum tile) of each channel, then the epilogue. */
static void pool_epilogue(const int32_t *c, cx_int ldc, cx_int owu, cx_int ph, cx_int pw, cx_int px, cx_int cout,
                          int32_t *best, const cx_q8_epilogue *e, void *y, cx_int index)
{
    if (ph == 1 && pw == 1) {
        epilogue_row(e, c + px * ldc, cout, y, index);
        return;
    }
    memcpy(best, c + px * pw * ldc, (size_t)cout * sizeof(int32_t));
    for (cx_int r = 0; r < ph; r++)
        for (cx_int s = 0; s < pw; s++) {
            const int32_t *row = c + (r * owu + px * pw + s) * ldc;
            for (cx_int ch = 0; ch < cout; ch++)
                best[ch] = row[ch] > best[ch] ? row[ch] : best[ch];
        }
    epilogue_row(e, best, cout, y, index);
}

#define Q8_TASK_ROWS 64

int cx_q8_conv2d(cx_int n, cx_int h, cx_int w, cx_int cin, const uint8_t *x, int zp_x,
                 cx_int kh, cx_int kw, cx_int cout, const int8_t *packed,
                 cx_int sh, cx_int sw, cx_int dh, cx_int dw, cx_int pad_t, cx_int pad_l,
                 cx_int oh, cx_int ow, cx_int ph, cx_int pw,
                 const cx_q8_epilogue *epi, void *y, int isa, int n_threads)
{
    q8_geometry g = {h, w, cin, kh, kw, sh, sw, dh, dw, pad_t, pad_l, kh * kw * cin, 0, x, zp_x};
    const cx_int k4 = (g.k + 3) / 4;
    g.kp = 4 * k4;
    const cx_int panels = (cout + Q8_PANEL - 1) / Q8_PANEL, ldc = panels * Q8_PANEL;
    const cx_int poh = oh / ph, pow_ = ow / pw, owu = pow_ * pw, unit_rows = ph * owu, units = n * poh;
    if (units <= 0 || pow_ <= 0)
        return 0;
    const cx_int group = unit_rows >= Q8_TASK_ROWS ? 1 : Q8_TASK_ROWS / unit_rows;
    const cx_int tasks = (units + group - 1) / group;
    const cx_int max_rows = (group * unit_rows + Q8_MR_MAX - 1) / Q8_MR_MAX * Q8_MR_MAX;
    const q8_ukernel kernel = q8_kernel(isa);
    const int wide = isa == CX_Q8_AVX2 && any_high_bit(n * h * w * cin, x);
    int failed = 0;
    #pragma omp parallel num_threads(n_threads) if (tasks > 1)
    {
        uint8_t *abuf = calloc((size_t)(max_rows * g.kp), 1);
        int32_t *cbuf = malloc((size_t)(max_rows * ldc + cout) * sizeof(int32_t));
        if (!abuf || !cbuf) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(static)
        for (cx_int t = 0; t < tasks; t++) {
            if (!abuf || !cbuf)
                continue;
            const cx_int u0 = t * group, u1 = u0 + group < units ? u0 + group : units;
            const cx_int rows = (u1 - u0) * unit_rows;
            uint8_t *dst = abuf;
            for (cx_int u = u0; u < u1; u++)
                for (cx_int r = 0; r < ph; r++)
                    for (cx_int ox = 0; ox < owu; ox++, dst += g.kp)
                        im2col_row(&g, u / poh, (u % poh) * ph + r, ox, dst);
            for (cx_int p = 0; p < panels; p += 2)
                for (cx_int r = 0; r < rows; r += Q8_MR_MAX)
                    kernel(k4, abuf + r * g.kp, g.kp, packed + p * k4 * 4 * Q8_PANEL, k4 * 4 * Q8_PANEL,
                           panels - p >= 2 ? 2 : 1, cbuf + r * ldc + p * Q8_PANEL, ldc, wide);
            for (cx_int u = u0; u < u1; u++)
                for (cx_int px = 0; px < pow_; px++)
                    pool_epilogue(cbuf + (u - u0) * unit_rows * ldc, ldc, owu, ph, pw, px, cout,
                                  cbuf + max_rows * ldc, epi, y, (u * pow_ + px) * cout);
        }
        free(abuf);
        free(cbuf);
    }
    return failed ? -1 : 0;
}
