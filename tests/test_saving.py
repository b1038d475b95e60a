"""Saving and loading: round trips, atomic writes, and files that must be refused without running code."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import convx
from convx import layers as L
from convx import saving


@pytest.fixture(autouse=True)
def fresh_names():
    convx.utils.clear_session()


def make_model(seed=3, input_shape=(8, 8, 1), compiled=True):
    convx.utils.set_random_seed(seed)
    first = (L.Conv2D(4, 3, activation="relu", input_shape=input_shape) if input_shape
             else L.Conv2D(4, 3, activation="relu"))
    net = convx.Sequential([first, L.MaxPooling2D(), L.Flatten(), L.Dense(5, activation="tanh"),
                            L.Dense(3, activation="softmax")])
    if compiled:
        net.compile(optimizer=convx.optimizers.Adam(learning_rate=0.003), loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"])
    return net


def data(rng, n=32):
    return rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, n)


def test_a_saved_model_predicts_and_trains_on_exactly_like_the_original(rng, tmp_path):
    x, y = data(rng)
    net = make_model()
    net.fit(x, y, batch_size=8, epochs=2, verbose=0)
    path = tmp_path / "model.keras"
    net.save(path)
    loaded = convx.models.load_model(path)
    assert loaded.get_config() == net.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), net.predict(x, verbose=0))
    assert type(loaded.optimizer) is convx.optimizers.Adam and loaded.optimizer.learning_rate == 0.003
    assert loaded.optimizer.iterations == net.optimizer.iterations == 8
    # Adam's moments came along: one more epoch gives the same weights, bit for bit
    net.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    history = loaded.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False).history
    for a, b in zip(net.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert set(history) == {"accuracy", "loss"}


def test_the_archive_holds_json_and_plain_arrays_only(rng, tmp_path):
    net = make_model()
    net.fit(*data(rng), batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    convx.saving.save_model(net, path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        metadata = json.loads(archive.read("metadata.json"))
        config = json.loads(archive.read("config.json"))
    assert metadata["format"] == "convx.model" and metadata["format_version"] == 1
    assert config["compile_config"]["loss"]["class_name"] == "SparseCategoricalCrossentropy"
    assert config["build_input_shape"] == [None, 8, 8, 1]
    assert [n for n in names if n.startswith("weights/")] == [f"weights/{i:05d}.npy" for i in range(6)]
    assert [n for n in names if n.startswith("optimizer/")] == ["optimizer/00000.npy", "optimizer/00001.npy"]
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~saving._umask())


def test_uncompiled_and_lazily_built_models_round_trip(rng, tmp_path):
    x, _ = data(rng)
    net = make_model(input_shape=None, compiled=False)
    net.predict(x, verbose=0)  # built by its first call
    net.save(tmp_path / "lazy.keras")
    loaded = convx.models.load_model(tmp_path / "lazy.keras")
    assert not loaded.compiled
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), net.predict(x, verbose=0))
    compiled = make_model()
    compiled.save(tmp_path / "compiled.keras")
    assert not convx.models.load_model(tmp_path / "compiled.keras", compile=False).compiled


def test_weights_files_load_into_a_model_of_the_same_architecture(rng, tmp_path):
    x, y = data(rng)
    net = make_model()
    net.fit(x, y, batch_size=8, epochs=1, verbose=0)
    net.save_weights(tmp_path / "model.weights.npz")
    net.save(tmp_path / "model.keras")
    for source in ("model.weights.npz", "model.keras"):
        other = make_model(seed=9)
        other.load_weights(tmp_path / source)
        np.testing.assert_array_equal(other.predict(x, verbose=0), net.predict(x, verbose=0))
    with pytest.raises(ValueError, match="not a convx convx.model file: format 'convx.weights'"):
        convx.models.load_model(tmp_path / "model.weights.npz")


def test_a_failed_save_leaves_the_previous_file_and_no_temporary(rng, tmp_path, monkeypatch):
    net = make_model()
    path = tmp_path / "model.keras"
    net.save(path)
    before = path.read_bytes()
    net.fit(*data(rng), batch_size=8, epochs=1, verbose=0)  # different weights now

    def disk_full(self, name, data, *args, **kwargs):
        if name.startswith("weights/"):
            raise OSError(28, "No space left on device")
        return original(self, name, data, *args, **kwargs)

    original = zipfile.ZipFile.writestr
    monkeypatch.setattr(zipfile.ZipFile, "writestr", disk_full)
    with pytest.raises(OSError, match="No space left"):
        net.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.keras"]


def test_saving_refuses_hdf5_unbuilt_models_and_unwanted_overwrites(tmp_path):
    net = make_model()
    with pytest.raises(ValueError, match=r"does not write HDF5.*ending in '.keras'"):
        net.save(tmp_path / "model.h5")
    with pytest.raises(ValueError, match=r"ending in '.weights.npz'"):
        net.save_weights(tmp_path / "model.weights.h5")
    net.save(tmp_path / "model.keras")
    with pytest.raises(FileExistsError, match="overwrite=False"):
        net.save(tmp_path / "model.keras", overwrite=False)
    unbuilt = convx.Sequential([L.Dense(2)])
    with pytest.raises(ValueError, match="not built yet"):
        unbuilt.save(tmp_path / "unbuilt.keras")
    with pytest.raises(ValueError, match="not built yet"):
        unbuilt.load_weights(tmp_path / "model.keras")


def _rewrite(path, replace):
    """Copy the archive at ``path`` with some members replaced (bytes) or removed (None)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members.update(replace)
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in members.items():
            if value is not None:
                archive.writestr(name, value)


