"""Depthwise 2-D convolution, the transposed convolution's forward pass, and
column sums (bias gradients), on NHWC activations (see csrc/depthwise.h).

The depthwise kernel is (KH, KW, C, M), Keras' DepthwiseConv2D layout: output
channel ``c * M + m`` is input channel ``c`` convolved with ``kernel[:, :, c, m]``.
"""

import numpy as np

cimport numpy as cnp

from convx._kernels._checks cimport (
    check_shape, conv_geometry, float_array, output_array, output_arrays, output_length, padding_mode, positive_pair,
)
from convx._kernels._common cimport cx_dtype, cx_int, data_of, dtype_of, raise_for_status
from convx._kernels.activations import activation_code
from convx._kernels.conv import _bias, _inputs
from convx._kernels.threads cimport effective_num_threads

cnp.import_array()

#: Largest kernel height the kernels take.
MAX_KERNEL_HEIGHT = 64

# The dtype-generic names of csrc/depthwise.h: arrays' data as void pointers, the dtype first.
cdef extern from "depthwise.h" nogil:
    ctypedef struct cx_dw_shape:
        cx_int n, h, w, c, m, kh, kw, oh, ow, sh, sw, dh, dw, pad_top, pad_left
    ctypedef struct cx_conv_shape:
        cx_int n, h, w, cin, kh, kw, cout, oh, ow, sh, sw, dh, dw, pad_top, pad_left
    int cx_depthwise_forward(cx_dtype dtype, const cx_dw_shape *s, const void *x, const void *kernel,
                             const void *bias, int act, void *y, int n_threads)
    int cx_depthwise_backward(cx_dtype dtype, const cx_dw_shape *s, const void *x, const void *kernel,
                              const void *dz, void *dx, void *dkernel, void *dbias, int n_threads)
    int cx_column_sums(cx_dtype dtype, const void *m, cx_int rows, cx_int cols, void *sum, int n_threads)
    int cx_conv_transpose_forward(cx_dtype dtype, const cx_conv_shape *s, const void *x, const void *kernel,
                                  const void *bias, int act, void *y, int n_threads)


def _check_kernel_height(kh):
    if kh > MAX_KERNEL_HEIGHT:
        raise ValueError(f"kernel height must be <= {MAX_KERNEL_HEIGHT}, got {kh}")


cdef cx_dw_shape _geometry(x, kernel, strides, padding, dilation) except *:
    """Validate x/kernel/options and return the depthwise convolution's shape record."""
    cdef cx_dw_shape s
    s.oh, s.ow, s.pad_top, s.pad_left, s.sh, s.sw, s.dh, s.dw = conv_geometry(
        x.shape, kernel.shape, strides, padding, dilation, "depthwise conv2d", "C"
    )
    _check_kernel_height(kernel.shape[0])
    s.n, s.h, s.w, s.c = x.shape
    s.kh, s.kw, _, s.m = kernel.shape
    return s


def depthwise_forward(x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1), activation="linear",
                      out=None):
    """Depthwise convolution forward pass with fused bias and activation.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C), float32 or float64
    kernel : ndarray, shape (KH, KW, C, M), dtype of `x`
    bias : ndarray, shape (C * M,), optional
    strides, dilation : int or (int, int), default (1, 1)
    padding : {'valid', 'same'}, default 'valid'
        'same' pads as TensorFlow does (the extra pixel after).
    activation : str or None, default 'linear'
    out : ndarray, shape (N, OH, OW, C * M), optional
        Written in place and returned.

    Returns
    -------
    y : ndarray, shape (N, OH, OW, C * M); channel ``c * M + m`` from ``kernel[..., c, m]``.
    """
    x, kernel = _inputs(x, kernel)
    cdef int act = activation_code(activation)
    cdef cx_dw_shape s = _geometry(x, kernel, strides, padding, dilation)
    bias = _bias(bias, x.dtype, s.c * s.m)
    cdef cnp.ndarray y = output_array(out, "out", (s.n, s.oh, s.ow, s.c * s.m), x.dtype, (x, kernel, bias),
                                      ("x", "kernel", "bias"))
    cdef void *px = data_of(x)
    cdef void *pk = data_of(kernel)
    cdef void *pb = data_of(bias)
    cdef void *py = data_of(y)
    cdef cx_dtype dt = dtype_of(x)
    cdef int nt = effective_num_threads(), status
    with nogil:
        status = cx_depthwise_forward(dt, &s, px, pk, pb, act, py, nt)
    raise_for_status(status, "depthwise_forward")
    return y


