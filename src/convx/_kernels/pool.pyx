"""Pooling over NHWC float32/float64 activations: max, average, global max, global average.

Windows follow TensorFlow/Keras: ``strides`` default to ``pool_size``;
``'same'`` padding gives ``ceil(n / s)`` outputs with the padding split
``total // 2`` before and the rest after (``_checks.output_length``). Padded
cells never win a max and are not counted by an average. Max pools return an
``argmax`` (int64 flat index into ``x`` of the first maximum of each window in
row-major scan order) that their backward pass scatters the gradient through.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t

from convx._kernels cimport threads
from convx._kernels cimport _checks
from convx._kernels._common cimport cx_dtype, data_of, dtype_of

cnp.import_array()

# The dtype-generic names of csrc/pool.h: arrays' data as void pointers, the dtype first.
cdef extern from "pool.h" nogil:
    ctypedef struct cx_pool_geom:
        int64_t n, h, w, c, oh, ow, kh, kw, sh, sw, ph, pw
    void cx_max_pool2d_forward(cx_dtype dtype, const void *x, void *y, int64_t *argmax, const cx_pool_geom *g,
                               int n_threads)
    int64_t cx_max_pool2d_backward(cx_dtype dtype, const void *dy, const int64_t *argmax, const void *relu_x,
                                   void *dx, int64_t n_images, int64_t per_image, int64_t c, int64_t image_size,
                                   int n_threads)
    void cx_max_pool2d_backward_windows(cx_dtype dtype, const void *dy, const void *x, const void *y,
                                        int through_relu, void *dx, const cx_pool_geom *g, int n_threads)
    void cx_avg_pool2d_forward(cx_dtype dtype, const void *x, void *y, const cx_pool_geom *g, int n_threads)
    void cx_avg_pool2d_backward(cx_dtype dtype, const void *dy, void *dx, const cx_pool_geom *g, int n_threads)


cdef cx_pool_geom _geometry(shape, pool_size, strides, padding, what) except *:
    """Validate pool arguments against an (N, H, W, C) input shape; return the window geometry."""
    cdef cx_pool_geom g
    kh, kw = _checks.positive_pair(pool_size, "pool_size")
    sh, sw = (kh, kw) if strides is None else _checks.positive_pair(strides, "strides")
    same = _checks.padding_mode(padding)
    g.n, g.h, g.w, g.c = shape
    g.oh, g.ph = _checks.output_length(g.h, kh, sh, 1, same)
    g.ow, g.pw = _checks.output_length(g.w, kw, sw, 1, same)
    if g.oh < 1 or g.ow < 1:
        raise _checks.empty_output_error(g.oh, g.ow, f"{what} with pool_size={(kh, kw)}, padding={padding!r}", g.h,
                                         g.w)
    g.kh, g.kw, g.sh, g.sw = kh, kw, sh, sw
    if kh * g.w * g.c >= 2**31:
        raise ValueError(f"{what}: a window spans {kh} rows of {g.w}x{g.c} elements (2^31 or more); pool in parts")
    return g


cdef cx_pool_geom _global_geometry(shape, what) except *:
    """Geometry of one window covering the whole (H, W) plane of an (N, H, W, C) shape."""
    cdef cx_pool_geom g
    g.n, g.h, g.w, g.c = shape
    if g.h < 1 or g.w < 1:
        raise ValueError(f"{what} needs a non-empty spatial size, got H x W = {g.h}x{g.w} in shape {tuple(shape)}")
    g.oh = g.ow = 1
    g.kh, g.kw = g.h, g.w
    g.sh = g.sw = 1
    g.ph = g.pw = 0
    if g.h * g.w * g.c >= 2**31:
        raise ValueError(f"{what}: an image of {g.h}x{g.w}x{g.c} elements (2^31 or more) is too large to pool at once")
    return g


def _x_shape(x_shape, dy_shape):
    """Validate x_shape: 4 non-negative ints whose batch and channels match dy's."""
    if not isinstance(x_shape, (tuple, list)) or len(x_shape) != 4 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in x_shape
    ):
        raise TypeError(f"x_shape must be a tuple of 4 ints (N, H, W, C), got {x_shape!r}")
    shape = tuple(int(v) for v in x_shape)
    channels = dy_shape[len(dy_shape) - 1]  # negative indices are unchecked here (wraparound=False)
    if min(shape) < 0:
        raise ValueError(f"x_shape must be non-negative, got {shape}")
    if shape[0] != dy_shape[0] or shape[3] != channels:
        raise ValueError(
            f"x_shape {shape} does not match dy of shape {dy_shape}: batch and channels must agree "
            f"(expected (N, C) = {(dy_shape[0], channels)}, got {(shape[0], shape[3])})"
        )
    return shape


