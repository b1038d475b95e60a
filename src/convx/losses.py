"""Losses with Keras 3 names and defaults, computed by ``convx._kernels.losses``.

A loss object is callable, ``loss(y_true, y_pred) -> float`` (mean over samples,
Keras' 'sum_over_batch_size'). Models also use two internal methods:
``prepare_targets`` validates and converts labels once per ``fit``, and
``value_and_grad`` returns per-row losses and the gradient of their mean.
When the model's last layer ends in ``fused_activation`` (softmax for the
cross-entropies, sigmoid for binary cross-entropy) and ``from_logits`` is
False, the model feeds the pre-activation logits to the fused kernel.
"""

import numpy as np

from convx._kernels import losses as _k


def _float_targets(y, name="y"):
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, received dtype {y.dtype}")
    return np.ascontiguousarray(y, dtype=np.float32)


def _shape_error(loss, y_shape, output_shape, expected):
    raise ValueError(
        f"Loss '{loss}' expects targets y of shape {expected} for model outputs of shape "
        f"{tuple(output_shape)}; received y of shape {tuple(y_shape)}"
    )


class Loss:
    """Base class. Subclasses set ``fused_activation`` and implement the hooks below."""

    fused_activation = None

    def __init__(self, name, reduction="sum_over_batch_size"):
        if reduction != "sum_over_batch_size":
            raise ValueError(f"convx supports only reduction='sum_over_batch_size', received reduction={reduction!r}")
        self.name = name
        self.reduction = reduction

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by convx losses")
        y_pred = np.asarray(y_pred, dtype=np.float32)
        targets = self.prepare_targets(y_true, (None,) + y_pred.shape[1:])
        losses, _ = self.value_and_grad(y_pred, targets)
        return float(np.mean(losses)) if losses.size else 0.0

    def prepare_targets(self, y, output_shape):
        """Validate ``y`` against outputs of ``output_shape`` and convert it for the kernels."""
        y = _float_targets(y)
        shape = tuple(output_shape[1:])
        if y.shape[1:] == shape:
            return y
        if shape and shape[-1] == 1 and y.shape[1:] == shape[:-1]:
            return y.reshape(y.shape + (1,))
        _shape_error(self.name, y.shape, output_shape, "(N,) + " + str(shape))

    def value_and_grad(self, y_pred, targets, logits=False):
        """Per-row losses and d mean / d ``y_pred`` (or d / d logits when ``logits``)."""
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _rows(array, width):
    return array.reshape(-1, width)


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy between integer labels and class probabilities (or logits).

    Parameters
    ----------
    from_logits : bool, default False
        True when the model outputs unnormalised logits.
    ignore_class : None
        Not supported (must be None).
    """

    fused_activation = "softmax"

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy"):
        super().__init__(name, reduction)
        if ignore_class is not None:
            raise ValueError(f"ignore_class is not supported by convx, received ignore_class={ignore_class!r}")
        self.from_logits = bool(from_logits)

    def prepare_targets(self, y, output_shape):
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"Loss '{self.name}' expects integer class labels y, received dtype {y.dtype}")
        shape = tuple(output_shape[1:-1])
        if y.shape[1:] == shape + (1,):
            y = y.reshape(y.shape[:-1])
        if y.shape[1:] != shape:
            _shape_error(self.name, y.shape, output_shape, "(N,) + " + str(shape))
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
                raise ValueError(f"Loss '{self.name}' expects integer class labels y, received non-integer values")
        classes = output_shape[-1]
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise ValueError(
                f"Loss '{self.name}': labels y must be in [0, {classes}) for outputs with {classes} classes; "
                f"received labels in [{y.min():g}, {y.max():g}]"
            )
        return np.ascontiguousarray(y, dtype=np.int64)

    def value_and_grad(self, y_pred, targets, logits=False):
        width = y_pred.shape[-1]
        labels = targets.reshape(-1)
        if logits or self.from_logits:
            losses, grad = _k.sparse_softmax_cross_entropy(_rows(y_pred, width), labels)
        else:
            losses, grad = _k.sparse_categorical_crossentropy(_rows(y_pred, width), labels)
        return losses, grad.reshape(y_pred.shape)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "ignore_class": None}


class CategoricalCrossentropy(Loss):
    """Cross-entropy between one-hot (or soft) targets and probabilities (or logits).

    Parameters
    ----------
    from_logits : bool, default False
    label_smoothing : float in [0, 1], default 0.0
        Targets become ``y * (1 - ls) + ls / num_classes``.
    axis : -1
        Only the last axis is supported.
    """

    fused_activation = "softmax"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="categorical_crossentropy"):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError(f"convx supports only axis=-1, received axis={axis!r}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], received {label_smoothing!r}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def prepare_targets(self, y, output_shape):
        y = _float_targets(y)
        if y.shape[1:] != tuple(output_shape[1:]):
            _shape_error(self.name, y.shape, output_shape, "(N,) + " + str(tuple(output_shape[1:])))
        if self.label_smoothing:
            y = y * np.float32(1.0 - self.label_smoothing) + np.float32(self.label_smoothing / y.shape[-1])
        return y

    def value_and_grad(self, y_pred, targets, logits=False):
        width = y_pred.shape[-1]
        fn = _k.softmax_cross_entropy if (logits or self.from_logits) else _k.categorical_crossentropy
        losses, grad = fn(_rows(y_pred, width), _rows(targets, width))
        return losses, grad.reshape(y_pred.shape)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": -1}


class BinaryCrossentropy(Loss):
    """Binary cross-entropy, averaged over the last axis.

    Parameters
    ----------
    from_logits : bool, default False
    label_smoothing : float in [0, 1], default 0.0
        Targets become ``y * (1 - ls) + ls / 2``.
    """

    fused_activation = "sigmoid"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_crossentropy"):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError(f"convx supports only axis=-1, received axis={axis!r}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], received {label_smoothing!r}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def prepare_targets(self, y, output_shape):
        y = super().prepare_targets(y, output_shape)
        if self.label_smoothing:
            y = y * np.float32(1.0 - self.label_smoothing) + np.float32(0.5 * self.label_smoothing)
        return y

    def value_and_grad(self, y_pred, targets, logits=False):
        width = y_pred.shape[-1]
        fn = _k.sigmoid_binary_crossentropy if (logits or self.from_logits) else _k.binary_crossentropy
        losses, grad = fn(_rows(y_pred, width), _rows(targets, width))
        return losses, grad.reshape(y_pred.shape)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": -1}


class MeanSquaredError(Loss):
    """Mean of squared differences over the last axis."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error"):
        super().__init__(name, reduction)

    def value_and_grad(self, y_pred, targets, logits=False):
        width = y_pred.shape[-1]
        losses, grad = _k.mean_squared_error(_rows(y_pred, width), _rows(targets, width))
        return losses, grad.reshape(y_pred.shape)


