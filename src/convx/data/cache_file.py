"""``Dataset.cache(filename)``: the first complete pass written to files, later passes read back.

Files: ``<filename>.data-00000-of-00001`` holds each element's leaves as
consecutive ``.npy`` records; ``<filename>.index`` (JSON: element structure and
count) is written last, so an interrupted pass leaves no index and is redone.
Reading uses ``allow_pickle=False``: nothing in the files is executed.
"""

import json
import os

import numpy as np

from convx.data import structure as _structure


def _paths(filename):
    return filename + ".index", filename + ".data-00000-of-00001"


def _skeleton(element):
    if isinstance(element, tuple):
        return {"tuple": [_skeleton(item) for item in element]}
    if isinstance(element, dict):
        return {"dict": [[key, _skeleton(item)] for key, item in element.items()]}
    return None


def _from_skeleton(skeleton):
    if skeleton is None:
        return 0
    if "tuple" in skeleton:
        return tuple(_from_skeleton(item) for item in skeleton["tuple"])
    return {key: _from_skeleton(item) for key, item in skeleton["dict"]}


def cached_pass(dataset, filename):
    index_path, data_path = _paths(filename)
    if os.path.exists(index_path):
        return _read(index_path, data_path)
    return _write(dataset, index_path, data_path)


def _read(index_path, data_path):
    with open(index_path, encoding="utf-8") as stream:
        index = json.load(stream)
    structure = _from_skeleton(index["structure"]) if index["count"] else 0
    leaves = len(_structure.flatten(structure))
    with open(data_path, "rb") as stream:
        for _ in range(index["count"]):
            values = [np.load(stream, allow_pickle=False) for _ in range(leaves)]
            yield _structure.pack_as(structure, [v[()] if v.ndim == 0 else v for v in values])


def _write(dataset, index_path, data_path):
    directory = os.path.dirname(os.path.abspath(data_path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cache(filename): the directory {directory} does not exist")
    tmp_data = data_path + f".tmp-{os.getpid()}"
    count, skeleton = 0, None
    iterator = iter(dataset)
    complete = False
    try:
        with open(tmp_data, "wb") as stream:
            for element in iterator:
                if skeleton is None:
                    skeleton = _skeleton(element)
                for leaf in _structure.flatten(element):
                    np.save(stream, np.asarray(leaf), allow_pickle=False)
                count += 1
                yield element
        complete = True
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
        if complete:
            os.replace(tmp_data, data_path)
            tmp_index = index_path + f".tmp-{os.getpid()}"
            with open(tmp_index, "w", encoding="utf-8") as stream:
                json.dump({"count": count, "structure": skeleton}, stream)
            os.replace(tmp_index, index_path)
        elif os.path.exists(tmp_data):
            os.remove(tmp_data)
