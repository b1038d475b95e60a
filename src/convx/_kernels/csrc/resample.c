/* Instantiates resample_impl.h for float32 and float64; the sampling positions (float32
 * arithmetic, as TensorFlow computes them for every dtype) are shared by both. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convx_common.h"
#include "convx_omp.h"
#include "resample.h"

/* Backward tasks are (image, block of this many channels): the partition depends on the
 * shape only, and each task visits its output pixels in one order. */
#define CX_RESAMPLE_CBLOCK 16

/* One output position along an axis of a bilinear resize: the two source indices and the weight
 * of the upper one (TensorFlow's compute_interpolation_weights, half-pixel centres). */
typedef struct {
    cx_int lo, hi;
    float lerp;
} cx_axis_tap;

static void bilinear_axis(cx_int in, cx_int out, cx_axis_tap *taps)
{
    const float scale = (float)in / (float)out;
    cx_int i;
    for (i = 0; i < out; ++i) {
        const float v = ((float)i + 0.5f) * scale - 0.5f;
        const float f = floorf(v);
        const cx_int lo = (cx_int)f, hi = (cx_int)ceilf(v);
        taps[i].lo = lo < 0 ? 0 : lo;
        taps[i].hi = hi > in - 1 ? in - 1 : hi;
        taps[i].lerp = v - f;
    }
}

/* Nearest neighbour: min(floor((i + 0.5) * scale), in - 1), at least 0. Stored in .lo. */
static void nearest_axis(cx_int in, cx_int out, cx_axis_tap *taps)
{
    const float scale = (float)in / (float)out;
    cx_int i;
    for (i = 0; i < out; ++i) {
        cx_int v = (cx_int)floorf(((float)i + 0.5f) * scale);
        v = v > in - 1 ? in - 1 : v;
        taps[i].lo = taps[i].hi = v < 0 ? 0 : v;
        taps[i].lerp = 0.0f;
    }
}

/* Row taps (*ty) then column taps (*tx) of a resize in one malloc'ed block (free the result); NULL
 * when out of memory. */
static cx_axis_tap *resize_taps(cx_int h, cx_int w, cx_int oh, cx_int ow, int interpolation,
                                const cx_axis_tap **ty, const cx_axis_tap **tx)
{
    cx_axis_tap *taps = cx_malloc((size_t)(oh + ow) * sizeof(cx_axis_tap));
    if (taps == NULL)
        return NULL;
    *ty = taps;
    *tx = taps + oh;
    if (interpolation == CX_INTERP_BILINEAR) {
        bilinear_axis(h, oh, taps);
        bilinear_axis(w, ow, taps + oh);
    } else {
        nearest_axis(h, oh, taps);
        nearest_axis(w, ow, taps + oh);
    }
    return taps;
}

/* For each input index r along an axis, the outputs first..last that read it (first > last: none).
 * Taps are monotone in the output index, so these outputs are contiguous. */
typedef struct {
    cx_int first, last;
} cx_span;

static void axis_spans(const cx_axis_tap *taps, cx_int out, cx_int in, cx_span *spans)
{
    cx_int i, r;
    for (r = 0; r < in; ++r) {
        spans[r].first = out;
        spans[r].last = -1;
    }
    for (i = 0; i < out; ++i) {
        const cx_int both[2] = {taps[i].lo, taps[i].hi};
        int k;
        for (k = 0; k < 2; ++k) {
            cx_span *sp = spans + both[k];
            sp->first = i < sp->first ? i : sp->first;
            sp->last = i > sp->last ? i : sp->last;
        }
    }
}

/* Spans of the rows (then of the columns) of a resize, malloc'ed in one block (free the result). */
static cx_span *resize_spans(const cx_axis_tap *ty, const cx_axis_tap *tx, cx_int h, cx_int w, cx_int oh, cx_int ow)
{
    cx_span *spans = cx_malloc((size_t)(h + w) * sizeof(cx_span));
    if (spans == NULL)
        return NULL;
    axis_spans(ty, oh, h, spans);
    axis_spans(tx, ow, w, spans + h);
    return spans;
}

static inline float clamp_coord(float v, cx_int len)
{
    const float hi = (float)(len - 1);
    v = v > 0.0f ? v : 0.0f; /* Eigen's scalar_clamp_op: min(max(v, 0), len - 1) */
    return v < hi ? v : hi;
}

