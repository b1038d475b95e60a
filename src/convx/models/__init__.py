"""Models: ``Model`` (functional or subclassed), ``Sequential``, and model utilities.

Every model runs through an execution plan (:mod:`convx.models.plan`) of its
graph (:mod:`convx.models.graph`); ``docs/architecture.md`` traces one
training step from ``fit`` to the micro-kernels.
"""

from convx.models.cloning import clone_model
from convx.models.functional import Functional
from convx.models.model import Model
from convx.models.sequential import Sequential


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """The model of a ``.keras`` (Keras 3 or convx) or Keras 2 ``.h5`` file (see :func:`convx.saving.load_model`)."""
    from convx import saving

    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def from_onnx(filepath, name=None):
    """The convx model (channels-last, trainable) of an ONNX CNN (see :func:`convx.models.onnx_import.from_onnx`)."""
    from convx.models.onnx_import import from_onnx as load

    return load(filepath, name=name)


def model_from_json(json_string, custom_objects=None):
    """The (unbuilt-weights) model described by ``model.to_json()``: same architecture, fresh weights."""
    import json

    from convx.saving import CustomObjectScope, deserialize_layer

    with CustomObjectScope(custom_objects or {}):
        return deserialize_layer(json.loads(json_string))


__all__ = ["Model", "Sequential", "Functional", "load_model", "clone_model", "model_from_json", "from_onnx"]
