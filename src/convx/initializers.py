"""Weight initializers with Keras 3 names, defaults and fan rules.

Each initializer is called as ``init(shape, dtype='float32')`` and returns a new
NumPy array. Without a ``seed`` it draws from the process-wide generator
(``convx.utils.set_random_seed``); with one it gives the same values every call.
"""

import math

import numpy as np

from convx import random as _random


def compute_fans(shape):
    """Keras' ``(fan_in, fan_out)``: the receptive field multiplies both for conv kernels."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: subclasses implement ``_draw(shape, gen)`` returning float64."""

    def __call__(self, shape, dtype="float32"):
        shape = tuple(int(s) for s in shape)
        return np.asarray(self._draw(shape, _random.make_generator(getattr(self, "seed", None))), dtype=dtype)

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Zeros(Initializer):
    """All zeros."""

    def _draw(self, shape, gen):
        return np.zeros(shape)


class Ones(Initializer):
    """All ones."""

    def _draw(self, shape, gen):
        return np.ones(shape)


class Constant(Initializer):
    """All equal to ``value`` (default 0.0)."""

    def __init__(self, value=0.0):
        self.value = float(value)

    def _draw(self, shape, gen):
        return np.full(shape, self.value)

    def get_config(self):
        return {"value": self.value}


class RandomUniform(Initializer):
    """Uniform on ``[minval, maxval)``; defaults -0.05, 0.05."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def _draw(self, shape, gen):
        return gen.uniform(self.minval, self.maxval, shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(Initializer):
    """Normal with ``mean`` (0.0) and ``stddev`` (0.05)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def _draw(self, shape, gen):
        return gen.normal(self.mean, self.stddev, shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def _truncated_normal(gen, shape, stddev):
    """Normal(0, stddev) redrawn outside two standard deviations, as Keras does."""
    values = gen.normal(0.0, stddev, shape)
    bad = np.abs(values) > 2 * stddev
    while bad.any():
        values[bad] = gen.normal(0.0, stddev, int(bad.sum()))
        bad = np.abs(values) > 2 * stddev
    return values


class TruncatedNormal(RandomNormal):
    """Normal with ``mean`` and ``stddev``, values beyond two stddevs redrawn."""

    def _draw(self, shape, gen):
        return self.mean + _truncated_normal(gen, shape, self.stddev)


class VarianceScaling(Initializer):
    """Keras' VarianceScaling: variance ``scale / n`` with n from ``mode``.

    Parameters
    ----------
    scale : float, default 1.0
    mode : {'fan_in', 'fan_out', 'fan_avg'}, default 'fan_in'
    distribution : {'truncated_normal', 'untruncated_normal', 'uniform'}, default 'truncated_normal'
    seed : int, optional
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        if mode not in self._MODES:
            raise ValueError(f"mode must be one of {self._MODES}, got {mode!r}")
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {self._DISTRIBUTIONS}, got {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def _draw(self, shape, gen):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return gen.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return gen.normal(0.0, math.sqrt(variance), shape)
        # 0.8796... is the stddev of a unit normal truncated at two stddevs
        return _truncated_normal(gen, shape, math.sqrt(variance) / 0.87962566103423978)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


def _variance_scaling_alias(class_name, scale, mode, distribution, doc):
    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self):
        return {"seed": self.seed}

    return type(class_name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config, "__doc__": doc})


GlorotUniform = _variance_scaling_alias(
    "GlorotUniform", 1.0, "fan_avg", "uniform", "Uniform on +-sqrt(6 / (fan_in + fan_out)) (Keras' default kernel initializer)."
)
GlorotNormal = _variance_scaling_alias("GlorotNormal", 1.0, "fan_avg", "truncated_normal", "Truncated normal, variance 2 / (fan_in + fan_out).")
HeUniform = _variance_scaling_alias("HeUniform", 2.0, "fan_in", "uniform", "Uniform on +-sqrt(6 / fan_in).")
HeNormal = _variance_scaling_alias("HeNormal", 2.0, "fan_in", "truncated_normal", "Truncated normal, variance 2 / fan_in.")
LecunUniform = _variance_scaling_alias("LecunUniform", 1.0, "fan_in", "uniform", "Uniform on +-sqrt(3 / fan_in).")
LecunNormal = _variance_scaling_alias("LecunNormal", 1.0, "fan_in", "truncated_normal", "Truncated normal, variance 1 / fan_in.")

_ALL = {
    cls.__name__: cls
    for cls in (Zeros, Ones, Constant, RandomUniform, RandomNormal, TruncatedNormal, VarianceScaling,
                GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal)
}
_SNAKE = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_uniform": RandomUniform,
    "random_normal": RandomNormal, "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_uniform": HeUniform,
    "he_normal": HeNormal, "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
}


def get(identifier):
    """Return an Initializer from a name (``'glorot_uniform'``, ``'GlorotUniform'``), a
    ``{'class_name', 'config'}`` dict, a class or an instance; a callable ``f(shape, dtype)``
    is returned as is; None stays None."""
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, str):
        cls = _SNAKE.get(identifier.lower()) or _ALL.get(identifier)
        if cls is not None:
            return cls()
    elif isinstance(identifier, dict) and identifier.get("class_name") in _ALL:
        return _ALL[identifier["class_name"]].from_config(identifier.get("config", {}))
    elif callable(identifier):
        return identifier  # a function f(shape, dtype) returning the values
    raise ValueError(f"Could not interpret initializer identifier: {identifier!r}; expected one of {sorted(_SNAKE)}")


def serialize(initializer):
    """``{'class_name': ..., 'config': ...}`` for an initializer."""
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
