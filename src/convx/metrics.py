"""Metrics with Keras 3 names: running means over the samples seen since ``reset_state``.

Per-batch work is small NumPy glue (an argmax or a comparison per sample);
totals accumulate in float64.
"""

import numpy as np

from convx._kernels import losses as _k_losses


class Metric:
    """Base class: ``update_state``, ``result``, ``reset_state``."""

    def __init__(self, name=None):
        self.name = name or type(self).__name__
        self.reset_state()

    def reset_state(self):
        self._total = 0.0
        self._count = 0.0

    def result(self):
        """The running mean (0.0 before any update)."""
        return float(self._total / self._count) if self._count else 0.0

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Mean(Metric):
    """Weighted running mean of values: ``update_state(values, sample_weight=None)``."""

    def __init__(self, name="mean"):
        super().__init__(name)

    def update_state(self, values, sample_weight=None):
        if type(values) is float and type(sample_weight) in (int, float) or (
                np.ndim(values) == 0 and np.ndim(sample_weight) == 0):
            # a scalar (the model's loss, once per step): skip the array round trip, same float64 sums
            weight = 1.0 if sample_weight is None else float(sample_weight)
            self._total += float(values) * weight
            self._count += weight
            return
        values = np.asarray(values, dtype=np.float64)
        if sample_weight is None:
            self._total += float(values.sum())
            self._count += values.size
        else:
            self._total += float((values * sample_weight).sum())
            self._count += float(np.sum(np.broadcast_to(sample_weight, values.shape)))


class MeanMetricWrapper(Mean):
    """Mean of a per-sample function ``fn(y_true, y_pred)`` over all samples seen."""

    def __init__(self, fn, name=None):
        self._fn = fn
        super().__init__(name or fn.__name__)

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(self._fn(y_true, y_pred), sample_weight)


def _sparse_hits(y_true, y_pred):
    """True where the integer label equals ``argmax(y_pred, -1)``."""
    y_true = np.asarray(y_true)
    if y_true.ndim == np.ndim(y_pred) and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return np.argmax(y_pred, axis=-1) == y_true


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the integer label equals ``argmax(y_pred, -1)``."""
    return _sparse_hits(y_true, y_pred).astype(np.float32)


def categorical_accuracy(y_true, y_pred):
    """1.0 where ``argmax(y_true) == argmax(y_pred)``."""
    return (np.argmax(y_pred, axis=-1) == np.argmax(y_true, axis=-1)).astype(np.float32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Mean over the last axis of ``(y_pred > threshold) == y_true``."""
    return np.mean((np.asarray(y_pred) > threshold) == (np.asarray(y_true) > 0.5), axis=-1, dtype=np.float32)


def accuracy(y_true, y_pred):
    """1.0 where the values are exactly equal (Keras' plain ``Accuracy``)."""
    return np.mean(np.asarray(y_true) == np.asarray(y_pred), axis=-1, dtype=np.float32)


def mean_squared_error(y_true, y_pred):
    """Per-sample mean squared error over the last axis (kernel)."""
    y_pred = np.asarray(y_pred, dtype=np.float32)
    width = y_pred.shape[-1]
    y_true = np.asarray(y_true, dtype=np.float32).reshape(-1, width)
    losses, _ = _k_losses.mean_squared_error(y_pred.reshape(-1, width), y_true)
    return losses


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean absolute error over the last axis."""
    return np.mean(np.abs(np.asarray(y_pred, dtype=np.float32) - np.asarray(y_true, dtype=np.float32)), axis=-1)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="sparse_categorical_accuracy"):
        super().__init__(sparse_categorical_accuracy, name)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            return super().update_state(y_true, y_pred, sample_weight)
        # once per training step: count the hits (the same float64 total as summing the 0/1 values)
        hits = _sparse_hits(y_true, y_pred)
        self._total += float(np.count_nonzero(hits))
        self._count += hits.size


class CategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="categorical_accuracy"):
        super().__init__(categorical_accuracy, name)


class BinaryAccuracy(MeanMetricWrapper):
    def __init__(self, name="binary_accuracy", threshold=0.5):
        self.threshold = threshold
        super().__init__(lambda t, p: binary_accuracy(t, p, threshold), name)

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}


class Accuracy(MeanMetricWrapper):
    def __init__(self, name="accuracy"):
        super().__init__(accuracy, name)


class MeanSquaredError(MeanMetricWrapper):
    def __init__(self, name="mean_squared_error"):
        super().__init__(mean_squared_error, name)


class MeanAbsoluteError(MeanMetricWrapper):
    def __init__(self, name="mean_absolute_error"):
        super().__init__(mean_absolute_error, name)


_BY_NAME = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
}
_CLASSES = {cls.__name__: cls for cls in set(_BY_NAME.values()) | {Accuracy, Mean}}


def get(identifier, y_true_shape=None, y_pred_shape=None):
    """A Metric from a name, class name, config dict or instance.

    ``'accuracy'`` / ``'acc'`` resolve as Keras 3 does, from the shapes of one
    batch: binary when predictions have one column, sparse categorical when the
    labels lack the class axis (or have size 1 there), categorical otherwise.
    String metrics are named after the string given.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ("accuracy", "acc"):
            if y_pred_shape is None:
                raise ValueError("resolving 'accuracy' needs the shapes of the targets and predictions")
            if y_pred_shape[-1] == 1:
                return BinaryAccuracy(name=identifier)
            if len(y_true_shape) == len(y_pred_shape) - 1 or y_true_shape[-1] == 1:
                return SparseCategoricalAccuracy(name=identifier)
            return CategoricalAccuracy(name=identifier)
        if key in _BY_NAME:
            return _BY_NAME[key](name=identifier)
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
    elif isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(
        f"Could not interpret metric identifier: {identifier!r}; expected 'accuracy', 'acc', one of "
        f"{sorted(_BY_NAME)} or a Metric"
    )
