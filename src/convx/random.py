"""``convx.random``: Keras 3's ``keras.random``, and the process-wide random state behind initialisation,
shuffling and dropout.

One NumPy ``Generator`` serves every draw that is not given its own seed, so that
``convx.utils.set_random_seed(seed)`` makes a whole run reproducible.

The Keras functions (``normal``, ``uniform``, ``truncated_normal``,
``randint``, ``dropout``, ``shuffle``, ``categorical``) draw as Keras 3's NumPy
backend does: ``seed`` an int gives the same values at every call, a
:class:`SeedGenerator` a new ``[seed, counter]`` NumPy seed at every call,
``None`` the process generator. ``dropout``, ``shuffle`` and ``categorical``
are ops: on symbolic tensors they become graph nodes that draw anew at every
run, and ``dropout`` has its gradient (the kept mask, scaled).
"""

import contextlib
import math
import random as _py_random

import numpy as np

_state = {"generator": np.random.default_rng()}


def generator():
    """Return the module-level ``numpy.random.Generator``."""
    return _state["generator"]


def seed(value):
    """Replace the module-level generator by ``numpy.random.default_rng(value)``.

    Parameters
    ----------
    value : int
        Non-negative integer seed.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"seed must be a non-negative int, got {value!r}")
    _state["generator"] = np.random.default_rng(int(value))


def make_generator(seed_value=None):
    """A generator for an object given its own ``seed`` (else the shared one)."""
    if seed_value is None:
        return generator()
    if isinstance(seed_value, bool) or not isinstance(seed_value, (int, np.integer)) or seed_value < 0:
        raise ValueError(f"seed must be None or a non-negative int, got {seed_value!r}")
    return np.random.default_rng(int(seed_value))


# ----- Keras 3's keras.random ---------------------------------------------------------------------------------------

class SeedGenerator:
    """The state of a stream of seeds: each random call given it draws with the next one (Keras 3).

    Parameters
    ----------
    seed : int, optional
        Non-negative. Default: drawn from Python's ``random`` (as Keras does;
        ``convx.utils.set_random_seed`` seeds it).
    name : str, optional

    Attributes
    ----------
    state : numpy.ndarray of uint32, shape (2,)
        ``[seed, counter]``; ``next()`` returns it and increments the counter.
    """

    def __init__(self, seed=None, name=None, **kwargs):
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
        from convx.layers.base import unique_name

        self.name = name if name is not None else unique_name("seed_generator")
        self._initial_seed = seed
        if seed is None:
            seed = _py_random.randint(1, int(1e9))
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
            raise ValueError(f"Argument `seed` must be an integer in [0, 2**32). Received: seed={seed}")
        self.state = np.array([seed, 0], dtype=np.uint32)

    def next(self, ordered=True):
        """The current ``[seed, counter]`` (a copy); the state moves on (Keras' ``next``)."""
        value = self.state.copy()
        if ordered:
            self.state[1] += 1
        else:
            self.state[:] = (self.state.astype(np.int64) + 1) * 5387 % 933199
        return value

    def get_config(self):
        return {"seed": self._initial_seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _rng(seed):
    """The NumPy generator one call draws from (see the module doc)."""
    if isinstance(seed, SeedGenerator):
        return np.random.default_rng(seed.next())
    if seed is None:
        return generator()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError("Argument `seed` must be either a non-negative integer or an instance of `SeedGenerator`. "
                         f"Received: seed={seed!r} (of type {type(seed)})")
    return np.random.default_rng([int(seed), 0])


def _float_dtype(dtype, name):
    dtype = np.dtype("float32" if dtype is None else dtype)
    if dtype.kind != "f":
        raise ValueError(f"`convx.random.{name}` requires a floating point `dtype`. Received: dtype={dtype}")
    return dtype


def _shape(shape):
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples of N(mean, stddev^2), array of ``shape`` (``dtype`` default float32)."""
    dtype = _float_dtype(dtype, "normal")
    return _rng(seed).normal(loc=mean, scale=stddev, size=_shape(shape)).astype(dtype)


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Samples of U[minval, maxval), array of ``shape`` (``dtype`` default float32)."""
    dtype = _float_dtype(dtype, "uniform")
    return _rng(seed).uniform(low=minval, high=maxval, size=_shape(shape)).astype(dtype)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples of N(mean, stddev^2) within two standard deviations of the mean (others redrawn)."""
    dtype = _float_dtype(dtype, "truncated_normal")
    shape = _shape(shape)
    rng, count, kept = _rng(seed), math.prod(shape), []
    while sum(len(k) for k in kept) < count:
        batch = rng.normal(loc=mean, scale=stddev, size=count)
        kept.append(batch[np.abs(batch - mean) <= 2 * stddev])
    return np.concatenate(kept)[:count].astype(dtype).reshape(shape)


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers uniform in ``[minval, maxval)``, array of ``shape``."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        raise ValueError(f"`convx.random.randint` requires an integer `dtype`. Received: dtype={dtype}")
    return _rng(seed).integers(low=minval, high=maxval, size=_shape(shape), dtype=dtype)


@contextlib.contextmanager
def _unadvanced(seed):
    """On symbolic tensors an op is run on probe arrays to find its output shape: those draws must not
    move the seed stream the real runs use."""
    state = seed.state.copy() if isinstance(seed, SeedGenerator) else None
    shared = generator().bit_generator.state if seed is None else None
    try:
        yield
    finally:
        if state is not None:
            seed.state[:] = state
        if shared is not None:
            generator().bit_generator.state = shared


def _random_op(name, impl, x, seed):
    from convx.layers.node import is_symbolic
    from convx.ops.core import apply

    if not is_symbolic(x):
        return apply(name, impl, x)
    with _unadvanced(seed):
        return apply(name, impl, x)


def dropout(inputs, rate, noise_shape=None, seed=None):
    """``inputs`` with each entry zeroed with probability ``rate`` and the rest scaled by ``1 / (1 - rate)``.

    Parameters
    ----------
    inputs : array or tensor
    rate : float in [0, 1]
    noise_shape : tuple, optional
        The mask's shape, broadcast over ``inputs`` (None entries: the input's length).
    seed : int, SeedGenerator or None
    """
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"Invalid value received for argument `rate`. Expected a float value between 0 and 1. "
                         f"Received: rate={rate}")
    keep = 1.0 - float(rate)

    def impl(a):
        a = np.asarray(a)
        if keep == 1.0:
            return a, lambda g: (g,)
        shape = a.shape if noise_shape is None else tuple(a.shape[i] if n is None else n
                                                          for i, n in enumerate(noise_shape))
        mask = _rng(seed).uniform(size=shape) < keep
        scale = np.broadcast_to(mask, a.shape) * a.dtype.type(1.0 / keep) if keep else np.zeros(a.shape, a.dtype)
        return (a * scale).astype(a.dtype, copy=False), lambda g: (g * scale,)

    return _random_op("dropout", impl, inputs, seed)


def shuffle(x, axis=0, seed=None):
    """``x`` with its slices along ``axis`` in a random order (no gradient)."""
    return _random_op("shuffle", lambda a: (_rng(seed).permuted(np.asarray(a), axis=axis), None), x, seed)


def categorical(logits, num_samples, dtype="int32", seed=None):
    """``num_samples`` class indices per row of ``logits`` (batch, classes), drawn with softmax(logits)."""

    def impl(a):
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"`logits` should be a 2-D tensor with shape [batch_size, num_classes]. "
                             f"Received: logits shape={a.shape}")
        p = np.exp(a - a.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        rng = _rng(seed)
        return np.array([rng.choice(a.shape[1], size=num_samples, p=row) for row in p], dtype=dtype).reshape(
            len(a), num_samples), None

    return _random_op("categorical", impl, logits, seed)
