#include "pool.h"

#include <string.h>

#include "convx_omp.h"

#define real float
#define FN(name) name##_f32
#include "pool_impl.h"
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#include "pool_impl.h"
#undef real
#undef FN
