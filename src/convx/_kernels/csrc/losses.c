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

cx_int cx_first_label_outside(const int64_t *labels, cx_int n, cx_int c)
{
    int64_t bad = 0;
    for (cx_int i = 0; i < n; ++i) /* an OR of unsigned compares: vectorises, no branch */
        bad |= (uint64_t)labels[i] >= (uint64_t)c;
    if (!bad)
        return -1;
    for (cx_int i = 0; i < n; ++i)
        if ((uint64_t)labels[i] >= (uint64_t)c)
            return i;
    return -1;
}
