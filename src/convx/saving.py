"""Saving and loading models: a zip archive of JSON and ``.npy`` files, no pickle.

A model file (``model.save('model.keras')``) holds::

    metadata.json        {"format": "convx.model", "format_version": 1, "convx_version": ...}
    config.json          {"class_name": "Sequential" or "Functional", "config": ...,
                          "build_input_shape": ..., "compile_config": ... or null}
    weights/00000.npy    one array per weight, in ``get_weights()`` order
    optimizer/00000.npy  the optimizer's slots (e.g. Adam's m and v), when it has taken a step

and a weights file (``model.save_weights('model.weights.npz')``) the metadata
(format ``convx.weights``) and ``weights/``. Arrays are read with
``allow_pickle=False``, so loading a file never runs code from it. A save is
written to a temporary file beside the target and moved over it in one step
(``os.replace``): a crash or a full disk mid-save leaves the previous file intact.
The layout follows Keras 3's ``.keras`` archive, but the arrays are ``.npy``
rather than HDF5, so Keras cannot read these files, nor convx Keras' own.
"""

import contextlib
import io
import json
import os
import tempfile
import warnings
import zipfile

import numpy as np

MODEL_FORMAT = "convx.model"
WEIGHTS_FORMAT = "convx.weights"
FORMAT_VERSION = 1

_HDF5_SUFFIXES = (".h5", ".hdf5")


def save_model(model, filepath, overwrite=True):
    """Write ``model`` (architecture, weights, compile settings and optimizer state) to ``filepath``.

    Parameters
    ----------
    model : Sequential or functional Model
        A built model.
    filepath : str or os.PathLike
        Destination, conventionally ending in ``.keras``.
    overwrite : bool, default True
        When False, an existing file raises ``FileExistsError``.
    """
    path = _destination(filepath, overwrite, "model", "'.keras'")
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built yet: call it on data, `fit` it or `build` it before saving")
    config = {
        **serialize_model(model),
        "build_input_shape": _shapes_json(model.input_shape),
        "compile_config": _compile_config(model) if model.compiled else None,
    }
    optimizer_slots = _optimizer_slots(model) if model.compiled else []
    members = {"metadata.json": _metadata(MODEL_FORMAT), "config.json": _json_bytes(config)}
    members.update(_array_members("weights", model.get_weights()))
    members.update(_array_members("optimizer", optimizer_slots))
    _write_atomically(path, members)


def load_model(filepath, compile=True):
    """The model saved in ``filepath`` by :func:`save_model`, built, with its weights.

    Parameters
    ----------
    filepath : str or os.PathLike
    compile : bool, default True
        Compile it as it was (optimizer, loss, metrics, and the optimizer's
        state, so that ``fit`` continues where it stopped).

    Returns
    -------
    Sequential or Functional
    """
    with _open_archive(filepath, MODEL_FORMAT) as archive:
        config = _read_json(archive, "config.json", filepath)
        if config.get("class_name") not in _MODEL_CLASSES:
            raise ValueError(f"{os.fspath(filepath)!r} holds a {config.get('class_name')!r} model; "
                             f"convx loads {' and '.join(_MODEL_CLASSES)} models")
        model = deserialize_layer(config)
        if not model.built:
            shape = config["build_input_shape"]
            model.build([tuple(s) for s in shape] if shape and isinstance(shape[0], list) else tuple(shape))
        _assign_weights(model, _read_arrays(archive, "weights"), filepath)
        compile_config = config.get("compile_config")
        if compile and compile_config is not None:
            _compile_from(model, compile_config)
            _restore_optimizer(model, compile_config, _read_arrays(archive, "optimizer"), filepath)
    return model


def save_weights(model, filepath, overwrite=True):
    """Write the weights of ``model`` (``get_weights()`` order) to ``filepath``, e.g. ``model.weights.npz``."""
    path = _destination(filepath, overwrite, "weights", "'.weights.npz'")
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet: it has no weights to save")
    members = {"metadata.json": _metadata(WEIGHTS_FORMAT)}
    members.update(_array_members("weights", model.get_weights()))
    _write_atomically(path, members)


