"""Activation functions by Keras name, computed by ``convx._kernels.activations``.

Layers take ``activation`` as a name (``'relu'``, ``'gelu'``, ``'swish'``, ...),
None, or one of the functions of this module; ``get`` turns any of those into
the canonical name the kernels understand (``'swish'`` -> ``'silu'``,
``'hard_swish'`` -> ``'hard_silu'``). The functions take arrays and Keras 3's
signatures (``gelu(x, approximate=False)``, ``leaky_relu(x, negative_slope=0.2)``,
``relu(x, negative_slope=0.0, max_value=None, threshold=0.0)``, ``elu(x, alpha=1.0)``,
``softmax(x, axis=-1)``, ...) and return float arrays (float32 unless ``x`` is float64).

As a layer's ``activation``, a name means the function with its defaults; the
tanh approximation of gelu is ``'gelu_tanh'`` (a convx name: Keras has no
string for it).
"""

import math

import numpy as np

from convx._kernels import activations as _k

NAMES = (
    "linear", "relu", "sigmoid", "tanh", "softmax", "softplus", "softsign", "elu", "selu", "gelu", "gelu_tanh",
    "silu", "hard_sigmoid", "hard_silu", "leaky_relu", "relu6", "mish", "exponential", "log_softmax",
)
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
ROW_ACTIVATIONS = _k.ROW_ACTIVATIONS


def _as_float(x):
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)


def _traced(x):
    """Whether ``x`` is a symbolic or taped tensor (or a Variable): then the activation is a convx op."""
    return not isinstance(x, np.ndarray) and hasattr(x, "shape") and hasattr(x, "dtype")


def _apply(x, name, params=None):
    if _traced(x):
        from convx.ops.nn import activation

        return activation(x, name, params)
    return _k.activation_forward(_as_float(x), name, params=params)


def _number(value, name, function):
    """``value`` as a float; ValueError naming ``function``, the argument and the value otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or math.isnan(value):
        raise ValueError(f"{function}: `{name}` must be a number, received {name}={value!r}")
    return float(value)


def linear(x):
    """Identity: returns ``x`` (as float32 when it is not floating point)."""
    return _as_float(x)


def relu_code(slope, max_value, threshold):
    """The kernel code of Keras' relu(x, negative_slope, max_value, threshold), as Keras picks its op:
    relu, relu6 (max_value 6), leaky_relu (a slope alone), else the general form."""
    if threshold == 0.0 and max_value is None:
        return "relu" if slope == 0.0 else "leaky_relu"
    if threshold == 0.0 and slope == 0.0 and max_value == 6.0:
        return "relu6"
    return "relu_general"


def relu_params(code, slope, max_value, threshold):
    """The kernel parameters of ``relu_code``'s code (None for relu and relu6)."""
    if code == "leaky_relu":
        return (slope,)
    if code == "relu_general":
        return (slope, math.inf if max_value is None else max_value, threshold)
    return None


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras' relu: ``max(x, 0)``, or with ``negative_slope`` below ``threshold`` and values clipped at ``max_value``."""
    slope = _number(negative_slope, "negative_slope", "relu")
    top = None if max_value is None else _number(max_value, "max_value", "relu")
    thr = _number(threshold, "threshold", "relu")
    code = relu_code(slope, top, thr)
    return _apply(x, code, relu_params(code, slope, top, thr))


def leaky_relu(x, negative_slope=0.2):
    """``x`` for x > 0, ``negative_slope * x`` otherwise."""
    return _apply(x, "leaky_relu", (_number(negative_slope, "negative_slope", "leaky_relu"),))


def relu6(x):
    """``min(max(x, 0), 6)``."""
    return _apply(x, "relu6")


def elu(x, alpha=1.0):
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise."""
    return _apply(x, "elu", (_number(alpha, "alpha", "elu"),))


def selu(x):
    """``scale * elu(x, alpha)`` with alpha = 1.67326324, scale = 1.05070098."""
    return _apply(x, "selu")


def sigmoid(x):
    """``1 / (1 + exp(-x))`` elementwise."""
    return _apply(x, "sigmoid")


def tanh(x):
    """Hyperbolic tangent elementwise."""
    return _apply(x, "tanh")


def softplus(x):
    """``log(exp(x) + 1)``, without overflow."""
    return _apply(x, "softplus")


def softsign(x):
    """``x / (abs(x) + 1)``."""
    return _apply(x, "softsign")


def silu(x):
    """``x * sigmoid(x)`` (also ``swish``)."""
    return _apply(x, "silu")


swish = silu


def gelu(x, approximate=False):
    """``0.5 * x * (1 + erf(x / sqrt(2)))``; with ``approximate=True`` the tanh approximation."""
    return _apply(x, "gelu_tanh" if approximate else "gelu")


def gelu_tanh(x):
    """``gelu(x, approximate=True)``: ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``."""
    return _apply(x, "gelu_tanh")


def hard_sigmoid(x):
    """Keras 3's hard sigmoid: ``relu6(x + 3) / 6``."""
    return _apply(x, "hard_sigmoid")


