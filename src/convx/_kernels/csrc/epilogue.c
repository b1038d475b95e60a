#include "epilogue.h"

#include <math.h>

#include "activations_avx2.h"
#include "activations_math.h"
#include "convx_omp.h"

#define real float
#define FN(name) name##_f32
#define CX_EXP expf
#define CX_TANH tanhf
#define CX_EXPM1 expm1f
#define CX_LOG logf
#include "epilogue_impl.h"
#undef CX_EXP
#undef CX_TANH
#undef CX_EXPM1
#undef CX_LOG
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#define CX_EXP exp
#define CX_TANH tanh
#define CX_EXPM1 expm1
#define CX_LOG log
#include "epilogue_impl.h"
#undef CX_EXP
#undef CX_TANH
#undef CX_EXPM1
#undef CX_LOG
#undef real
#undef FN
