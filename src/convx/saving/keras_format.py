"""Keras 3's ``.keras`` archive and ``.weights.h5`` file, written and read.

A ``.keras`` file is a zip of ``metadata.json``, ``config.json`` (the model's
serialized config with ``build_config`` and ``compile_config``),
``model.weights.h5`` (:mod:`convx.saving.h5_layout`) and ``assets/`` (what layers'
``save_assets`` wrote), exactly as ``keras.models.load_model`` expects.
"""

import datetime
import json
import os
import tempfile

from convx.saving import h5_layout, limits, serialization
from convx.saving.archive import CheckedArchive, FileRejectedError, parse_json, write_atomically

KERAS_FORMAT_VERSION = "3.15.1"  # the Keras release whose files these are checked against
_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
_KERAS_OPTIMIZER_DEFAULTS = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                             "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                             "loss_scale_factor": None, "gradient_accumulation_steps": None,
                             "decay": 0.0, "is_legacy_optimizer": False, "jit_compile": False}  # the last: Keras 2


def save_keras(model, path):
    """Write ``model`` as a Keras 3 ``.keras`` archive at ``path`` (atomically)."""
    from convx import __version__

    config = serialization.serialize_model(model)
    config["compile_config"] = compile_config(model) if model.compiled else None
    metadata = {"keras_version": KERAS_FORMAT_VERSION, "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "convx_version": __version__}
    members = {"metadata.json": _json_bytes(metadata), "config.json": _json_bytes(config),
               "model.weights.h5": h5_layout.write_weights(model, with_optimizer=model.compiled)}
    members.update(_assets(model))
    write_atomically(path, members)


def load_keras(path, custom_objects=None, compile=True):
    """The model of a ``.keras`` archive written by Keras 3 or convx, built, with its weights."""
    with CheckedArchive(path, _allowed) as archive:
        config = _json(archive, "config.json")
        _json(archive, "metadata.json")
        model = _build(config, path, custom_objects, archive.size("model.weights.h5"))
        weights = archive.read("model.weights.h5")
        compile_cfg = config.get("compile_config") if compile else None
        if compile_cfg:
            _compile_from(model, compile_cfg, path)
        h5_layout.read_weights(model, weights, path, with_optimizer=bool(compile_cfg))
        _load_assets(model, archive)
    return model


def save_weights_h5(model, path):
    from convx.saving.archive import write_file_atomically

    write_file_atomically(path, h5_layout.write_weights(model, with_optimizer=model.compiled))


def load_weights_h5(model, path):
    size = os.path.getsize(path)
    if size > limits.MAX_ARCHIVE_BYTES:
        raise FileRejectedError(path, f"it has {size} bytes (at most {limits.MAX_ARCHIVE_BYTES}, "
                                      "convx.saving.limits.MAX_ARCHIVE_BYTES)")
    with open(path, "rb") as f:
        data = f.read()
    h5_layout.read_weights(model, data, path, with_optimizer=False)


def load_weights_from_keras(model, path):
    with CheckedArchive(path, _allowed) as archive:
        h5_layout.read_weights(model, archive.read("model.weights.h5"), path, with_optimizer=False)


def _allowed(name):
    return name in _MEMBERS or name.startswith("assets/")


def _json_bytes(value):
    return json.dumps(value, indent=1).encode("utf-8")


def _json(archive, name):
    return parse_json(archive.filepath, name, archive.read(name, limit=limits.MAX_JSON_BYTES))


def _build(config, path, custom_objects, weight_bytes):
    """The model ``config`` describes, built; its layers may create at most ``weight_bytes`` (what the file
    stores, see :func:`~convx.saving.limits.weight_budget`) of weights, checked before each is allocated."""
    from convx.saving.registration import CustomObjectScope

    if config.get("class_name") not in serialization.MODEL_CLASSES and not custom_objects:
        raise FileRejectedError(path, f"it holds a {config.get('class_name')!r}; convx loads Sequential and "
                                      "functional models")
    try:
        with CustomObjectScope(custom_objects or {}), limits.weight_budget(weight_bytes):
            model = serialization.deserialize_layer(config)
            if not model.built:
                shape = (config.get("build_config") or {}).get("input_shape") or \
                    config.get("config", {}).get("build_input_shape")
                if shape is None:
                    raise ValueError("the model has no input shape to build it with")
                model.build([tuple(s) for s in shape] if shape and isinstance(shape[0], list) else tuple(shape))
    except (ImportError, FileRejectedError):
        raise
    except Exception as error:  # whatever a crafted config makes a layer's constructor or build() raise
        raise FileRejectedError(path, f"its config cannot be built: {type(error).__name__}: {error}") from error
    return model


def _assets(model):
    """``assets/<layer path>/<file>`` members of what layers' ``save_assets`` wrote."""
    from convx.layers.base import Layer

    members = {}
    with tempfile.TemporaryDirectory(prefix="convx-assets-") as root:
        for path, layer in h5_layout.walk(model):
            if type(layer).save_assets is Layer.save_assets:
                continue  # no folder for a layer without assets: thousands of empty ones make saving quadratic
            folder = os.path.join(root, path) if path else root
            os.makedirs(folder, exist_ok=True)
            layer.save_assets(folder)
        for folder, _, files in os.walk(root):
            for name in files:
                full = os.path.join(folder, name)
                relative = os.path.relpath(full, root).replace(os.sep, "/")
                with open(full, "rb") as f:
                    members["assets/" + relative] = f.read()
    return members


def _load_assets(model, archive):
    wanted = [n for n in archive.names if n.startswith("assets/") and not n.endswith("/")]
    if not wanted:
        return
    with tempfile.TemporaryDirectory(prefix="convx-assets-") as root:
        for name in wanted:  # member names were checked to stay inside the folder
            target = os.path.join(root, *name.split("/")[1:])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(archive.read(name))
        for path, layer in h5_layout.walk(model):
            folder = os.path.join(root, path) if path else root
            if os.path.isdir(folder):
                layer.load_assets(folder)


# ----- compile config --------------------------------------------------------------------------------------------

def compile_config(model):
    """``compile_config`` as Keras 3 writes it."""
    from convx import optimizers

    optimizer = optimizers.serialize(model.optimizer)
    compiled = model._serialization_state()["compile"]
    return {"optimizer": {"module": "keras.optimizers", "class_name": optimizer["class_name"],
                          "config": optimizer["config"], "registered_name": None},
            "loss": _map_structure(lambda s: _object_entry(s, "keras.losses"), compiled["loss"]),
            "loss_weights": compiled["loss_weights"],
            "metrics": _map_structure(lambda s: _object_entry(s, "keras.metrics"), compiled["metrics"]),
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def _object_entry(spec, module):
    if spec is None or isinstance(spec, str):
        return spec
    if callable(spec) and not hasattr(spec, "get_config"):
        return spec.__name__
    return {"module": module, "class_name": type(spec).__name__, "config": spec.get_config(), "registered_name": None}


def _map_structure(function, value):
    if isinstance(value, dict) and "class_name" not in value:
        return {key: _map_structure(function, v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_structure(function, v) for v in value]
    return function(value)


def _optimizer(config):
    from convx import optimizers

    try:
        return optimizers.get(config)
    except TypeError:
        # Keras writes every base option; drop those at their defaults, which convx's optimizers do not take
        options = dict(config.get("config", {}))
        for key, default in _KERAS_OPTIMIZER_DEFAULTS.items():
            if key in options and options[key] == default:
                del options[key]
        return optimizers.get({**config, "config": options})


def _compile_from(model, config, path):
    from convx import losses, metrics

    try:
        model.compile(
            optimizer=_optimizer(config["optimizer"]),
            loss=_map_structure(lambda s: None if s is None else losses.get(s), config.get("loss")),
            loss_weights=config.get("loss_weights"),
            metrics=_map_structure(lambda m: m if m is None or isinstance(m, str) else metrics.get(m),
                                   config.get("metrics")),
        )
    except (ValueError, TypeError, KeyError) as error:
        raise FileRejectedError(path, f"its compile_config cannot be used ({error}); load it with compile=False") \
            from None
