#include "conv.h"

#include <string.h>

#include "convx_omp.h"
#include "epilogue.h"
#include "gemm.h"

/* Upper bound on the row groups of the weight gradient: enough to feed the
 * threads, few enough that the partial sums stay small. Fixed, so the sum
 * order never depends on the thread count. */
#define CX_WGRAD_GROUPS 16

#define real float
#define FN(name) name##_f32
#include "conv_impl.h"
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#include "conv_impl.h"
#undef real
#undef FN
