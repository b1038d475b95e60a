#include "epilogue.h"

#include <math.h>

#include "convx_omp.h"

#define real float
#define FN(name) name##_f32
#define CX_EXP expf
#define CX_TANH tanhf
#include "epilogue_impl.h"
#undef CX_EXP
#undef CX_TANH
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#define CX_EXP exp
#define CX_TANH tanh
#include "epilogue_impl.h"
#undef CX_EXP
#undef CX_TANH
#undef real
#undef FN
