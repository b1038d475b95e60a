"""Keras 3's HDF5 weights layout (``model.weights.h5``), written and read through the layer protocol.

Keras addresses each object by where it sits, not by its name: the model's own
variables at ``vars/``, its layers at ``layers/<snake_case class name>[_N]/vars/``
(numbered per container in ``model.layers`` order, nested models recursing into
their ``layers/``), the optimizer at ``optimizer/vars/``. Every layer writes and
reads its variables with ``save_own_variables(store)`` / ``load_own_variables(store)``.
"""

import io

import numpy as np

from convx.layers.base import to_snake_case
from convx.saving import optimizer_state
from convx.saving.archive import FileRejectedError


def require_h5py():
    """h5py, imported on first use (the ``keras`` extra), with the command that installs it."""
    try:
        import h5py
    except ImportError:
        raise ImportError("Reading and writing Keras files needs h5py: pip install 'convx-cnn[keras]'") from None
    return h5py


def walk(model, path=""):
    """``(path, object)`` for the model and, recursively, every layer it holds, as Keras 3 addresses them."""
    from convx.models import Model

    yield path, model
    yield from _walk_container(model.layers, f"{path}/layers" if path else "layers")


def _walk_container(layers, path):
    """Layers of a list, each at ``<path>/<snake_case class name>[_N]`` (numbered per list, as Keras does)."""
    from convx.models import Model

    used = {}
    for layer in layers:
        name = to_snake_case(type(layer).__name__)
        used[name] = used.get(name, -1) + 1
        inner = f"{path}/{name}" + (f"_{used[name]}" if used[name] else "")
        if isinstance(layer, Model):
            yield from walk(layer, inner)
        else:
            yield inner, layer
            if layer._has_call:
                yield from _walk_sublayers(layer, inner)


def _walk_sublayers(layer, path):
    """The layers a custom layer holds, at ``<path>/<attribute>`` (a list: ``<path>/<attribute>/<name>``), in
    sorted attribute order: Keras 3's addresses of a subclassed layer's children."""
    from convx.layers.base import Layer
    from convx.models import Model

    for attribute, value in sorted(vars(layer).items()):
        if isinstance(value, Model):
            yield from walk(value, f"{path}/{attribute}")
        elif isinstance(value, Layer):
            yield f"{path}/{attribute}", value
            if value._has_call:
                yield from _walk_sublayers(value, f"{path}/{attribute}")
        elif isinstance(value, (list, tuple)) and any(isinstance(v, Layer) for v in value):
            yield from _walk_container([v for v in value if isinstance(v, Layer)], f"{path}/{attribute}")


def write_weights(model, with_optimizer):
    """The bytes of an HDF5 file holding ``model``'s variables (and its optimizer's) in Keras 3's layout."""
    h5py = require_h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        seen = set()
        for path, obj in walk(model):
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            group = f.require_group(f"{path}/vars" if path else "vars")
            group.attrs["name"] = obj.name
            obj.save_own_variables(_WriteStore(group))
        if with_optimizer and model.optimizer is not None:
            group = f.require_group("optimizer/vars")
            group.attrs["name"] = model.optimizer.name
            optimizer_state.save(model, _WriteStore(group))
    return buffer.getvalue()


def read_weights(model, data, filepath, with_optimizer):
    """Assign the variables of an HDF5 file in Keras 3's layout (bytes ``data``) to ``model``."""
    h5py = require_h5py()
    with _open(h5py, data, filepath) as f:
        if "layer_names" in f.attrs or "model_weights" in f:
            raise FileRejectedError(filepath, "it holds Keras 2 / legacy HDF5 weights: load it from a path ending "
                                              "in '.h5' (not '.weights.h5')")
        seen = set()
        for path, obj in walk(model):
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            store = ReadStore(h5py, f, f"{path}/vars" if path else "vars", filepath, data_size=len(data))
            try:
                obj.load_own_variables(store)
            except (ValueError, TypeError) as error:
                raise FileRejectedError(filepath, f"{path or 'the model'}: {error}") from None
        if with_optimizer and model.optimizer is not None and "optimizer" in f:
            store = ReadStore(h5py, f, "optimizer/vars", filepath, data_size=len(data))
            try:
                optimizer_state.load(model, store)
            except (ValueError, TypeError) as error:
                raise FileRejectedError(filepath, f"optimizer: {error}") from None


def _open(h5py, data, filepath):
    try:
        return h5py.File(io.BytesIO(data), "r")
    except (OSError, ValueError) as error:
        raise FileRejectedError(filepath, f"not a readable HDF5 file ({error})") from None


class _WriteStore:
    """The dict-like a layer's ``save_own_variables`` writes into: one dataset per key."""

    def __init__(self, group):
        self._group = group

    def __setitem__(self, key, value):
        self._group.create_dataset(key, data=np.asarray(value))

    def keys(self):
        return list(self._group.keys())


class ReadStore:
    """The dict-like a layer's ``load_own_variables`` reads: each dataset checked before it is read.

    Refused: links to other files or objects, datasets stored outside the file,
    non-numeric dtypes (object and string arrays), and datasets declaring more
    bytes than the whole file holds (a crafted shape that would exhaust memory).
    """

    def __init__(self, h5py, f, path, filepath, data_size):
        self._h5py, self._filepath, self._data_size, self._path = h5py, filepath, data_size, path
        self._group = _hard_group(h5py, f, path, filepath)

    def keys(self):
        return [] if self._group is None else list(self._group.keys())

    def __len__(self):
        return len(self.keys())

    def __contains__(self, key):
        return key in self.keys()

    def __getitem__(self, key):
        if self._group is None or key not in self._group:
            raise KeyError(f"{self._path}/{key}")
        return checked_dataset(self._h5py, self._group, key, self._filepath, self._data_size, self._path)


def _hard_group(h5py, f, path, filepath):
    node = f
    for part in path.split("/"):
        link = node.get(part, getlink=True)
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            raise FileRejectedError(filepath, f"{path}: {part!r} is a link, not a group")
        node = node[part]
        if not isinstance(node, h5py.Group):
            raise FileRejectedError(filepath, f"{path}: {part!r} is not a group")
    return node


def checked_dataset(h5py, group, key, filepath, data_size, where):
    """The array of dataset ``key`` in ``group``, after checking it is safe to read."""
    link = group.get(key, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise FileRejectedError(filepath, f"{where}/{key} is a link, not a dataset")
    dataset = group[key]
    if not isinstance(dataset, h5py.Dataset):
        raise FileRejectedError(filepath, f"{where}/{key} is not a dataset")
    if dataset.dtype.kind not in "fiub":
        raise FileRejectedError(filepath, f"{where}/{key} holds {dataset.dtype} values, not numbers")
    if dataset.external or dataset.is_virtual:
        raise FileRejectedError(filepath, f"{where}/{key} is stored outside the file")
    if dataset.shape is None or dataset.dtype.itemsize * int(np.prod(dataset.shape, dtype=np.float64)) > data_size:
        raise FileRejectedError(filepath, f"{where}/{key} declares shape {dataset.shape}, more than the file holds")
    try:
        return np.asarray(dataset[()])
    except (OSError, ValueError) as error:
        raise FileRejectedError(filepath, f"{where}/{key} cannot be read ({error})") from None
