/* Instruction sets: which SIMD variants this compiler can build, and the
 * run-time choice among them.
 *
 * CX_HAVE_X86 / CX_HAVE_NEON say which variants are compiled here (with
 * <immintrin.h> / <arm_neon.h> included); a function marked CX_TARGET_AVX2 is
 * compiled for AVX2 + FMA whatever the build's baseline (the macro is empty
 * where no target attribute is needed or possible), and runs only when
 * cx_isa_selected() says so; CX_TARGET_AVX512 likewise for AVX-512 (F, VL).
 * The variant is chosen once per process from the CPU's features, or forced
 * with the environment variable CONVX_ISA ("generic", "avx2", "neon",
 * "avx512"); a forced variant the CPU cannot run falls back to the best one it
 * can (gemm.simd_variant() then names the one in use).
 *
 * The avx512 variant has its own float32 GEMM micro-kernels (16-float
 * vectors, twice the AVX2 width); every other kernel runs its AVX2 code
 * there, so "the AVX2 kernels apply" is cx_isa_avx2_class(), not a test for
 * CX_ISA_AVX2 alone.
 */
#ifndef CONVX_CPU_FEATURES_H
#define CONVX_CPU_FEATURES_H

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define CX_HAVE_X86 1
#define CX_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define CX_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
#include <immintrin.h>
#elif defined(_MSC_VER) && defined(_M_X64)
#define CX_HAVE_X86 1
#define CX_TARGET_AVX2
#define CX_TARGET_AVX512
#include <immintrin.h>
#else
#define CX_TARGET_AVX2
#define CX_TARGET_AVX512
#endif

#if defined(__aarch64__) || defined(_M_ARM64)
#define CX_HAVE_NEON 1
#include <arm_neon.h>
#endif

/* NEON is the arm64 baseline: only float32 has a NEON micro-kernel; float64 keeps the generic one. */
enum convx_isa { CX_ISA_GENERIC = 0, CX_ISA_AVX2 = 1, CX_ISA_NEON = 2, CX_ISA_AVX512 = 3, CX_ISA_COUNT = 4 };

int cx_isa_supported(int isa);
int cx_isa_selected(void);
/* The selected variant runs AVX2 + FMA code (avx2, or avx512 which includes it). */
int cx_isa_avx2_class(void);
const char *cx_isa_name(int isa);

#endif
