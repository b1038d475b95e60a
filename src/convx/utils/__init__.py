"""Utilities with Keras 3 names (``keras.utils``).

Light helpers are imported here; the rest load on first access (``_LAZY``:
public name -> module under ``convx.utils``), so that ``import convx`` stays
NumPy-only and fast and optional dependencies (Pillow, matplotlib, ...) are
imported only by the function that needs them.
"""

import importlib

from convx.utils.general import clear_session, set_random_seed, to_categorical

_LAZY = {
    "PyDataset": "py_dataset",
    "Sequence": "py_dataset",
    "image_dataset_from_directory": "image_dataset_utils",
    "text_dataset_from_directory": "text_dataset_utils",
    "timeseries_dataset_from_array": "timeseries_dataset_utils",
    "get_file": "file_utils",
    "plot_history": "plotting",
    "plot_model": "plotting",
    "model_to_dot": "plotting",
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'convx.utils' has no attribute {name!r}")
    return getattr(importlib.import_module(f"convx.utils.{module}"), name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["clear_session", "set_random_seed", "to_categorical", *_LAZY]
