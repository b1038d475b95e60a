#include "activations.h"

#include "activations_math.h"
#include "convx_omp.h"

#define real float
#define FN(name) name##_f32
#define CX_EXP expf
#include "activations_impl.h"
#undef real
#undef FN
#undef CX_EXP

#define real double
#define FN(name) name##_f64
#define CX_EXP exp
#include "activations_impl.h"
#undef real
#undef FN
#undef CX_EXP

int cx_act_input_needed(int act, const double *params)
{
    return cx_act_needs_input(act, params);
}
