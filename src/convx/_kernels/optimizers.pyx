"""Optimizer updates (Keras 3 rules), applied in place by C kernels.

Every function updates ``param`` and its state arrays in place and returns
None. All arrays of one call are float32 or float64 ndarrays of the same shape
and dtype (any shape, size 0 included). ``param`` and the state arrays must be
C-contiguous and writeable, since they are written; a non-contiguous ``grad``
is copied. Arrays of one call must not share memory. Hyper-parameters are
rounded to the array dtype, as Keras casts them to the variable dtype.
"""

import math
import numbers

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t

from convx._kernels cimport threads
from convx._kernels cimport _checks

cnp.import_array()

cdef extern from "convx_common.h":
    ctypedef int64_t cx_int

cdef extern from "optimizers.h":
    void cx_sgd_update_f32(float *w, const float *g, float *velocity, cx_int n,
                           double learning_rate, double momentum, int nesterov, int n_threads) nogil
    void cx_sgd_update_f64(double *w, const double *g, double *velocity, cx_int n,
                           double learning_rate, double momentum, int nesterov, int n_threads) nogil
    void cx_adam_update_f32(float *w, const float *g, float *m, float *v, cx_int n,
                            double learning_rate, double beta_1, double beta_2, double epsilon,
                            int64_t step, int n_threads) nogil
    void cx_adam_update_f64(double *w, const double *g, double *m, double *v, cx_int n,
                            double learning_rate, double beta_1, double beta_2, double epsilon,
                            int64_t step, int n_threads) nogil
    void cx_rmsprop_update_f32(float *w, const float *g, float *velocity, float *momentum_buffer,
                               float *average_grad, cx_int n, double learning_rate, double rho,
                               double momentum, double epsilon, int n_threads) nogil
    void cx_opt_step_f32(int rule, float *w, const float *g, float **slots, cx_int n, const double *c,
                         int n_threads) nogil
    void cx_opt_step_f64(int rule, double *w, const double *g, double **slots, cx_int n, const double *c,
                         int n_threads) nogil
    void cx_opt_weight_decay_f32(float *w, cx_int n, double weight_decay, double learning_rate,
                                 int n_threads) nogil
    void cx_opt_weight_decay_f64(double *w, cx_int n, double weight_decay, double learning_rate,
                                 int n_threads) nogil
    void cx_opt_ema_f32(float *average, const float *w, cx_int n, double momentum, int n_threads) nogil
    void cx_opt_ema_f64(double *average, const double *w, cx_int n, double momentum, int n_threads) nogil
    void cx_opt_accumulate_f32(float *acc, const float *g, float *out, cx_int n, int finish, double steps,
                               int n_threads) nogil
    void cx_opt_accumulate_f64(double *acc, const double *g, double *out, cx_int n, int finish,
                               double steps, int n_threads) nogil
    double cx_opt_sum_squares_f32(const float *x, cx_int n, int n_threads) nogil
    double cx_opt_sum_squares_f64(const double *x, cx_int n, int n_threads) nogil
    enum:
        CX_OPT_AMSGRAD, CX_OPT_ADAMAX, CX_OPT_NADAM, CX_OPT_ADAGRAD, CX_OPT_ADADELTA, CX_OPT_FTRL, CX_OPT_LION
    void cx_rmsprop_update_f64(double *w, const double *g, double *velocity, double *momentum_buffer,
                               double *average_grad, cx_int n, double learning_rate, double rho,
                               double momentum, double epsilon, int n_threads) nogil


cdef inline void *_data(object arr):
    """Data pointer of a checked ndarray, NULL for None."""
    if arr is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


cdef object _in_place(object value, str name, object param=None):
    """Check an array that is written in place (param or optimizer state)."""
    dtype = None if param is None else param.dtype
    arr = _checks.float_array(value, name, None, dtype)
    if not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>value):
        raise ValueError(
            f"{name} must be C-contiguous because it is updated in place, got a non-contiguous "
            f"array of shape {value.shape} with strides {value.strides}; pass np.ascontiguousarray({name}) "
            "and keep that array"
        )
    if not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>value):
        raise ValueError(f"{name} must be writeable because it is updated in place, got a read-only array")
    if param is not None:
        _checks.check_shape(arr, name, param.shape)
    return arr


cdef object _gradient(object value, object param):
    grad = _checks.float_array(value, "grad", None, param.dtype)
    _checks.check_shape(grad, "grad", param.shape)
    return grad


