#include "gemm.h"

#include <string.h>

#include "convx_omp.h"
#include "cpu_features.h"
#include "gemm_ukernels.h"

/* cx_scratch slots of cx_gemm: the shared B panels, each thread's A block. */
enum { CX_SLOT_GEMM_B, CX_SLOT_GEMM_A };

/* The M and N blocks of cx_tuning.h in elements of `real`. */
#define CX_MC_TARGET (CX_GEMM_MC_BYTES / (cx_int)sizeof(real))
#define CX_NC_TARGET (CX_GEMM_NC_BYTES / (cx_int)sizeof(real))

#define real float
#define FN(name) name##_f32
typedef struct {
    int mr, nr;
    void (*run)(cx_int, const float *, const float *, float *, cx_int, int, int, float);
    void (*run_indirect)(cx_int, cx_int, const float *const *, const float *, float *, cx_int, int, int, float);
    void (*run_unpacked)(cx_int, cx_int, const float *const *, const float *, cx_int, float *, cx_int, int, int,
                         float);
} ukernel_t_f32;
static const ukernel_t_f32 *select_ukernel_f32(void)
{
    static const ukernel_t_f32 generic = {4, 8, ukr_generic_f32, ukr_indirect_generic_f32, ukr_unpacked_generic_f32};
#ifdef CX_HAVE_X86
    static const ukernel_t_f32 avx2 = {6, 16, ukr_avx2_f32, ukr_indirect_avx2_f32, ukr_unpacked_avx2_f32};
    static const ukernel_t_f32 avx512 = {8, 32, ukr_avx512_f32, ukr_indirect_avx512_f32, ukr_unpacked_avx512_f32};
    if (cx_isa_selected() == CX_ISA_AVX512)
        return &avx512;
    if (cx_isa_selected() == CX_ISA_AVX2)
        return &avx2;
#endif
#ifdef CX_HAVE_NEON
    static const ukernel_t_f32 neon = {8, 12, ukr_neon_f32, ukr_indirect_neon_f32, NULL};
    if (cx_isa_selected() == CX_ISA_NEON)
        return &neon;
#endif
    return &generic;
}
#include "gemm_impl.h"
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
typedef struct {
    int mr, nr;
    void (*run)(cx_int, const double *, const double *, double *, cx_int, int, int, double);
    void (*run_indirect)(cx_int, cx_int, const double *const *, const double *, double *, cx_int, int, int, double);
    void (*run_unpacked)(cx_int, cx_int, const double *const *, const double *, cx_int, double *, cx_int, int, int,
                         double);
} ukernel_t_f64;
static const ukernel_t_f64 *select_ukernel_f64(void)
{
    static const ukernel_t_f64 generic = {4, 4, ukr_generic_f64, ukr_indirect_generic_f64, ukr_unpacked_generic_f64};
#ifdef CX_HAVE_X86
    static const ukernel_t_f64 avx2 = {6, 8, ukr_avx2_f64, ukr_indirect_avx2_f64, NULL};
    if (cx_isa_avx2_class())
        return &avx2;
#endif
    return &generic;
}
#include "gemm_impl.h"
#undef real
#undef FN
