"""Normalization kernels (Keras BatchNormalization, LayerNormalization, GroupNormalization), forward and backward.

Arrays are float32 or float64 (one dtype per call), copied when not
C-contiguous. Results go into new arrays or into caller-owned ``out`` /
``stats`` buffers (writeable, C-contiguous, of the result's shape and dtype).
Outputs must not share memory with the arrays a call reads.

Passes over the data: a training forward reads x twice (statistics, then
normalize), a backward reads x and dy twice (one reduction, one pass writing
dx), an inference forward once. Statistics are summed in double over blocks
of rows fixed by the problem size and added in block order: results are
bit-identical for any thread count. Variances are biased (divided by the
count), as Keras' ``ops.moments``.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t

from convx._kernels cimport threads
from convx._kernels cimport _checks
from convx._kernels._common cimport cx_int, raise_for_status

cnp.import_array()

cdef extern from "norm.h" nogil:
    int cx_bn_forward_train_f32(const float *x, cx_int outer, cx_int c, cx_int inner, const float *gamma,
                                const float *beta, double eps, double relu_max, float *y, float *mean, float *invstd,
                                float *moving_mean, float *moving_var, double momentum, int n_threads)
    int cx_bn_forward_train_f64(const double *x, cx_int outer, cx_int c, cx_int inner, const double *gamma,
                                const double *beta, double eps, double relu_max, double *y, double *mean,
                                double *invstd, double *moving_mean, double *moving_var, double momentum,
                                int n_threads)
    int cx_bn_forward_infer_f32(const float *x, cx_int outer, cx_int c, cx_int inner, const float *mean,
                                const float *var, const float *gamma, const float *beta, double eps,
                                double relu_max, float *y,
                                float *invstd, int n_threads)
    int cx_bn_forward_infer_f64(const double *x, cx_int outer, cx_int c, cx_int inner, const double *mean,
                                const double *var, const double *gamma, const double *beta, double eps,
                                double relu_max, double *y,
                                double *invstd, int n_threads)
    int cx_bn_backward_f32(const float *x, const float *dy, const float *y, double relu_max, cx_int outer, cx_int c,
                           cx_int inner, const float *mean, const float *invstd, const float *gamma, int batch_stats,
                           float *dx, float *dgamma, float *dbeta, int n_threads)
    int cx_bn_backward_f64(const double *x, const double *dy, const double *y, double relu_max, cx_int outer,
                           cx_int c, cx_int inner, const double *mean, const double *invstd, const double *gamma,
                           int batch_stats, double *dx, double *dgamma, double *dbeta, int n_threads)
    int cx_gn_forward_f32(const float *x, cx_int n, cx_int s, cx_int g, cx_int k, cx_int inner, const float *gamma,
                          const float *beta, double eps, int rms, float *y, float *mean, float *invstd,
                          int n_threads)
    int cx_gn_forward_f64(const double *x, cx_int n, cx_int s, cx_int g, cx_int k, cx_int inner,
                          const double *gamma, const double *beta, double eps, int rms, double *y, double *mean,
                          double *invstd, int n_threads)
    int cx_gn_backward_f32(const float *x, const float *dy, cx_int n, cx_int s, cx_int g, cx_int k, cx_int inner,
                           const float *mean, const float *invstd, const float *gamma, int rms, float *dx,
                           float *dgamma, float *dbeta, int n_threads)
    int cx_gn_backward_f64(const double *x, const double *dy, cx_int n, cx_int s, cx_int g, cx_int k,
                           cx_int inner, const double *mean, const double *invstd, const double *gamma, int rms,
                           double *dx, double *dgamma, double *dbeta, int n_threads)
    int cx_bn_fold_f32(const float *kernel, cx_int rows, cx_int c, const float *bias, const float *mean,
                       const float *var, const float *gamma, const float *beta, double eps, float *kernel_out,
                       float *bias_out)
    int cx_bn_fold_f64(const double *kernel, cx_int rows, cx_int c, const double *bias, const double *mean,
                       const double *var, const double *gamma, const double *beta, double eps,
                       double *kernel_out, double *bias_out)


# ---------------------------------------------------------------- argument checks


cdef Py_ssize_t _axis(object axis, Py_ssize_t rank, str name="axis") except -1:
    """`axis` (an int in [-rank, rank)) as an index in [0, rank)."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {axis!r}")
    if not -rank <= axis < rank:
        raise ValueError(f"{name} must be in [-{rank}, {rank}) for x of rank {rank}, got {name}={axis}")
    return axis + rank if axis < 0 else axis