cdef _max_forward(x, cx_pool_geom g, out=None, with_argmax=True):
    shape = (g.n, g.oh, g.ow, g.c)
    y, argmax = _checks.output_arrays(
        out, ("y", "argmax"), (shape, shape if with_argmax else None), (x.dtype, np.dtype(np.int64)), (x,), ("x",)
    )
    cdef void *px = data_of(x)
    cdef void *py = data_of(y)
    cdef int64_t *pa = <int64_t *>data_of(argmax)
    cdef cx_dtype dt = dtype_of(x)
    cdef int n_threads = threads.effective_num_threads()
    with nogil:
        cx_max_pool2d_forward(dt, px, py, pa, &g, n_threads)
    return y, argmax


cdef _max_backward(dy, argmax, x_shape, out=None, relu_input=None):
    """Scatter dy through argmax into dx of x_shape (zeroed by the kernel); raise if an index is not in its image and channel."""
    cdef cnp.ndarray relua = None
    if relu_input is not None:
        relua = _checks.float_array(relu_input, "relu_input", None, dy.dtype)
        _checks.check_shape(relua, "relu_input", tuple(x_shape))
    dx = _checks.output_array(out, "out", x_shape, dy.dtype, (dy, argmax, relua), ("dy", "argmax", "relu_input"))
    cdef int64_t n_images = x_shape[0], c = x_shape[3]
    cdef int64_t image_size = x_shape[1] * x_shape[2] * x_shape[3]
    cdef int64_t per_image = dy.size // (n_images * c) if n_images * c > 0 else 0
    cdef const void *prelu = data_of(relua)
    cdef void *pdy = data_of(dy)
    cdef const int64_t *pa = <const int64_t *>data_of(argmax)
    cdef void *pdx = data_of(dx)
    cdef cx_dtype dt = dtype_of(dy)
    cdef int n_threads = threads.effective_num_threads()
    cdef int64_t bad
    with nogil:
        bad = cx_max_pool2d_backward(dt, pdy, pa, prelu, pdx, n_images, per_image, c, image_size, n_threads)
    if bad:
        raise ValueError(
            f"argmax has {bad} index(es) outside the image and channel of their gradient for x_shape {x_shape}: "
            "expected flat indices into x as returned by the forward pass"
        )
    return dx


cdef _avg_forward(x, cx_pool_geom g, out=None):
    y = _checks.output_array(out, "out", (g.n, g.oh, g.ow, g.c), x.dtype, (x,), ("x",))
    cdef void *px = data_of(x)
    cdef void *py = data_of(y)
    cdef cx_dtype dt = dtype_of(x)
    cdef int n_threads = threads.effective_num_threads()
    with nogil:
        cx_avg_pool2d_forward(dt, px, py, &g, n_threads)
    return y


cdef _avg_backward(dy, cx_pool_geom g, out=None):
    dx = _checks.output_array(out, "out", (g.n, g.h, g.w, g.c), dy.dtype, (dy,), ("dy",))
    cdef void *pdy = data_of(dy)
    cdef void *pdx = data_of(dx)
    cdef cx_dtype dt = dtype_of(dy)
    cdef int n_threads = threads.effective_num_threads()
    with nogil:
        cx_avg_pool2d_backward(dt, pdy, pdx, &g, n_threads)
    return dx


def _max_backward_args(dy, argmax, x_shape, ndim):
    dy = _checks.float_array(dy, "dy", ndim)
    argmax = _checks.int_array(argmax, "argmax")
    _checks.check_shape(argmax, "argmax", dy.shape)
    return dy, argmax, _x_shape(x_shape, dy.shape)


