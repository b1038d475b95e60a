"""The limits every loader checks a file against before it allocates what the file describes.

``load_model``, ``load_weights`` and the ONNX import read ``.keras`` archives, ``.weights.h5``
files, Keras 2 ``.h5`` files and convx's former ``.npy`` archives. Each size a file declares is
compared with these limits (and with what the file itself can hold) before a byte of it is
decompressed, parsed or allocated; a file over a limit raises
:class:`~convx.saving.FileRejectedError`. Keras 3 has no such limits, so the names are convx's.

A limit is raised for a trusted file by assigning the module attribute before loading::

    import convx.saving.limits
    convx.saving.limits.MAX_WEIGHT_BYTES = 64 << 30

Attributes
----------
MAX_ARCHIVE_BYTES : int
    Uncompressed bytes an archive may declare in total (8 GiB), also the largest HDF5 or ONNX file read.
MAX_COMPRESSION_RATIO : int
    Uncompressed / compressed size of a member over 1 MiB (200): Keras stores members uncompressed, and
    DEFLATE itself cannot exceed about 1032, so a larger ratio is a decompression bomb.
MAX_JSON_BYTES : int
    Size of one JSON document: ``config.json``, ``metadata.json`` or an HDF5 attribute (64 MiB).
MAX_JSON_DEPTH : int
    Nesting of JSON arrays and objects (100): a model nested in a model in a model... 20 deep
    needs about 80.
MAX_LAYERS : int
    Layer entries in one config, nested models' included (100,000).
MAX_WEIGHT_BYTES : int
    Bytes of the weights a config's layers create when built (8 GiB). A config must also not create
    more weights than its file holds (plus :data:`WEIGHT_SLACK_BYTES`): a ``Dense(units=10**9)`` in
    a small file is refused before its kernel is allocated or initialised.
WEIGHT_SLACK_BYTES : int
    Weights a config may create beyond what its file stores (1 MiB): state a layer keeps but does
    not save.
"""

import contextlib
import contextvars
import math

MAX_ARCHIVE_BYTES = 8 << 30
MAX_COMPRESSION_RATIO = 200
MAX_JSON_BYTES = 64 << 20
MAX_JSON_DEPTH = 100
MAX_LAYERS = 100_000
MAX_WEIGHT_BYTES = 8 << 30
WEIGHT_SLACK_BYTES = 1 << 20

_budget = contextvars.ContextVar("convx_weight_budget", default=None)


@contextlib.contextmanager
def weight_budget(file_bytes):
    """Within this context, layers may create at most ``file_bytes`` (+ slack, at most
    :data:`MAX_WEIGHT_BYTES`) of weights; ``add_weight`` checks each one before allocating it."""
    token = _budget.set([min(int(file_bytes) + WEIGHT_SLACK_BYTES, MAX_WEIGHT_BYTES)])
    try:
        yield
    finally:
        _budget.reset(token)


def charge_weight(shape, itemsize, path):
    """Take a weight of ``shape`` from the active budget (no budget: nothing to check).

    Raises
    ------
    ValueError
        When the weight does not fit in what is left of the budget.
    """
    remaining = _budget.get()
    if remaining is None:
        return
    size = itemsize * math.prod(shape)  # Python ints: no wrap-around for absurd shapes
    if size > remaining[0]:
        raise ValueError(f"weight {path!r} of shape {tuple(shape)} needs {size} bytes, more than the file holds "
                         f"or convx.saving.limits.MAX_WEIGHT_BYTES ({MAX_WEIGHT_BYTES}) allows")
    remaining[0] -= size


def json_depth_and_layers(value):
    """The nesting depth of a parsed JSON config and the number of layer entries in it (the objects of
    its ``"layers"`` lists, nested models' included), found without recursion."""
    depth, layers, stack = 0, 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        depth = max(depth, level)
        if depth > MAX_JSON_DEPTH:
            break
        if isinstance(node, dict):
            entries = node.get("layers")
            if isinstance(entries, list):
                layers += sum(isinstance(entry, dict) for entry in entries)
            children = node.values()
        else:
            children = node
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return depth, layers
