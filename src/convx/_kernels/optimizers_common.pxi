# Included by optimizers.pyx: the steps that every optimizer shares (Keras' BaseOptimizer).

def weight_decay_update(param, weight_decay, learning_rate):
    """Keras' decoupled weight decay in place: ``w -= w * weight_decay * learning_rate``.

    Parameters
    ----------
    param : ndarray, float32 or float64, C-contiguous, writeable
    weight_decay, learning_rate : float, >= 0
    """
    param = _in_place(param, "param")
    cdef double wd = _hyper(weight_decay, "weight_decay", 0.0)
    cdef double lr = _hyper(learning_rate, "learning_rate", 0.0)
    cdef void *w = _data(param)
    cdef cx_int n = param.size
    cdef int n_threads = threads.effective_num_threads()
    if param.dtype == np.float32:
        with nogil:
            cx_opt_weight_decay_f32(<float *>w, n, wd, lr, n_threads)
    else:
        with nogil:
            cx_opt_weight_decay_f64(<double *>w, n, wd, lr, n_threads)


def ema_update(average, param, momentum):
    """``average = momentum * average + (1 - momentum) * param`` in place (Keras' use_ema).

    Parameters
    ----------
    average : ndarray, float32 or float64, C-contiguous, writeable
    param : ndarray, shape and dtype of ``average``
    momentum : float in [0, 1]
    """
    average = _in_place(average, "average")
    param = _gradient(param, average)
    cdef double mu = _hyper(momentum, "momentum", 0.0)
    if mu > 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {mu!r}")
    _no_overlap(("average", "param"), (average, param))
    cdef void *a = _data(average)
    cdef void *w = _data(param)
    cdef cx_int n = average.size
    cdef int n_threads = threads.effective_num_threads()
    if average.dtype == np.float32:
        with nogil:
            cx_opt_ema_f32(<float *>a, <const float *>w, n, mu, n_threads)
    else:
        with nogil:
            cx_opt_ema_f64(<double *>a, <const double *>w, n, mu, n_threads)


def accumulate_gradients(accumulator, grad, out=None, steps=1):
    """Gradient accumulation in place (Keras' gradient_accumulation_steps).

    Without ``out``: ``accumulator += grad``. With ``out``: ``out = (grad +
    accumulator) / steps`` and ``accumulator`` is reset to zeros.

    Parameters
    ----------
    accumulator : ndarray, float32 or float64, C-contiguous, writeable
    grad : ndarray, shape and dtype of ``accumulator``
    out : ndarray or None, shape and dtype of ``accumulator``
        May be ``grad`` itself.
    steps : int >= 1
    """
    accumulator = _in_place(accumulator, "accumulator")
    grad = _gradient(grad, accumulator)
    cdef int finish = out is not None
    if finish:
        out = _in_place(out, "out", accumulator)
        _no_overlap(("accumulator", "out"), (accumulator, out))
    _no_overlap(("accumulator", "grad"), (accumulator, grad))
    cdef double k = _step(steps)
    cdef void *acc = _data(accumulator)
    cdef void *g = _data(grad)
    cdef void *o = _data(out)
    cdef cx_int n = accumulator.size
    cdef int n_threads = threads.effective_num_threads()
    if accumulator.dtype == np.float32:
        with nogil:
            cx_opt_accumulate_f32(<float *>acc, <const float *>g, <float *>o, n, finish, k, n_threads)
    else:
        with nogil:
            cx_opt_accumulate_f64(<double *>acc, <const double *>g, <double *>o, n, finish, k, n_threads)


def sum_squares(x):
    """``sum(x**2)`` accumulated in double (the same value for any thread count).

    Parameters
    ----------
    x : ndarray, float32 or float64, any shape

    Returns
    -------
    float
    """
    x = _checks.float_array(x, "x", None, None)
    x = np.ascontiguousarray(x)
    cdef void *p = _data(x)
    cdef cx_int n = x.size
    cdef int n_threads = threads.effective_num_threads()
    cdef double total
    if x.dtype == np.float32:
        with nogil:
            total = cx_opt_sum_squares_f32(<const float *>p, n, n_threads)
    else:
        with nogil:
            total = cx_opt_sum_squares_f64(<const double *>p, n, n_threads)
    if total < 0.0:
        raise MemoryError("sum_squares could not allocate its block sums")
    return total
