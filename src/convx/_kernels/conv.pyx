"""2-D convolution on NHWC activations and HWIO kernels (see csrc/conv.h).

Conv1D is the same kernel with H = 1: the layer reshapes (N, L, C) to (N, 1, L, C).
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport uint8_t

from convx._kernels._checks cimport (
    check_shape, conv_geometry, float_array, output_array, output_arrays, positive_pair,
)
from convx._kernels._common cimport CX_ERR_BAD_INDEX, cx_dtype, cx_int, data_of, dtype_of, raise_for_status
from convx._kernels.activations import ACTIVATION_CODES, activation_code
from convx._kernels.threads cimport effective_num_threads

cnp.import_array()

#: Largest patch (KH * KW * C_in) that :func:`conv2d_maxpool_backward` takes.
SMALL_PATCH = CX_SMALL_PATCH

# The dtype-generic names of csrc/conv.h: arrays' data as void pointers, the dtype first.
cdef extern from "conv.h" nogil:
    enum: CX_SMALL_PATCH
    ctypedef struct cx_conv_shape:
        cx_int n, h, w, cin, kh, kw, cout, oh, ow, sh, sw, dh, dw, pad_top, pad_left
    int cx_conv2d_forward(cx_dtype dtype, const cx_conv_shape *s, const void *x, const void *kernel,
                          const void *bias, int act, void *y, cx_int used_h, cx_int used_w, int n_threads)
    int cx_conv2d_maxpool_forward(cx_dtype dtype, const cx_conv_shape *s, const void *x, const void *kernel,
                                  const void *bias, int act, cx_int ph, cx_int pw, void *pooled, uint8_t *codes,
                                  int n_threads)
    int cx_conv2d_maxpool_backward_codes(cx_dtype dtype, const cx_conv_shape *s, const void *x, const void *kernel,
                                         int act, cx_int ph, cx_int pw, const void *dy, const void *pooled,
                                         const uint8_t *codes, void *dx, void *dkernel, void *dbias, int n_threads)
    int cx_conv2d_maxpool_backward(cx_dtype dtype, const cx_conv_shape *s, const void *x, const void *kernel,
                                   const void *bias, int act, cx_int ph, cx_int pw, const void *dy,
                                   const void *pooled, void *dkernel, void *dbias, int n_threads)
    int cx_conv2d_backward(cx_dtype dtype, const cx_conv_shape *s, const void *x, const void *kernel, const void *dz,
                           void *dx, void *dkernel, void *dbias, int n_threads)


cdef cx_conv_shape _geometry(x, kernel, strides, padding, dilation) except *:
    """Validate x/kernel/options and return the convolution's shape record."""
    cdef cx_conv_shape s
    s.oh, s.ow, s.pad_top, s.pad_left, s.sh, s.sw, s.dh, s.dw = conv_geometry(
        x.shape, kernel.shape, strides, padding, dilation, "conv2d", "C_in"
    )
    s.n, s.h, s.w, s.cin = x.shape
    s.kh, s.kw, _, s.cout = kernel.shape
    return s


def _inputs(x, kernel):
    x = float_array(x, "x", 4)
    kernel = float_array(kernel, "kernel", 4, x.dtype)
    return x, kernel


def _bias(bias, dtype, cout):
    """`bias` checked as a C-contiguous (cout,) array of `dtype`, or None."""
    if bias is not None:
        bias = float_array(bias, "bias", 1, dtype)
        check_shape(bias, "bias", (cout,))
    return bias


