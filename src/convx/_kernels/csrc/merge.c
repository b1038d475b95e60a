/* Instantiates merge_impl.h for float32 and float64; concatenation (a copy, any element size). */
#include <string.h>

#include "convx_common.h"
#include "convx_omp.h"
#include "merge.h"

#define real float
#define FN(name) name##_f32
#include "merge_impl.h"
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#include "merge_impl.h"
#undef real
#undef FN

/* A concatenation copies serially below CX_CONCAT_PARALLEL_MIN elements in all (cx_tuning.h). */

void cx_concat(char *const *parts, const cx_int *part_len, int k, char *whole, cx_int outer, cx_int elem_size,
               int split, int n_threads)
{
    cx_int row = 0, o;
    int i;
    for (i = 0; i < k; ++i)
        row += part_len[i];
#pragma omp parallel for num_threads(n_threads) schedule(static) \
    if (outer > 1 && outer * row >= CX_CONCAT_PARALLEL_MIN && n_threads > 1)
    for (o = 0; o < outer; ++o) {
        char *w = whole + o * row * elem_size;
        int p;
        for (p = 0; p < k; ++p) {
            const size_t bytes = (size_t)(part_len[p] * elem_size);
            char *part = parts[p] + o * (cx_int)bytes;
            if (split)
                memcpy(part, w, bytes);
            else
                memcpy(w, part, bytes);
            w += bytes;
        }
    }
}
