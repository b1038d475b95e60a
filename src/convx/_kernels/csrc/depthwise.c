#include "depthwise.h"

#include <math.h>
#include <string.h>

#include "convx_omp.h"
#include "cpu_features.h"
#include "epilogue.h"
#include "gemm.h"

/* Largest kernel height (rows of a tap list kept on the stack). */
#define CX_DW_MAX_TAPS 64
/* Weight-gradient row groups: at most this many, of at least this many output rows. */
#define CX_DW_GROUPS 16
#define CX_DW_GROUP_ROWS 4
/* Elements per task of the in-order sum of the groups' partials. */
#define CX_DW_SUM_BLOCK 4096

/* cx_scratch slots of this translation unit. */
enum { CX_DW_SLOT_WIDE, CX_DW_SLOT_PTRS, CX_DW_SLOT_ACC, CX_DW_SLOT_PARTIAL, CX_DW_SLOT_KPACK, CX_DW_SLOT_META,
       CX_DW_SLOT_KT };

#define real float
#define FN(name) name##_f32
#ifdef CX_HAVE_X86
#define DW_VEC_WIDTH 8
#define DW_VEC __m256
#define DW_LOAD _mm256_loadu_ps
#define DW_STORE _mm256_storeu_ps
#define DW_FMA _mm256_fmadd_ps
#define DW_ADD _mm256_add_ps
#define DW_MAX _mm256_max_ps
#define DW_ZERO _mm256_setzero_ps
#define DW_FMA_SCALAR fmaf
#endif
#include "depthwise_impl.h"
#undef DW_VEC_WIDTH
#undef DW_VEC
#undef DW_LOAD
#undef DW_STORE
#undef DW_FMA
#undef DW_ADD
#undef DW_MAX
#undef DW_ZERO
#undef DW_FMA_SCALAR
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#ifdef CX_HAVE_X86
#define DW_VEC_WIDTH 4
#define DW_VEC __m256d
#define DW_LOAD _mm256_loadu_pd
#define DW_STORE _mm256_storeu_pd
#define DW_FMA _mm256_fmadd_pd
#define DW_ADD _mm256_add_pd
#define DW_MAX _mm256_max_pd
#define DW_ZERO _mm256_setzero_pd
#define DW_FMA_SCALAR fma
#endif
#include "depthwise_impl.h"
#undef real
#undef FN
