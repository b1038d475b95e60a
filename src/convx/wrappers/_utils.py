"""Helpers of the scikit-learn wrappers (imported only with scikit-learn present)."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


def check_model(model):
    compiled = model._serialization_state()["compile"] if hasattr(model, "_serialization_state") else None
    has_loss = model.loss is not None or bool(compiled and compiled["loss"])
    if not getattr(model, "compiled", False) or not has_loss or model.optimizer is None:
        raise RuntimeError("Given model needs to be compiled, and have a loss and an optimizer.")


def clone_compiled(model):
    """A fresh copy of ``model`` (new weights), compiled as ``model`` was."""
    from convx import optimizers
    from convx.models.cloning import clone_model

    clone = clone_model(model)
    if getattr(model, "compiled", False):
        clone.compile(optimizer=optimizers.deserialize(optimizers.serialize(model.optimizer)),
                      **model._serialization_state()["compile"])
    return clone


def model_to_bytes(model):
    """A model as the bytes of its .keras file (how the wrappers pickle the models they hold)."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def model_from_bytes(data):
    import os
    import tempfile

    from convx.models import load_model

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        with open(path, "wb") as f:
            f.write(data)
        return load_model(path)


def validate_data(estimator, *args, **kwargs):
    try:
        from sklearn.utils.validation import validate_data as validate
    except ImportError:  # scikit-learn < 1.6
        return estimator._validate_data(*args, **kwargs)
    return validate(estimator, *args, **kwargs)


def type_of_target(y):
    from sklearn.utils.multiclass import type_of_target as sk_type_of_target

    target_type = sk_type_of_target(y)
    if target_type == "unknown":
        raise ValueError(f"Unknown label type for data: {y!r}")
    return target_type


class TargetReshaper(TransformerMixin, BaseEstimator):
    """(n,) targets as (n, 1) for the model, and back."""

    def fit(self, y):
        self.ndim_ = np.ndim(y)
        return self

    def transform(self, y):
        y = np.asarray(y)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def inverse_transform(self, y):
        if self.ndim_ == 1 and y.ndim == 2:
            return np.squeeze(y, axis=1)
        return y