def hard_silu(x):
    """``x * hard_sigmoid(x)`` (also ``hard_swish``)."""
    return _apply(x, "hard_silu")


hard_swish = hard_silu


def mish(x):
    """``x * tanh(softplus(x))``."""
    return _apply(x, "mish")


def exponential(x):
    """``exp(x)``."""
    return _apply(x, "exponential")


def _along_axis(x, axis, name):
    if _traced(x):
        from convx.ops import nn

        return getattr(nn, name)(x, axis=axis)
    x = _as_float(x)
    ndim = x.ndim
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ValueError(f"{name}: `axis` must be an int in [-{max(ndim, 1)}, {max(ndim, 1)}) for an input of rank "
                         f"{ndim}, received axis={axis!r}")
    if ndim == 0 or axis % ndim == ndim - 1:
        return _k.activation_forward(x, name)
    moved = np.ascontiguousarray(np.moveaxis(x, axis, -1))
    return np.moveaxis(_k.activation_forward(moved, name, out=moved), -1, axis).copy()


def softmax(x, axis=-1):
    """Numerically stable softmax along ``axis``."""
    return _along_axis(x, axis, "softmax")


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis``."""
    return _along_axis(x, axis, "log_softmax")


_FUNCTIONS = {
    "linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax, "softplus": softplus,
    "softsign": softsign, "elu": elu, "selu": selu, "gelu": gelu, "gelu_tanh": gelu_tanh, "silu": silu,
    "hard_sigmoid": hard_sigmoid, "hard_silu": hard_silu, "leaky_relu": leaky_relu, "relu6": relu6, "mish": mish,
    "exponential": exponential, "log_softmax": log_softmax,
}


def get(identifier):
    """Return the canonical activation name for ``identifier``.

    Parameters
    ----------
    identifier : str, callable from this module, or None
        None means ``'linear'``. Names are case-insensitive; ``'swish'`` and
        ``'hard_swish'`` are aliases of ``'silu'`` and ``'hard_silu'``. A
        Keras config dict ``{'class_name': 'function', 'config': name}`` is
        accepted too.

    Raises
    ------
    ValueError
        For an unknown name or a foreign callable.
    """
    if identifier is None:
        return "linear"
    if isinstance(identifier, dict) and isinstance(identifier.get("config"), str):
        identifier = identifier["config"]
    if isinstance(identifier, str):
        name = identifier.lower()
        name = ALIASES.get(name, name)
        if name in _FUNCTIONS:
            return name
    elif callable(identifier):
        for name, fn in _FUNCTIONS.items():
            if identifier is fn:
                return name
    raise ValueError(
        f"Could not interpret activation function identifier: {identifier!r}; expected one of "
        f"{NAMES + tuple(ALIASES)}, one of the functions of convx.activations, or None"
    )


def serialize(name):
    """The config value of an activation (its name)."""
    return get(name)


def deserialize(config):
    """The function of a serialized activation."""
    return _FUNCTIONS[get(config)]


_NEEDS_INPUT = {name: _k.needs_input(name) for name in _k.ACTIVATION_CODES}


def needs_input(name, params=None):
    """Whether ``backward`` needs the activation's input ``x`` (gelu, silu, mish, ...)."""
    if params is None:
        known = _NEEDS_INPUT.get(name)
        if known is not None:
            return known
    return _k.needs_input(name, params)


def forward(x, name, out=None, params=None):
    """Apply activation ``name`` (see ``get``) with the compiled kernel."""
    return _k.activation_forward(x, name, out=out, params=params)


def backward(y, dy, name, out=None, x=None, params=None):
    """Gradient w.r.t. the activation input, from its output ``y`` (and its input ``x``
    where ``needs_input``) and ``dy``."""
    return _k.activation_backward(y, dy, name, out=out, x=x, params=params)
