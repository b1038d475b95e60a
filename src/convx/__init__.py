"""convx: fast CPU convolutional networks with a Keras 3-compatible API.

``import convx as keras`` runs Keras code written against ``keras.Sequential``,
``keras.Model`` / ``keras.Input`` (functional and subclassed models),
``keras.layers``, ``keras.optimizers``, ``keras.losses``, ``keras.metrics``,
``keras.callbacks``, ``keras.datasets``, ``keras.saving`` and ``keras.utils``.
"""

__version__ = "0.1.0.dev0"

import importlib

from convx._kernels.threads import get_num_threads, set_num_threads
from convx import _fork  # noqa: F401  (single-threaded kernels in fork() children)
from convx import activations, initializers, layers, losses, metrics, models, optimizers, utils
from convx.layers import Input, KerasTensor
from convx.models import Model, Sequential

# loaded on first access, so that importing convx stays light
_LAZY_SUBMODULES = ("callbacks", "constraints", "data", "datasets", "distribution", "pruning", "quantization",
                    "regularizers", "saving", "wrappers")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"convx.{name}")
    if name == "show_config":
        return importlib.import_module("convx._config").show_config
    raise AttributeError(f"module 'convx' has no attribute {name!r}")


__all__ = [
    "Model", "Sequential", "Input", "KerasTensor", "layers", "models", "optimizers", "losses", "metrics", "initializers", "activations",
    "utils", "callbacks", "constraints", "data", "datasets", "distribution", "regularizers", "saving", "show_config", "get_num_threads", "set_num_threads", "__version__",
]