cdef _no_overlap(tuple names, tuple arrays):
    """Raise ValueError if two of the arrays (C-contiguous ndarrays, or None) share memory: their bytes overlap."""
    cdef Py_ssize_t i, j
    cdef char *a
    cdef char *b
    cdef Py_ssize_t size_a, size_b
    for i in range(len(arrays)):
        if arrays[i] is None:
            continue
        a, size_a = <char *>cnp.PyArray_DATA(<cnp.ndarray>arrays[i]), cnp.PyArray_NBYTES(<cnp.ndarray>arrays[i])
        for j in range(i + 1, len(arrays)):
            if arrays[j] is None:
                continue
            b, size_b = <char *>cnp.PyArray_DATA(<cnp.ndarray>arrays[j]), cnp.PyArray_NBYTES(<cnp.ndarray>arrays[j])
            if size_a and size_b and a < b + size_b and b < a + size_a:
                raise ValueError(f"{names[i]} and {names[j]} must be distinct arrays, got arrays that share memory")


cdef double _hyper(object value, str name, double low, object high=None) except? -1.0:
    """Return `value` as a float, checking low <= value (< high when given) and finiteness."""
    cdef double x
    if type(value) is float:
        x = value
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    else:
        x = float(value)
    if not math.isfinite(x) or x < low or (high is not None and x >= high):
        upper = "" if high is None else f" and < {high}"
        raise ValueError(f"{name} must be a finite number >= {low}{upper}, got {x!r}")
    return x


cdef int64_t _step(object value) except? -1:
    if type(value) is int and 1 <= value <= 2**62:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"step must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"step must be >= 1 (the first update is step 1), got {value}")
    if value > 2**62:
        raise ValueError(f"step must be <= 2**62, got {value}")
    return int(value)


cdef int _flag(object value, str name) except -1:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def sgd_update(param, grad, velocity, learning_rate, momentum=0.0, nesterov=False):
    """Stochastic gradient descent step, Keras 3 rule, in place.

    With momentum ``mu > 0``: ``v = mu * v - lr * g``, then ``w += v``, or with
    Nesterov ``w += mu * v - lr * g``. With ``mu == 0``: ``w -= lr * g`` and
    ``velocity`` is neither read nor written.

    Parameters
    ----------
    param : ndarray, float32 or float64, any shape
        Weights ``w``, C-contiguous, updated in place.
    grad : ndarray, shape and dtype of ``param``
        Gradient ``g`` (copied if non-contiguous).
    velocity : ndarray or None
        Momentum state ``v``, shape and dtype of ``param``, C-contiguous, updated
        in place; start from zeros. Required when ``momentum > 0``.
    learning_rate : float
        ``lr >= 0``.
    momentum : float, default 0.0
        ``mu`` in [0, 1).
    nesterov : bool, default False
        Use Nesterov momentum (ignored when ``momentum == 0``).
    """
    param = _in_place(param, "param")
    grad = _gradient(grad, param)
    cdef double lr = _hyper(learning_rate, "learning_rate", 0.0)
    cdef double mu = _hyper(momentum, "momentum", 0.0, 1.0)
    cdef int nest = _flag(nesterov, "nesterov")
    if velocity is not None:
        velocity = _in_place(velocity, "velocity", param)
    elif mu > 0.0:
        raise ValueError(f"velocity must be an array shaped like param when momentum > 0 (momentum={mu}), got None")
    if mu == 0.0:
        velocity = None
    _no_overlap(("param", "grad", "velocity"), (param, grad, velocity))
    cdef void *w = _data(param)
    cdef void *g = _data(grad)
    cdef void *vel = _data(velocity)
    cdef cx_int n = param.size
    cdef int n_threads = threads.effective_num_threads()
    if param.dtype == np.float32:
        with nogil:
            cx_sgd_update_f32(<float *>w, <const float *>g, <float *>vel, n, lr, mu, nest, n_threads)
    else:
        with nogil:
            cx_sgd_update_f64(<double *>w, <const double *>g, <double *>vel, n, lr, mu, nest, n_threads)


