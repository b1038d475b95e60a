"""Resampling kernels: image resize and a per-image projective sampler, forward and backward.

Images are NHWC, float32 or float64, ``(n, height, width, channels)``.

* :func:`resize_forward` / :func:`resize_backward`: TensorFlow's ``tf.image.resize``
  without antialiasing (Keras 3 ``Resizing``, ``UpSampling2D(interpolation='bilinear')``):
  half-pixel centres; ``'bilinear'`` or ``'nearest'``.
* :func:`transform_forward` / :func:`transform_backward`: TensorFlow's
  ``ImageProjectiveTransformV3`` (Keras 3 ``ops.image.affine_transform``, behind
  ``RandomTranslation``, ``RandomRotation``, ``RandomZoom``): one row
  ``(a0, a1, a2, b0, b1, b2, c0, c1)`` per image maps output pixel ``(x, y)`` to
  the input point ``((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k)``,
  ``k = c0 x + c1 y + 1``; fill modes ``'reflect'``, ``'wrap'``, ``'constant'``,
  ``'nearest'`` with TensorFlow's exact rules; positions in float32 arithmetic.

Backward functions return the transposed sampling (both operations are linear in
the image). Results go into new C-contiguous arrays or caller-owned ``out``
buffers (C-contiguous, writeable, right shape and dtype, not overlapping the
input). Every result is bit-identical for any thread count.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t

from convx._kernels cimport threads
from convx._kernels cimport _checks
from convx._kernels._common cimport cx_int, raise_for_status

cnp.import_array()

cdef extern from "resample.h" nogil:
    int cx_resize_forward_f32(const float *x, float *y, cx_int n, cx_int h, cx_int w, cx_int c, cx_int oh,
                              cx_int ow, int interpolation, int n_threads)
    int cx_resize_forward_f64(const double *x, double *y, cx_int n, cx_int h, cx_int w, cx_int c, cx_int oh,
                              cx_int ow, int interpolation, int n_threads)
    int cx_resize_backward_f32(const float *dy, float *dx, cx_int n, cx_int h, cx_int w, cx_int c, cx_int oh,
                               cx_int ow, int interpolation, int n_threads)
    int cx_resize_backward_f64(const double *dy, double *dx, cx_int n, cx_int h, cx_int w, cx_int c, cx_int oh,
                               cx_int ow, int interpolation, int n_threads)
    int cx_transform_forward_f32(const float *x, float *y, const float *transforms, cx_int n, cx_int h, cx_int w,
                                 cx_int c, cx_int oh, cx_int ow, int interpolation, int fill_mode,
                                 float fill_value, int n_threads)
    int cx_transform_forward_f64(const double *x, double *y, const float *transforms, cx_int n, cx_int h,
                                 cx_int w, cx_int c, cx_int oh, cx_int ow, int interpolation, int fill_mode,
                                 double fill_value, int n_threads)
    int cx_transform_backward_f32(const float *dy, float *dx, const float *transforms, cx_int n, cx_int h,
                                  cx_int w, cx_int c, cx_int oh, cx_int ow, int interpolation, int fill_mode,
                                  int n_threads)
    int cx_transform_backward_f64(const double *dy, double *dx, const float *transforms, cx_int n, cx_int h,
                                  cx_int w, cx_int c, cx_int oh, cx_int ow, int interpolation, int fill_mode,
                                  int n_threads)

# Must match enum convx_interpolation and enum convx_fill_mode in csrc/resample.h.
INTERPOLATIONS = {"nearest": 0, "bilinear": 1}
FILL_MODES = {"reflect": 0, "wrap": 1, "constant": 2, "nearest": 3}


cdef int _code(object value, str name, dict table) except -1:
    if isinstance(value, str) and value in table:
        return table[value]
    raise ValueError(f"{name} must be one of {tuple(table)}, got {name}={value!r}")


cdef tuple _size(object value, str name):
    """A (height, width) pair of ints >= 1."""
    return _checks.positive_pair(value, name)


cdef _check_distinct(object out, str out_name, object read, str read_name):
    if np.shares_memory(out, read):
        raise ValueError(f"{out_name} and {read_name} must be distinct arrays, got arrays that share memory")


cdef struct Geometry:
    cx_int n, h, w, c, oh, ow


cdef Geometry _geometry(object image, object sampled):
    """Sizes of an image batch (n, h, w, c) and of its resampled batch (n, oh, ow, c)."""
    cdef Geometry g
    g.n, g.h, g.w, g.c = image.shape
    g.oh, g.ow = sampled.shape[1], sampled.shape[2]
    return g


cdef enum Op:
    RESIZE_FORWARD, RESIZE_BACKWARD, TRANSFORM_FORWARD, TRANSFORM_BACKWARD


cdef object _run(Op op, object src, object dst, object transforms, Geometry s, int mode, int fill, double fill_value):
    """Call the C kernel `op` (dtype of `src`) from `src` into `dst`, without the GIL; raise on its status."""
    cdef int n_threads = threads.effective_num_threads(), status = 0
    cdef void *a = cnp.PyArray_DATA(<cnp.ndarray>src)
    cdef void *b = cnp.PyArray_DATA(<cnp.ndarray>dst)
    cdef float *t = NULL
    if transforms is not None:
        t = <float *>cnp.PyArray_DATA(<cnp.ndarray>transforms)
    cdef bint single = src.dtype == np.float32
    with nogil:
        if op == RESIZE_FORWARD:
            if single:
                status = cx_resize_forward_f32(<float *>a, <float *>b, s.n, s.h, s.w, s.c, s.oh, s.ow, mode, n_threads)
            else:
                status = cx_resize_forward_f64(<double *>a, <double *>b, s.n, s.h, s.w, s.c, s.oh, s.ow, mode,
                                               n_threads)
        elif op == RESIZE_BACKWARD:
            if single:
                status = cx_resize_backward_f32(<float *>a, <float *>b, s.n, s.h, s.w, s.c, s.oh, s.ow, mode,
                                                n_threads)
            else:
                status = cx_resize_backward_f64(<double *>a, <double *>b, s.n, s.h, s.w, s.c, s.oh, s.ow, mode,
                                                n_threads)
        elif op == TRANSFORM_FORWARD:
            if single:
                status = cx_transform_forward_f32(<float *>a, <float *>b, t, s.n, s.h, s.w, s.c, s.oh, s.ow, mode, fill,
                                                  <float>fill_value, n_threads)
            else:
                status = cx_transform_forward_f64(<double *>a, <double *>b, t, s.n, s.h, s.w, s.c, s.oh, s.ow, mode,
                                                  fill, fill_value, n_threads)
        elif single:
            status = cx_transform_backward_f32(<float *>a, <float *>b, t, s.n, s.h, s.w, s.c, s.oh, s.ow, mode, fill,
                                               n_threads)
        else:
            status = cx_transform_backward_f64(<double *>a, <double *>b, t, s.n, s.h, s.w, s.c, s.oh, s.ow, mode,
                                               fill, n_threads)
    raise_for_status(status, "resample kernel")
    return dst


cdef tuple _backward_arrays(object dy, object input_size, object out):
    """dy checked (4-D float), the input size and the checked gradient buffer (n, h, w, c)."""
    g = _checks.float_array(dy, "dy", 4, None)
    h, w = _size(input_size, "input_size")
    n, oh, ow, c = g.shape
    dx = _checks.output_array(out, "out", (n, h, w, c), g.dtype)
    _check_distinct(dx, "out", g, "dy")
    if g.size == 0:
        dx.fill(0)
    return g, dx


cdef object _transforms(object transforms, Py_ssize_t n):
    if not isinstance(transforms, np.ndarray):
        raise TypeError(f"transforms must be a numpy.ndarray, got {type(transforms).__name__}")
    if transforms.shape != (n, 8):
        raise ValueError(f"transforms must have shape ({n}, 8) (one row per image), got {transforms.shape}")
    t = np.ascontiguousarray(transforms, dtype=np.float32)
    if not np.isfinite(t).all():
        raise ValueError("transforms must be finite")
    return t


def resize_forward(x, size, interpolation="bilinear", out=None):
    """Resize a batch of images to ``size`` (``tf.image.resize``, half-pixel centres, no antialias).

    Parameters
    ----------
    x : numpy.ndarray, (n, h, w, c), float32 or float64
    size : int or (int, int)
        Output (height, width), each >= 1.
    interpolation : {'bilinear', 'nearest'}
    out : numpy.ndarray, optional
        (n, height, width, c) of x's dtype.

    Returns
    -------
    y : numpy.ndarray, (n, height, width, c)
    """
    cdef int mode = _code(interpolation, "interpolation", INTERPOLATIONS)
    xc = _checks.float_array(x, "x", 4, None)
    oh, ow = _size(size, "size")
    n, h, w, c = xc.shape
    y = _checks.output_array(out, "out", (n, oh, ow, c), xc.dtype)
    _check_distinct(y, "out", xc, "x")
    if y.size == 0 or xc.size == 0:
        return y
    return _run(RESIZE_FORWARD, xc, y, None, _geometry(xc, y), mode, 0, 0.0)


def resize_backward(dy, input_size, interpolation="bilinear", out=None):
    """Gradient of :func:`resize_forward` w.r.t. its input (the transposed resampling).

    Parameters
    ----------
    dy : numpy.ndarray, (n, oh, ow, c), float32 or float64
    input_size : int or (int, int)
        The forward input's (height, width).
    interpolation : {'bilinear', 'nearest'}
    out : numpy.ndarray, optional
        (n, h, w, c) of dy's dtype; overwritten.

    Returns
    -------
    dx : numpy.ndarray, (n, h, w, c)
    """
    cdef int mode = _code(interpolation, "interpolation", INTERPOLATIONS)
    g, dx = _backward_arrays(dy, input_size, out)
    if dx.size == 0 or g.size == 0:
        return dx
    return _run(RESIZE_BACKWARD, g, dx, None, _geometry(dx, g), mode, 0, 0.0)


def transform_forward(x, transforms, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
                      output_size=None, out=None):
    """Sample each image at projectively transformed positions (``ImageProjectiveTransformV3``).

    Parameters
    ----------
    x : numpy.ndarray, (n, h, w, c), float32 or float64
    transforms : numpy.ndarray, (n, 8)
        Per image ``(a0, a1, a2, b0, b1, b2, c0, c1)``, output -> input coordinates
        (x along the width); used as float32.
    interpolation : {'bilinear', 'nearest'}
    fill_mode : {'reflect', 'wrap', 'constant', 'nearest'}
    fill_value : float
        Read by taps outside the image (after the fill mode's folding).
    output_size : (int, int), optional
        Output (height, width); default the input's.
    out : numpy.ndarray, optional

    Returns
    -------
    y : numpy.ndarray, (n, oh, ow, c)
    """
    cdef int mode = _code(interpolation, "interpolation", INTERPOLATIONS)
    cdef int fill = _code(fill_mode, "fill_mode", FILL_MODES)
    xc = _checks.float_array(x, "x", 4, None)
    n, h, w, c = xc.shape
    oh, ow = (h, w) if output_size is None else _size(output_size, "output_size")
    t = _transforms(transforms, n)
    fv = float(fill_value)
    y = _checks.output_array(out, "out", (n, oh, ow, c), xc.dtype)
    _check_distinct(y, "out", xc, "x")
    if y.size == 0:
        return y
    return _run(TRANSFORM_FORWARD, xc, y, t, _geometry(xc, y), mode, fill, fv)


def transform_backward(dy, transforms, input_size, interpolation="bilinear", fill_mode="reflect", out=None):
    """Gradient of :func:`transform_forward` w.r.t. the images (the fill value carries none).

    Parameters
    ----------
    dy : numpy.ndarray, (n, oh, ow, c), float32 or float64
    transforms : numpy.ndarray, (n, 8)
    input_size : int or (int, int)
        The forward input's (height, width).
    interpolation, fill_mode : as for :func:`transform_forward`
    out : numpy.ndarray, optional
        (n, h, w, c) of dy's dtype; overwritten.

    Returns
    -------
    dx : numpy.ndarray, (n, h, w, c)
    """
    cdef int mode = _code(interpolation, "interpolation", INTERPOLATIONS)
    cdef int fill = _code(fill_mode, "fill_mode", FILL_MODES)
    g, dx = _backward_arrays(dy, input_size, out)
    t = _transforms(transforms, g.shape[0])
    if dx.size == 0 or g.size == 0:
        return dx
    return _run(TRANSFORM_BACKWARD, g, dx, t, _geometry(dx, g), mode, fill, 0.0)
