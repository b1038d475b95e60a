"""Every size a file declares is checked (convx.saving.limits) before anything is allocated; loading stays
linear in the number of layers; whatever a damaged file makes the readers raise is one FileRejectedError."""

import io
import json
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

import convx
from conftest import optional
from convx import layers as L
from convx.saving import FileRejectedError, limits

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


def _write(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in members.items():
            archive.writestr(name, value)
    return path


def _with_config(tmp_path, good, name, edit):
    config = json.loads(good["config.json"])
    edit(config)
    return _write(tmp_path / name, {**good, "config.json": json.dumps(config).encode()})


def _refused(path, match, loader=None):
    with pytest.raises(FileRejectedError, match=match) as error:
        (loader or convx.models.load_model)(path)
    assert error.value.filepath == str(path) and str(path) in str(error.value)
    return error.value


def _peak_bytes(function):
    """Peak of the memory Python and NumPy allocated while ``function`` ran (NumPy reports to tracemalloc)."""
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("layer, change", [(3, {"units": 10 ** 9}), (1, {"filters": 10 ** 7}),
                                           (1, {"kernel_size": [30000, 30000], "padding": "same"})])
def test_absurd_layer_sizes_are_refused_before_their_weights_are_allocated(tmp_path, good, layer, change):
    def edit(config):
        config["config"]["layers"][layer]["config"].update(change)
        config["config"]["layers"][layer].pop("build_config", None)

    path = _with_config(tmp_path, good, "absurd.keras", edit)
    peak = _peak_bytes(lambda: _refused(path, "more than the file holds"))
    assert peak < 32 << 20  # the kernel alone would be gigabytes


def test_the_weight_limit_is_one_assignment_away(tmp_path, monkeypatch):
    path = tmp_path / "m.keras"
    _model().save(path)
    convx.models.load_model(path)
    monkeypatch.setattr(limits, "MAX_WEIGHT_BYTES", 100)  # the Conv2D kernel alone has 72 bytes, the Dense 3 KiB
    _refused(path, "conv2d/kernel|dense/kernel")


def test_json_size_depth_and_layer_count(tmp_path, good, monkeypatch):
    deep = "[" * 100_000 + "]" * 100_000  # json's own recursion guard: a RecursionError inside
    _refused(_write(tmp_path / "deep.keras", {**good, "config.json": deep.encode()}), "config.json is not valid JSON")
    nested = {"a": 1}
    for _ in range(limits.MAX_JSON_DEPTH + 5):
        nested = {"class_name": "Sequential", "config": {"layers": [nested]}}
    _refused(_write(tmp_path / "nested.keras", {**good, "config.json": json.dumps(nested).encode()}),
             f"nests deeper than {limits.MAX_JSON_DEPTH}")
    monkeypatch.setattr(limits, "MAX_JSON_BYTES", 100)
    _refused(_write(tmp_path / "big.keras", good), r"config.json declares \d+ bytes \(at most 100\)")
    monkeypatch.setattr(limits, "MAX_JSON_BYTES", 64 << 20)
    monkeypatch.setattr(limits, "MAX_LAYERS", 2)
    _refused(_write(tmp_path / "many.keras", good), "describes 4 layers")


def test_models_nested_deeper_than_the_recursion_limit(tmp_path, good, monkeypatch):
    monkeypatch.setattr(limits, "MAX_JSON_DEPTH", 10 ** 6)  # past the JSON check, into the layers' own recursion
    levels = 300  # json itself parses up to the recursion limit (1000) of nesting; 3 per model
    config = ('{"module": "keras", "class_name": "Sequential", "registered_name": null, '
              '"build_config": {"input_shape": [null, 6, 6, 1]}, "config": {"name": null, "layers": [') * levels + good["config.json"].decode() + "]}}" * levels
    _refused(_write(tmp_path / "russian.keras", {**good, "config.json": config.encode()}), "RecursionError")


def test_weights_files_over_the_size_limit(tmp_path, monkeypatch):
    model = _model()
    model.save_weights(tmp_path / "m.weights.h5")
    monkeypatch.setattr(limits, "MAX_ARCHIVE_BYTES", 1000)
    _refused(tmp_path / "m.weights.h5", "at most 1000", loader=model.load_weights)


def test_npy_headers_declaring_more_than_the_member_holds(tmp_path):
    model = _model()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (1 << 20, 1 << 20)})
    config = {"class_name": "Sequential", "config": model.get_config(), "build_input_shape": [None, 6, 6, 1]}
    path = _write(tmp_path / "old.keras", {"metadata.json": json.dumps({"format": "convx.model", "format_version": 1}),
                                           "config.json": json.dumps(config),
                                           "weights/00000.npy": header.getvalue() + bytes(64)})
    peak = _peak_bytes(lambda: _refused(path, r"declares shape \(1048576, 1048576\)"))
    assert peak < 32 << 20