def adam_update(param, grad, m, v, learning_rate, beta_1, beta_2, epsilon, step, v_hat=None):
    """Adam step, Keras 3 rule, in place.

    ``m += (g - m) * (1 - b1)``, ``v += (g**2 - v) * (1 - b2)``,
    ``w -= m * lr_t / (sqrt(v) + eps)`` with
    ``lr_t = lr * sqrt(1 - b2**t) / (1 - b1**t)`` computed in double precision.

    Parameters
    ----------
    param : ndarray, float32 or float64, any shape
        Weights ``w``, C-contiguous, updated in place.
    grad : ndarray, shape and dtype of ``param``
        Gradient ``g`` (copied if non-contiguous).
    m, v : ndarray, shape and dtype of ``param``
        First and second moment estimates, C-contiguous, updated in place;
        start from zeros.
    learning_rate : float
        ``lr >= 0``.
    beta_1, beta_2 : float
        Decay rates in [0, 1) (Keras defaults 0.9 and 0.999).
    epsilon : float
        ``eps >= 0``, added to ``sqrt(v)`` (Keras' "epsilon hat"; default 1e-7).
    step : int
        ``t >= 1``, the 1-based number of this update (no default, so that a
        caller cannot silently repeat step 1).
    v_hat : ndarray or None, default None
        AMSGrad's running maximum of ``v`` (like ``m``); giving it selects
        Keras' ``amsgrad=True`` rule, where ``max(v_hat, v)`` replaces ``v``.
    """
    param = _in_place(param, "param")
    grad = _gradient(grad, param)
    m = _in_place(m, "m", param)
    v = _in_place(v, "v", param)
    cdef double lr = _hyper(learning_rate, "learning_rate", 0.0)
    cdef double b1 = _hyper(beta_1, "beta_1", 0.0, 1.0)
    cdef double b2 = _hyper(beta_2, "beta_2", 0.0, 1.0)
    cdef double eps = _hyper(epsilon, "epsilon", 0.0)
    cdef int64_t t = _step(step)
    if v_hat is not None:
        _adam_amsgrad(param, grad, m, v, v_hat, lr, b1, b2, eps, t)
        return
    _no_overlap(("param", "grad", "m", "v"), (param, grad, m, v))
    cdef void *w = _data(param)
    cdef void *g = _data(grad)
    cdef void *pm = _data(m)
    cdef void *pv = _data(v)
    cdef cx_int n = param.size
    cdef int n_threads = threads.effective_num_threads()
    if param.dtype == np.float32:
        with nogil:
            cx_adam_update_f32(<float *>w, <const float *>g, <float *>pm, <float *>pv, n,
                               lr, b1, b2, eps, t, n_threads)
    else:
        with nogil:
            cx_adam_update_f64(<double *>w, <const double *>g, <double *>pm, <double *>pv, n,
                               lr, b1, b2, eps, t, n_threads)


def rmsprop_update(param, grad, velocity, learning_rate, rho=0.9, momentum=0.0, epsilon=1e-7,
                   momentum_buffer=None, average_grad=None):
    """RMSprop step, Keras 3 rule, in place.

    ``v = rho * v + (1 - rho) * g**2``; centered (when ``average_grad`` is
    given): ``a = rho * a + (1 - rho) * g`` and ``den = v - a**2 + eps``, else
    ``den = v + eps``; ``inc = lr * g / sqrt(den)``. With momentum ``mu > 0``:
    ``mb = mu * mb + inc; w -= mb``, else ``w -= inc``.

    Parameters
    ----------
    param : ndarray, float32 or float64, any shape
        Weights ``w``, C-contiguous, updated in place.
    grad : ndarray, shape and dtype of ``param``
        Gradient ``g`` (copied if non-contiguous).
    velocity : ndarray, shape and dtype of ``param``
        Mean square ``v``, C-contiguous, updated in place; start from zeros.
    learning_rate : float
        ``lr >= 0``.
    rho : float, default 0.9
        Decay rate in [0, 1).
    momentum : float, default 0.0
        ``mu`` in [0, 1).
    epsilon : float, default 1e-7
        ``eps >= 0``, added under the square root.
    momentum_buffer : ndarray or None, default None
        ``mb``, like ``velocity``; required when ``momentum > 0``, neither read
        nor written when ``momentum == 0``.
    average_grad : ndarray or None, default None
        ``a``, like ``velocity``; giving it selects the centered variant.
    """
    param = _in_place(param, "param")
    grad = _gradient(grad, param)
    velocity = _in_place(velocity, "velocity", param)
    cdef double lr = _hyper(learning_rate, "learning_rate", 0.0)
    cdef double r = _hyper(rho, "rho", 0.0, 1.0)
    cdef double mu = _hyper(momentum, "momentum", 0.0, 1.0)
    cdef double eps = _hyper(epsilon, "epsilon", 0.0)
    if momentum_buffer is not None:
        momentum_buffer = _in_place(momentum_buffer, "momentum_buffer", param)
    elif mu > 0.0:
        raise ValueError(
            f"momentum_buffer must be an array shaped like param when momentum > 0 (momentum={mu}), got None"
        )
    if mu == 0.0:
        momentum_buffer = None
    if average_grad is not None:
        average_grad = _in_place(average_grad, "average_grad", param)
    _no_overlap(("param", "grad", "velocity", "momentum_buffer", "average_grad"),
                (param, grad, velocity, momentum_buffer, average_grad))
    cdef void *w = _data(param)
    cdef void *g = _data(grad)
    cdef void *vel = _data(velocity)
    cdef void *mb = _data(momentum_buffer)
    cdef void *ag = _data(average_grad)
    cdef cx_int n = param.size
    cdef int n_threads = threads.effective_num_threads()
    if param.dtype == np.float32:
        with nogil:
            cx_rmsprop_update_f32(<float *>w, <const float *>g, <float *>vel, <float *>mb, <float *>ag,
                                  n, lr, r, mu, eps, n_threads)
    else:
        with nogil:
            cx_rmsprop_update_f64(<double *>w, <const double *>g, <double *>vel, <double *>mb,
                                  <double *>ag, n, lr, r, mu, eps, n_threads)


include "optimizers_rules.pxi"
include "optimizers_common.pxi"