cdef object _array(object value, str name, object dtype):
    """`value` checked as a float32/float64 ndarray (of `dtype` when given), C-contiguous, its shape kept."""
    arr = _checks.float_array(value, name, None, dtype)
    return arr if arr.ndim == value.ndim else arr.reshape(value.shape)


cdef object _param(object value, str name, tuple shape, object dtype, bint optional=True):
    """None (when optional) or a C-contiguous array of `shape` and `dtype`."""
    if value is None:
        if optional:
            return None
        raise TypeError(f"{name} must be a numpy.ndarray, got None")
    arr = _array(value, name, dtype)
    _checks.check_shape(arr, name, shape)
    return arr


cdef inline void *_data(object arr):
    return NULL if arr is None else cnp.PyArray_DATA(<cnp.ndarray>arr)


cdef bint _overlap(object a, object b):
    if a is None or b is None:
        return False
    cdef char *pa = <char *>cnp.PyArray_DATA(<cnp.ndarray>a)
    cdef char *pb = <char *>cnp.PyArray_DATA(<cnp.ndarray>b)
    cdef Py_ssize_t na = cnp.PyArray_NBYTES(<cnp.ndarray>a), nb = cnp.PyArray_NBYTES(<cnp.ndarray>b)
    return na > 0 and nb > 0 and pa < pb + nb and pb < pa + na


cdef _distinct(tuple outputs, tuple out_names, tuple inputs, tuple in_names):
    """Raise ValueError when an output shares memory with an input or another output."""
    cdef Py_ssize_t i, j
    for i in range(len(outputs)):
        for j in range(len(inputs)):
            if _overlap(outputs[i], inputs[j]):
                raise ValueError(f"{out_names[i]} and {in_names[j]} must be distinct arrays, "
                                 "got arrays that share memory")
        for j in range(i):
            if _overlap(outputs[i], outputs[j]):
                raise ValueError(f"{out_names[i]} and {out_names[j]} must be distinct arrays, "
                                 "got arrays that share memory")


cdef double _epsilon(object epsilon) except -1.0:
    value = float(epsilon)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"epsilon must be a finite number > 0, got epsilon={epsilon!r}")
    return value


cdef tuple _bn_geometry(object x, object axis):
    """(outer, c, inner) of x viewed around its channel axis."""
    if x.ndim < 1:
        raise ValueError(f"x must have at least 1 dimension, got a 0-d array")
    cdef Py_ssize_t ax = _axis(axis, x.ndim), i
    cdef cx_int outer = 1, inner = 1
    for i in range(ax):
        outer *= x.shape[i]
    for i in range(ax + 1, x.ndim):
        inner *= x.shape[i]
    return outer, x.shape[ax], inner


cdef void _pointers(tuple arrays, void **p):
    """The data pointers of `arrays` (NULL for None) into p."""
    cdef Py_ssize_t i
    for i in range(len(arrays)):
        p[i] = _data(arrays[i])


cdef double _relu_max(object relu_max) except? -2.0:
    """-1 for None (no fused relu), else relu_max (a number >= 0, inf allowed)."""
    if relu_max is None:
        return -1.0
    value = float(relu_max)
    if not value >= 0:
        raise ValueError(f"relu_max must be None or a number >= 0 (inf: plain relu), got relu_max={relu_max!r}")
    return value


# ---------------------------------------------------------------- batch normalization


