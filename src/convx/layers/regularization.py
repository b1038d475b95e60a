"""Keras 3 regularization layers: SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout,
ActivityRegularization (Dropout itself is in core.py).

The noise layers act only in training (``forward(x, training=True)``) and are the
identity at inference; they draw from their own generator when given a ``seed``,
else from the process-wide one, so ``convx.utils.set_random_seed`` makes training
reproducible. The noise is NumPy glue into reused buffers, like Dropout's mask.
"""

import math

import numpy as np

from convx import random as _random
from convx import regularizers
from convx.layers.base import Layer, check_data_format
from convx.layers.core import Dropout


def _rate(value, name, layer, upper_inclusive=False):
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and (0 <= value <= 1 if upper_inclusive else 0 <= value < 1))
    if not ok:
        bound = "1 included" if upper_inclusive else "1 excluded"
        raise ValueError(f"Invalid value received for argument `{name}` of {layer}. Expected a float value between "
                         f"0 and 1 ({bound}). Received: {name}={value!r}")
    return float(value)


class _SpatialDropout(Dropout):
    """Dropout of whole feature maps: one draw per (sample, channel)."""

    _rank = None

    def __init__(self, rate, seed=None, data_format=None, **kwargs):
        if data_format is not None:
            check_data_format(data_format)
        super().__init__(rate, noise_shape=(None,) + (1,) * self._rank + (None,), seed=seed, **kwargs)
        self.data_format = "channels_last"

    def build(self, input_shape):
        self._require_ndim(input_shape, self._rank + 2)

    def get_config(self):
        # Keras' SpatialDropout config: no trainable, dtype as a plain string
        config = {**super().get_config(), "dtype": "float32"}
        del config["noise_shape"], config["trainable"]
        if self._rank > 1:
            config["data_format"] = self.data_format
        return config


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of (batch, steps, channels) inputs with probability ``rate``."""

    _rank = 1


class SpatialDropout2D(_SpatialDropout):
    """Drops whole channels of (batch, rows, cols, channels) inputs with probability ``rate``."""

    _rank = 2


class SpatialDropout3D(_SpatialDropout):
    """Drops whole channels of (batch, d1, d2, d3, channels) inputs with probability ``rate``."""

    _rank = 3


class _Noise(Layer):
    """A training-only elementwise noise: additive (GaussianNoise) or multiplicative (GaussianDropout)."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self._generator = _random.make_generator(seed) if seed is not None else None

    def output_may_alias_input(self):
        return True

    def _normal(self, shape, mean, stddev):
        gen = self._generator or _random.generator()
        noise = gen.standard_normal(out=self._buffer("noise", shape), dtype=np.float32)
        np.multiply(noise, np.float32(stddev), out=noise)
        return np.add(noise, np.float32(mean), out=noise) if mean else noise


class GaussianNoise(_Noise):
    """Adds zero-centred Gaussian noise of standard deviation ``stddev`` (training only)."""

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if (isinstance(stddev, bool) or not isinstance(stddev, (int, float, np.integer, np.floating))
                or not 0 <= stddev <= 1):
            raise ValueError("Invalid value received for argument `stddev`. Expected a float value between 0 and 1. "
                             f"Received: stddev={stddev!r}")
        self.stddev = float(stddev)

    def forward(self, x, training=False):
        if not training or self.stddev == 0:
            return x
        noise = self._normal(x.shape, 0.0, self.stddev)
        return np.add(x, noise, out=self._buffer("y", x.shape, x.dtype))

    def backward(self, dy):
        return dy

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_Noise):
    """Multiplies by Gaussian noise of mean 1 and standard deviation ``sqrt(rate / (1 - rate))`` (training only)."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _rate(rate, "rate", "GaussianDropout", upper_inclusive=True)

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self._state.noise = None
            return x
        noise = self._normal(x.shape, 1.0, math.sqrt(self.rate / (1.0 - self.rate)) if self.rate < 1 else math.inf)
        self._state.noise = noise
        return np.multiply(x, noise, out=self._buffer("y", x.shape, x.dtype))

    def backward(self, dy):
        noise = self._state.noise
        return dy if noise is None else np.multiply(dy, noise, out=self._buffer("dx", dy.shape, dy.dtype))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class ActivityRegularization(Layer):
    """The identity, adding ``l1 * sum(|x|) + l2 * sum(x**2)`` divided by the batch size to the
    loss (Keras 3: an ``L1L2`` activity regularizer, at every call)."""

    _supports_activity_regularizer = True

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        kwargs.pop("activity_regularizer", None)
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1, self.l2 = l1, l2

    def output_may_alias_input(self):
        return True

    def forward(self, x, training=False):
        self._activity_forward(x)
        if training:
            self._state.x = x
        return x

    def backward(self, dy):
        return np.add(dy, self._activity_grad(self._state.x), out=self._buffer("dx", dy.shape, dy.dtype))

    def get_config(self):
        config = super().get_config()
        config.pop("activity_regularizer", None)
        return {**config, "l1": self.l1, "l2": self.l2}


__all__ = ["ActivityRegularization", "GaussianDropout", "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D",
           "SpatialDropout3D"]