def _per_sample(loss_cls, y_true, y_pred, **kwargs):
    loss = loss_cls(**kwargs)
    y_pred = np.asarray(y_pred, dtype=np.float32)
    losses, _ = loss.value_and_grad(y_pred, loss.prepare_targets(y_true, (None,) + y_pred.shape[1:]))
    return losses.reshape(y_pred.shape[:-1])


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-sample sparse categorical cross-entropy, shape ``y_pred.shape[:-1]``."""
    return _per_sample(SparseCategoricalCrossentropy, y_true, y_pred, from_logits=from_logits)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Per-sample categorical cross-entropy, shape ``y_pred.shape[:-1]``."""
    return _per_sample(CategoricalCrossentropy, y_true, y_pred, from_logits=from_logits, label_smoothing=label_smoothing)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Per-sample binary cross-entropy (mean over the last axis)."""
    return _per_sample(BinaryCrossentropy, y_true, y_pred, from_logits=from_logits, label_smoothing=label_smoothing)


def mean_squared_error(y_true, y_pred):
    """Per-sample mean squared error (mean over the last axis)."""
    return _per_sample(MeanSquaredError, y_true, y_pred)


mse = mean_squared_error

_BY_NAME = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}
_CLASSES = {cls.__name__: cls for cls in (SparseCategoricalCrossentropy, CategoricalCrossentropy,
                                           BinaryCrossentropy, MeanSquaredError)}
_FUNCTIONS = {sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
              categorical_crossentropy: CategoricalCrossentropy,
              binary_crossentropy: BinaryCrossentropy, mean_squared_error: MeanSquaredError}


def get(identifier):
    """A Loss instance from a name, a class name, a loss function of this module, a config dict or an instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is not None:
            return cls()
    elif isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    elif callable(identifier) and identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}; expected one of {sorted(_BY_NAME)} or a Loss")
