# Included by optimizers.pyx: the update rules that share cx_opt_step (see csrc/optimizers.h).

cdef _rule_step(int rule, object param, object grad, tuple names, tuple slots, tuple coefs):
    """Check the arrays of one update and run rule `rule` with scalars `coefs` (at most 9)."""
    param = _in_place(param, "param")
    grad = _gradient(grad, param)
    slots = tuple([_in_place(s, name, param) for s, name in zip(slots, names)])
    _no_overlap(("param", "grad") + names, (param, grad) + slots)
    cdef double c[9]
    cdef void *ptrs[3]
    cdef Py_ssize_t i
    for i in range(len(coefs)):
        c[i] = coefs[i]
    for i in range(len(slots)):
        ptrs[i] = _data(slots[i])
    cdef void *w = _data(param)
    cdef void *g = _data(grad)
    cdef cx_int n = param.size
    cdef int n_threads = threads.effective_num_threads()
    if param.dtype == np.float32:
        with nogil:
            cx_opt_step_f32(rule, <float *>w, <const float *>g, <float **>ptrs, n, c, n_threads)
    else:
        with nogil:
            cx_opt_step_f64(rule, <double *>w, <const double *>g, <double **>ptrs, n, c, n_threads)


def _adam_amsgrad(param, grad, m, v, v_hat, double lr, double b1, double b2, double eps, int64_t t):
    alpha = lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
    _rule_step(CX_OPT_AMSGRAD, param, grad, ("m", "v", "v_hat"), (m, v, v_hat), (alpha, 1.0 - b1, 1.0 - b2, eps))


def adamax_update(param, grad, m, u, learning_rate, beta_1, beta_2, epsilon, step):
    """Adamax step, Keras 3 rule, in place.

    ``m += (g - m) * (1 - b1)``, ``u = max(b2 * u, |g|)``,
    ``w -= lr * m / ((1 - b1**t) * (u + eps))``.

    Parameters
    ----------
    param : ndarray, float32 or float64, any shape
        Weights, C-contiguous, updated in place.
    grad : ndarray, shape and dtype of ``param``
    m, u : ndarray, shape and dtype of ``param``
        First moment and exponentially weighted infinity norm (Keras' "momentum"
        and "norm"), updated in place; start from zeros.
    learning_rate, beta_1, beta_2, epsilon : float
        ``lr >= 0``, betas in [0, 1), ``eps >= 0``.
    step : int
        ``t >= 1``.
    """
    lr, b1 = _hyper(learning_rate, "learning_rate", 0.0), _hyper(beta_1, "beta_1", 0.0, 1.0)
    b2, eps, t = _hyper(beta_2, "beta_2", 0.0, 1.0), _hyper(epsilon, "epsilon", 0.0), _step(step)
    _rule_step(CX_OPT_ADAMAX, param, grad, ("m", "u"), (m, u), (lr, 1.0 - b1, b2, eps, 1.0 - b1 ** t))


def nadam_update(param, grad, m, v, learning_rate, beta_1, beta_2, epsilon, step, u_product):
    """Nadam step, Keras 3 rule, in place; returns the new momentum-cache product.

    With ``u_t = b1 * (1 - 0.5 * 0.96**t)`` and ``prod_t = u_product * u_t`` (the
    caller keeps ``u_product``, starting at 1.0, and passes back what this
    returns): ``m += (g - m) * (1 - b1)``, ``v += (g**2 - v) * (1 - b2)``,
    ``m_hat = u_{t+1} m / (1 - prod_t u_{t+1}) + (1 - u_t) g / (1 - prod_t)``,
    ``w -= m_hat * lr / (sqrt(v / (1 - b2**t)) + eps)``.

    Parameters
    ----------
    param, grad, m, v : ndarray
        As for :func:`adam_update`.
    learning_rate, beta_1, beta_2, epsilon : float
    step : int
        ``t >= 1``.
    u_product : float
        Product of the ``u`` of the previous steps (1.0 before the first).

    Returns
    -------
    float
        ``prod_t``, the ``u_product`` of the next call.
    """
    lr, b1 = _hyper(learning_rate, "learning_rate", 0.0), _hyper(beta_1, "beta_1", 0.0, 1.0)
    b2, eps, t = _hyper(beta_2, "beta_2", 0.0, 1.0), _hyper(epsilon, "epsilon", 0.0), _step(step)
    u_now = b1 * (1.0 - 0.5 * 0.96 ** t)
    u_next = b1 * (1.0 - 0.5 * 0.96 ** (t + 1))
    product = float(u_product) * u_now
    coefs = (lr, 1.0 - b1, 1.0 - b2, eps, u_next, 1.0 - product * u_next, 1.0 - u_now, 1.0 - product, 1.0 - b2 ** t)
    _rule_step(CX_OPT_NADAM, param, grad, ("m", "v"), (m, v), coefs)
    return product