def max_pool2d_forward(x, pool_size, strides=None, padding="valid", out=None, with_argmax=True):
    """Max pooling.

    Parameters
    ----------
    x : numpy.ndarray, float32 or float64, shape (N, H, W, C)
    pool_size : int or pair of int
        Window (KH, KW), each >= 1.
    strides : int or pair of int, optional
        Defaults to ``pool_size``.
    padding : {'valid', 'same'}, default 'valid'
        TensorFlow's rule; padded cells never win.
    out : tuple (y, argmax), optional
        Arrays written in place and returned (entries may be None).
    with_argmax : bool, default True
        False skips the indices (inference): argmax is returned as None.

    Returns
    -------
    y : numpy.ndarray, dtype of x, shape (N, OH, OW, C)
    argmax : numpy.ndarray, int64, shape (N, OH, OW, C), or None
        Flat index into x of the first maximum of each window (row-major scan).
    """
    x = _checks.float_array(x, "x", 4)
    return _max_forward(x, _geometry(x.shape, pool_size, strides, padding, "max_pool2d"), out, bool(with_argmax))


def max_pool2d_backward(dy, argmax, x_shape, out=None, relu_input=None):
    """Gradient of max pooling: ``dy`` scattered (summed) into x's cells at ``argmax``.

    Parameters
    ----------
    dy : numpy.ndarray, float32 or float64, shape (N, OH, OW, C)
    argmax : numpy.ndarray, integer, shape of dy
        As returned by :func:`max_pool2d_forward`.
    x_shape : tuple of 4 int
        (N, H, W, C) of the forward input.
    out : numpy.ndarray, shape x_shape, optional
        Written in place and returned.
    relu_input : numpy.ndarray, shape x_shape, optional
        The pooled input when it is a relu's output: gradients are kept only where
        it is > 0, so dx is the gradient w.r.t. the relu's input (the relu's
        backward pass fused into this one).

    Returns
    -------
    dx : numpy.ndarray, dtype of dy, shape x_shape
    """
    dy, argmax, shape = _max_backward_args(dy, argmax, x_shape, 4)
    return _max_backward(dy, argmax, shape, out, relu_input)


def max_pool2d_backward_windows(dy, x, y, pool_size, strides=None, padding="valid", out=None, through_relu=False):
    """Gradient of max pooling with non-overlapping windows, found from x and y (no argmax needed).

    Each window's ``dy`` goes to its first maximum in row-major scan order (the
    cell :func:`max_pool2d_forward`'s argmax names; a NaN counts as the maximum
    when y is NaN); every other cell of dx is 0.

    Parameters
    ----------
    dy : numpy.ndarray, float32 or float64, shape (N, OH, OW, C)
    x : numpy.ndarray, dtype of dy, shape (N, H, W, C)
        The forward input.
    y : numpy.ndarray, dtype of dy, shape (N, OH, OW, C)
        The forward output for x with the same window arguments.
    pool_size, strides, padding
        As given to :func:`max_pool2d_forward`; strides must be >= pool_size on
        both axes (windows that do not overlap).
    out : numpy.ndarray, shape of x, optional
        Written in place and returned; must not be x, y or dy.
    through_relu : bool, default False
        x is a relu's output: cells where x <= 0 get 0 as well, so dx is the
        gradient w.r.t. the relu's input (the relu's backward pass fused).

    Returns
    -------
    dx : numpy.ndarray, dtype of dy, shape of x
    """
    dy = _checks.float_array(dy, "dy", 4)
    x = _checks.float_array(x, "x", 4, dy.dtype)
    y = _checks.float_array(y, "y", 4, dy.dtype)
    cdef cx_pool_geom g = _geometry(x.shape, pool_size, strides, padding, "max_pool2d_backward_windows")
    if g.sh < g.kh or g.sw < g.kw:
        raise ValueError(
            f"max_pool2d_backward_windows needs windows that do not overlap (strides >= pool_size), got "
            f"pool_size={(g.kh, g.kw)} and strides={(g.sh, g.sw)}; use max_pool2d_backward with argmax"
        )
    _checks.check_shape(dy, "dy", (g.n, g.oh, g.ow, g.c))
    _checks.check_shape(y, "y", (g.n, g.oh, g.ow, g.c))
    dx = _checks.output_array(out, "out", x.shape, dy.dtype, (x, y, dy), ("x", "y", "dy"))
    cdef const void *pdy = data_of(dy)
    cdef const void *px = data_of(x)
    cdef const void *py = data_of(y)
    cdef void *pdx = data_of(dx)
    cdef cx_dtype dt = dtype_of(dy)
    cdef int n_threads = threads.effective_num_threads()
    cdef int relu = bool(through_relu)
    with nogil:
        cx_max_pool2d_backward_windows(dt, pdy, px, py, relu, pdx, &g, n_threads)
    return dx


