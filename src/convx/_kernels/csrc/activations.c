#include "activations.h"

#include "activations_avx2.h"
#include "activations_math.h"
#include "convx_omp.h"

#define real float
#define FN(name) name##_f32
#define CX_EXP expf
#define CX_EXPM1 expm1f
#define CX_ERF erff
#define CX_TANH tanhf
#include "activations_impl.h"
#undef real
#undef FN
#undef CX_EXP
#undef CX_EXPM1
#undef CX_ERF
#undef CX_TANH

#define real double
#define FN(name) name##_f64
#define CX_EXP exp
#define CX_EXPM1 expm1
#define CX_ERF erf
#define CX_TANH tanh
#include "activations_impl.h"
#undef real
#undef FN
#undef CX_EXP
#undef CX_EXPM1
#undef CX_ERF
#undef CX_TANH

int cx_act_input_needed(int act, const double *params)
{
    return cx_act_needs_input(act, params);
}

int cx_act_vector_kernels(void)
{
#ifdef CX_ACT_HAVE_AVX2
    return cx_act_avx2();
#else
    return 0;
#endif
}
