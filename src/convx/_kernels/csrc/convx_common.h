/* Shared definitions for convx's C kernels.
 *
 * Layout conventions: activations are C-contiguous NHWC, conv kernels HWIO
 * (KH, KW, C_in, C_out), dense kernels (in, out). Sizes are `cx_int`
 * (64-bit) so that large tensors never overflow an index.
 *
 * Each kernel family is written once in a `*_impl.h` file in terms of `real`
 * and `FN(name)`, and instantiated for float32 and float64 by the family's
 * `.c` file:
 *
 *     #define real float
 *     #define FN(name) name##_f32
 *     #include "pool_impl.h"
 *     #undef real
 *     #undef FN
 */
#ifndef CONVX_COMMON_H
#define CONVX_COMMON_H

#include <stdint.h>
#include <stddef.h>

typedef int64_t cx_int;

/* What a kernel that can fail returns. The Cython wrappers pass it to
 * _checks.raise_for_status, which maps each code to its Python exception; the
 * wrappers validate arguments first, so only CX_ERR_NOMEM happens in practice
 * (the others guard the C entry points against callers that skip the checks). */
typedef enum {
    CX_OK = 0,
    CX_ERR_NOMEM = -1,       /* scratch memory could not be allocated: MemoryError */
    CX_ERR_UNSUPPORTED = -2, /* a geometry or activation this kernel does not handle: ValueError */
    CX_ERR_BAD_INDEX = -3,   /* an index read from an input (pooling codes) is out of range: ValueError */
    CX_ERR_OVERFLOW = -4     /* a size does not fit in cx_int: ValueError */
} cx_status;

/* The two instances of every kernel: `name##_f32` and `name##_f64`. The Cython
 * wrappers call a kernel by its dtype-generic name with the arrays' data as
 * void pointers and the dtype of the first array (_common.pxd: dtype_of); each
 * family's header defines those names with CX_BY_DTYPE, e.g.
 *     #define cx_dense_forward(dtype, ...) CX_BY_DTYPE(dtype, cx_dense_forward, __VA_ARGS__) */
typedef enum { CX_F32 = 0, CX_F64 = 1 } cx_dtype;
#define CX_BY_DTYPE(dtype, name, ...) ((dtype) == CX_F32 ? name##_f32(__VA_ARGS__) : name##_f64(__VA_ARGS__))

/* a * b, or -1 when either is negative or the product does not fit in cx_int. */
static inline cx_int cx_mul(cx_int a, cx_int b)
{
    if (a < 0 || b < 0 || (a != 0 && b > INT64_MAX / a))
        return -1;
    return a * b;
}

/* Activation codes shared by the fused epilogues and the activation kernels. */
enum convx_activation {
    CX_ACT_LINEAR = 0,
    CX_ACT_RELU = 1,
    CX_ACT_SIGMOID = 2,
    CX_ACT_TANH = 3,
    CX_ACT_SOFTMAX = 4,
    CX_ACT_SOFTPLUS = 5,
    CX_ACT_SOFTSIGN = 6,
    CX_ACT_ELU = 7,          /* param 0: alpha (1.0) */
    CX_ACT_SELU = 8,
    CX_ACT_GELU = 9,         /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
    CX_ACT_GELU_TANH = 10,   /* tanh approximation */
    CX_ACT_SILU = 11,
    CX_ACT_HARD_SIGMOID = 12, /* relu6(x + 3) / 6 */
    CX_ACT_HARD_SILU = 13,
    CX_ACT_LEAKY_RELU = 14,  /* param 0: negative_slope (0.2) */
    CX_ACT_RELU6 = 15,
    CX_ACT_MISH = 16,
    CX_ACT_EXPONENTIAL = 17,
    CX_ACT_LOG_SOFTMAX = 18, /* over each row, like softmax */
    CX_ACT_RELU_GENERAL = 19 /* params: negative_slope (0), max_value (inf), threshold (0) */
};
#define CX_ACT_COUNT 20

#include <stdlib.h>

/* Test hook: when the environment has CONVX_TEST_ALLOC_FAIL as a module
 * loads, every allocation of that module's kernels fails, so that the tests
 * can prove each out-of-memory path reaches Python as a MemoryError
 * (tests/kernels/test_status.py). Read once per translation unit. */
static inline int cx_alloc_fails(void)
{
    static int fails = -1;
    if (fails < 0)
        fails = getenv("CONVX_TEST_ALLOC_FAIL") != NULL;
    return fails;
}

/* Plain heap memory for kernels' own tables (free with free()). */
static inline void *cx_malloc(size_t bytes) { return cx_alloc_fails() ? NULL : malloc(bytes ? bytes : 1); }

/* 64-byte aligned scratch memory for packed panels (SIMD loads, cache lines). */
#ifdef _MSC_VER
#include <malloc.h>
static inline void *cx_aligned_alloc(size_t bytes)
{
    return cx_alloc_fails() ? NULL : _aligned_malloc(bytes ? bytes : 64, 64);
}
static inline void cx_aligned_free(void *p) { _aligned_free(p); }
#else
static inline void *cx_aligned_alloc(size_t bytes)
{
    void *p = NULL;
    if (cx_alloc_fails())
        return NULL;
    return posix_memalign(&p, 64, bytes ? bytes : 64) == 0 ? p : NULL;
}
static inline void cx_aligned_free(void *p) { free(p); }
#endif

/* Per-thread scratch kept between calls: the buffers of a training step are the
 * same every step, and fresh allocations of that size come back from the OS as
 * zero-filled pages (page faults; benchmarks/run.py --cases train shows them).
 * Each translation unit has its own slots; a buffer only grows, and stays
 * allocated for the life of its thread (OpenMP workers live as long as the
 * process), except that cx_scratch_trim() frees the calling thread's buffers
 * above CX_SCRATCH_KEEP bytes (kernels call it after a call's shared buffers,
 * so a huge layer does not pin its memory). cx_scratch returns NULL when out
 * of memory. */
#ifdef _MSC_VER
#define CX_THREAD_LOCAL __declspec(thread)
#else
#define CX_THREAD_LOCAL _Thread_local
#endif
#define CX_SCRATCH_SLOTS 12
#define CX_SCRATCH_KEEP ((size_t)32 << 20)
static CX_THREAD_LOCAL void *cx_scratch_buffers[CX_SCRATCH_SLOTS];
static CX_THREAD_LOCAL size_t cx_scratch_sizes[CX_SCRATCH_SLOTS];

static inline void *cx_scratch(int slot, size_t bytes)
{
    if (bytes > cx_scratch_sizes[slot]) {
        cx_aligned_free(cx_scratch_buffers[slot]);
        cx_scratch_buffers[slot] = cx_aligned_alloc(bytes);
        cx_scratch_sizes[slot] = cx_scratch_buffers[slot] ? bytes : 0;
    }
    return cx_scratch_buffers[slot];
}

static inline void cx_scratch_trim(void)
{
    for (int slot = 0; slot < CX_SCRATCH_SLOTS; slot++)
        if (cx_scratch_sizes[slot] > CX_SCRATCH_KEEP) {
            cx_aligned_free(cx_scratch_buffers[slot]);
            cx_scratch_buffers[slot] = NULL;
            cx_scratch_sizes[slot] = 0;
        }
}

#ifdef _MSC_VER
#define CX_RESTRICT __restrict
#else
#define CX_RESTRICT restrict
#endif

#define CX_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CX_MAX(a, b) ((a) > (b) ? (a) : (b))

#include "cx_tuning.h"

#endif
