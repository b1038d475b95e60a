/* Instantiates embedding_impl.h for float32 and float64; the index checks and the stable row sort. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convx_common.h"
#include "convx_omp.h"
#include "embedding.h"

/* Below this many elements a gather or scatter runs on one thread. */
#ifndef CX_EMBEDDING_PARALLEL_MIN
#define CX_EMBEDDING_PARALLEL_MIN 65536
#endif

#define CX_FLOAT_INDICES(name, type)                                                   \
    cx_int name(const type *x, cx_int n, cx_int vocab, int64_t *idx)                  \
    {                                                                                  \
        for (cx_int i = 0; i < n; ++i) {                                               \
            const type v = x[i];                                                       \
            /* the comparisons are false for NaN, so it is refused too */              \
            if (!(v >= 0 && v < (type)vocab) || v != floor(v))                          \
                return i;                                                              \
            idx[i] = (int64_t)v;                                                       \
        }                                                                              \
        return -1;                                                                     \
    }

#define CX_INT_INDICES(name, type)                                                     \
    cx_int name(const type *x, cx_int n, cx_int vocab, int64_t *idx)                  \
    {                                                                                  \
        for (cx_int i = 0; i < n; ++i) {                                               \
            if (x[i] < 0 || (int64_t)x[i] >= vocab)                                    \
                return i;                                                              \
            idx[i] = (int64_t)x[i];                                                    \
        }                                                                              \
        return -1;                                                                     \
    }

CX_FLOAT_INDICES(cx_embedding_indices_f32, float)
CX_FLOAT_INDICES(cx_embedding_indices_f64, double)
CX_INT_INDICES(cx_embedding_indices_i32, int32_t)
CX_INT_INDICES(cx_embedding_indices_i64, int64_t)

/* order[0 .. n): the positions sorted by idx, equal indices in position order (LSD radix sort on
 * 8-bit digits, as many passes as vocab needs: O(n) per pass whatever the vocabulary). */
static int sort_positions(const int64_t *idx, cx_int n, cx_int vocab, int64_t *order, int64_t *tmp)
{
    cx_int count[257];
    int shift = 0;
    for (cx_int i = 0; i < n; ++i)
        order[i] = i;
    while (shift < 63 && ((vocab - 1) >> shift) > 0) {
        memset(count, 0, sizeof(count));
        for (cx_int i = 0; i < n; ++i)
            count[((idx[order[i]] >> shift) & 255) + 1]++;
        for (int d = 0; d < 256; ++d)
            count[d + 1] += count[d];
        for (cx_int i = 0; i < n; ++i)
            tmp[count[(idx[order[i]] >> shift) & 255]++] = order[i];
        memcpy(order, tmp, (size_t)n * sizeof(int64_t));
        shift += 8;
    }
    return 0;
}

/* The sorted positions and where each distinct row's run starts (starts[r] .. starts[r + 1]). */
static int group_rows(const int64_t *idx, cx_int n, cx_int vocab, int64_t **order_out, int64_t **starts_out,
                      int64_t *rows, cx_int *n_rows)
{
    int64_t *order = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    int64_t *tmp = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    int64_t *starts = malloc((size_t)(n + 1) * sizeof(int64_t));
    if (!order || !tmp || !starts) {
        free(order);
        free(tmp);
        free(starts);
        return -1;
    }
    sort_positions(idx, n, vocab, order, tmp);
    free(tmp);
    cx_int r = 0;
    for (cx_int i = 0; i < n; ++i) {
        if (i == 0 || idx[order[i]] != idx[order[i - 1]]) {
            rows[r] = idx[order[i]];
            starts[r++] = i;
        }
    }
    starts[r] = n;
    *n_rows = r;
    *order_out = order;
    *starts_out = starts;
    return 0;
}

#define real float
#define FN(name) name##_f32
#include "embedding_impl.h"
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#include "embedding_impl.h"
#undef real
#undef FN
