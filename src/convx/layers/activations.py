"""Keras 3 activation layers: Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax.

Elementwise layers run the activation kernels (``convx._kernels.activations``)
with their parameters (``ReLU``'s max_value / negative_slope / threshold,
``LeakyReLU``'s slope, ``ELU``'s alpha); ``Activation``, ``ReLU()`` and
``Softmax()`` with its default axis are what the plan may fold into a loss or a
pooling's backward, as before.
"""

import math

import numpy as np

from convx import activations, constraints, initializers, regularizers
from convx.activations import _number  # ValueError naming the argument and the value
from convx.layers.base import ActivationOutput, Layer


class Activation(ActivationOutput, Layer):
    """Applies an activation function (any name of ``convx.activations``, or one of its functions)."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def output_may_alias_input(self):
        return self.activation == "linear"

    def forward(self, x, training=False):
        params = self._activation_params
        return self._activate(
            lambda act, slot: x if act == "linear" else activations.forward(
                x, act, out=self._buffer(slot, x.shape, x.dtype), params=params
            ),
            training,
        )

    def backward(self, dy, from_logits=False):
        return self._pre_activation_grad(dy, from_logits)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class _ParameterisedActivation(Activation):
    """An activation layer whose config is its parameters, not an ``activation`` name."""

    def __init__(self, kernel_name, **kwargs):
        Layer.__init__(self, **kwargs)
        self.activation = kernel_name  # a kernel code name (``'relu_general'``), not necessarily a public one

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return config


class ReLU(_ParameterisedActivation):
    """Keras' ReLU: ``max_value`` (None: unbounded) clips the output, below ``threshold`` the
    output is ``negative_slope * (x - threshold)``; the defaults give ``max(x, 0)``."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        if max_value is not None and _number(max_value, "max_value", "ReLU") < 0.0:
            raise ValueError(f"max_value of a ReLU layer cannot be a negative value. Received: max_value={max_value}")
        if negative_slope is None or _number(negative_slope, "negative_slope", "ReLU") < 0.0:
            raise ValueError("negative_slope of a ReLU layer cannot be None or a negative value. "
                             f"Received: negative_slope={negative_slope}")
        if threshold is None or _number(threshold, "threshold", "ReLU") < 0.0:
            raise ValueError(f"threshold of a ReLU layer cannot be None or a negative value. Received: threshold={threshold}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = float(negative_slope)
        self.threshold = float(threshold)
        super().__init__(activations.relu_code(self.negative_slope, self.max_value, self.threshold), **kwargs)
        self._activation_params = activations.relu_params(self.activation, self.negative_slope, self.max_value,
                                                          self.threshold)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class LeakyReLU(_ParameterisedActivation):
    """``x`` for x > 0, ``negative_slope * x`` otherwise (Keras' default slope 0.3)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # Keras' deprecated name
            negative_slope = kwargs.pop("alpha")
        if negative_slope is None or _number(negative_slope, "negative_slope", "LeakyReLU") < 0:
            raise ValueError("The negative_slope value of a Leaky ReLU layer cannot be None or negative value. "
                             f"Expected a float. Received: negative_slope={negative_slope}")
        super().__init__("leaky_relu", **kwargs)
        self.negative_slope = float(negative_slope)
        self._activation_params = (self.negative_slope,)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_ParameterisedActivation):
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__("elu", **kwargs)
        self.alpha = _number(alpha, "alpha", "ELU")
        self._activation_params = (self.alpha,)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


def _normalize_axes(axis, ndim, layer):
    axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    if not axes or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim
                       for a in axes):
        raise ValueError(f"{layer}: `axis` must be an int (or a list of ints) in [-{ndim}, {ndim}) for inputs of rank "
                         f"{ndim}, received axis={axis!r}")
    axes = tuple(sorted({int(a) % ndim for a in axes}))
    if 0 in axes:
        raise ValueError(f"{layer}: `axis` must not include the batch axis 0, received axis={axis!r}")
    return axes


class Softmax(_ParameterisedActivation):
    """Softmax along ``axis`` (an int or a list of ints: the softmax over those axes together).

    With the last axis it is an ordinary activation (a loss may take it over);
    along other axes the input is transposed so that the axes are last.
    """

    def __init__(self, axis=-1, **kwargs):
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else axis
        last = self.axis == -1 or self.axis == [-1]
        # along other axes the plan must not take this for a last-axis softmax
        super().__init__("softmax", **kwargs)
        if not last:
            self.activation = "softmax_axis"
        self._axes = None

    def build(self, input_shape):
        self._axes = _normalize_axes(self.axis, len(input_shape), "Softmax")
        if self._axes == (len(input_shape) - 1,):
            self.activation = "softmax"

    def output_may_alias_input(self):
        return False

    def _moved(self, a):
        """``a`` with the softmax axes last, as (rows, cols) C-contiguous, and the permutation."""
        rest = [i for i in range(a.ndim) if i not in self._axes]
        perm = rest + list(self._axes)
        moved = np.ascontiguousarray(a.transpose(perm))
        return moved.reshape(-1, math.prod(a.shape[i] for i in self._axes)), perm, moved.shape

    def _restore(self, rows, perm, moved_shape, slot):
        out = self._buffer(slot, tuple(moved_shape[perm.index(i)] for i in range(len(perm))), rows.dtype)
        np.copyto(out, rows.reshape(moved_shape).transpose(np.argsort(perm)))
        return out

    def forward(self, x, training=False):
        if self.activation == "softmax":
            return super().forward(x, training)
        rows, perm, moved_shape = self._moved(x)
        activations.forward(rows, "softmax", out=rows)
        if training:
            self._state.y_rows, self._state.perm, self._state.moved_shape = rows, perm, moved_shape
        return self._restore(rows, perm, moved_shape, "y")

    def backward(self, dy, from_logits=False):
        if self.activation == "softmax":
            return super().backward(dy, from_logits)
        state = self._state
        dy_rows, _, _ = self._moved(dy)
        activations.backward(state.y_rows, dy_rows, "softmax", out=dy_rows)
        return self._restore(dy_rows, state.perm, state.moved_shape, "dx")

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class PReLU(Layer):
    """``x`` for x > 0, ``alpha * x`` otherwise, with a learned ``alpha`` per input element
    (shared along ``shared_axes``, e.g. [1, 2] for one alpha per channel of an image).

    Parameters
    ----------
    alpha_initializer : default 'Zeros' (Keras 3's default)
    alpha_regularizer, alpha_constraint : optional
    shared_axes : int or list of int, optional
    """

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        elif not isinstance(shared_axes, (list, tuple)):
            self.shared_axes = [shared_axes]
        else:
            self.shared_axes = list(shared_axes)
        self.alpha = None

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not 1 <= axis < len(input_shape):
                raise ValueError(f"PReLU: `shared_axes` must hold axes in [1, {len(input_shape)}) for inputs of rank "
                                 f"{len(input_shape)}, received shared_axes={self.shared_axes!r}")
            shape[axis - 1] = 1
        if any(s is None for s in shape):
            self._incompatible("PReLU needs every non-shared axis defined", input_shape)
        self.alpha = self.add_weight(shape=tuple(shape), initializer=self.alpha_initializer, name="alpha",
                                     regularizer=self.alpha_regularizer, constraint=self.alpha_constraint)
        self._sum_axes = (0,) + tuple(i + 1 for i, s in enumerate(shape) if s == 1 and input_shape[i + 1] != 1)

    def forward(self, x, training=False):
        if training:
            self._state.x = x
        # y = x where x > 0 else alpha * x (the NumPy glue of this layer, into reused buffers)
        neg = np.minimum(x, 0, out=self._buffer("neg", x.shape, x.dtype))
        y = np.maximum(x, 0, out=self._buffer("y", x.shape, x.dtype))
        np.multiply(neg, self.alpha.value, out=neg)
        return np.add(y, neg, out=y)

    def backward(self, dy):
        x = self._state.x
        prod = np.minimum(x, 0, out=self._buffer("prod", x.shape, x.dtype))
        np.multiply(prod, dy, out=prod)
        self.alpha.grad[...] = prod.sum(axis=self._sum_axes, keepdims=True).reshape(self.alpha.shape)
        if not self._state.need_dx:
            return None
        positive = np.greater(x, 0, out=self._buffer("positive", x.shape, np.bool_))
        dx = np.multiply(dy, self.alpha.value, out=self._buffer("dx", x.shape, x.dtype))
        np.copyto(dx, dy, where=positive)
        return dx

    def get_config(self):
        return {
            **super().get_config(),
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
            "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
            "alpha_constraint": constraints.serialize(self.alpha_constraint),
            "shared_axes": self.shared_axes,
        }


__all__ = ["Activation", "ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax"]
