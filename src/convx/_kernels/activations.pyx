"""Activation functions (forward and backward) over float32/float64 arrays.

The forward pass is the shared bias + activation epilogue (``csrc/epilogue.c``)
with no bias; the backward pass works from the forward *output* ``y``, and
also from the input ``x`` for the activations of :func:`needs_input` (gelu,
silu, mish, ...). Softmax and log_softmax are taken over the last axis.
Parameterised activations (``'elu'``: alpha; ``'leaky_relu'``:
negative_slope; ``'relu_general'``: negative_slope, max_value, threshold)
take ``params``, a tuple of up to 3 floats (missing ones keep the defaults).
"""

import math

import numpy as np

cimport numpy as cnp

from convx._kernels cimport threads
from convx._kernels cimport _checks
from convx._kernels._common cimport *

cnp.import_array()

# The dtype-generic names of csrc/epilogue.h and csrc/activations.h: arrays' data as void pointers, the dtype first.
cdef extern from "epilogue.h" nogil:
    void cx_act_forward(cx_dtype dtype, void *y, cx_int rows, cx_int cols, const void *bias, int act,
                        const double *params, int n_threads)

cdef extern from "activations.h" nogil:
    void cx_act_backward_x(cx_dtype dtype, const void *x, const void *y, const void *dy, void *dx, cx_int rows,
                           cx_int cols, int act, const double *params, int n_threads)
    int cx_act_input_needed(int act, const double *params)
    int cx_act_vector_kernels()

# The codes of enum convx_activation (csrc/convx_common.h, through _common.pxd) by Keras name.
ACTIVATION_CODES = {
    "linear": CX_ACT_LINEAR, "relu": CX_ACT_RELU, "sigmoid": CX_ACT_SIGMOID, "tanh": CX_ACT_TANH,
    "softmax": CX_ACT_SOFTMAX, "softplus": CX_ACT_SOFTPLUS, "softsign": CX_ACT_SOFTSIGN, "elu": CX_ACT_ELU,
    "selu": CX_ACT_SELU, "gelu": CX_ACT_GELU, "gelu_tanh": CX_ACT_GELU_TANH, "silu": CX_ACT_SILU,
    "hard_sigmoid": CX_ACT_HARD_SIGMOID, "hard_silu": CX_ACT_HARD_SILU, "leaky_relu": CX_ACT_LEAKY_RELU,
    "relu6": CX_ACT_RELU6, "mish": CX_ACT_MISH, "exponential": CX_ACT_EXPONENTIAL,
    "log_softmax": CX_ACT_LOG_SOFTMAX, "relu_general": CX_ACT_RELU_GENERAL,
}
# Defaults of the parameterised codes (csrc/activations_math.h, cx_act_params_for).
PARAM_DEFAULTS = {"elu": (1.0,), "leaky_relu": (0.2,), "relu_general": (0.0, math.inf, 0.0)}
# Taken over the last axis (a row) rather than elementwise.
ROW_ACTIVATIONS = ("softmax", "log_softmax")


cdef bint _fill_params(activation, params, double *out) except -1:
    """Write the 3 C parameters of ``activation`` into ``out``; False when ``params`` is None (defaults)."""
    if params is None:
        return False
    name = "linear" if activation is None else activation.lower()
    defaults = PARAM_DEFAULTS.get(name)
    if defaults is None:
        raise ValueError(f"activation {activation!r} takes no parameters, got params={params!r}")
    values = tuple(params)
    if len(values) > len(defaults):
        raise ValueError(f"activation {activation!r} takes at most {len(defaults)} parameters, got params={params!r}")
    values = values + defaults[len(values):]
    out[0] = out[1] = out[2] = 0.0
    for i, v in enumerate(values):
        v = float(v)
        if math.isnan(v):
            raise ValueError(f"params of activation {activation!r} must not be NaN, got params={params!r}")
        out[i] = v
    return True


def simd_variant():
    """``'avx2'`` when the float32 activations use the AVX2 kernels (sigmoid, tanh, elu, selu, gelu,
    silu, mish, exponential; csrc/activations_avx2.h), else ``'generic'`` (CONVX_ISA=generic, or a
    CPU without AVX2 and FMA)."""
    return "avx2" if cx_act_vector_kernels() else "generic"


def needs_input(activation, params=None):
    """Whether :func:`activation_backward` of ``activation`` reads the forward input ``x``.

    gelu, silu, mish, softsign, hard_silu, relu_general, and elu / leaky_relu
    with a parameter <= 0 do; the others work from the output alone.
    """
    cdef int act = activation_code(activation)
    cdef double p[3]
    cdef bint given = _fill_params(activation, params, p)
    return bool(cx_act_input_needed(act, p if given else NULL))


