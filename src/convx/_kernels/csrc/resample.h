/* Resampling kernels: image resize (nearest, bilinear) and a per-image projective
 * sampler with fill modes, forward and backward, NHWC, float32/float64.
 *
 * Resize follows TensorFlow's tf.image.resize (Keras 3 Resizing, UpSampling2D
 * 'bilinear'): half-pixel centres, no antialiasing. Bilinear: output row i
 * reads source coordinate (i + 0.5) * s - 0.5 with s = in / out (float32),
 * lower = max(floor, 0), upper = min(ceil, in - 1), lerp = coordinate - floor;
 * the value is top + (bottom - top) * ylerp with top = tl + (tr - tl) * xlerp.
 * Nearest: index min(floor((i + 0.5) * s), in - 1).
 *
 * The projective sampler is TensorFlow's ImageProjectiveTransformV3 (Keras 3's
 * affine_transform behind RandomTranslation, RandomRotation, RandomZoom): for
 * each image a row (a0, a1, a2, b0, b1, b2, c0, c1) maps the output pixel
 * (x, y) to the input point ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k),
 * k = c0 x + c1 y + 1 (k == 0: the fill value), in float32 arithmetic; the
 * point is folded into the image by the fill mode (reflect, wrap, constant,
 * nearest, TensorFlow's exact rules), then read by nearest (round half away
 * from zero) or bilinear interpolation; a tap outside the image reads
 * fill_value.
 *
 * Forward passes split output rows among threads. The resize backward pass is
 * the transposed separable resampling done as two gathers (columns, then rows:
 * each input element sums the outputs that read it, in output order), split by
 * rows; the projective backward pass (a scatter-add) gives each thread whole
 * (image, channel block) tasks that visit the output pixels in one fixed
 * order. So every result is bit-identical for any n_threads. Status: 0, or -1
 * when memory for the tables or the scratch could not be allocated.
 */
#ifndef CONVX_RESAMPLE_H
#define CONVX_RESAMPLE_H

#include "convx_common.h"

/* Must match INTERPOLATIONS and FILL_MODES in resample.pyx. */
enum convx_interpolation { CX_INTERP_NEAREST = 0, CX_INTERP_BILINEAR = 1 };
enum convx_fill_mode { CX_FILL_REFLECT = 0, CX_FILL_WRAP = 1, CX_FILL_CONSTANT = 2, CX_FILL_NEAREST = 3 };

/* y (n, oh, ow, c) = resize of x (n, h, w, c). */
int cx_resize_forward_f32(const float *x, float *y, cx_int n, cx_int h, cx_int w, cx_int c, cx_int oh, cx_int ow,
                          int interpolation, int n_threads);
int cx_resize_forward_f64(const double *x, double *y, cx_int n, cx_int h, cx_int w, cx_int c, cx_int oh,
                          cx_int ow, int interpolation, int n_threads);
/* dx (n, h, w, c) = transpose of the resize applied to dy (n, oh, ow, c); dx is overwritten. */
int cx_resize_backward_f32(const float *dy, float *dx, cx_int n, cx_int h, cx_int w, cx_int c, cx_int oh,
                           cx_int ow, int interpolation, int n_threads);
int cx_resize_backward_f64(const double *dy, double *dx, cx_int n, cx_int h, cx_int w, cx_int c, cx_int oh,
                           cx_int ow, int interpolation, int n_threads);

/* y (n, oh, ow, c) = projective sampling of x (n, h, w, c); transforms: (n, 8) float32 rows. */
int cx_transform_forward_f32(const float *x, float *y, const float *transforms, cx_int n, cx_int h, cx_int w,
                             cx_int c, cx_int oh, cx_int ow, int interpolation, int fill_mode, float fill_value,
                             int n_threads);
int cx_transform_forward_f64(const double *x, double *y, const float *transforms, cx_int n, cx_int h, cx_int w,
                             cx_int c, cx_int oh, cx_int ow, int interpolation, int fill_mode, double fill_value,
                             int n_threads);
/* dx (n, h, w, c) = gradient of that sampling w.r.t. x given dy (n, oh, ow, c); dx is overwritten.
 * The fill value is a constant: taps that read it carry no gradient. */
int cx_transform_backward_f32(const float *dy, float *dx, const float *transforms, cx_int n, cx_int h, cx_int w,
                              cx_int c, cx_int oh, cx_int ow, int interpolation, int fill_mode, int n_threads);
int cx_transform_backward_f64(const double *dy, double *dx, const float *transforms, cx_int n, cx_int h,
                              cx_int w, cx_int c, cx_int oh, cx_int ow, int interpolation, int fill_mode,
                              int n_threads);

#endif
