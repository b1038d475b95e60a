"""Activation functions (forward and backward) over float32/float64 arrays.

The forward pass is the shared bias + activation epilogue (``csrc/epilogue.c``)
with no bias; the backward pass works from the forward *output* ``y``.
Softmax is taken over the last axis.
"""

import numpy as np

cimport numpy as cnp

from convx._kernels cimport threads
from convx._kernels cimport _checks

cnp.import_array()

cdef extern from "epilogue.h" nogil:
    void cx_bias_act_f32(float *y, cnp.int64_t rows, cnp.int64_t cols, const float *bias, int act, int n_threads)
    void cx_bias_act_f64(double *y, cnp.int64_t rows, cnp.int64_t cols, const double *bias, int act, int n_threads)

cdef extern from "activations.h" nogil:
    void cx_act_backward_f32(const float *y, const float *dy, float *dx, cnp.int64_t rows, cnp.int64_t cols,
                             int act, int n_threads)
    void cx_act_backward_f64(const double *y, const double *dy, double *dx, cnp.int64_t rows, cnp.int64_t cols,
                             int act, int n_threads)

# Must match enum convx_activation in csrc/convx_common.h.
ACTIVATION_CODES = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "softmax": 4}


def activation_code(name):
    """Return the C code (``CX_ACT_*``) of an activation name.

    Parameters
    ----------
    name : str or None
        ``'linear'`` (or None), ``'relu'``, ``'sigmoid'``, ``'tanh'`` or
        ``'softmax'``; case-insensitive.

    Returns
    -------
    int
    """
    if name is None:
        return ACTIVATION_CODES["linear"]
    if not isinstance(name, str):
        raise TypeError(f"activation must be a str or None, got {type(name).__name__}")
    code = ACTIVATION_CODES.get(name.lower())
    if code is None:
        valid = ", ".join(repr(k) for k in ACTIVATION_CODES)
        raise ValueError(f"activation must be one of {valid} or None, got {name!r}")
    return code


def _output(out, like, name="out"):
    """Return a C-contiguous array shaped and typed like `like`: `out`, or a new one."""
    if out is None:
        return np.empty_like(like, order="C")
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray or None, got {type(out).__name__}")
    if out.dtype != like.dtype:
        raise TypeError(f"{name} must have dtype {like.dtype.name}, got {out.dtype.name}")
    if out.shape != like.shape:
        raise ValueError(f"{name} must have shape {like.shape}, got {out.shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{name} must be a writeable C-contiguous array")
    return out


cdef void _rows_cols(cnp.ndarray a, cnp.int64_t *rows, cnp.int64_t *cols):
    # The last axis is the softmax axis; a 0-d array is one row of one element.
    cols[0] = a.shape[a.ndim - 1] if a.ndim > 0 else 1
    rows[0] = a.size // cols[0] if cols[0] > 0 else 0


def activation_forward(x, activation, out=None):
    """Apply an activation elementwise (softmax: over the last axis).

    Parameters
    ----------
    x : numpy.ndarray, float32 or float64, any shape
    activation : str or None
        See :func:`activation_code`.
    out : numpy.ndarray, optional
        C-contiguous array of x's shape and dtype to write into; may be ``x``
        itself for an in-place update.

    Returns
    -------
    y : numpy.ndarray, shape and dtype of x
    """
    cdef int act = activation_code(activation)
    # ascontiguousarray turns a 0-d array into 1-D; keep the caller's shape.
    xc = _checks.float_array(x, "x").reshape(x.shape)
    y = _output(out, xc)
    if y is not xc:
        np.copyto(y, xc)
    cdef cnp.ndarray ya = y
    cdef cnp.int64_t rows, cols
    _rows_cols(ya, &rows, &cols)
    cdef int n_threads = threads.effective_num_threads()
    cdef void *p = cnp.PyArray_DATA(ya)
    cdef bint single = ya.dtype == np.float32
    if rows == 0:
        return y
    with nogil:
        if single:
            cx_bias_act_f32(<float *>p, rows, cols, NULL, act, n_threads)
        else:
            cx_bias_act_f64(<double *>p, rows, cols, NULL, act, n_threads)
    return y


def activation_backward(y, dy, activation, out=None):
    """Gradient of an activation, from its forward output.

    relu: ``dy * (y > 0)``; sigmoid: ``dy * y * (1 - y)``; tanh:
    ``dy * (1 - y**2)``; softmax: ``y * (dy - sum(dy * y, last axis))``;
    linear: ``dy``.

    Parameters
    ----------
    y : numpy.ndarray, float32 or float64, any shape
        The forward output.
    dy : numpy.ndarray, same shape and dtype as y
        Gradient w.r.t. the output.
    activation : str or None
        See :func:`activation_code`.
    out : numpy.ndarray, optional
        C-contiguous array of y's shape and dtype for the result; may be ``y``
        or ``dy`` for an in-place update.

    Returns
    -------
    dx : numpy.ndarray, shape and dtype of y
    """
    cdef int act = activation_code(activation)
    yc = _checks.float_array(y, "y").reshape(y.shape)
    dyc = _checks.float_array(dy, "dy", None, yc.dtype).reshape(dy.shape)
    _checks.check_shape(dyc, "dy", yc.shape)
    dx = _output(out, yc)
    cdef cnp.ndarray ya = yc, dya = dyc, dxa = dx
    cdef cnp.int64_t rows, cols
    _rows_cols(ya, &rows, &cols)
    cdef int n_threads = threads.effective_num_threads()
    cdef void *py = cnp.PyArray_DATA(ya)
    cdef void *pdy = cnp.PyArray_DATA(dya)
    cdef void *pdx = cnp.PyArray_DATA(dxa)
    cdef bint single = ya.dtype == np.float32
    if rows == 0:
        return dx
    with nogil:
        if single:
            cx_act_backward_f32(<const float *>py, <const float *>pdy, <float *>pdx, rows, cols, act, n_threads)
        else:
            cx_act_backward_f64(<const double *>py, <const double *>pdy, <double *>pdx, rows, cols, act,
                                n_threads)
    return dx
