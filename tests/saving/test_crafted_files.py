"""Crafted and damaged files are refused with FileRejectedError naming the file; nothing in them runs."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest

import convx
from conftest import optional
from convx import layers as L
from convx.saving import FileRejectedError

h5py = optional("h5py", "keras")


def _model():
    convx.utils.clear_session()
    return convx.Sequential([convx.Input((6, 6, 1)), L.Conv2D(2, 3), L.Flatten(), L.Dense(3)])


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.keras"
    _model().save(path)
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write(path, members, infos=()):
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in members:
            archive.writestr(name, value)
        for info, value in infos:
            archive.writestr(info, value)
    return path


def _h5(edit):
    """A weights file edited by ``edit(h5py.File)``."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        edit(f)
    return buffer.getvalue()


def _refused(path, match):
    with pytest.raises(FileRejectedError, match=match) as error:
        convx.models.load_model(path)
    assert error.value.filepath == str(path) and str(path) in str(error.value)


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil", "assets/../../evil", "assets\\..\\evil", "C:evil"])
def test_member_names_outside_the_archive(tmp_path, good, name):
    _refused(_write(tmp_path / "m.keras", [*good.items(), (name, b"x")]), "points outside the archive")


def test_duplicated_and_unexpected_members(tmp_path, good):
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = _write(tmp_path / "dup.keras", [*good.items(), ("config.json", good["config.json"])])
    _refused(path, "'config.json' appears twice")
    _refused(_write(tmp_path / "extra.keras", [*good.items(), ("run.py", b"print(1)")]), "unexpected member 'run.py'")


def test_a_zip_bomb(tmp_path, good):
    info = zipfile.ZipInfo("model.weights.h5")
    info.compress_type = zipfile.ZIP_DEFLATED
    members = [(n, v) for n, v in good.items() if n != "model.weights.h5"]
    _refused(_write(tmp_path / "bomb.keras", members, [(info, bytes(64 << 20))]), "zip bomb")


def test_truncated_and_corrupt_files(tmp_path, good):
    whole = _write(tmp_path / "whole.keras", good.items()).read_bytes()
    for cut in (len(whole) // 2, len(whole) - 30):
        path = tmp_path / f"cut{cut}.keras"
        path.write_bytes(whole[:cut])
        _refused(path, "not a readable zip|truncated or corrupt")
    _refused(_write(tmp_path / "h5cut.keras", [*((n, v) for n, v in good.items() if n != "model.weights.h5"),
                                              ("model.weights.h5", good["model.weights.h5"][:300])]),
             "not a readable HDF5")
    (tmp_path / "text.keras").write_text("hello")
    _refused(tmp_path / "text.keras", "not a readable zip")
    _refused(_write(tmp_path / "pickle.keras", [*good.items()][:0] + [
        ("config.json", pickle.dumps(object())), ("metadata.json", good["metadata.json"]),
        ("model.weights.h5", good["model.weights.h5"])]), "config.json is not valid JSON")
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    _refused(tmp_path / "bad.h5", "not a readable HDF5")


def _with_weights(tmp_path, good, name, edit):
    members = [(n, v) for n, v in good.items() if n != "model.weights.h5"]
    return _write(tmp_path / name, members + [("model.weights.h5", _h5(edit))])


def _copy_good(f, good, skip=()):
    with h5py.File(io.BytesIO(good["model.weights.h5"]), "r") as source:
        for key in source:
            if key not in skip:
                source.copy(source[key], f, name=key)


def test_huge_declared_shapes_object_arrays_and_links(tmp_path, good):
    def huge(f):
        _copy_good(f, good, skip=("layers",))
        f.create_dataset("layers/conv2d/vars/0", shape=(1 << 20, 1 << 20), dtype="f4")  # chunked, nothing stored
        f.create_dataset("layers/conv2d/vars/1", data=np.zeros(2, np.float32))
    _refused(_with_weights(tmp_path, good, "huge.keras", huge), r"declares shape \(1048576, 1048576\)")

    def strings(f):
        _copy_good(f, good, skip=("layers",))
        f.create_dataset("layers/conv2d/vars/0", data=np.array([b"rm -rf /"], dtype=object),
                         dtype=h5py.string_dtype())
        f.create_dataset("layers/conv2d/vars/1", data=np.zeros(2, np.float32))
    _refused(_with_weights(tmp_path, good, "strings.keras", strings), "holds object values, not numbers")

    def external(f):
        _copy_good(f, good, skip=("layers",))
        f["layers/conv2d/vars/0"] = h5py.ExternalLink("/etc/passwd", "/x")
        f.create_dataset("layers/conv2d/vars/1", data=np.zeros(2, np.float32))
    _refused(_with_weights(tmp_path, good, "link.keras", external), "is a link")


def test_shapes_and_counts_against_the_config(tmp_path, good):
    def reshaped(f):
        _copy_good(f, good, skip=("layers",))
        f.create_dataset("layers/conv2d/vars/0", data=np.zeros((5, 5, 1, 2), np.float32))
        f.create_dataset("layers/conv2d/vars/1", data=np.zeros(2, np.float32))
    _refused(_with_weights(tmp_path, good, "shape.keras", reshaped), r"layers/conv2d.*shape \(3, 3, 1, 2\)")

    def missing(f):
        _copy_good(f, good, skip=("layers",))
    _refused(_with_weights(tmp_path, good, "missing.keras", missing), "expected 2 variables, but received 0")


def test_unknown_classes_and_configs_that_cannot_be_built(tmp_path, good):
    config = json.loads(good["config.json"])
    config["config"]["layers"][1]["class_name"] = "os.system"
    _refused(_write(tmp_path / "unknown.keras", [*{**good, "config.json": json.dumps(config).encode()}.items()]),
             "Unknown layer class 'os.system'")
    config = json.loads(good["config.json"])
    config["config"]["layers"][1]["config"]["filters"] = -3
    _refused(_write(tmp_path / "bad.keras", [*{**good, "config.json": json.dumps(config).encode()}.items()]),
             "cannot be built")
    config = {"module": "builtins", "class_name": "eval", "config": {}, "registered_name": None}
    _refused(_write(tmp_path / "top.keras", [*{**good, "config.json": json.dumps(config).encode()}.items()]),
             "'eval'; convx loads Sequential and functional models")


def test_legacy_npy_archives_never_unpickle(tmp_path):
    class Tripwire:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    payload = np.empty(1, dtype=object)
    payload[0] = Tripwire()
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, payload, allow_pickle=True)
    model = _model()
    config = {"class_name": "Sequential", "config": model.get_config(), "build_input_shape": [None, 6, 6, 1]}
    path = _write(tmp_path / "old.keras", [("metadata.json", json.dumps({"format": "convx.model", "format_version": 1})),
                                           ("config.json", json.dumps(config)), ("weights/00000.npy", buffer.getvalue())])
    _refused(path, "weights/00000.npy is not a plain array")
    assert not (tmp_path / "pwned").exists()
