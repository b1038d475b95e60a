"""Activation functions by Keras name, computed by ``convx._kernels.activations``.

Layers take ``activation`` as a name (``'relu'``, ``'sigmoid'``, ``'tanh'``,
``'softmax'``, ``'linear'``), None, or one of the functions of this module;
``get`` turns any of those into the canonical name the kernels understand.
"""

import numpy as np

from convx._kernels import activations as _k

NAMES = ("linear", "relu", "sigmoid", "tanh", "softmax")


def _as_float(x):
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)


def linear(x):
    """Identity: returns ``x`` (as float32 when it is not floating point)."""
    return _as_float(x)


def relu(x):
    """``max(x, 0)`` elementwise."""
    return _k.activation_forward(_as_float(x), "relu")


def sigmoid(x):
    """``1 / (1 + exp(-x))`` elementwise."""
    return _k.activation_forward(_as_float(x), "sigmoid")


def tanh(x):
    """Hyperbolic tangent elementwise."""
    return _k.activation_forward(_as_float(x), "tanh")


def softmax(x, axis=-1):
    """Numerically stable softmax over the last axis (the only supported ``axis``)."""
    if axis not in (-1, np.ndim(x) - 1):
        raise ValueError(f"softmax supports only the last axis (axis=-1), got axis={axis}")
    return _k.activation_forward(_as_float(x), "softmax")


_FUNCTIONS = {"linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax}


def get(identifier):
    """Return the canonical activation name for ``identifier``.

    Parameters
    ----------
    identifier : str, callable from this module, or None
        None means ``'linear'``. Names are case-insensitive.

    Raises
    ------
    ValueError
        For an unknown name or a foreign callable.
    """
    if identifier is None:
        return "linear"
    if isinstance(identifier, str):
        name = identifier.lower()
        if name in _FUNCTIONS:
            return name
    elif callable(identifier):
        for name, fn in _FUNCTIONS.items():
            if identifier is fn:
                return name
    raise ValueError(f"Could not interpret activation function identifier: {identifier!r}; expected one of {NAMES} or None")


def serialize(name):
    """The config value of an activation (its name)."""
    return get(name)


def forward(x, name, out=None):
    """Apply activation ``name`` (see ``get``) with the compiled kernel."""
    return _k.activation_forward(x, name, out=out)


def backward(y, dy, name, out=None):
    """Gradient w.r.t. the activation input, from its output ``y`` and ``dy``."""
    return _k.activation_backward(y, dy, name, out=out)