def batch_norm_train(x, gamma, beta, axis=-1, epsilon=1e-3, moving_mean=None, moving_variance=None, momentum=0.99,
                     out=None, stats=None, relu_max=None):
    """Training BatchNormalization: normalize x with its batch statistics per channel.

    ``y = x * a + b`` with ``a = gamma / sqrt(var + epsilon)`` and ``b = beta -
    mean * a`` per channel (Keras' form), mean and biased variance over every
    axis but ``axis``. Two passes over x.

    Parameters
    ----------
    x : numpy.ndarray, float32 or float64, any rank >= 1
    gamma, beta : numpy.ndarray of shape (C,) or None
        C = x.shape[axis]; None: scale 1 / shift 0.
    axis : int
        The channel axis (default -1, the fast path).
    epsilon : float > 0
    moving_mean, moving_variance : numpy.ndarray of shape (C,), optional
        Updated in place as ``moving * momentum + batch * (1 - momentum)``
        (both or neither; C-contiguous, of x's dtype).
    momentum : float
    out : numpy.ndarray, optional
        For y (x's shape and dtype).
    stats : tuple (mean, invstd) of arrays of shape (C,) or None, optional
    relu_max : float, optional
        A relu that follows, fused into the writing pass: ``y = min(max(y, 0),
        relu_max)`` (``inf``: relu, 6: relu6). None: no relu.

    Returns
    -------
    (y, mean, invstd) : the output, the batch mean and 1 / sqrt(var + epsilon) per channel
        (what :func:`batch_norm_backward` takes).
    """
    x = _array(x, "x", None)
    dtype = x.dtype
    outer, c, inner = _bn_geometry(x, axis)
    gamma = _param(gamma, "gamma", (c,), dtype)
    beta = _param(beta, "beta", (c,), dtype)
    cdef double eps = _epsilon(epsilon)
    if (moving_mean is None) != (moving_variance is None):
        raise ValueError("moving_mean and moving_variance must be given together (or neither)")
    if moving_mean is not None:
        for value, name in ((moving_mean, "moving_mean"), (moving_variance, "moving_variance")):
            _checks.output_array(value, name, (c,), dtype)
    y = _checks.output_array(out, "out", x.shape, dtype)
    mean, invstd = _checks.output_arrays(stats, ("mean", "invstd"), ((c,), (c,)), (dtype, dtype))
    _distinct((y, mean, invstd, moving_mean, moving_variance),
              ("out", "mean", "invstd", "moving_mean", "moving_variance"),
              (x, gamma, beta), ("x", "gamma", "beta"))
    cdef double mom = float(momentum), top = _relu_max(relu_max)
    cdef int n_threads = threads.effective_num_threads(), status
    cdef cx_int o = outer, cc = c, i = inner
    cdef void *p[8]
    _pointers((x, gamma, beta, y, mean, invstd, moving_mean, moving_variance), p)
    cdef bint single = dtype == np.float32
    with nogil:
        if single:
            status = cx_bn_forward_train_f32(<const float *>p[0], o, cc, i, <const float *>p[1], <const float *>p[2],
                                             eps, top, <float *>p[3], <float *>p[4], <float *>p[5], <float *>p[6],
                                             <float *>p[7], mom,
                                             n_threads)
        else:
            status = cx_bn_forward_train_f64(<const double *>p[0], o, cc, i, <const double *>p[1], <const double *>p[2],
                                             eps, top, <double *>p[3], <double *>p[4], <double *>p[5], <double *>p[6],
                                             <double *>p[7], mom, n_threads)
    raise_for_status(status, "normalization kernel")
    return y, mean, invstd