def load_weights(model, filepath):
    """Assign the weights saved in ``filepath`` (a weights or a model file) to the built ``model``."""
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet: build it (or call it on data) before loading weights")
    with _open_archive(filepath, (WEIGHTS_FORMAT, MODEL_FORMAT)) as archive:
        _assign_weights(model, _read_arrays(archive, "weights"), filepath)


# ----- configs -------------------------------------------------------------------------------------------------

_MODEL_CLASSES = ("Sequential", "Functional")


def _shapes_json(shape):
    return [list(s) for s in shape] if isinstance(shape, list) else list(shape)


def serialize_layer(layer):
    """``{'class_name', 'config'}`` of a layer or a model (models nest their layers' entries)."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def serialize_model(model):
    """A model's architecture entry; subclassed models, which have no config, are refused by name."""
    from convx.models import Functional, Sequential

    if not isinstance(model, (Functional, Sequential)):
        raise ValueError(f"Model '{model.name}' is a subclassed model ({type(model).__name__}): convx saves the "
                         "architecture of Sequential and functional models only; save its weights instead")
    return serialize_layer(model)


def deserialize_layer(entry):
    """The layer or model an entry of :func:`serialize_layer` describes; only convx's own classes are accepted."""
    from convx import layers as layers_module
    from convx import models

    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ValueError(f"Invalid layer entry in config: {entry!r}")
    name = entry.get("class_name")
    if name in _MODEL_CLASSES:
        return getattr(models, name).from_config(entry["config"])
    layer_cls = getattr(layers_module, name, None) if isinstance(name, str) else None
    if not (isinstance(layer_cls, type) and issubclass(layer_cls, layers_module.Layer)):
        raise ValueError(f"Unknown layer class {name!r} in config")
    return layer_cls.from_config(entry["config"])


# ----- writing -------------------------------------------------------------------------------------------------

def _destination(filepath, overwrite, what, suffix):
    path = os.fspath(filepath)
    if path.lower().endswith(_HDF5_SUFFIXES):
        raise ValueError(f"convx does not write HDF5 files ({path!r}); save the {what} to a path ending in {suffix}")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} exists and overwrite=False")
    return path


def _metadata(kind):
    from convx import __version__

    return _json_bytes({"format": kind, "format_version": FORMAT_VERSION, "convx_version": __version__})


def _json_bytes(value):
    return json.dumps(value, indent=1, sort_keys=True).encode("utf-8")


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array, order="C"), allow_pickle=False)  # 0-d stays 0-d
    return buffer.getvalue()


def _array_members(folder, arrays):
    return {f"{folder}/{i:05d}.npy": _npy_bytes(array) for i, array in enumerate(arrays)}


