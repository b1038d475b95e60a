#include "cpu_features.h"

#include <stdlib.h>
#include <string.h>

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <intrin.h>
#include <immintrin.h>
#define CX_X86_MSVC 1
#elif (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define CX_X86_GNU 1
#endif

static const char *const isa_names[CX_ISA_COUNT] = {"generic", "avx2", "neon", "avx512"};

#if defined(CX_X86_MSVC)
static int has_avx2_fma(void)
{
    int regs[4];
    __cpuid(regs, 0);
    if (regs[0] < 7)
        return 0;
    __cpuidex(regs, 1, 0);
    int fma = (regs[2] >> 12) & 1, osxsave = (regs[2] >> 27) & 1, avx = (regs[2] >> 28) & 1;
    if (!(fma && osxsave && avx))
        return 0;
    if ((_xgetbv(0) & 0x6) != 0x6) /* OS saves XMM and YMM state */
        return 0;
    __cpuidex(regs, 7, 0);
    return (regs[1] >> 5) & 1;
}

/* AVX-512 F + VL, and the OS saving the opmask and all 32 zmm registers. */
static int has_avx512(void)
{
    int regs[4];
    if (!has_avx2_fma() || (_xgetbv(0) & 0xe6) != 0xe6)
        return 0;
    __cpuidex(regs, 7, 0);
    return ((regs[1] >> 16) & 1) && ((regs[1] >> 31) & 1);
}
#elif defined(CX_X86_GNU)
static int has_avx2_fma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* GCC and Clang's checks include the OS's support for the zmm state. */
static int has_avx512(void)
{
    return has_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}
#else
static int has_avx2_fma(void) { return 0; }
static int has_avx512(void) { return 0; }
#endif

int cx_isa_supported(int isa)
{
    switch (isa) {
    case CX_ISA_GENERIC:
        return 1;
    case CX_ISA_AVX2:
        return has_avx2_fma();
    case CX_ISA_AVX512:
        return has_avx512();
    case CX_ISA_NEON:
#if defined(__aarch64__) || defined(_M_ARM64)
        return 1;
#else
        return 0;
#endif
    default:
        return 0;
    }
}

static int choose_isa(void)
{
    const char *forced = getenv("CONVX_ISA");
    if (forced && *forced) {
        for (int isa = 0; isa < CX_ISA_COUNT; isa++)
            if (strcmp(forced, isa_names[isa]) == 0 && cx_isa_supported(isa))
                return isa;
    }
    for (int isa = CX_ISA_COUNT - 1; isa > 0; isa--)
        if (cx_isa_supported(isa))
            return isa;
    return CX_ISA_GENERIC;
}

int cx_isa_selected(void)
{
    /* Benign race: every thread computes the same value. */
    static int selected = -1;
    if (selected < 0)
        selected = choose_isa();
    return selected;
}

int cx_isa_avx2_class(void)
{
    const int isa = cx_isa_selected();
    return isa == CX_ISA_AVX2 || isa == CX_ISA_AVX512;
}

const char *cx_isa_name(int isa)
{
    return (isa >= 0 && isa < CX_ISA_COUNT) ? isa_names[isa] : "unknown";
}
