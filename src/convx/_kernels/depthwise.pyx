"""Depthwise 2-D convolution, the transposed convolution's forward pass, and
column sums (bias gradients), on NHWC activations (see csrc/depthwise.h).

The depthwise kernel is (KH, KW, C, M), Keras' DepthwiseConv2D layout: output
channel ``c * M + m`` is input channel ``c`` convolved with ``kernel[:, :, c, m]``.
"""

import numpy as np

cimport numpy as cnp

from convx._kernels._checks cimport (
    check_shape, empty_output_error, float_array, output_array, output_arrays, output_length, padding_mode,
    positive_pair,
)
from convx._kernels.activations import activation_code
from convx._kernels.conv import _bias, _inputs
from convx._kernels.threads cimport effective_num_threads

cnp.import_array()

ctypedef long long cx_int

#: Largest kernel height the kernels take.
MAX_KERNEL_HEIGHT = 64

cdef extern from "depthwise.h" nogil:
    ctypedef struct cx_dw_shape:
        cx_int n, h, w, c, m, kh, kw, oh, ow, sh, sw, dh, dw, pad_top, pad_left
    ctypedef struct cx_conv_shape:
        cx_int n, h, w, cin, kh, kw, cout, oh, ow, sh, sw, dh, dw, pad_top, pad_left
    int cx_depthwise_forward_f32(const cx_dw_shape *s, const float *x, const float *kernel, const float *bias,
                                 int act, float *y, int n_threads)
    int cx_depthwise_forward_f64(const cx_dw_shape *s, const double *x, const double *kernel, const double *bias,
                                 int act, double *y, int n_threads)
    int cx_depthwise_backward_f32(const cx_dw_shape *s, const float *x, const float *kernel, const float *dz,
                                  float *dx, float *dkernel, float *dbias, int n_threads)
    int cx_depthwise_backward_f64(const cx_dw_shape *s, const double *x, const double *kernel, const double *dz,
                                  double *dx, double *dkernel, double *dbias, int n_threads)
    int cx_column_sums_f32(const float *m, cx_int rows, cx_int cols, float *sum, int n_threads)
    int cx_column_sums_f64(const double *m, cx_int rows, cx_int cols, double *sum, int n_threads)
    int cx_conv_transpose_forward_f32(const cx_conv_shape *s, const float *x, const float *kernel,
                                      const float *bias, int act, float *y, int n_threads)
    int cx_conv_transpose_forward_f64(const cx_conv_shape *s, const double *x, const double *kernel,
                                      const double *bias, int act, double *y, int n_threads)


cdef void *_data(cnp.ndarray a):
    return cnp.PyArray_DATA(a) if a is not None else NULL


def _check_kernel_height(kh):
    if kh > MAX_KERNEL_HEIGHT:
        raise ValueError(f"kernel height must be <= {MAX_KERNEL_HEIGHT}, got {kh}")


