/* convx's float32 GEMM entry points against a double-precision reference, built for arm64 and run under
 * qemu-aarch64 by test_gemm.py (this x86 machine cannot run the NEON micro-kernels natively): cx_gemm_f32
 * over transposes, beta, edge sizes and 1 or 2 threads, and the indirect GEMM over block sizes. Prints the
 * variant in use and the number of failures; exits non-zero on any. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "gemm.h"
#include "cpu_features.h"

static float frand(void) { return (float)rand() / RAND_MAX * 2.0f - 1.0f; }
static int failures = 0;

static void check(const char *what, const float *c, const double *ref, long n, long k)
{
    double worst = 0;
    for (long i = 0; i < n; i++) {
        double err = fabs(c[i] - ref[i]) / (1e-30 + sqrt((double)k));
        if (!(err <= worst)) worst = err;
    }
    if (!(worst < 1e-5)) { printf("FAIL %s worst %g\n", what, worst); failures++; }
}

int main(void)
{
    printf("isa %s\n", cx_isa_name(cx_isa_selected()));
    const long sizes[][3] = {{1, 1, 1}, {8, 12, 1}, {7, 11, 5}, {9, 13, 17}, {16, 24, 300}, {33, 50, 257},
                             {150, 70, 520}, {300, 129, 64}, {8, 12, 256}, {17, 1, 3}, {1, 40, 33}};
    for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int bi = 0; bi < 2; bi++)
                    for (int nt = 1; nt <= 2; nt++) {
                        const long m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
                        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
                        float *c = malloc(sizeof(float) * m * n);
                        double *ref = malloc(sizeof(double) * m * n);
                        for (long i = 0; i < m * k; i++) a[i] = frand();
                        for (long i = 0; i < k * n; i++) b[i] = frand();
                        for (long i = 0; i < m * n; i++) c[i] = frand();
                        const float beta = bi ? 0.5f : 0.0f;
                        for (long i = 0; i < m; i++)
                            for (long j = 0; j < n; j++) {
                                double acc = beta * (double)c[i * n + j];
                                for (long p = 0; p < k; p++)
                                    acc += (double)(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
                                ref[i * n + j] = acc;
                            }
                        cx_gemm_f32(ta, tb, m, n, k, a, ta ? m : k, b, tb ? k : n, beta, c, n, nt);
                        char what[96];
                        snprintf(what, sizeof what, "gemm %ldx%ldx%ld ta%d tb%d beta%g nt%d", m, n, k, ta, tb, beta, nt);
                        check(what, c, ref, m * n, k);
                        free(a); free(b); free(c); free(ref);
                    }
    /* indirect: rows of A gathered through pointers, taps x cin, against the same product */
    const long shapes[][4] = {{8, 12, 1, 4}, {13, 30, 9, 3}, {40, 64, 9, 32}, {5, 7, 2, 100}};
    for (unsigned s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const long m = shapes[s][0], n = shapes[s][1], taps = shapes[s][2], cin = shapes[s][3], k = taps * cin;
        const int mr = cx_gemm_mr_f32();
        const long groups = (m + mr - 1) / mr;
        float *src = malloc(sizeof(float) * (m + mr) * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
        for (long i = 0; i < (m + mr) * k; i++) src[i] = frand();
        for (long i = 0; i < k * n; i++) b[i] = frand();
        const float **ptrs = malloc(sizeof(float *) * groups * taps * mr);
        for (long g = 0; g < groups; g++)
            for (long t = 0; t < taps; t++)
                for (int i = 0; i < mr; i++)
                    ptrs[(g * taps + t) * mr + i] = src + (g * mr + i) * k + t * cin;
        for (long bt = 1; bt <= taps; bt *= 2) {
            float *packed = aligned_alloc(64, sizeof(float) * cx_gemm_packed_b_size_f32(k, n) + 64);
            cx_gemm_pack_b_blocked_f32(0, k, n, b, n, bt * cin, packed);
            cx_gemm_indirect_f32(m, n, taps, cin, ptrs, packed, bt, c, n);
            double *ref = malloc(sizeof(double) * m * n);
            for (long i = 0; i < m; i++)
                for (long j = 0; j < n; j++) {
                    double acc = 0;
                    for (long p = 0; p < k; p++) acc += (double)src[i * k + p] * b[p * n + j];
                    ref[i * n + j] = acc;
                }
            char what[96];
            snprintf(what, sizeof what, "indirect %ldx%ld taps%ld cin%ld block_taps%ld", m, n, taps, cin, bt);
            check(what, c, ref, m * n, k);
            free(ref); free(packed);
        }
        free(src); free(b); free(c); free(ptrs);
    }
    printf("%d failures\n", failures);
    return failures != 0;
}
