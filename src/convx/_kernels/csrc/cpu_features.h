/* Run-time choice of the SIMD variant used by the GEMM micro-kernels.
 *
 * The variant is chosen once per process from the CPU's features, or forced
 * with the environment variable CONVX_ISA ("generic", "avx2", "neon"); a forced variant
 * the CPU cannot run falls back to the best one it can (the Python layer
 * reports the mismatch).
 */
#ifndef CONVX_CPU_FEATURES_H
#define CONVX_CPU_FEATURES_H

/* NEON is the arm64 baseline: only float32 has a NEON micro-kernel; float64 keeps the generic one. */
enum convx_isa { CX_ISA_GENERIC = 0, CX_ISA_AVX2 = 1, CX_ISA_NEON = 2, CX_ISA_COUNT = 3 };

int cx_isa_supported(int isa);
int cx_isa_selected(void);
const char *cx_isa_name(int isa);

#endif
