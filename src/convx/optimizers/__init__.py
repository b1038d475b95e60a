"""Optimizers with Keras 3 names, defaults and update rules (``keras.optimizers``), one module per
optimizer as Keras arranges them; the update rules run as C kernels (``convx._kernels.optimizers``)
on the model's flat weight and gradient buffers. ``schedules`` holds the learning-rate schedules.
"""

from convx.optimizers import schedules
from convx.optimizers.adadelta import Adadelta
from convx.optimizers.adagrad import Adagrad
from convx.optimizers.adam import Adam
from convx.optimizers.adamax import Adamax
from convx.optimizers.adamw import AdamW
from convx.optimizers.base_optimizer import Optimizer
from convx.optimizers.ftrl import Ftrl
from convx.optimizers.lion import Lion
from convx.optimizers.nadam import Nadam
from convx.optimizers.rmsprop import RMSprop
from convx.optimizers.sgd import SGD

ALL_OBJECTS = {cls.__name__: cls for cls in (
    Optimizer, Adadelta, Adagrad, Adam, Adamax, AdamW, Ftrl, Lion, Nadam, RMSprop, SGD)}
_BY_LOWER = {name.lower(): cls for name, cls in ALL_OBJECTS.items() if cls is not Optimizer}


def serialize(optimizer):
    """``{'module', 'class_name', 'config', 'registered_name'}`` as Keras writes an optimizer."""
    cls = type(optimizer)
    builtin = ALL_OBJECTS.get(cls.__name__) is cls
    return {"module": "keras.optimizers" if builtin else cls.__module__, "class_name": cls.__name__,
            "config": optimizer.get_config(), "registered_name": None if builtin else f"Custom>{cls.__name__}"}


def deserialize(config, custom_objects=None):
    """The optimizer of a ``serialize`` result; the class name is matched case-insensitively, as Keras does."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not interpret optimizer config: {config!r}")
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or _BY_LOWER.get(str(name).lower())
    if cls is None:
        raise ValueError(f"Could not interpret optimizer identifier: {name!r}; expected one of "
                         f"{sorted(ALL_OBJECTS)} or an Optimizer")
    return cls.from_config(config.get("config") or {}, custom_objects=custom_objects)


def get(identifier):
    """An Optimizer from a name (``'adam'``, ``'AdamW'``, ``'rmsprop'``...), a config dict or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() not in _BY_LOWER:
            raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}; expected one of "
                             f"{sorted(_BY_LOWER)} or an Optimizer")
        return _BY_LOWER[identifier.lower()]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}")


__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adamax", "Nadam", "Adagrad", "Adadelta", "Ftrl", "Lion", "RMSprop",
           "schedules", "get", "serialize", "deserialize"]