def depthwise_backward(x, kernel, dz, strides=(1, 1), padding="valid", dilation=(1, 1), need_dx=True, out=None):
    """Gradients of a depthwise convolution.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C)
        The forward input.
    kernel : ndarray, shape (KH, KW, C, M)
    dz : ndarray, shape (N, OH, OW, C * M)
        Gradient w.r.t. the pre-activation output.
    strides, padding, dilation
        As given to :func:`depthwise_forward`.
    need_dx : bool, default True
        Skip the input gradient when False.
    out : tuple (dx, dkernel, dbias), optional
        Arrays written in place and returned (any entry may be None to allocate it).

    Returns
    -------
    dx : ndarray, shape (N, H, W, C), or None when `need_dx` is False
    dkernel : ndarray, shape (KH, KW, C, M)
        Summed over fixed groups of output rows, added in order: the same bits
        for any thread count.
    dbias : ndarray, shape (C * M,)
    """
    x, kernel = _inputs(x, kernel)
    cdef cx_dw_shape s = _geometry(x, kernel, strides, padding, dilation)
    dz = float_array(dz, "dz", 4, x.dtype)
    check_shape(dz, "dz", (s.n, s.oh, s.ow, s.c * s.m))
    dx_, dkernel_, dbias_ = output_arrays(out, ("dx", "dkernel", "dbias"),
                                          (x.shape if need_dx else None, kernel.shape, (s.c * s.m,)),
                                          (x.dtype,) * 3, (x, kernel, dz), ("x", "kernel", "dz"))
    cdef cnp.ndarray dx = dx_
    cdef cnp.ndarray dkernel = dkernel_
    cdef cnp.ndarray dbias = dbias_
    cdef void *px = data_of(x)
    cdef void *pk = data_of(kernel)
    cdef void *pdz = data_of(dz)
    cdef void *pdx = data_of(dx)
    cdef void *pdk = data_of(dkernel)
    cdef void *pdb = data_of(dbias)
    cdef cx_dtype dt = dtype_of(x)
    cdef int nt = effective_num_threads(), status
    with nogil:
        status = cx_depthwise_backward(dt, &s, px, pk, pdz, pdx, pdk, pdb, nt)
    raise_for_status(status, "depthwise_backward")
    return dx, dkernel, dbias


def column_sums(m, out=None):
    """Sum over every axis but the last (a bias gradient), in an order fixed by the shape.

    Parameters
    ----------
    m : ndarray, float32 or float64, at least 1-D
    out : ndarray, shape (m.shape[-1],), optional

    Returns
    -------
    sums : ndarray, shape (m.shape[-1],)
    """
    m = float_array(m, "m")
    if m.ndim < 1:
        raise ValueError(f"m must be at least 1-D, got a {m.ndim}-D array")
    cdef cx_int cols = m.shape[m.ndim - 1]
    cdef cx_int rows = m.size // cols if cols else 0
    cdef cnp.ndarray total = output_array(out, "out", (cols,), m.dtype, (m,), ("m",))
    cdef void *pm = data_of(m)
    cdef void *ps = data_of(total)
    cdef cx_dtype dt = dtype_of(m)
    cdef int nt = effective_num_threads(), status
    if cols == 0:
        return total
    with nogil:
        status = cx_column_sums(dt, pm, rows, cols, ps, nt)
    raise_for_status(status, "column_sums")
    return total