def batch_norm_infer(x, mean, variance, gamma, beta, axis=-1, epsilon=1e-3, out=None, invstd=None, relu_max=None):
    """Inference BatchNormalization with given statistics: ``y = x * a + b`` as in :func:`batch_norm_train`.

    One pass over x. ``x`` may be None to compute only ``invstd``.

    Parameters
    ----------
    x : numpy.ndarray or None
    mean, variance : numpy.ndarray of shape (C,)
        The moving statistics.
    gamma, beta : numpy.ndarray of shape (C,) or None
    axis : int
    epsilon : float > 0
    out : numpy.ndarray, optional
    invstd : numpy.ndarray of shape (C,), optional
        When given, receives 1 / sqrt(variance + epsilon) (for a backward pass
        through fixed statistics).
    relu_max : float, optional
        A fused relu, as for :func:`batch_norm_train`.

    Returns
    -------
    y : numpy.ndarray or None (x None)
    """
    if x is None:
        mean = _array(mean, "mean", None)
        dtype, outer, c, inner = mean.dtype, 0, mean.shape[0] if mean.ndim == 1 else -1, 1
        if mean.ndim != 1:
            raise ValueError(f"mean must be 1-D, got shape {mean.shape}")
    else:
        x = _array(x, "x", None)
        dtype = x.dtype
        outer, c, inner = _bn_geometry(x, axis)
    mean = _param(mean, "mean", (c,), dtype, False)
    variance = _param(variance, "variance", (c,), dtype, False)
    gamma = _param(gamma, "gamma", (c,), dtype)
    beta = _param(beta, "beta", (c,), dtype)
    cdef double eps = _epsilon(epsilon), top = _relu_max(relu_max)
    y = None if x is None else _checks.output_array(out, "out", x.shape, dtype)
    if invstd is not None:
        _checks.output_array(invstd, "invstd", (c,), dtype)
    _distinct((y, invstd), ("out", "invstd"), (x, mean, variance, gamma, beta),
              ("x", "mean", "variance", "gamma", "beta"))
    cdef int n_threads = threads.effective_num_threads(), status
    cdef cx_int o = outer, cc = c, i = inner
    cdef void *p[7]
    _pointers((x, mean, variance, gamma, beta, y, invstd), p)
    cdef bint single = dtype == np.float32
    with nogil:
        if single:
            status = cx_bn_forward_infer_f32(<const float *>p[0], o, cc, i, <const float *>p[1], <const float *>p[2],
                                             <const float *>p[3], <const float *>p[4], eps, top, <float *>p[5],
                                             <float *>p[6], n_threads)
        else:
            status = cx_bn_forward_infer_f64(<const double *>p[0], o, cc, i, <const double *>p[1], <const double *>p[2],
                                             <const double *>p[3], <const double *>p[4], eps, top,
                                             <double *>p[5], <double *>p[6], n_threads)
    raise_for_status(status, "normalization kernel")
    return y


def batch_norm_backward(x, dy, mean, invstd, gamma, axis=-1, batch_stats=True, need_dx=True, out=None, y=None,
                        relu_max=None):
    """Gradients of BatchNormalization w.r.t. x, gamma and beta.

    One reduction pass over x and dy (sum dy, sum dy * xhat per channel), one
    pass writing dx. ``batch_stats`` False: the forward pass used fixed
    statistics (inference mode), so ``dx = dy * gamma * invstd``. With a fused
    relu (``y``, ``relu_max``), dy first goes through its mask ``0 < y < relu_max``.

    Parameters
    ----------
    x, dy : numpy.ndarray of one shape and dtype
    mean, invstd : numpy.ndarray of shape (C,)
        The statistics the forward pass used (``invstd = 1 / sqrt(var + eps)``).
    gamma : numpy.ndarray of shape (C,) or None
    axis : int
    batch_stats : bool
    need_dx : bool
    out : tuple (dx, dgamma, dbeta), entries None or arrays, optional
    y : numpy.ndarray, optional
        The output of a forward pass with a fused relu (x's shape and dtype).
    relu_max : float, optional
        That relu's ``relu_max`` (given with ``y``).

    Returns
    -------
    (dx, dgamma, dbeta) : dx None when not needed; dgamma = sum dy * xhat, dbeta = sum dy per channel
    """
    x = _array(x, "x", None)
    dtype = x.dtype
    dy = _array(dy, "dy", dtype)
    _checks.check_shape(dy, "dy", x.shape)
    outer, c, inner = _bn_geometry(x, axis)
    mean = _param(mean, "mean", (c,), dtype, False)
    invstd = _param(invstd, "invstd", (c,), dtype, False)
    gamma = _param(gamma, "gamma", (c,), dtype)
    if (y is None) != (relu_max is None):
        raise ValueError("y and relu_max must be given together (a fused relu) or neither")
    cdef double top = _relu_max(relu_max)
    y = _param(y, "y", x.shape, dtype)
    dx, dgamma, dbeta = _checks.output_arrays(out, ("dx", "dgamma", "dbeta"),
                                              (x.shape if need_dx else None, (c,), (c,)), (dtype,) * 3)
    _distinct((dx, dgamma, dbeta), ("dx", "dgamma", "dbeta"), (x, dy, mean, invstd, gamma, y),
              ("x", "dy", "mean", "invstd", "gamma", "y"))
    cdef int n_threads = threads.effective_num_threads(), status
    cdef int bs = bool(batch_stats)
    cdef cx_int o = outer, cc = c, i = inner
    cdef void *p[9]
    _pointers((x, dy, mean, invstd, gamma, dx, dgamma, dbeta, y), p)
    cdef bint single = dtype == np.float32
    with nogil:
        if single:
            status = cx_bn_backward_f32(<const float *>p[0], <const float *>p[1], <const float *>p[8], top, o, cc, i,
                                        <const float *>p[2], <const float *>p[3], <const float *>p[4], bs,
                                        <float *>p[5], <float *>p[6], <float *>p[7], n_threads)
        else:
            status = cx_bn_backward_f64(<const double *>p[0], <const double *>p[1], <const double *>p[8], top, o, cc,
                                        i, <const double *>p[2], <const double *>p[3], <const double *>p[4], bs,
                                        <double *>p[5], <double *>p[6], <double *>p[7], n_threads)
    raise_for_status(status, "normalization kernel")
    return dx, dgamma, dbeta


