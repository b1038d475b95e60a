#include "dense.h"

#include "epilogue.h"
#include "gemm.h"

#define real float
#define FN(name) name##_f32
#include "dense_impl.h"
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#include "dense_impl.h"
#undef real
#undef FN