def _write_atomically(path, members):
    """Write the archive to a temporary file in the target's folder, then move it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".convx-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
                for name, data in members.items():
                    archive.writestr(name, data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 would surprise whoever reads the file next
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _compile_config(model):
    from convx import losses, optimizers

    optimizer = optimizers.serialize(model.optimizer)
    if callable(optimizer["config"].get("learning_rate")):
        warnings.warn("the learning-rate schedule is not saved; the model will load with its current rate",
                      stacklevel=3)
        optimizer["config"]["learning_rate"] = model.optimizer.learning_rate
    def metric(spec):
        if spec is None or isinstance(spec, str):
            return spec
        return {"class_name": type(spec).__name__, "config": spec.get_config()}

    def loss(spec):
        if spec is None:
            return None
        spec = losses.get(spec)
        if type(spec).__name__ not in losses._CLASSES:
            raise ValueError(f"loss {type(spec).__name__!r} is not one of convx's and cannot be saved")
        return {"class_name": type(spec).__name__, "config": spec.get_config()}

    return {"optimizer": optimizer, "loss": _map_structure(loss, model._loss_spec),
            "loss_weights": model._loss_weights_spec, "metrics": _map_structure(metric, model._metric_specs),
            "optimizer_iterations": int(model.optimizer.iterations)}


def _map_structure(function, value):
    """``function`` over the leaves of a value, a list or a dict (losses and metrics per output)."""
    if isinstance(value, dict) and "class_name" not in value:
        return {key: _map_structure(function, v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_structure(function, v) for v in value]
    return function(value)


def _optimizer_slots(model):
    """The optimizer's state for the model's flat weight buffer (empty before its first step)."""
    return list(model.optimizer._state.get("flat", ()))


# ----- reading -------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _open_archive(filepath, formats):
    """The convx zip archive at ``filepath``, its metadata checked against ``formats``."""
    path = os.fspath(filepath)
    formats = (formats,) if isinstance(formats, str) else formats
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No file at {path!r}")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"{path!r} is not a convx file (not a zip archive)") from None
    with archive:
        metadata = _read_json(archive, "metadata.json", path)
        kind = metadata.get("format")
        if kind not in formats:
            raise ValueError(f"{path!r} is not a convx {' or '.join(formats)} file{_keras_hint(archive)}: "
                             f"format {kind!r}")
        if metadata.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path!r} has format version {metadata.get('format_version')!r}; "
                             f"this convx reads version {FORMAT_VERSION}")
        yield archive


def _keras_hint(archive):
    return " (a Keras file?)" if "model.weights.h5" in archive.namelist() else ""


def _read_json(archive, name, filepath):
    try:
        return json.loads(archive.read(name).decode("utf-8"))
    except KeyError:
        raise ValueError(
            f"{os.fspath(filepath)!r} is not a convx file{_keras_hint(archive)}: it has no {name}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{os.fspath(filepath)!r}: {name} is not valid JSON ({error})") from None


def _read_arrays(archive, folder):
    """The ``folder/NNNNN.npy`` arrays in order, read without pickle."""
    names = sorted(n for n in archive.namelist() if n.startswith(folder + "/") and n.endswith(".npy"))
    expected = [f"{folder}/{i:05d}.npy" for i in range(len(names))]
    if names != expected:
        raise ValueError(f"{archive.filename!r}: the {folder}/ arrays are not numbered 00000, 00001, ...")
    arrays = []
    for name in names:
        with archive.open(name) as f:
            try:
                arrays.append(np.lib.format.read_array(f, allow_pickle=False))
            except ValueError as error:
                raise ValueError(f"{archive.filename!r}: {name} is not a plain array ({error})") from None
    return arrays


def _assign_weights(model, arrays, filepath):
    variables = model.weights
    if len(arrays) != len(variables):
        raise ValueError(f"{os.fspath(filepath)!r} holds {len(arrays)} weight arrays; model '{model.name}' "
                         f"has {len(variables)}")
    for var, array in zip(variables, arrays):
        if array.shape != var.shape:
            raise ValueError(f"{os.fspath(filepath)!r}: weight {var.path!r} has shape {array.shape} in the file, "
                             f"{var.shape} in the model")
        if array.dtype.kind != "f" and array.dtype != var.dtype:  # int8 weights of a quantized layer load as such
            raise ValueError(f"{os.fspath(filepath)!r}: weight {var.path!r} has dtype {array.dtype} in the file; "
                             "expected floating point")
    model.set_weights(arrays)


def _compile_from(model, config):
    from convx import losses, metrics, optimizers

    model.compile(
        optimizer=optimizers.get(config["optimizer"]),
        loss=_map_structure(lambda spec: None if spec is None else losses.get(spec), config["loss"]),
        loss_weights=config.get("loss_weights"),
        metrics=_map_structure(lambda m: m if m is None or isinstance(m, str) else metrics.get(m), config["metrics"]),
    )


def _restore_optimizer(model, config, slots, filepath):
    optimizer = model.optimizer
    optimizer.iterations = int(config.get("optimizer_iterations", 0))
    if not slots:
        return
    model._bind_flat()  # the flat weight buffer the state belongs to
    size = model._params.size
    if len(slots) != len(optimizer._slot_names) or any(s.shape != (size,) for s in slots):
        raise ValueError(f"{os.fspath(filepath)!r}: the optimizer state does not fit model '{model.name}' "
                         f"({len(slots)} arrays of shapes {[s.shape for s in slots]}, expected "
                         f"{len(optimizer._slot_names)} of ({size},))")
    optimizer._state["flat"] = tuple(np.array(s, dtype=model._params.dtype) for s in slots)