def fold_batch_norm(kernel, bias, mean, variance, gamma, beta, epsilon=1e-3, out=None):
    """An inference BatchNormalization folded into the convolution or dense layer before it.

    With ``a = gamma / sqrt(variance + epsilon)`` per output channel (the
    kernel's last axis): ``kernel * a`` and ``(bias - mean) * a + beta``, so
    that ``layer(x; folded) == batch_norm_infer(layer(x))`` for a layer with a
    linear activation. O(weights).

    Parameters
    ----------
    kernel : numpy.ndarray, last axis C (HWIO conv kernel, (in, out) dense kernel)
    bias : numpy.ndarray of shape (C,) or None (no bias: 0)
    mean, variance : numpy.ndarray of shape (C,)
    gamma, beta : numpy.ndarray of shape (C,) or None
    epsilon : float > 0
    out : tuple (kernel, bias) of arrays or None, optional

    Returns
    -------
    (kernel, bias) : the folded weights
    """
    kernel = _array(kernel, "kernel", None)
    dtype = kernel.dtype
    if kernel.ndim < 1:
        raise ValueError("kernel must have at least 1 dimension, got a 0-d array")
    c = kernel.shape[kernel.ndim - 1]
    bias = _param(bias, "bias", (c,), dtype)
    mean = _param(mean, "mean", (c,), dtype, False)
    variance = _param(variance, "variance", (c,), dtype, False)
    gamma = _param(gamma, "gamma", (c,), dtype)
    beta = _param(beta, "beta", (c,), dtype)
    cdef double eps = _epsilon(epsilon)
    k2, b2 = _checks.output_arrays(out, ("kernel", "bias"), (kernel.shape, (c,)), (dtype, dtype))
    _distinct((k2, b2), ("out kernel", "out bias"), (kernel, bias, mean, variance, gamma, beta),
              ("kernel", "bias", "mean", "variance", "gamma", "beta"))
    cdef cx_int rows = kernel.size // c if c else 0, cc = c
    cdef void *p[8]
    _pointers((kernel, bias, mean, variance, gamma, beta, k2, b2), p)
    cdef bint single = dtype == np.float32
    cdef int status
    with nogil:
        if single:
            status = cx_bn_fold_f32(<const float *>p[0], rows, cc, <const float *>p[1], <const float *>p[2],
                                    <const float *>p[3], <const float *>p[4], <const float *>p[5], eps, <float *>p[6],
                                    <float *>p[7])
        else:
            status = cx_bn_fold_f64(<const double *>p[0], rows, cc, <const double *>p[1], <const double *>p[2],
                                    <const double *>p[3], <const double *>p[4], <const double *>p[5], eps,
                                    <double *>p[6], <double *>p[7])
    raise_for_status(status, "normalization kernel")
    return k2, b2


# ---------------------------------------------------------------- group and layer normalization


cdef tuple _gn_geometry(object x, object groups, object axis):
    """(n, s, g, k, inner) of x for groups along its channel axis (axis > 0: the batch axis is 0)."""
    if x.ndim < 2:
        raise ValueError(f"x must have a batch axis and a channel axis, got shape {x.shape}")
    cdef Py_ssize_t ax = _axis(axis, x.ndim), i
    if ax == 0:
        raise ValueError("axis must not be the batch axis (0)")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got groups={groups!r}")
    c = x.shape[ax]
    if c % groups != 0:
        raise ValueError(f"groups={groups} must divide the {c} channels of axis {axis}")
    cdef cx_int s = 1, inner = 1
    for i in range(1, ax):
        s *= x.shape[i]
    for i in range(ax + 1, x.ndim):
        inner *= x.shape[i]
    return x.shape[0], s, int(groups), c // groups, inner


