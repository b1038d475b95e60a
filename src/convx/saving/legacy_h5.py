"""Keras 2 / tf.keras HDF5 files (``model.save('m.h5')``, ``save_weights('w.h5')``), read.

The file's root attribute ``model_config`` holds the architecture (JSON), and
``model_weights/`` one group per layer whose ``weight_names`` attribute lists its
arrays in the layer's order (trainable, then non-trainable). ``training_config``
compiles the model; the optimizer's state is not restored from these files.
"""

import os

from convx.saving import limits, serialization
from convx.saving.archive import FileRejectedError, parse_json
from convx.saving.h5_layout import checked_dataset, require_h5py


def _open(path):
    h5py = require_h5py()
    size = os.path.getsize(path)
    if size > limits.MAX_ARCHIVE_BYTES:
        raise FileRejectedError(path, f"it has {size} bytes (at most {limits.MAX_ARCHIVE_BYTES}, "
                                      "convx.saving.limits.MAX_ARCHIVE_BYTES)")
    try:
        return h5py, h5py.File(path, "r")
    except (OSError, ValueError) as error:
        raise FileRejectedError(path, f"not a readable HDF5 file ({error})") from None


def load_h5_model(path, custom_objects=None, compile=True):
    """The model of a Keras 2 / tf.keras (or Keras 3 legacy) ``.h5`` file, with its weights."""
    from convx.saving.keras_format import _build, _compile_from

    h5py, f = _open(path)
    with f:
        config = _attr_json(f, "model_config", path)
        if config is None:
            raise FileRejectedError(path, "it holds no model_config: a weights-only file (use model.load_weights)")
        model = _build(config, path, custom_objects, os.path.getsize(path))
        _assign(h5py, model, f["model_weights"] if "model_weights" in f else f, path)
        training = _attr_json(f, "training_config", path) if compile else None
        if training:
            optimizer = training.get("optimizer_config")
            _compile_from(model, {"optimizer": optimizer, "loss": training.get("loss"),
                                  "loss_weights": training.get("loss_weights"),
                                  "metrics": _metric_names(training.get("metrics"))}, path)
    return model


def load_h5_weights(model, path):
    """Assign the weights of a legacy ``.h5`` model or weights file to ``model``, matching layers by name."""
    h5py, f = _open(path)
    with f:
        _assign(h5py, model, f["model_weights"] if "model_weights" in f else f, path)


def _metric_names(metrics):
    """Keras 2's metrics (``[[{'class_name': 'MeanMetricWrapper', 'config': {'name': 'accuracy'}}]]``) by name."""
    if isinstance(metrics, list):
        if len(metrics) == 1 and isinstance(metrics[0], list):  # one list per output; convx reads one output's
            metrics = metrics[0]
        return [m.get("config", {}).get("name", m) if isinstance(m, dict) else m for m in metrics]
    return metrics


def _attr_json(f, name, path):
    value = f.attrs.get(name)
    if value is None:
        return None
    if not isinstance(value, (bytes, str)):
        raise FileRejectedError(path, f"attribute {name} is not a JSON string")
    return parse_json(path, f"attribute {name}", value)


def _names(group, attribute):
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in group.attrs.get(attribute, [])]


def _legacy_weights(layer):
    # a layer's arrays in these files: trainable, then non-trainable (a nested model's across its layers)
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _assign(h5py, model, group, path):
    size = max(group.file.id.get_filesize(), 1)
    by_name = {layer.name: layer for layer in model.layers}
    for name in _names(group, "layer_names"):
        if name not in group:
            raise FileRejectedError(path, f"layer {name!r} is listed but has no group")
        weight_names = _names(group[name], "weight_names")
        if not weight_names:
            continue
        layer = by_name.get(name)
        if layer is None:
            raise FileRejectedError(path, f"it has weights for layer {name!r}, which model '{model.name}' lacks")
        variables = _legacy_weights(layer)
        if len(variables) != len(weight_names):
            raise FileRejectedError(path, f"layer {name!r} has {len(weight_names)} weights in the file, "
                                          f"{len(variables)} in the model")
        for var, weight_name in zip(variables, weight_names):
            array = checked_dataset(h5py, group[name], weight_name, path, size, name)
            if array.shape != var.shape:
                raise FileRejectedError(path, f"weight {weight_name!r} has shape {array.shape} in the file, "
                                              f"{var.shape} in the model")
            var.assign(array)