def conv_transpose_output_length(size, kernel, stride, dilation, padding, output_padding=None):
    """Keras' (TensorFlow's) output length of a transposed convolution along one axis."""
    span = (kernel - 1) * dilation + 1
    if padding_mode(padding) == 0:
        extra = max(span, stride) - span if output_padding is None else output_padding
        return (size - 1) * stride + span + extra
    if output_padding is None:
        return size * stride
    return (size - 1) * stride + span % 2 + output_padding


def conv_transpose_forward(x, kernel, output_size, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1),
                           activation="linear", out=None):
    """Transposed convolution with fused bias and activation: the input gradient of
    the convolution of an (N, OH, OW, F) tensor by `kernel` whose output is `x`.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C)
    kernel : ndarray, shape (KH, KW, F, C)
        Keras' Conv2DTranspose layout (a convolution kernel from F to C channels).
    output_size : (int, int)
        (OH, OW); the convolution of (OH, OW) with these strides, padding and
        dilation must give (H, W) (see :func:`conv_transpose_output_length`).
    bias : ndarray, shape (F,), optional
    strides, padding, dilation, activation
        Of the convolution (padding by TensorFlow's rule on (OH, OW)).
    out : ndarray, shape (N, OH, OW, F), optional

    Returns
    -------
    y : ndarray, shape (N, OH, OW, F)
    """
    x, kernel = _inputs(x, kernel)
    cdef int act = activation_code(activation)
    cdef cx_conv_shape s
    sh, sw = positive_pair(strides, "strides")
    dh, dw = positive_pair(dilation, "dilation")
    oh, ow = positive_pair(output_size, "output_size")
    same = padding_mode(padding)
    if kernel.shape[3] != x.shape[3]:
        raise ValueError(
            f"kernel must have C = {x.shape[3]} (the channels of x) on axis 3, got kernel shape {kernel.shape}"
        )
    if min(kernel.shape) < 1:
        raise ValueError(f"kernel dimensions must be >= 1, got kernel shape {kernel.shape}")
    s.n, s.oh, s.ow, s.cout = x.shape
    s.kh, s.kw, s.cin, _ = kernel.shape
    s.h, s.w = oh, ow
    gh, s.pad_top = output_length(oh, s.kh, sh, dh, same)
    gw, s.pad_left = output_length(ow, s.kw, sw, dw, same)
    if (gh, gw) != (s.oh, s.ow):
        raise ValueError(
            f"output_size {(oh, ow)} does not fit x of spatial size {(s.oh, s.ow)}: a convolution of {(oh, ow)} "
            f"with kernel {(s.kh, s.kw)}, strides {(sh, sw)}, dilation {(dh, dw)} and padding {padding!r} gives "
            f"{(gh, gw)}"
        )
    # x has one row (column) per axis whose stride is at least the output's length, and any such stride
    # gives the same result: capped there, the stride phases (sh * sw of them) stay as few as the pixels
    s.sh, s.sw, s.dh, s.dw = min(sh, oh), min(sw, ow), dh, dw
    bias = _bias(bias, x.dtype, s.cin)
    cdef cnp.ndarray y = output_array(out, "out", (s.n, oh, ow, s.cin), x.dtype, (x, kernel, bias),
                                      ("x", "kernel", "bias"))
    cdef void *px = data_of(x)
    cdef void *pk = data_of(kernel)
    cdef void *pb = data_of(bias)
    cdef void *py = data_of(y)
    cdef cx_dtype dt = dtype_of(x)
    cdef int nt = effective_num_threads(), status
    with nogil:
        status = cx_conv_transpose_forward(dt, &s, px, pk, pb, act, py, nt)
    raise_for_status(status, "conv_transpose_forward")
    return y