cdef tuple _gn_forward(x, gamma, beta, tuple geometry, tuple param_shape, tuple stats_shape, double eps, bint rms,
                       out, stats):
    n, s, g, k, inner = geometry
    dtype = x.dtype
    gamma = _param(gamma, "gamma", param_shape, dtype)
    beta = _param(beta, "beta", param_shape, dtype)
    y = _checks.output_array(out, "out", x.shape, dtype)
    mean, invstd = _checks.output_arrays(stats, ("mean", "invstd"), (stats_shape, stats_shape), (dtype, dtype))
    _distinct((y, mean, invstd), ("out", "mean", "invstd"), (x, gamma, beta), ("x", "gamma", "beta"))
    cdef int n_threads = threads.effective_num_threads(), status
    cdef cx_int cn = n, cs = s, cg = g, ck = k, ci = inner
    cdef int r = rms
    cdef void *p[6]
    _pointers((x, gamma, beta, y, mean, invstd), p)
    cdef bint single = dtype == np.float32
    with nogil:
        if single:
            status = cx_gn_forward_f32(<const float *>p[0], cn, cs, cg, ck, ci, <const float *>p[1],
                                       <const float *>p[2],
                                       eps, r, <float *>p[3], <float *>p[4], <float *>p[5], n_threads)
        else:
            status = cx_gn_forward_f64(<const double *>p[0], cn, cs, cg, ck, ci, <const double *>p[1],
                                       <const double *>p[2], eps, r, <double *>p[3], <double *>p[4], <double *>p[5],
                                       n_threads)
    raise_for_status(status, "normalization kernel")
    return y, mean, invstd


cdef tuple _gn_backward(x, dy, mean, invstd, gamma, tuple geometry, tuple param_shape, tuple stats_shape, bint rms,
                        bint need_dx, bint need_dbeta, out):
    n, s, g, k, inner = geometry
    dtype = x.dtype
    dy = _array(dy, "dy", dtype)
    _checks.check_shape(dy, "dy", x.shape)
    mean = _param(mean, "mean", stats_shape, dtype, False)
    invstd = _param(invstd, "invstd", stats_shape, dtype, False)
    gamma = _param(gamma, "gamma", param_shape, dtype)
    dx, dgamma, dbeta = _checks.output_arrays(
        out, ("dx", "dgamma", "dbeta"),
        (x.shape if need_dx else None, param_shape, param_shape if need_dbeta else None), (dtype,) * 3)
    _distinct((dx, dgamma, dbeta), ("dx", "dgamma", "dbeta"), (x, dy, mean, invstd, gamma),
              ("x", "dy", "mean", "invstd", "gamma"))
    cdef int n_threads = threads.effective_num_threads(), status
    cdef cx_int cn = n, cs = s, cg = g, ck = k, ci = inner
    cdef int r = rms
    cdef void *p[8]
    _pointers((x, dy, mean, invstd, gamma, dx, dgamma, dbeta), p)
    cdef bint single = dtype == np.float32
    with nogil:
        if single:
            status = cx_gn_backward_f32(<const float *>p[0], <const float *>p[1], cn, cs, cg, ck, ci,
                                        <const float *>p[2],
                                        <const float *>p[3], <const float *>p[4], r, <float *>p[5], <float *>p[6],
                                        <float *>p[7], n_threads)
        else:
            status = cx_gn_backward_f64(<const double *>p[0], <const double *>p[1], cn, cs, cg, ck, ci,
                                        <const double *>p[2], <const double *>p[3], <const double *>p[4], r,
                                        <double *>p[5], <double *>p[6], <double *>p[7], n_threads)
    raise_for_status(status, "normalization kernel")
    return dx, dgamma, dbeta