def conv2d_forward(x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1), activation="linear",
                   out=None, output_window=None):
    """Convolution forward pass with fused bias and activation.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in), float32 or float64
    kernel : ndarray, shape (KH, KW, C_in, C_out), dtype of `x`
    bias : ndarray, shape (C_out,), optional
    strides, dilation : int or (int, int), default (1, 1)
    padding : {'valid', 'same'}, default 'valid'
        'same' pads as TensorFlow does (the extra pixel after).
    activation : str or None, default 'linear'
        Applied to the output; see ``activations.activation_code``.
    out : ndarray, shape (N, OH, OW, C_out), optional
        Written in place and returned (C-contiguous, dtype of `x`).
    output_window : (int, int), optional
        (UH, UW), 1 <= UH <= OH and 1 <= UW <= OW: only output rows < UH and
        columns < UW are needed (a valid max pooling after this layer reads no
        further); the others may be skipped and are then set to 0.

    Returns
    -------
    y : ndarray, shape (N, OH, OW, C_out)
    """
    x, kernel = _inputs(x, kernel)
    cdef int act = activation_code(activation)
    cdef cx_conv_shape s = _geometry(x, kernel, strides, padding, dilation)
    bias = _bias(bias, x.dtype, s.cout)
    cdef cnp.ndarray y = output_array(out, "out", (s.n, s.oh, s.ow, s.cout), x.dtype, (x, kernel, bias),
                                      ("x", "kernel", "bias"))
    cdef cx_int used_h = s.oh, used_w = s.ow
    if output_window is not None:
        used_h, used_w = positive_pair(output_window, "output_window")
        if used_h > s.oh or used_w > s.ow:
            raise ValueError(f"output_window must fit the output ({s.oh}, {s.ow}), got {output_window!r}")
    cdef void *px = data_of(x)
    cdef void *pk = data_of(kernel)
    cdef void *pb = data_of(bias)
    cdef void *py = data_of(y)
    cdef cx_dtype dt = dtype_of(x)
    cdef int nt = effective_num_threads(), status
    with nogil:
        status = cx_conv2d_forward(dt, &s, px, pk, pb, act, py, used_h, used_w, nt)
    raise_for_status(status, "conv2d_forward")
    return y


def _pooling(cx_conv_shape s, pool_size):
    """(PH, PW) of a max pooling with equal strides after the convolution `s`."""
    ph, pw = positive_pair(pool_size, "pool_size")
    if s.oh // ph < 1 or s.ow // pw < 1:
        raise ValueError(f"pool_size {(ph, pw)} is larger than the convolution's output ({s.oh}, {s.ow})")
    return ph, pw