cdef cx_dw_shape _geometry(x, kernel, strides, padding, dilation) except *:
    """Validate x/kernel/options and return the depthwise convolution's shape record."""
    cdef cx_dw_shape s
    sh, sw = positive_pair(strides, "strides")
    dh, dw = positive_pair(dilation, "dilation")
    same = padding_mode(padding)
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(
            f"kernel must have C = {x.shape[3]} (the channels of x) on axis 2, got kernel shape {kernel.shape}"
        )
    if min(kernel.shape) < 1:
        raise ValueError(f"kernel dimensions must be >= 1, got kernel shape {kernel.shape}")
    _check_kernel_height(kernel.shape[0])
    s.n, s.h, s.w, s.c = x.shape
    s.kh, s.kw, _, s.m = kernel.shape
    s.oh, s.pad_top = output_length(s.h, s.kh, sh, dh, same)
    s.ow, s.pad_left = output_length(s.w, s.kw, sw, dw, same)
    if s.oh < 1 or s.ow < 1:
        raise empty_output_error(s.oh, s.ow, f"depthwise conv2d with kernel {s.kh}x{s.kw}, dilation {(dh, dw)}",
                                 s.h, s.w)
    s.sh, s.sw, s.dh, s.dw = sh, sw, dh, dw
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
    cdef cnp.ndarray y = output_array(out, "out", (s.n, s.oh, s.ow, s.c * s.m), x.dtype)
    cdef void *px = _data(x)
    cdef void *pk = _data(kernel)
    cdef void *pb = _data(bias)
    cdef void *py = _data(y)
    cdef int nt = effective_num_threads(), status
    if x.dtype == np.float32:
        with nogil:
            status = cx_depthwise_forward_f32(&s, <float *>px, <float *>pk, <float *>pb, act, <float *>py, nt)
    else:
        with nogil:
            status = cx_depthwise_forward_f64(&s, <double *>px, <double *>pk, <double *>pb, act, <double *>py, nt)
    if status == -2:  # checked above; the C kernels keep the kernel rows' list on the stack
        raise ValueError(f"kernel height must be <= {MAX_KERNEL_HEIGHT}, got {s.kh}")
    if status != 0:
        raise MemoryError("depthwise_forward: could not allocate scratch buffers")
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
                                          (x.dtype,) * 3)
    cdef cnp.ndarray dx = dx_
    cdef cnp.ndarray dkernel = dkernel_
    cdef cnp.ndarray dbias = dbias_
    cdef void *px = _data(x)
    cdef void *pk = _data(kernel)
    cdef void *pdz = _data(dz)
    cdef void *pdx = _data(dx)
    cdef void *pdk = _data(dkernel)
    cdef void *pdb = _data(dbias)
    cdef int nt = effective_num_threads(), status
    if x.dtype == np.float32:
        with nogil:
            status = cx_depthwise_backward_f32(&s, <float *>px, <float *>pk, <float *>pdz, <float *>pdx,
                                               <float *>pdk, <float *>pdb, nt)
    else:
        with nogil:
            status = cx_depthwise_backward_f64(&s, <double *>px, <double *>pk, <double *>pdz, <double *>pdx,
                                               <double *>pdk, <double *>pdb, nt)
    if status == -2:  # checked above; the C kernels keep the kernel rows' list on the stack
        raise ValueError(f"kernel height must be <= {MAX_KERNEL_HEIGHT}, got {s.kh}")
    if status != 0:
        raise MemoryError("depthwise_backward: could not allocate scratch buffers")
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
    cdef cnp.ndarray total = output_array(out, "out", (cols,), m.dtype)
    cdef void *pm = _data(m)
    cdef void *ps = _data(total)
    cdef int nt = effective_num_threads(), status
    if cols == 0:
        return total
    if m.dtype == np.float32:
        with nogil:
            status = cx_column_sums_f32(<float *>pm, rows, cols, <float *>ps, nt)
    else:
        with nogil:
            status = cx_column_sums_f64(<double *>pm, rows, cols, <double *>ps, nt)
    if status != 0:
        raise MemoryError("column_sums: could not allocate scratch buffers")
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
    s.sh, s.sw, s.dh, s.dw = sh, sw, dh, dw
    bias = _bias(bias, x.dtype, s.cin)
    cdef cnp.ndarray y = output_array(out, "out", (s.n, oh, ow, s.cin), x.dtype)
    cdef void *px = _data(x)
    cdef void *pk = _data(kernel)
    cdef void *pb = _data(bias)
    cdef void *py = _data(y)
    cdef int nt = effective_num_threads(), status
    if x.dtype == np.float32:
        with nogil:
            status = cx_conv_transpose_forward_f32(&s, <float *>px, <float *>pk, <float *>pb, act, <float *>py, nt)
    else:
        with nogil:
            status = cx_conv_transpose_forward_f64(&s, <double *>px, <double *>pk, <double *>pb, act,
                                                   <double *>py, nt)
    if status != 0:
        raise MemoryError("conv_transpose_forward: could not allocate scratch buffers")
    return y
