/* The int8 convolution of every variant the (emulated) arm64 CPU runs against the generic C one, bit
 * for bit: built for arm64 and run under qemu-aarch64 by test_quant_kernels.py. Random shapes, inputs
 * with 0 / 127 / 128 / 255 bytes and -128 / 127 weights, pooling, both epilogues, 1 and 2 threads.
 * Prints the best variant and the number of failures; exits non-zero on any. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "quant.h"

static int failures = 0;

static void run_case(int n, int h, int w, int cin, int k, int cout, int pool, int u8, unsigned seed)
{
    srand(seed);
    const int kk = k * k * cin, oh = h - k + 1, ow = w - k + 1, poh = oh / pool, pw = ow / pool;
    uint8_t *x = malloc((size_t)n * h * w * cin);
    int8_t *wt = malloc((size_t)kk * cout), *packed = malloc((size_t)cx_q8_packed_size(kk, cout));
    int32_t *offset = malloc(sizeof(int32_t) * cout);
    float *scale = malloc(sizeof(float) * cout);
    const size_t out_bytes = (size_t)n * poh * pw * cout * (u8 ? 1 : 4);
    unsigned char *ref = malloc(out_bytes), *got = malloc(out_bytes);
    static const uint8_t edges[] = {0, 127, 128, 255};
    for (long i = 0; i < (long)n * h * w * cin; i++)
        x[i] = rand() % 3 ? (uint8_t)(rand() & 255) : edges[rand() & 3];
    for (long i = 0; i < (long)kk * cout; i++)
        wt[i] = rand() % 3 ? (int8_t)(rand() % 255 - 127) : (rand() & 1 ? 127 : -128);
    for (int c = 0; c < cout; c++) {
        offset[c] = rand() % 20001 - 10000;
        scale[c] = 1e-3f * (1 + rand() % 100);
    }
    cx_q8_pack(kk, cout, wt, packed);
    cx_q8_epilogue e = {offset, scale, 9, 1, u8};
    cx_q8_conv2d(n, h, w, cin, x, 5, k, k, cout, packed, 1, 1, 1, 1, 0, 0, oh, ow, pool, pool, &e, ref,
                 CX_Q8_GENERIC, 1);
    for (int isa = 1; isa < CX_Q8_ISA_COUNT; isa++) {
        if (!cx_q8_isa_supported(isa))
            continue;
        for (int threads = 1; threads <= 2; threads++) {
            memset(got, 0xAB, out_bytes);
            cx_q8_conv2d(n, h, w, cin, x, 5, k, k, cout, packed, 1, 1, 1, 1, 0, 0, oh, ow, pool, pool, &e, got, isa,
                         threads);
            if (memcmp(got, ref, out_bytes) != 0) {
                printf("FAIL %s n=%d h=%d cin=%d k=%d cout=%d pool=%d u8=%d threads=%d\n", cx_q8_isa_name(isa), n, h,
                       cin, k, cout, pool, u8, threads);
                failures++;
            }
        }
    }
    free(x); free(wt); free(packed); free(offset); free(scale); free(ref); free(got);
}

int main(void)
{
    printf("isa %s\n", cx_q8_isa_name(cx_q8_isa_best()));
    const int shapes[][6] = {{1, 5, 5, 1, 3, 3}, {2, 9, 8, 17, 3, 33}, {3, 6, 6, 64, 1, 16}, {1, 12, 12, 32, 3, 64},
                             {4, 7, 7, 5, 2, 40}};
    for (unsigned s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int pool = 1; pool <= 2; pool++)
            for (int u8 = 0; u8 <= 1; u8++)
                run_case(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], shapes[s][4], shapes[s][5], pool, u8,
                         s * 7 + pool * 3 + u8);
    printf("%d failures\n", failures);
    return failures != 0;
}