def conv2d_maxpool_forward(x, kernel, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1),
                           activation="linear", pool_size=(2, 2), out=None, codes=None):
    """Convolution, bias and activation followed by max pooling.

    Equal to ``max_pool2d_forward(conv2d_forward(...), pool_size)`` (windows of
    ``pool_size`` with equal strides, 'valid') without the convolution's output
    ever being stored: each band of pool-height output rows is computed into a
    small buffer and pooled at once.

    Parameters
    ----------
    x, kernel, bias, strides, padding, dilation, activation
        As for :func:`conv2d_forward`.
    pool_size : int or (int, int), default (2, 2)
        Pooling window (PH, PW), also its strides.
    out : ndarray, shape (N, OH // PH, OW // PW, C_out), optional
        Written in place and returned.
    codes : ndarray, uint8, shape (N, OH // PH, OW // PW, C_out), optional
        Written in place (not returned): the position of each maximum in its
        window, row-major (the pooling's first maximum; a NaN wins), for
        :func:`conv2d_maxpool_backward_codes`. Needs PH * PW <= 64.

    Returns
    -------
    pooled : ndarray, shape (N, OH // PH, OW // PW, C_out)
    """
    x, kernel = _inputs(x, kernel)
    cdef int act = activation_code(activation)
    cdef cx_conv_shape s = _geometry(x, kernel, strides, padding, dilation)
    cdef cx_int ph, pw
    ph, pw = _pooling(s, pool_size)
    bias = _bias(bias, x.dtype, s.cout)
    pooled_shape = (s.n, s.oh // ph, s.ow // pw, s.cout)
    cdef cnp.ndarray pooled = output_array(out, "out", pooled_shape, x.dtype, (x, kernel, bias),
                                           ("x", "kernel", "bias"))
    cdef cnp.ndarray codes_ = None
    if codes is not None:
        _check_code_range(ph, pw)
        codes_ = output_array(codes, "codes", pooled_shape, np.dtype(np.uint8), (x, kernel, bias, pooled),
                              ("x", "kernel", "bias", "out"))
    cdef void *px = data_of(x)
    cdef void *pk = data_of(kernel)
    cdef void *pb = data_of(bias)
    cdef void *pp = data_of(pooled)
    cdef uint8_t *pc = <uint8_t *>data_of(codes_)
    cdef cx_dtype dt = dtype_of(x)
    cdef int nt = effective_num_threads(), status
    with nogil:
        status = cx_conv2d_maxpool_forward(dt, &s, px, pk, pb, act, ph, pw, pp, pc, nt)
    raise_for_status(status, "conv2d_maxpool_forward")
    return pooled


cdef int _relu_or_linear(activation, str what) except -1:
    """The activation's code; a fused pooling backward supports 'relu' and 'linear' only."""
    cdef int act = activation_code(activation)
    if act not in (ACTIVATION_CODES["relu"], ACTIVATION_CODES["linear"]):
        raise ValueError(f"{what} supports activation 'relu' or 'linear', got {activation!r}")
    return act


cdef tuple _pooled_inputs(dy, pooled, tuple pooled_shape, dtype):
    """dy and pooled checked as arrays of the pooled output's shape and `dtype`."""
    dy = float_array(dy, "dy", 4, dtype)
    check_shape(dy, "dy", pooled_shape)
    pooled = float_array(pooled, "pooled", 4, dtype)
    check_shape(pooled, "pooled", pooled_shape)
    return dy, pooled


cdef tuple _gradient_outputs(out, x, kernel, cx_int cout, bint need_dx, tuple inputs, tuple in_names):
    """(dx or None, dkernel, dbias) of a backward pass, from `out` or new; given ones apart from x, kernel and
    `inputs` (named `in_names`)."""
    return output_arrays(
        out, ("dx", "dkernel", "dbias"), (x.shape if need_dx else None, kernel.shape, (cout,)), (x.dtype,) * 3,
        (x, kernel) + inputs, ("x", "kernel") + in_names
    )


def conv2d_maxpool_backward(x, kernel, dy, pooled, bias=None, strides=(1, 1), padding="valid", dilation=(1, 1),
                            activation="linear", pool_size=(2, 2), out=None):
    """Kernel and bias gradients through :func:`conv2d_maxpool_forward`, for a first layer.

    Equal to ``conv2d_backward(x, kernel, dz, need_dx=False)`` where ``dz`` is
    the gradient that ``max_pool2d_backward_windows`` (``through_relu`` for a
    relu) gives for the convolution's output, which was never stored: it is
    computed again, band by band, and each band's gradient used while in
    cache. Recomputing pays for small patches only, so the layer must have
    ``KH * KW * C_in <= SMALL_PATCH`` (32) and a 'relu' or 'linear' activation;
    there is no input gradient.

    Parameters
    ----------
    x, kernel, bias, strides, padding, dilation, activation, pool_size
        As given to :func:`conv2d_maxpool_forward`.
    dy : ndarray, shape (N, OH // PH, OW // PW, C_out)
        Gradient w.r.t. the pooled output.
    pooled : ndarray, shape (N, OH // PH, OW // PW, C_out)
        The forward's output.
    out : tuple (dkernel, dbias), optional
        Arrays written in place and returned (either may be None to allocate it).

    Returns
    -------
    dkernel : ndarray, shape (KH, KW, C_in, C_out)
    dbias : ndarray, shape (C_out,)
    """
    x, kernel = _inputs(x, kernel)
    cdef int act = _relu_or_linear(activation, "conv2d_maxpool_backward")
    cdef cx_conv_shape s = _geometry(x, kernel, strides, padding, dilation)
    if s.kh * s.kw * s.cin > SMALL_PATCH:
        raise ValueError(
            f"conv2d_maxpool_backward needs KH * KW * C_in <= {SMALL_PATCH}, got kernel shape {kernel.shape}"
        )
    cdef cx_int ph, pw
    ph, pw = _pooling(s, pool_size)
    bias = _bias(bias, x.dtype, s.cout)
    dy, pooled = _pooled_inputs(dy, pooled, (s.n, s.oh // ph, s.ow // pw, s.cout), x.dtype)
    dkernel_, dbias_ = output_arrays(out, ("dkernel", "dbias"), (kernel.shape, (s.cout,)), (x.dtype,) * 2,
                                     (x, kernel, bias, dy, pooled), ("x", "kernel", "bias", "dy", "pooled"))
    cdef cnp.ndarray dkernel = dkernel_
    cdef cnp.ndarray dbias = dbias_
    cdef void *px = data_of(x)
    cdef void *pk = data_of(kernel)
    cdef void *pb = data_of(bias)
    cdef void *pdy = data_of(dy)
    cdef void *pp = data_of(pooled)
    cdef void *pdk = data_of(dkernel)
    cdef void *pdb = data_of(dbias)
    cdef cx_dtype dt = dtype_of(x)
    cdef int nt = effective_num_threads(), status
    with nogil:
        status = cx_conv2d_maxpool_backward(dt, &s, px, pk, pb, act, ph, pw, pdy, pp, pdk, pdb, nt)
    raise_for_status(status, "conv2d_maxpool_backward")
    return dkernel, dbias


def _check_code_range(ph, pw):
    if ph * pw > 64:
        raise ValueError(f"codes need pool windows of at most 64 cells, got pool_size {(ph, pw)}")


def conv2d_maxpool_backward_codes(x, kernel, dy, pooled, codes, strides=(1, 1), padding="valid", dilation=(1, 1),
                                  activation="linear", pool_size=(2, 2), need_dx=True, out=None):
    """Gradients through :func:`conv2d_maxpool_forward` from its ``codes``.

    Equal, bit for bit, to ``conv2d_backward(x, kernel, dz, ...)`` where ``dz``
    is the gradient that ``max_pool2d_backward_windows`` (``through_relu``
    for a relu) gives for the convolution's output, which was never stored:
    ``dz`` is built from ``dy``, ``pooled`` and ``codes`` for the output
    pixels that get a gradient only. Any patch size; the activation must be
    'relu' or 'linear'.

    Parameters
    ----------
    x, kernel, strides, padding, dilation, activation, pool_size
        As given to :func:`conv2d_maxpool_forward`.
    dy : ndarray, shape (N, OH // PH, OW // PW, C_out)
        Gradient w.r.t. the pooled output.
    pooled : ndarray, shape (N, OH // PH, OW // PW, C_out)
        The forward's output.
    codes : ndarray, uint8, shape (N, OH // PH, OW // PW, C_out)
        The forward's ``codes`` (each value < PH * PW).
    need_dx : bool, default True
        Skip the input gradient (first layer) when False.
    out : tuple (dx, dkernel, dbias), optional
        Arrays written in place and returned (any entry may be None to allocate it).

    Returns
    -------
    dx : ndarray, shape (N, H, W, C_in), or None when `need_dx` is False
    dkernel : ndarray, shape (KH, KW, C_in, C_out)
    dbias : ndarray, shape (C_out,)
    """
    x, kernel = _inputs(x, kernel)
    cdef int act = _relu_or_linear(activation, "conv2d_maxpool_backward_codes")
    cdef cx_conv_shape s = _geometry(x, kernel, strides, padding, dilation)
    cdef cx_int ph, pw
    ph, pw = _pooling(s, pool_size)
    _check_code_range(ph, pw)
    pooled_shape = (s.n, s.oh // ph, s.ow // pw, s.cout)
    dy, pooled = _pooled_inputs(dy, pooled, pooled_shape, x.dtype)
    if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8:
        raise TypeError(f"codes must be a uint8 numpy.ndarray, got {getattr(codes, 'dtype', type(codes).__name__)}")
    check_shape(codes, "codes", pooled_shape)
    codes = np.ascontiguousarray(codes)
    dx_, dkernel_, dbias_ = _gradient_outputs(out, x, kernel, s.cout, need_dx, (dy, pooled, codes),
                                              ("dy", "pooled", "codes"))
    cdef cnp.ndarray dkernel = dkernel_
    cdef cnp.ndarray dbias = dbias_
    cdef cnp.ndarray dx = dx_
    cdef void *px = data_of(x)
    cdef void *pk = data_of(kernel)
    cdef void *pdy = data_of(dy)
    cdef void *pp = data_of(pooled)
    cdef const uint8_t *pc = <const uint8_t *>data_of(codes)
    cdef void *pdk = data_of(dkernel)
    cdef void *pdb = data_of(dbias)
    cdef void *pdx = data_of(dx)
    cdef cx_dtype dt = dtype_of(x)
    cdef int nt = effective_num_threads(), status
    with nogil:
        status = cx_conv2d_maxpool_backward_codes(dt, &s, px, pk, act, ph, pw, pdy, pp, pc, pdx, pdk, pdb, nt)
    if status == CX_ERR_BAD_INDEX:  # checked in C, where the codes are read anyway
        raise ValueError(f"codes must be < {ph * pw} (positions in {ph}x{pw} windows), got {codes.max()}")
    raise_for_status(status, "conv2d_maxpool_backward_codes")
    return dx, dkernel, dbias


def conv2d_backward(x, kernel, dz, strides=(1, 1), padding="valid", dilation=(1, 1), need_dx=True, out=None):
    """Gradients of a convolution.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in)
        The forward input.
    kernel : ndarray, shape (KH, KW, C_in, C_out)
    dz : ndarray, shape (N, OH, OW, C_out)
        Gradient w.r.t. the pre-activation output.
    strides, padding, dilation
        As given to :func:`conv2d_forward`.
    need_dx : bool, default True
        Skip the input gradient (first layer) when False.
    out : tuple (dx, dkernel, dbias), optional
        Arrays written in place and returned (any entry may be None to allocate it).

    Returns
    -------
    dx : ndarray, shape (N, H, W, C_in), or None when `need_dx` is False
    dkernel : ndarray, shape (KH, KW, C_in, C_out)
    dbias : ndarray, shape (C_out,)
    """
    x, kernel = _inputs(x, kernel)
    cdef cx_conv_shape s = _geometry(x, kernel, strides, padding, dilation)
    dz = float_array(dz, "dz", 4, x.dtype)
    check_shape(dz, "dz", (s.n, s.oh, s.ow, s.cout))
    dx_, dkernel_, dbias_ = _gradient_outputs(out, x, kernel, s.cout, need_dx, (dz,), ("dz",))
    cdef cnp.ndarray dkernel = dkernel_
    cdef cnp.ndarray dbias = dbias_
    cdef cnp.ndarray dx = dx_
    cdef void *px = data_of(x)
    cdef void *pk = data_of(kernel)
    cdef void *pdz = data_of(dz)
    cdef void *pdk = data_of(dkernel)
    cdef void *pdb = data_of(dbias)
    cdef void *pdx = data_of(dx)
    cdef cx_dtype dt = dtype_of(x)
    cdef int nt = effective_num_threads(), status
    with nogil:
        status = cx_conv2d_backward(dt, &s, px, pk, pdz, pdx, pdk, pdb, nt)
    raise_for_status(status, "conv2d_backward")
    return dx, dkernel, dbias
