#include "pool.h"

#include <string.h>

#include "convx_omp.h"
#include "cpu_features.h"
#include "gemm_ukernels.h" /* CX_TARGET_AVX2 */

#ifndef CX_HAVE_X86
#define CX_TARGET_AVX2
#endif

#define real float
#define FN(name) name##_f32
#include "pool_impl.h"
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#include "pool_impl.h"
#undef real
#undef FN
