"""The process-wide random state behind initialisation, shuffling and dropout.

One NumPy ``Generator`` serves every draw that is not given its own seed, so that
``convx.utils.set_random_seed(seed)`` makes a whole run reproducible.
"""

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
