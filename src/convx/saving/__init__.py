"""Saving and loading models: Keras 3 files both ways, older files read, never a line of code run from a file.

- ``model.save('m.keras')`` writes a genuine Keras 3 archive (``keras.models.load_model``
  reads it): ``config.json``, ``metadata.json``, ``model.weights.h5`` and ``assets/``
  (:mod:`~convx.saving.keras_format`, :mod:`~convx.saving.h5_layout`).
- ``model.save_weights('m.weights.h5')`` writes Keras 3's weights file.
- :func:`load_model` reads ``.keras`` archives of Keras 3 or convx, Keras 2 / tf.keras
  ``.h5`` files (:mod:`~convx.saving.legacy_h5`) and convx's former ``.npy``-based
  archives (:mod:`~convx.saving.legacy`).

HDF5 goes through h5py, the ``keras`` extra (``pip install 'convx-cnn[keras]'``):
the core of convx stays NumPy-only, and h5py is imported only when a Keras file is
written or read. Loading never unpickles and never imports a module a file names:
classes are found by name among convx's layers and the registered ones
(:func:`register_keras_serializable`, ``custom_objects``). A file convx refuses
(crafted member names, a zip bomb, huge declared shapes, object arrays, truncation,
unknown classes, duplicated members, Lambda layers, sizes over :mod:`~convx.saving.limits`)
raises :class:`FileRejectedError`, a ``ValueError`` naming the file, whatever the damage. A save goes to a temporary file moved over the
target in one step: a failed save never loses the previous file.
"""

import contextlib
import os
import zipfile

from convx.saving import keras_format, legacy, legacy_h5
from convx.saving.archive import FileRejectedError
from convx.saving.registration import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)
from convx.saving.serialization import deserialize_layer, serialize_layer, serialize_model

_HDF5 = (".h5", ".hdf5")


def save_model(model, filepath, overwrite=True, **kwargs):
    """Write ``model`` (architecture, weights, compile settings, optimizer state) as a Keras 3 ``.keras`` file.

    Parameters
    ----------
    model : Sequential or functional Model
        A built model.
    filepath : str or os.PathLike
        Must end in ``.keras`` (other extensions raise, as in Keras 3).
    overwrite : bool, default True
        When False, an existing file raises ``FileExistsError``.
    """
    if kwargs:
        raise ValueError(f"The following argument(s) are not supported: {list(kwargs.keys())}")
    path = os.fspath(filepath)
    if path.endswith(_HDF5):
        raise ValueError(f"convx does not write the legacy HDF5 format; save to a path ending in '.keras' "
                         f"(Keras 3's native format). Received: filepath={path}.")
    if not path.endswith(".keras"):
        raise ValueError(
            "Invalid filepath extension for saving. Please add either a `.keras` extension for the native Keras "
            "format (recommended) or a `.h5` extension. Use `model.export(filepath)` if you want to export a "
            f"SavedModel for use with TFLite/TFServing/etc. Received: filepath={path}.")
    _check_overwrite(path, overwrite)
    _require_built(model, "saving")
    keras_format.save_keras(model, path)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """The model saved in ``filepath``, built, with its weights (compiled as saved when ``compile``).

    Parameters
    ----------
    filepath : str or os.PathLike
        A ``.keras`` archive (Keras 3's or convx's, current or former format) or a
        Keras 2 / tf.keras ``.h5`` / ``.hdf5`` file.
    custom_objects : dict, optional
        Name -> class for custom layers not registered with :func:`register_keras_serializable`.
    compile : bool, default True
    safe_mode : bool, default True
        Only True: convx never executes code from a file (``Lambda`` layers are refused either way).

    Raises
    ------
    FileRejectedError
        A ``ValueError`` naming the file, for any file convx cannot or will not load.
    """
    if safe_mode is not True:
        raise ValueError("convx only loads in safe mode: safe_mode=False (running code from a file) is not supported")
    path = os.fspath(filepath)
    if not os.path.isfile(path):
        raise ValueError(f"File not found: filepath={path}. Please ensure the file is an accessible `.keras` zip file.")
    if not path.endswith((".keras", *_HDF5)):
        raise ValueError(f"File format not supported: filepath={path}. convx reads `.keras` files and legacy H5 "
                         "files (`.h5` extension).")
    with _rejecting(path):
        if path.endswith(_HDF5):
            return legacy_h5.load_h5_model(path, custom_objects, compile)
        if _is_legacy(path):
            return legacy.load_model(path, custom_objects, compile)
        return keras_format.load_keras(path, custom_objects, compile)


def save_weights(model, filepath, overwrite=True):
    """Write ``model``'s weights (and its optimizer's state) as Keras 3's ``.weights.h5`` file."""
    path = os.fspath(filepath)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"The filename must end in `.weights.h5`. Received: filepath={path}")
    _check_overwrite(path, overwrite)
    _require_built(model, "saving weights")
    keras_format.save_weights_h5(model, path)


def load_weights(model, filepath):
    """Assign to the built ``model`` the weights of a ``.weights.h5``, ``.keras``, legacy ``.h5`` file,
    or a weights / model file of convx's former format."""
    path = os.fspath(filepath)
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet: build it (or call it on data) before loading weights")
    if not os.path.isfile(path):
        raise ValueError(f"File not found: filepath={path}.")
    with _rejecting(path):
        if path.endswith(".weights.h5"):
            return keras_format.load_weights_h5(model, path)
        if path.endswith(_HDF5):
            return legacy_h5.load_h5_weights(model, path)
        if (path.endswith(".keras") or zipfile.is_zipfile(path)) and _is_legacy(path):
            return legacy.load_weights(model, path)
        if path.endswith(".keras"):
            return keras_format.load_weights_from_keras(model, path)
    raise ValueError(f"File format not supported: filepath={path}. Keras 3 only supports V3 `.keras` and "
                     "`.weights.h5` files, or legacy H5 format files (`.h5` extension).")


@contextlib.contextmanager
def _rejecting(path):
    """Whatever a damaged or crafted file makes the readers raise surfaces as one documented exception,
    FileRejectedError naming the file (the original chained as its cause); a missing optional
    dependency stays an ImportError."""
    try:
        yield
    except (FileRejectedError, ImportError):
        raise
    except Exception as error:
        raise FileRejectedError(path, f"{type(error).__name__}: {error}") from error


def _is_legacy(path):
    from convx.saving.archive import CheckedArchive

    with CheckedArchive(path, lambda name: True) as archive:
        return legacy.is_legacy(archive)


def _check_overwrite(path, overwrite):
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} exists and overwrite=False")


def _require_built(model, what):
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet: call it on data, `fit` it or `build` it before "
                         f"{what}")


__all__ = ["save_model", "load_model", "save_weights", "load_weights", "FileRejectedError",
           "register_keras_serializable", "get_registered_object", "get_registered_name", "get_custom_objects",
           "custom_object_scope", "CustomObjectScope", "serialize_layer", "deserialize_layer", "serialize_model"]