def adagrad_update(param, grad, accumulator, learning_rate, epsilon=1e-7):
    """Adagrad step, Keras 3 rule, in place: ``acc += g**2``, ``w -= lr * g / sqrt(acc + eps)``.

    ``accumulator`` (shape and dtype of ``param``) starts at Keras'
    ``initial_accumulator_value`` (0.1).
    """
    lr, eps = _hyper(learning_rate, "learning_rate", 0.0), _hyper(epsilon, "epsilon", 0.0)
    _rule_step(CX_OPT_ADAGRAD, param, grad, ("accumulator",), (accumulator,), (lr, eps))


def adadelta_update(param, grad, accumulated_grad, accumulated_delta_var, learning_rate, rho=0.95, epsilon=1e-7):
    """Adadelta step, Keras 3 rule, in place.

    ``a = rho a + (1 - rho) g**2``, ``d = -sqrt(b + eps) g / sqrt(a + eps)``,
    ``b = rho b + (1 - rho) d**2``, ``w += lr * d`` (``a``, ``b``: the two
    accumulators, shape and dtype of ``param``, starting from zeros).
    """
    lr, r = _hyper(learning_rate, "learning_rate", 0.0), _hyper(rho, "rho", 0.0, 1.0)
    eps = _hyper(epsilon, "epsilon", 0.0)
    _rule_step(CX_OPT_ADADELTA, param, grad, ("accumulated_grad", "accumulated_delta_var"),
               (accumulated_grad, accumulated_delta_var), (lr, r, 1.0 - r, eps))


def ftrl_update(param, grad, accumulator, linear, learning_rate, learning_rate_power=-0.5,
                l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                l2_shrinkage_regularization_strength=0.0, beta=0.0):
    """FTRL-proximal step, Keras 3 rule, in place (``accumulator`` starts at
    ``initial_accumulator_value``, ``linear`` at zeros; see Keras' ``Ftrl``)."""
    lr = _hyper(learning_rate, "learning_rate", 0.0)
    if lr == 0.0:
        raise ValueError("learning_rate must be > 0 for Ftrl, got 0.0")
    power = -_hyper(-learning_rate_power, "-learning_rate_power", 0.0)
    l1 = _hyper(l1_regularization_strength, "l1_regularization_strength", 0.0)
    l2 = _hyper(l2_regularization_strength, "l2_regularization_strength", 0.0)
    shrink = _hyper(l2_shrinkage_regularization_strength, "l2_shrinkage_regularization_strength", 0.0)
    b = _hyper(beta, "beta", 0.0)
    _rule_step(CX_OPT_FTRL, param, grad, ("accumulator", "linear"), (accumulator, linear),
               (lr, -power, l1, 2.0 * (l2 + b / (2.0 * lr)), 2.0 * shrink))


def lion_update(param, grad, m, learning_rate, beta_1=0.9, beta_2=0.99):
    """Lion step, Keras 3 rule, in place: ``w -= lr * sign(b1 m + (1 - b1) g)``,
    then ``m = b2 m + (1 - b2) g``."""
    lr, b1 = _hyper(learning_rate, "learning_rate", 0.0), _hyper(beta_1, "beta_1", 0.0)
    b2 = _hyper(beta_2, "beta_2", 0.0)
    if b1 == 0.0 or b1 > 1.0 or b2 > 1.0:
        raise ValueError(f"beta_1 must be in (0, 1] and beta_2 in [0, 1], got beta_1={b1}, beta_2={b2}")
    _rule_step(CX_OPT_LION, param, grad, ("m",), (m,), (lr, b1, b2))