def test_loading_refuses_files_that_are_not_convx_archives(tmp_path):
    text = tmp_path / "notes.keras"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a convx file \\(not a zip archive\\)"):
        convx.models.load_model(text)
    with pytest.raises(FileNotFoundError, match="No file at"):
        convx.models.load_model(tmp_path / "missing.keras")
    keras_like = tmp_path / "keras.keras"
    with zipfile.ZipFile(keras_like, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"\x89HDF")
    with pytest.raises(ValueError, match="a Keras file"):
        convx.models.load_model(keras_like)


def test_loading_checks_version_counts_and_shapes(tmp_path):
    make_model().save(tmp_path / "model.keras")
    newer = tmp_path / "newer.keras"
    newer.write_bytes((tmp_path / "model.keras").read_bytes())
    _rewrite(newer, {"metadata.json": json.dumps({"format": "convx.model", "format_version": 2}).encode()})
    with pytest.raises(ValueError, match="format version 2; this convx reads version 1"):
        convx.models.load_model(newer)
    other = convx.Sequential([L.Conv2D(4, 3, input_shape=(8, 8, 1)), L.Flatten(), L.Dense(3)])
    with pytest.raises(ValueError, match=r"holds 6 weight arrays; model '.*' has 4"):
        other.load_weights(tmp_path / "model.keras")
    reshaped = convx.Sequential([L.Conv2D(4, 3, input_shape=(8, 8, 1)), L.MaxPooling2D(), L.Flatten(),
                                 L.Dense(6, activation="tanh"), L.Dense(3)])
    with pytest.raises(ValueError, match=r"weight '.*kernel' has shape \(36, 5\) in the file, \(36, 6\) in the model"):
        reshaped.load_weights(tmp_path / "model.keras")


class _Tripwire:
    """Unpickling this creates a file: proof that code from the file ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_loading_never_unpickles(tmp_path):
    path = tmp_path / "model.keras"
    make_model().save(path)
    tripwire = tmp_path / "pwned"
    payload = np.empty(1, dtype=object)
    payload[0] = _Tripwire(str(tripwire))
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, payload, allow_pickle=True)
    _rewrite(path, {"weights/00000.npy": buffer.getvalue()})
    with pytest.raises(ValueError, match="weights/00000.npy is not a plain array"):
        convx.models.load_model(path)
    with pytest.raises(ValueError, match="is not a plain array"):
        make_model().load_weights(path)
    assert not tripwire.exists()
    # and a raw pickle instead of the config is just invalid JSON
    _rewrite(path, {"config.json": pickle.dumps(_Tripwire(str(tripwire)))})
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        convx.models.load_model(path)
    assert not tripwire.exists()
