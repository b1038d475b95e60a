/* Instantiates norm_impl.h (batch, layer and group normalization) for float32 and float64. */
#include <math.h>
#include <string.h>

#include "convx_common.h"
#include "convx_omp.h"
#include "norm.h"

#define real float
#define FN(name) name##_f32
#include "norm_impl.h"
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#include "norm_impl.h"
#undef real
#undef FN