def _corruptions(whole):
    """Damaged copies of an archive, each breaking a different part of the zip machinery."""
    directory = whole.rindex(b"PK\x01\x02")
    local = whole.index(b"PK\x03\x04")
    yield "crc", whole[:directory + 16] + b"\xff\xff\xff\xff" + whole[directory + 20:]
    yield "method", whole[:local + 8] + b"\x63\x00" + whole[local + 10:directory + 10] + b"\x63\x00" + \
        whole[directory + 12:]
    yield "encrypted", whole[:local + 6] + b"\x01\x00" + whole[local + 8:directory + 8] + b"\x01\x00" + \
        whole[directory + 10:]
    yield "name", whole[:directory + 46] + b"\xff" + whole[directory + 47:]
    yield "offset", whole[:directory + 42] + b"\xff\xff\xff\x7f" + whole[directory + 46:]
    yield "sizes", whole[:directory + 20] + b"\x01\x00\x00\x00" * 2 + whole[directory + 28:]
    yield "directory", whole[:directory] + bytes(len(whole) - directory)


@pytest.mark.parametrize("kind", ["crc", "method", "encrypted", "name", "offset", "sizes", "directory"])
def test_each_kind_of_corruption_raises_the_one_documented_error(tmp_path, good, kind):
    whole = _write(tmp_path / "whole.keras", good).read_bytes()
    damaged = dict(_corruptions(whole))[kind]
    path = tmp_path / f"{kind}.keras"
    path.write_bytes(damaged)
    _refused(path, ".")
    model = _model()
    with pytest.raises(FileRejectedError):
        model.load_weights(path)


def _chain(n):
    convx.utils.clear_session()
    return convx.Sequential([convx.Input((4,)), L.Dense(2)] + [L.Activation("relu") for _ in range(n)])


def _python_calls(function):
    """Python function calls (and generator resumptions) made while ``function`` runs: a measure of work that
    does not depend on the machine's load."""
    count = [0]

    def profile(frame, event, arg):
        if event == "call":
            count[0] += 1

    sys.setprofile(profile)
    try:
        function()
    finally:
        sys.setprofile(None)
    return count[0]


def test_loading_is_linear_in_the_number_of_layers(tmp_path):
    calls = {}
    for n in (500, 2000):
        path = tmp_path / f"chain{n}.keras"
        _chain(n).save(path)
        calls[n] = _python_calls(lambda: convx.models.load_model(path))
    # linear: 4x the layers, 4x the calls (plus a constant); the quadratic name check this replaced made 16x
    assert calls[2000] < 4.6 * calls[500], calls


@pytest.mark.slow
def test_twenty_thousand_layers_load(tmp_path):
    path = tmp_path / "chain.keras"
    _chain(20_000).save(path)
    model = convx.models.load_model(path)
    assert len(model.layers) == 20_001
    assert model.predict(np.ones((2, 4), np.float32), verbose=0).shape == (2, 2)
