"""Keras 3 weight constraints: ``MaxNorm``, ``NonNeg``, ``UnitNorm``, ``MinMaxNorm``.

A constraint is called on a weight and returns the projected weight; the model
applies it to its variable after every optimizer update, as Keras does. The
built-in ones also project in place (``apply(value, scratch)``, ``scratch`` an
array shaped like ``value``) so that the training step does not allocate a
copy of the weight. Norms are taken along ``axis`` (Keras' default 0: the
incoming weights of each unit of a Dense kernel (in, out); use [0, 1, 2] for a
Conv2D kernel), with Keras' epsilon 1e-7.
"""

import numpy as np

from convx.regularizers import _deserialize, _get, _serialize

EPSILON = 1e-7


class Constraint:
    """Base class: ``constraint(w)`` returns the constrained weight."""

    def __call__(self, w):
        return w

    def apply(self, value, scratch):
        """Project the float32 array ``value`` in place."""
        np.copyto(value, self(value), casting="unsafe")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _axis(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _norms(w, axis, scratch=None):
    squares = np.square(w, out=scratch) if scratch is not None else np.square(w)
    return np.sqrt(np.sum(squares, axis=_axis(axis), keepdims=True))


class _NormConstraint(Constraint):
    def _desired(self, norms):
        raise NotImplementedError

    def _factor(self, w, scratch=None):
        norms = _norms(w, self.axis, scratch)
        return (self._desired(norms) / (np.asarray(EPSILON, dtype=norms.dtype) + norms)).astype(w.dtype, copy=False)

    def __call__(self, w):
        w = np.asarray(w, dtype=np.float32)
        return w * self._factor(w)

    def apply(self, value, scratch):
        np.multiply(value, self._factor(value, scratch), out=value)


class MaxNorm(_NormConstraint):
    """Rescale so that the norm along ``axis`` is at most ``max_value``."""

    def __init__(self, max_value=2, axis=0):
        self.max_value = max_value
        self.axis = axis

    def _desired(self, norms):
        return np.clip(norms, 0, self.max_value)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class UnitNorm(_NormConstraint):
    """Rescale to unit norm along ``axis``."""

    def __init__(self, axis=0):
        self.axis = axis

    def _desired(self, norms):
        return np.ones_like(norms)

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(_NormConstraint):
    """Move the norm along ``axis`` toward [min_value, max_value] at ``rate`` (1.0: strictly)."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = axis

    def _desired(self, norms):
        return self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


class NonNeg(Constraint):
    """``maximum(w, 0)``."""

    def __call__(self, w):
        return np.maximum(np.asarray(w, dtype=np.float32), 0)

    def apply(self, value, scratch):
        np.maximum(value, 0, out=value)


max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm

ALL_OBJECTS = {cls.__name__: cls for cls in (Constraint, MaxNorm, NonNeg, UnitNorm, MinMaxNorm)}
_STRINGS = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm,
            "constraint": Constraint}


def serialize(constraint):
    """``{'module', 'class_name', 'config', 'registered_name'}`` as Keras writes it (None stays None)."""
    return _serialize(constraint, "keras.constraints")


def deserialize(config):
    """The constraint of a ``serialize`` result."""
    return _deserialize(config, "constraint", ALL_OBJECTS)


def get(identifier):
    """A constraint from None, a name (``'max_norm'``, ``'NonNeg'``), a config dict, a class or an instance."""
    return _get(identifier, "constraint", ALL_OBJECTS, _STRINGS, Constraint)
