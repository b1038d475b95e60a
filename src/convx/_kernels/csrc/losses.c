#include "losses.h"

#include <math.h>

#include "convx_omp.h"
#include "epilogue.h" /* only for the inline stable sigmoid, cx_sigmoid_f32/_f64 */

#define real float
#define FN(name) name##_f32
#define CX_EXP expf
#define CX_LOG logf
#define CX_LOG1P log1pf
#define CX_FABS fabsf
#include "losses_impl.h"
#undef CX_EXP
#undef CX_LOG
#undef CX_LOG1P
#undef CX_FABS
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#define CX_EXP exp
#define CX_LOG log
#define CX_LOG1P log1p
#define CX_FABS fabs
#include "losses_impl.h"
#undef CX_EXP
#undef CX_LOG
#undef CX_LOG1P
#undef CX_FABS
#undef real
#undef FN
