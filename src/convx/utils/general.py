"""Seeding, one-hot labels, session reset (``keras.utils`` names)."""

import random as _py_random

import numpy as np

from convx import random as _random
from convx.layers.base import reset_name_counters


def set_random_seed(seed):
    """Seed every random draw convx makes (and Python's and NumPy's legacy state).

    After ``set_random_seed(s)`` the same code gives the same initial weights,
    the same shuffling order in ``fit`` and the same dropout masks.

    Parameters
    ----------
    seed : int
        Non-negative integer.
    """
    _random.seed(seed)
    _py_random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)


def to_categorical(x, num_classes=None):
    """One-hot encode integer class labels.

    Parameters
    ----------
    x : array_like of int, shape (...) or (..., 1)
        Class labels in ``[0, num_classes)``.
    num_classes : int, optional
        Number of classes; defaults to ``max(x) + 1``.

    Returns
    -------
    numpy.ndarray of float32, shape (..., num_classes)
    """
    labels = np.asarray(x)
    if labels.dtype.kind not in "iub" and not (labels.dtype.kind == "f" and np.all(labels == np.round(labels))):
        raise ValueError(f"x must hold integer class labels, got dtype {labels.dtype.name}")
    labels = labels.astype(np.int64)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"x must hold labels in [0, {num_classes}), got values in [{labels.min()}, {labels.max()}]"
        )
    out = np.zeros(labels.shape + (num_classes,), dtype=np.float32)
    np.put_along_axis(out, labels[..., None], 1.0, axis=-1)
    return out


def clear_session():
    """Reset the automatic layer/model name counters (``conv2d``, ``conv2d_1``, ...)."""
    reset_name_counters()
