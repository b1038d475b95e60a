"""convx's former archive format (a zip of JSON and ``.npy`` files), read for compatibility.

Files written by convx before it wrote Keras' own format hold::

    metadata.json        {"format": "convx.model" or "convx.weights", "format_version": 1, ...}
    config.json          {"class_name", "config", "build_input_shape", "compile_config"}
    weights/00000.npy    one array per weight, in ``get_weights()`` order
    optimizer/00000.npy  the optimizer's slots over the model's flat trainable weights

Arrays are read with ``allow_pickle=False`` after the archive's members are
checked (:class:`~convx.saving.archive.CheckedArchive`); convx now writes Keras 3
files instead (:mod:`convx.saving.keras_format`).
"""

import numpy as np

from convx.saving import limits
from convx.saving.archive import CheckedArchive, FileRejectedError, parse_json

MODEL_FORMAT = "convx.model"
WEIGHTS_FORMAT = "convx.weights"
FORMAT_VERSION = 1


def is_legacy(archive):
    """Whether a checked archive is one of convx's former files (it has ``metadata.json`` with convx's format)."""
    if "metadata.json" not in archive.names or "model.weights.h5" in archive.names:
        return False
    return _read_json(archive, "metadata.json").get("format") in (MODEL_FORMAT, WEIGHTS_FORMAT)


def allowed(name):
    return name in ("metadata.json", "config.json") or (
        name.startswith(("weights/", "optimizer/")) and name.endswith(".npy"))


def load_model(filepath, custom_objects=None, compile=True):
    """The model of a former convx model file, built, with its weights (and optimizer state if ``compile``)."""
    from convx.saving.keras_format import _build

    with _open_archive(filepath, MODEL_FORMAT) as archive:
        config = _read_json(archive, "config.json")
        if "build_config" not in config and config.get("build_input_shape") is not None:
            config = {**config, "build_config": {"input_shape": config["build_input_shape"]}}
        weight_bytes = sum(archive.size(n) for n in archive.names if n.startswith("weights/"))
        model = _build(config, filepath, custom_objects, weight_bytes)
        _assign_weights(model, _read_arrays(archive, "weights"), filepath)
        compile_config = config.get("compile_config")
        if compile and compile_config is not None:
            _compile_from(model, compile_config, filepath)
            _restore_optimizer(model, compile_config, _read_arrays(archive, "optimizer"), filepath)
    return model


def load_weights(model, filepath):
    """Assign the weights of a former convx weights or model file to the built ``model``."""
    with _open_archive(filepath, (WEIGHTS_FORMAT, MODEL_FORMAT)) as archive:
        _assign_weights(model, _read_arrays(archive, "weights"), filepath)


# ----- reading -------------------------------------------------------------------------------------------------

class _open_archive(CheckedArchive):
    """A former convx archive, its members and metadata checked against ``formats``."""

    def __init__(self, filepath, formats):
        super().__init__(filepath, allowed)
        formats = (formats,) if isinstance(formats, str) else formats
        try:
            metadata = _read_json(self, "metadata.json")
            if metadata.get("format") not in formats:
                raise FileRejectedError(filepath, f"not a convx {' or '.join(formats)} file: format "
                                                  f"{metadata.get('format')!r}")
            if metadata.get("format_version") != FORMAT_VERSION:
                raise FileRejectedError(filepath, f"format version {metadata.get('format_version')!r}; this convx "
                                                  f"reads version {FORMAT_VERSION}")
        except BaseException:
            self.close()
            raise


def _read_json(archive, name):
    return parse_json(archive.filepath, name, archive.read(name, limit=limits.MAX_JSON_BYTES))


def _read_arrays(archive, folder):
    """The ``folder/NNNNN.npy`` arrays in order, read without pickle."""
    names = sorted(n for n in archive.names if n.startswith(folder + "/") and n.endswith(".npy"))
    if names != [f"{folder}/{i:05d}.npy" for i in range(len(names))]:
        raise FileRejectedError(archive.filepath, f"the {folder}/ arrays are not numbered 00000, 00001, ...")
    arrays = []
    for name in names:
        data = archive.open_bytes(name)
        try:
            _check_header(data, archive.size(name))
            arrays.append(np.lib.format.read_array(data, allow_pickle=False))
        except (ValueError, EOFError, OSError, TypeError, SyntaxError) as error:
            raise FileRejectedError(archive.filepath, f"{name} is not a plain array ({error})") from None
    return arrays


def _check_header(stream, size):
    """Refuse an ``.npy`` header declaring more data than the member holds (``read_array`` would allocate
    the declared shape before reading), then rewind."""
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f".npy format version {version}; convx wrote 1.0")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(stream)
    if dtype.hasobject:
        raise ValueError("object arrays are never unpickled")
    if dtype.itemsize * int(np.prod(shape, dtype=np.float64)) > size:
        raise ValueError(f"its header declares shape {shape} of {dtype}, more than the member's {size} bytes")
    stream.seek(0)


def _assign_weights(model, arrays, filepath):
    variables = model.weights
    if len(arrays) != len(variables):
        raise FileRejectedError(filepath, f"it holds {len(arrays)} weight arrays; model '{model.name}' "
                                          f"has {len(variables)}")
    for var, array in zip(variables, arrays):
        if array.shape != var.shape:
            raise FileRejectedError(filepath, f"weight {var.path!r} has shape {array.shape} in the file, "
                                              f"{var.shape} in the model")
        if array.dtype.kind != "f" and array.dtype != var.dtype:  # int8 weights of a quantized layer load as such
            raise FileRejectedError(filepath, f"weight {var.path!r} has dtype {array.dtype} in the file; "
                                              "expected floating point")
    model.set_weights(arrays)


def _compile_from(model, config, filepath):
    from convx.saving.keras_format import _compile_from as compile_keras

    compile_keras(model, {key: config.get(key) for key in ("optimizer", "loss", "loss_weights", "metrics")}, filepath)


def _restore_optimizer(model, config, slots, filepath):
    optimizer = model.optimizer
    optimizer.iterations = int(config.get("optimizer_iterations", 0))
    if not slots:
        return
    try:
        model._built_optimizer()._assign_flat_slots(slots)
    except ValueError as error:
        raise FileRejectedError(filepath, f"the optimizer state does not fit model '{model.name}' ({error})") from None
