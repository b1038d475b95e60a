"""Keras 3 weight regularizers: ``L1``, ``L2``, ``L1L2``, ``OrthogonalRegularizer``.

A regularizer is called on a weight and returns its penalty (a float32
scalar), which the model adds to the training loss (``model.losses``). The
built-in ones also know their gradient: ``add_gradient(x, grad, scratch)`` adds
d penalty / dx to ``grad`` in place, using ``scratch`` (an array shaped like
``x``) instead of allocating, so that the training step stays allocation-free.
A user-defined regularizer (a callable or a ``Regularizer`` subclass) must
define ``add_gradient`` too to be trained with (convx has no autograd).

``'l1'``, ``'l2'`` (factor 0.01) and ``'l1_l2'`` (0.01 and 0.01) work as
strings; ``l1``, ``l2``, ``l1_l2``, ``orthogonal_regularizer`` are the classes'
lowercase aliases, as in Keras.
"""

import math

import numpy as np


def validate_float_arg(value, name):
    """A non-negative finite float, else Keras' ValueError naming ``name``."""
    if (isinstance(value, bool) or not isinstance(value, (float, int, np.floating, np.integer))
            or math.isinf(value) or math.isnan(value) or value < 0):
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative float.Received: {name}={value!r}")
    return float(value)


class Regularizer:
    """Base class: ``regularizer(x)`` is the penalty of weight ``x``."""

    def __call__(self, x):
        return np.float32(0.0)

    def add_gradient(self, x, grad, scratch):
        """Add the gradient of the penalty at ``x`` to ``grad`` in place."""
        raise NotImplementedError(
            f"{type(self).__name__} defines no add_gradient(x, grad, scratch): convx cannot train with it"
        )

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _sum_abs(x, scratch):
    return np.abs(x, out=scratch).sum(dtype=np.float32) if scratch is not None else np.abs(x).sum(dtype=np.float32)


def _sum_squares(x):
    flat = np.ascontiguousarray(x).reshape(-1)
    return np.float32(np.dot(flat, flat))


class L1L2(Regularizer):
    """``l1 * sum(abs(x)) + l2 * sum(square(x))`` (defaults 0.0, as Keras' class)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = validate_float_arg(0.0 if l1 is None else l1, "l1")
        self.l2 = validate_float_arg(0.0 if l2 is None else l2, "l2")

    def penalty(self, x, scratch=None):
        """The penalty, computed in float32 without allocating when ``scratch`` is given."""
        x = np.asarray(x, dtype=np.float32)
        total = np.float32(0.0)
        if self.l1 != 0.0:
            total = total + np.float32(self.l1) * _sum_abs(x, scratch)
        if self.l2 != 0.0:
            total = total + np.float32(self.l2) * _sum_squares(x)
        return np.float32(total)

    def __call__(self, x):
        return self.penalty(x)

    def add_gradient(self, x, grad, scratch):
        if self.l1 != 0.0:
            np.sign(x, out=scratch)
            np.multiply(scratch, np.float32(self.l1), out=scratch)
            np.add(grad, scratch, out=grad)
        if self.l2 != 0.0:
            np.multiply(x, np.float32(2.0 * self.l2), out=scratch)
            np.add(grad, scratch, out=grad)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(abs(x))``; default factor 0.01."""

    def __init__(self, l1=0.01):
        super().__init__(l1=0.01 if l1 is None else l1, l2=0.0)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(square(x))``; default factor 0.01."""

    def __init__(self, l2=0.01):
        super().__init__(l1=0.0, l2=0.01 if l2 is None else l2)

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """``factor * 0.5 * sum(|off-diagonal of N N^T|) / (n (n - 1) / 2)`` over the L2-normalised
    rows (``mode='rows'``) or columns (``'columns'``) ``N`` of a rank-2 weight."""

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = validate_float_arg(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ValueError(f'Invalid value for argument `mode`. Expected one of {{"rows", "columns"}}. Received: mode={mode}')
        self.mode = mode

    def _parts(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"Inputs to OrthogonalRegularizer must have rank 2. Received: inputs.shape={x.shape}")
        a = x if self.mode == "rows" else x.T
        norms = np.sqrt(np.maximum(np.sum(a * a, axis=1, keepdims=True), 1e-12))
        n = a / norms
        product = n @ n.T
        np.fill_diagonal(product, 0.0)
        size = a.shape[0]
        return a, norms, n, product, size * (size - 1.0) / 2.0

    def __call__(self, x):
        _, _, _, product, pairs = self._parts(x)
        return np.float32(self.factor * 0.5 * np.abs(product).sum() / pairs)

    def add_gradient(self, x, grad, scratch):
        a, norms, n, product, pairs = self._parts(x)
        dn = (self.factor * 0.5 / pairs) * 2.0 * (np.sign(product) @ n)
        da = (dn - n * np.sum(dn * n, axis=1, keepdims=True)) / norms
        np.add(grad, (da if self.mode == "rows" else da.T).astype(np.float32), out=grad)

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer

ALL_OBJECTS = {cls.__name__: cls for cls in (Regularizer, L1, L2, L1L2, OrthogonalRegularizer)}
_STRINGS = {
    "l1": L1, "l2": L2, "l1l2": L1L2, "orthogonal_regularizer": OrthogonalRegularizer, "regularizer": Regularizer,
}


def _serialize(obj, module):
    if obj is None:
        return None
    return {"module": module, "class_name": type(obj).__name__, "config": obj.get_config(), "registered_name": None}


def _deserialize(config, kind, all_objects):
    if not isinstance(config, dict) or config.get("class_name") not in all_objects:
        raise ValueError(f"Could not interpret {kind} identifier: {config!r}")
    return all_objects[config["class_name"]].from_config(config.get("config") or {})


def _get(identifier, kind, all_objects, strings, base):
    """Keras' get(): None, a class name or snake-case alias, a config dict, a class or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return _deserialize(identifier, kind, all_objects)
    if isinstance(identifier, str):
        cls = all_objects.get(identifier) or strings.get(identifier)
        if cls is None:
            raise ValueError(f"Could not interpret {kind} identifier: {identifier!r}; expected one of "
                             f"{sorted(strings)} or a {base.__name__}")
        return cls()
    if isinstance(identifier, type) and issubclass(identifier, base):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret {kind} identifier: {identifier!r}")


def serialize(regularizer):
    """``{'module', 'class_name', 'config', 'registered_name'}`` as Keras writes it (None stays None)."""
    return _serialize(regularizer, "keras.regularizers")


def deserialize(config):
    """The regularizer of a ``serialize`` result."""
    return _deserialize(config, "regularizer", ALL_OBJECTS)


def get(identifier):
    """A regularizer from None, a name (``'l2'``, ``'L1L2'``, ``'l1_l2'``), a config dict, a class or an instance."""
    if identifier == "l1_l2":  # Keras 2's string: both factors 0.01, as Keras 3's docstring says
        return L1L2(l1=0.01, l2=0.01)
    return _get(identifier, "regularizer", ALL_OBJECTS, {**_STRINGS, "l1_l2": L1L2}, Regularizer)