def group_norm_forward(x, gamma, beta, groups, axis=-1, epsilon=1e-3, out=None, stats=None):
    """GroupNormalization: the channels of ``axis`` split into ``groups`` groups; mean and biased
    variance per (sample, group) over every axis but the batch axis and the group; then Keras'
    ``y = x * a + b`` with ``a = gamma / sqrt(var + epsilon)``, ``b = beta - mean * a`` per channel.
    Two passes over x.

    Parameters
    ----------
    x : numpy.ndarray (N, ..., C, ...), float32 or float64, rank >= 2
    gamma, beta : numpy.ndarray of shape (C,) or None
    groups : int, dividing C
    axis : int (not 0), default -1
    epsilon : float > 0
    out : numpy.ndarray, optional
    stats : tuple (mean, invstd) of arrays of shape (N, groups) or None, optional

    Returns
    -------
    (y, mean, invstd) : mean and 1 / sqrt(var + epsilon) of shape (N, groups)
    """
    x = _array(x, "x", None)
    geometry = _gn_geometry(x, groups, axis)
    c = geometry[2] * geometry[3]
    return _gn_forward(x, gamma, beta, geometry, (c,), (geometry[0], geometry[2]), _epsilon(epsilon), False, out,
                       stats)


def group_norm_backward(x, dy, mean, invstd, gamma, groups, axis=-1, need_dx=True, out=None):
    """Gradients of :func:`group_norm_forward` w.r.t. x, gamma and beta (one reduction pass over x
    and dy, one pass writing dx).

    Returns
    -------
    (dx, dgamma, dbeta) : dx None when not needed; dgamma, dbeta of shape (C,)
    """
    x = _array(x, "x", None)
    geometry = _gn_geometry(x, groups, axis)
    c = geometry[2] * geometry[3]
    return _gn_backward(x, dy, mean, invstd, gamma, geometry, (c,), (geometry[0], geometry[2]), False, need_dx, True,
                        out)


cdef tuple _ln_geometry(object x, object axis):
    """(n, 1, 1, D, 1) for normalization over x's axes from `axis` to the last."""
    if x.ndim < 1:
        raise ValueError("x must have at least 1 dimension, got a 0-d array")
    cdef Py_ssize_t ax = _axis(axis, x.ndim), i
    cdef cx_int n = 1, d = 1
    for i in range(ax):
        n *= x.shape[i]
    for i in range(ax, x.ndim):
        d *= x.shape[i]
    return n, 1, 1, d, 1


def layer_norm_forward(x, gamma, beta, axis=-1, epsilon=1e-3, rms_scaling=False, out=None, stats=None):
    """LayerNormalization over the trailing axes of x from ``axis`` on: mean and biased variance
    per row, ``y = x * a + b`` with ``a = gamma / sqrt(var + epsilon)``, ``b = beta - mean * a``
    (Keras' form). ``rms_scaling``: Keras' deprecated mode ``y = x / sqrt(var + epsilon) * gamma``
    (the mean is not subtracted; beta is not used). Two passes over x.

    Parameters
    ----------
    x : numpy.ndarray, float32 or float64
    gamma, beta : numpy.ndarray of shape x.shape[axis:] or None
    axis : int
        The first normalized axis; every later axis is normalized too.
    epsilon : float > 0
    rms_scaling : bool
    out : numpy.ndarray, optional
    stats : tuple (mean, invstd) of arrays of shape x.shape[:axis] or None, optional

    Returns
    -------
    (y, mean, invstd)
    """
    x = _array(x, "x", None)
    geometry = _ln_geometry(x, axis)
    ax = _axis(axis, x.ndim)
    return _gn_forward(x, gamma, None if rms_scaling else beta, geometry, tuple(x.shape[ax:]), tuple(x.shape[:ax]),
                       _epsilon(epsilon), bool(rms_scaling), out, stats)


def layer_norm_backward(x, dy, mean, invstd, gamma, axis=-1, rms_scaling=False, need_dx=True, out=None):
    """Gradients of :func:`layer_norm_forward` w.r.t. x, gamma and beta (one reduction pass over x
    and dy, one pass writing dx).

    Returns
    -------
    (dx, dgamma, dbeta) : dx None when not needed, dbeta None with ``rms_scaling``
    """
    x = _array(x, "x", None)
    geometry = _ln_geometry(x, axis)
    ax = _axis(axis, x.ndim)
    return _gn_backward(x, dy, mean, invstd, gamma, geometry, tuple(x.shape[ax:]), tuple(x.shape[:ax]),
                        bool(rms_scaling), need_dx, not rms_scaling, out)
