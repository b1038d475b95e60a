/* Instantiates optimizers_impl.h for float32 and float64. */
#include <math.h>
#include <stdlib.h>

#include "convx_common.h"
#include "convx_omp.h"
#include "optimizers.h"

#define real float
#define FN(name) name##_f32
#include "optimizers_impl.h"
#include "optimizers_more_impl.h"
#include "optimizers_common_impl.h"
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#include "optimizers_impl.h"
#include "optimizers_more_impl.h"
#include "optimizers_common_impl.h"
#undef real
#undef FN