def activation_code(name):
    """Return the C code (``CX_ACT_*``) of an activation name.

    Parameters
    ----------
    name : str or None
        A key of ``ACTIVATION_CODES`` (``'linear'``, ``'relu'``, ``'gelu'``,
        ...) or None (linear); case-insensitive.

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


cdef void _rows_cols(cnp.ndarray a, cx_int *rows, cx_int *cols):
    # The last axis is the softmax axis; a 0-d array is one row of one element.
    cols[0] = a.shape[a.ndim - 1] if a.ndim > 0 else 1
    rows[0] = a.size // cols[0] if cols[0] > 0 else 0


def activation_forward(x, activation, out=None, params=None):
    """Apply an activation elementwise (softmax: over the last axis).

    Parameters
    ----------
    x : numpy.ndarray, float32 or float64, any shape
    activation : str or None
        See :func:`activation_code`.
    out : numpy.ndarray, optional
        C-contiguous array of x's shape and dtype to write into; may be ``x``
        itself for an in-place update.
    params : tuple of float, optional
        Parameters of ``'elu'``, ``'leaky_relu'`` or ``'relu_general'``
        (see the module docstring); None for the defaults.

    Returns
    -------
    y : numpy.ndarray, shape and dtype of x
    """
    cdef int act = activation_code(activation)
    cdef double p[3]
    cdef bint given = _fill_params(activation, params, p)
    cdef const double *pp = p if given else NULL
    # ascontiguousarray turns a 0-d array into 1-D; keep the caller's shape.
    xc = _checks.float_array(x, "x").reshape(x.shape)
    y = _output(out, xc)
    if y is not xc:
        np.copyto(y, xc)  # NumPy copies through a buffer where y overlaps x: then in place, any out is safe
    cdef cx_int rows, cols
    _rows_cols(y, &rows, &cols)
    cdef int n_threads = threads.effective_num_threads()
    cdef void *data = data_of(y)
    cdef cx_dtype dt = dtype_of(y)
    if rows == 0:
        return y
    with nogil:
        cx_act_forward(dt, data, rows, cols, NULL, act, pp, n_threads)
    return y


def activation_backward(y, dy, activation, out=None, x=None, params=None):
    """Gradient of an activation, from its forward output (and input).

    relu: ``dy * (y > 0)``; sigmoid: ``dy * y * (1 - y)``; tanh:
    ``dy * (1 - y**2)``; softmax: ``y * (dy - sum(dy * y, last axis))``;
    log_softmax: ``dy - exp(y) * sum(dy, last axis)``; linear: ``dy``; the
    others ``dy * f'(x)``, from y where :func:`needs_input` is False.

    Parameters
    ----------
    y : numpy.ndarray, float32 or float64, any shape
        The forward output.
    dy : numpy.ndarray, same shape and dtype as y
        Gradient w.r.t. the output.
    activation : str or None
        See :func:`activation_code`.
    out : numpy.ndarray, optional
        C-contiguous array of y's shape and dtype for the result; may be ``y``,
        ``dy`` or ``x`` for an in-place update.
    x : numpy.ndarray, optional
        The forward input (same shape and dtype); required when
        :func:`needs_input` is True, ignored otherwise.
    params : tuple of float, optional
        As for :func:`activation_forward`.

    Returns
    -------
    dx : numpy.ndarray, shape and dtype of y
    """
    cdef int act = activation_code(activation)
    cdef double p[3]
    cdef bint given = _fill_params(activation, params, p)
    cdef const double *pp = p if given else NULL
    yc = _checks.float_array(y, "y").reshape(y.shape)
    dyc = _checks.float_array(dy, "dy", None, yc.dtype).reshape(dy.shape)
    _checks.check_shape(dyc, "dy", yc.shape)
    xc = None
    if cx_act_input_needed(act, pp):
        if x is None:
            raise ValueError(f"activation_backward of {activation!r} needs the forward input x, got x=None")
        xc = _checks.float_array(x, "x", None, yc.dtype).reshape(x.shape)
        _checks.check_shape(xc, "x", yc.shape)
    dx = _output(out, yc)
    # elementwise and row by row, each value read before its own is written: dx may be y, dy or x, not
    # partly over them
    _checks.check_distinct((dx,), ("out",), (yc, dyc, xc), ("y", "dy", "x"), True)
    cdef cx_int rows, cols
    _rows_cols(yc, &rows, &cols)
    cdef int n_threads = threads.effective_num_threads()
    cdef const void *px = data_of(xc)
    cdef const void *py = data_of(yc)
    cdef const void *pdy = data_of(dyc)
    cdef void *pdx = data_of(dx)
    cdef cx_dtype dt = dtype_of(yc)
    if rows == 0:
        return dx
    with nogil:
        cx_act_backward_x(dt, px, py, pdy, pdx, rows, cols, act, pp, n_threads)
    return dx