def avg_pool2d_forward(x, pool_size, strides=None, padding="valid", out=None):
    """Average pooling over the real (unpadded) cells of each window, as Keras does.

    Parameters
    ----------
    x : numpy.ndarray, float32 or float64, shape (N, H, W, C)
    pool_size : int or pair of int
        Window (KH, KW), each >= 1.
    strides : int or pair of int, optional
        Defaults to ``pool_size``.
    padding : {'valid', 'same'}, default 'valid'
    out : numpy.ndarray, shape (N, OH, OW, C), optional
        Written in place and returned.

    Returns
    -------
    y : numpy.ndarray, dtype of x, shape (N, OH, OW, C)
    """
    x = _checks.float_array(x, "x", 4)
    return _avg_forward(x, _geometry(x.shape, pool_size, strides, padding, "avg_pool2d"), out)


def avg_pool2d_backward(dy, x_shape, pool_size, strides=None, padding="valid", out=None):
    """Gradient of average pooling: each window spreads ``dy / count`` over its real cells.

    Parameters
    ----------
    dy : numpy.ndarray, float32 or float64, shape (N, OH, OW, C)
    x_shape : tuple of 4 int
        (N, H, W, C) of the forward input.
    pool_size, strides, padding
        As given to :func:`avg_pool2d_forward`.
    out : numpy.ndarray, shape x_shape, optional
        Written in place and returned.

    Returns
    -------
    dx : numpy.ndarray, dtype of dy, shape x_shape
    """
    dy = _checks.float_array(dy, "dy", 4)
    shape = _x_shape(x_shape, dy.shape)
    cdef cx_pool_geom g = _geometry(shape, pool_size, strides, padding, "avg_pool2d")
    _checks.check_shape(dy, "dy", (g.n, g.oh, g.ow, g.c))
    return _avg_backward(dy, g, out)


def global_avg_pool2d_forward(x):
    """Mean over the spatial axes.

    Parameters
    ----------
    x : numpy.ndarray, float32 or float64, shape (N, H, W, C), H and W >= 1

    Returns
    -------
    y : numpy.ndarray, dtype of x, shape (N, C)
    """
    x = _checks.float_array(x, "x", 4)
    cdef cx_pool_geom g = _global_geometry(x.shape, "global_avg_pool2d")
    return _avg_forward(x, g).reshape(g.n, g.c)


def global_avg_pool2d_backward(dy, x_shape):
    """Gradient of the spatial mean: ``dy / (H * W)`` broadcast over (H, W).

    Parameters
    ----------
    dy : numpy.ndarray, float32 or float64, shape (N, C)
    x_shape : tuple of 4 int
        (N, H, W, C) of the forward input, H and W >= 1.

    Returns
    -------
    dx : numpy.ndarray, dtype of dy, shape x_shape
    """
    dy = _checks.float_array(dy, "dy", 2)
    cdef cx_pool_geom g = _global_geometry(_x_shape(x_shape, dy.shape), "global_avg_pool2d")
    return _avg_backward(dy, g)


def global_max_pool2d_forward(x):
    """Maximum over the spatial axes.

    Parameters
    ----------
    x : numpy.ndarray, float32 or float64, shape (N, H, W, C), H and W >= 1

    Returns
    -------
    y : numpy.ndarray, dtype of x, shape (N, C)
    argmax : numpy.ndarray, int64, shape (N, C)
        Flat index into x of the first maximum over (H, W) in row-major order.
    """
    x = _checks.float_array(x, "x", 4)
    cdef cx_pool_geom g = _global_geometry(x.shape, "global_max_pool2d")
    y, argmax = _max_forward(x, g)
    return y.reshape(g.n, g.c), argmax.reshape(g.n, g.c)


def global_max_pool2d_backward(dy, argmax, x_shape):
    """Gradient of global max pooling: ``dy[n, c]`` written at ``argmax[n, c]``.

    Parameters
    ----------
    dy : numpy.ndarray, float32 or float64, shape (N, C)
    argmax : numpy.ndarray, integer, shape (N, C)
        As returned by :func:`global_max_pool2d_forward`.
    x_shape : tuple of 4 int
        (N, H, W, C) of the forward input.

    Returns
    -------
    dx : numpy.ndarray, dtype of dy, shape x_shape
    """
    dy, argmax, shape = _max_backward_args(dy, argmax, x_shape, 2)
    return _max_backward(dy, argmax, shape)