/* TensorFlow's MapCoordinate for each fill mode (image_ops.h), float32 as there. */
static inline float map_coord(float v, cx_int len, int mode)
{
    switch (mode) {
    case CX_FILL_REFLECT:
        if (v < 0) {
            if (len <= 1) {
                v = 0;
            } else {
                const cx_int sz2 = 2 * len;
                if (v < (float)sz2)
                    v = (float)(sz2 * (cx_int)(-v / (float)sz2)) + v;
                v = v < (float)(-len) ? v + (float)sz2 : -v - 1;
            }
        } else if (v > (float)(len - 1)) {
            if (len <= 1) {
                v = 0;
            } else {
                const cx_int sz2 = 2 * len;
                v -= (float)(sz2 * (cx_int)(v / (float)sz2));
                if (v >= (float)len)
                    v = (float)sz2 - v - 1;
            }
        }
        return clamp_coord(v, len);
    case CX_FILL_WRAP:
        if (v < 0) {
            if (len <= 1) {
                v = 0;
            } else {
                const cx_int sz = len - 1;
                v += (float)(len * ((cx_int)(-v / (float)sz) + 1));
            }
        } else if (v > (float)(len - 1)) {
            if (len <= 1) {
                v = 0;
            } else {
                const cx_int sz = len - 1;
                v -= (float)(len * (cx_int)(v / (float)sz));
            }
        }
        return clamp_coord(v, len);
    case CX_FILL_NEAREST:
        return clamp_coord(v, len);
    default: /* constant */
        return v;
    }
}

/* Where output pixel (ox, oy) reads: up to 4 taps (pixel offsets y * w + x, -1 for the fill
 * value) and the bilinear weights wx0 = x_ceil - x, wx1 = x - x_floor, wy0, wy1 (as TensorFlow
 * forms them). kind 0: every tap is the fill value; 1: nearest, off[0]; 2: bilinear. */
typedef struct {
    int kind;
    cx_int off[4];
    float wx0, wx1, wy0, wy1;
} cx_sample;

static inline cx_int tap_offset(cx_int y, cx_int x, cx_int h, cx_int w)
{
    return (0 <= y && y < h && 0 <= x && x < w) ? y * w + x : -1;
}

static inline void sample_point(const float *t, cx_int ox, cx_int oy, cx_int h, cx_int w, int interpolation,
                                int mode, cx_sample *s)
{
    const float fx = (float)ox, fy = (float)oy;
    const float k = t[6] * fx + t[7] * fy + 1.f;
    float x, y;
    if (k == 0) {
        s->kind = 0;
        return;
    }
    x = (t[0] * fx + t[1] * fy + t[2]) / k;
    y = (t[3] * fx + t[4] * fy + t[5]) / k;
    /* Positions beyond any image (k near 0, or huge transforms), infinite or NaN: the fill value.
     * (TensorFlow converts them to integers in the fill modes' arithmetic, which is undefined.) */
    if (!(fabsf(x) < 1e15f && fabsf(y) < 1e15f)) {
        s->kind = 0;
        return;
    }
    x = map_coord(x, w, mode);
    y = map_coord(y, h, mode);
    /* Far outside (constant mode) or NaN: every tap reads the fill value (and no float is
     * converted to an integer out of range). */
    if (!(x > -2.0f && x < (float)w + 1.0f && y > -2.0f && y < (float)h + 1.0f)) {
        s->kind = 0;
        return;
    }
    if (interpolation == CX_INTERP_NEAREST) {
        s->kind = 1;
        s->off[0] = tap_offset((cx_int)roundf(y), (cx_int)roundf(x), h, w);
    } else {
        const float yf = floorf(y), xf = floorf(x), yc = yf + 1, xc = xf + 1;
        const cx_int y0 = (cx_int)yf, x0 = (cx_int)xf, y1 = (cx_int)yc, x1 = (cx_int)xc;
        s->kind = 2;
        s->off[0] = tap_offset(y0, x0, h, w);
        s->off[1] = tap_offset(y0, x1, h, w);
        s->off[2] = tap_offset(y1, x0, h, w);
        s->off[3] = tap_offset(y1, x1, h, w);
        s->wx0 = xc - x;
        s->wx1 = x - xf;
        s->wy0 = yc - y;
        s->wy1 = y - yf;
    }
}

#define real float
#define FN(name) name##_f32
#include "resample_impl.h"
#undef real
#undef FN

#define real double
#define FN(name) name##_f64
#include "resample_impl.h"
#undef real
#undef FN
