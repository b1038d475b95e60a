/* int8 inference kernels: u8 activations x s8 weights, int32 accumulation.
 *
 * Quantization scheme (see convx.quantization):
 *   activations (per tensor):       real = s_x * (q - z_x),  q in [0, 255] (u8)
 *   weights (per output channel c): real = s_w[c] * w,       w in [-127, 127] (s8, symmetric)
 *   so  sum_k x_k w_kc = s_x s_w[c] (acc_c - z_x colsum_c),  acc_c = sum_k q_k w_kc  (exact int32).
 *
 * Epilogue, per output channel c, with v = acc_c + offset[c]  (offset = bias_q[c] - z_x colsum_c,
 * bias_q = round(bias / (s_x s_w[c])), computed by the caller):
 *   float32 output: y = (float)v * scale[c]            (one IEEE multiply: the same bits everywhere)
 *   u8 output:      q = clamp(z_out + rint((float)v * scale[c]), lo, 255), scale = s_x s_w[c] / s_out
 *                   (float32 multiply, then round half to even of the product clamped to +-2^22)
 *   relu: v < 0 -> 0 (float) / lo = z_out (u8).
 * Max pooling (windows tiling the output) takes the maximum of v before the epilogue, which is
 * monotone per channel: pool(epilogue(v)) == epilogue(pool(v)).
 *
 * Every variant (generic C, AVX2, AVX-VNNI, AVX-512 VNNI, arm64 NEON sdot) computes the same exact int32 sums and
 * shares the scalar epilogue, so results are bit-identical across ISAs and thread counts.
 */
#ifndef CONVX_QUANT_H
#define CONVX_QUANT_H

#include "convx_common.h"

enum cx_q8_isa {
    CX_Q8_GENERIC = 0, CX_Q8_AVX2 = 1, CX_Q8_AVX_VNNI = 2, CX_Q8_AVX512_VNNI = 3, CX_Q8_NEON_DOT = 4, CX_Q8_ISA_COUNT = 5
};

typedef struct {
    const int32_t *offset; /* (cout,) */
    const float *scale;    /* (cout,) */
    int zp_out;            /* u8 output */
    int relu;
    int out_u8;
} cx_q8_epilogue;

int cx_q8_isa_supported(int isa);
int cx_q8_isa_best(void);
const char *cx_q8_isa_name(int isa);

/* Bytes of the packed weights of a (k, n) int8 matrix: ceil(k/4)*4 * ceil(n/16)*16. */
cx_int cx_q8_packed_size(cx_int k, cx_int n);
/* Pack w (k, n) row-major into panels of 16 columns: [n/16][k/4][16][4], zero padded. */
void cx_q8_pack(cx_int k, cx_int n, const int8_t *w, int8_t *packed);

/* q = clamp(z + rint(x * inv_scale), 0, qmax) (round half to even; NaN -> 0). */
void cx_q8_quantize(cx_int count, const float *x, float inv_scale, int zp, int qmax, uint8_t *q, int n_threads);

/* Convolution of x (n, h, w, cin) u8 with packed HWIO weights (kh*kw*cin, cout), followed by a
 * valid max pooling with windows = strides (ph, pw) (1, 1 for none). The output, (n, oh/ph, ow/pw,
 * cout), is float32 or u8 per the epilogue. Dense layers are the 1x1 case. Returns -1 when a
 * thread's scratch memory could not be allocated (the output is then incomplete), else 0. */
int cx_q8_conv2d(cx_int n, cx_int h, cx_int w, cx_int cin, const uint8_t *x, int zp_x,
                 cx_int kh, cx_int kw, cx_int cout, const int8_t *packed,
                 cx_int sh, cx_int sw, cx_int dh, cx_int dw, cx_int pad_t, cx_int pad_l,
                 cx_int oh, cx_int ow, cx_int ph, cx_int pw,
                 const cx_q8_epilogue *epi, void *y, int isa, int n_threads);

#endif
