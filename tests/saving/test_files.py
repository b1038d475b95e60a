"""Saving and loading within convx: Keras 3 archives, weights files, convx's former format, registered classes."""

import io
import json
import os
import zipfile

import numpy as np
import pytest

import convx
from conftest import optional
from convx import layers as L
from convx import saving

h5py = optional("h5py", "keras")


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


def test_the_archive_is_keras_3s(rng, tmp_path):
    net = make_model()
    net.fit(*data(rng), batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    convx.saving.save_model(net, path)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        metadata = json.loads(archive.read("metadata.json"))
        config = json.loads(archive.read("config.json"))
        weights = archive.read("model.weights.h5")
    assert metadata["keras_version"] == "3.15.1"
    assert (config["module"], config["class_name"], config["registered_name"]) == ("keras", "Sequential", None)
    conv = config["config"]["layers"][1]
    assert conv["module"] == "keras.layers" and conv["build_config"] == {"input_shape": [None, 8, 8, 1]}
    assert conv["config"]["kernel_initializer"]["module"] == "keras.initializers"
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam"
    with h5py.File(io.BytesIO(weights), "r") as f:
        assert f["layers/conv2d/vars/0"].shape == (3, 3, 1, 4)
        assert f["layers/dense_1/vars/1"].shape == (3,) and f["layers/dense_1/vars"].attrs["name"] == "dense_1"
        assert len(f["optimizer/vars"]) == 2 + 2 * 6  # iterations, learning rate, Adam's m and v per weight
        assert int(f["optimizer/vars/0"][()]) == 4
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~saving.archive._umask())


def test_uncompiled_and_lazily_built_models_round_trip(rng, tmp_path):
    x, _ = data(rng)
    net = make_model(input_shape=None, compiled=False)
    net.predict(x, verbose=0)  # built by its first call
    net.save(tmp_path / "lazy.keras")
    loaded = convx.models.load_model(tmp_path / "lazy.keras")
    assert not loaded.compiled
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), net.predict(x, verbose=0))
    make_model().save(tmp_path / "compiled.keras")
    assert not convx.models.load_model(tmp_path / "compiled.keras", compile=False).compiled


def test_weights_files_load_into_a_model_of_the_same_architecture(rng, tmp_path):
    x, y = data(rng)
    net = make_model()
    net.fit(x, y, batch_size=8, epochs=1, verbose=0)
    net.save_weights(tmp_path / "model.weights.h5")
    net.save(tmp_path / "model.keras")
    for source in ("model.weights.h5", "model.keras"):
        other = make_model(seed=9)
        other.load_weights(tmp_path / source)
        np.testing.assert_array_equal(other.predict(x, verbose=0), net.predict(x, verbose=0))
    with pytest.raises(saving.FileRejectedError, match="a weights-only file"):
        convx.models.load_model(tmp_path / "model.weights.h5")


def test_a_failed_save_leaves_the_previous_file_and_no_temporary(rng, tmp_path, monkeypatch):
    net = make_model()
    path = tmp_path / "model.keras"
    net.save(path)
    before = path.read_bytes()
    net.fit(*data(rng), batch_size=8, epochs=1, verbose=0)  # different weights now

    def disk_full(self, name, data, *args, **kwargs):
        if name == "model.weights.h5":
            raise OSError(28, "No space left on device")
        return original(self, name, data, *args, **kwargs)

    original = zipfile.ZipFile.writestr
    monkeypatch.setattr(zipfile.ZipFile, "writestr", disk_full)
    with pytest.raises(OSError, match="No space left"):
        net.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.keras"]


def test_paths_extensions_and_unbuilt_models_are_refused_as_keras_3_does(tmp_path):
    net = make_model()
    with pytest.raises(ValueError, match=r"Invalid filepath extension for saving.*Received: filepath=.*m_dir\."):
        net.save(tmp_path / "m_dir")
    assert not (tmp_path / "m_dir").exists()
    with pytest.raises(ValueError, match="legacy HDF5"):
        net.save(tmp_path / "model.h5")
    with pytest.raises(ValueError, match=r"The filename must end in `.weights.h5`"):
        net.save_weights(tmp_path / "model.weights.npz")
    net.save(tmp_path / "model.keras")
    with pytest.raises(FileExistsError, match="overwrite=False"):
        net.save(tmp_path / "model.keras", overwrite=False)
    unbuilt = convx.Sequential([L.Dense(2)])
    with pytest.raises(ValueError, match="not built yet"):
        unbuilt.save(tmp_path / "unbuilt.keras")
    with pytest.raises(ValueError, match="not built yet"):
        unbuilt.load_weights(tmp_path / "model.keras")
    with pytest.raises(ValueError, match="File not found"):
        convx.models.load_model(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match="safe mode"):
        convx.models.load_model(tmp_path / "model.keras", safe_mode=False)


def _legacy_file(path, net, kind="convx.model"):
    """A file of convx's former format, written as that version did."""
    def npy(array):
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
        return buffer.getvalue()

    config = {"class_name": "Sequential", "config": net.get_config(), "build_input_shape": [None, 8, 8, 1],
              "compile_config": None}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"format": kind, "format_version": 1}))
        if kind == "convx.model":
            archive.writestr("config.json", json.dumps(config))
        for i, w in enumerate(net.get_weights()):
            archive.writestr(f"weights/{i:05d}.npy", npy(w))


def test_files_of_convx_former_format_still_load(rng, tmp_path):
    x, _ = data(rng)
    net = make_model(compiled=False)
    _legacy_file(tmp_path / "old.keras", net)
    _legacy_file(tmp_path / "old.weights.npz", net, kind="convx.weights")
    loaded = convx.models.load_model(tmp_path / "old.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), net.predict(x, verbose=0))
    other = make_model(seed=9)
    other.load_weights(tmp_path / "old.weights.npz")
    np.testing.assert_array_equal(other.predict(x, verbose=0), net.predict(x, verbose=0))


class Scale(L.Layer):
    """A custom layer: multiplies by a learned scalar."""

    def __init__(self, init=2.0, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.factor = self.add_weight(shape=(), initializer=convx.initializers.Constant(self.init), name="factor")

    def forward(self, x, training=False):
        return x * self.factor.value

    def get_config(self):
        return {**super().get_config(), "init": self.init}


def test_custom_layers_are_found_by_registered_name_or_custom_objects_never_by_import(rng, tmp_path):
    x, _ = data(rng)
    net = convx.Sequential([convx.Input((8, 8, 1)), Scale(3.0), L.Flatten(), L.Dense(2)])
    net.save(tmp_path / "custom.keras")
    with zipfile.ZipFile(tmp_path / "custom.keras") as archive:
        entry = json.loads(archive.read("config.json"))["config"]["layers"][1]
    assert (entry["module"], entry["class_name"], entry["registered_name"]) == (__name__, "Scale", "Scale")
    with pytest.raises(saving.FileRejectedError, match=r"custom.keras.*Unknown layer class 'Scale'"):
        convx.models.load_model(tmp_path / "custom.keras")  # the module is importable, and is not imported
    for loaded in (convx.models.load_model(tmp_path / "custom.keras", custom_objects={"Scale": Scale}),):
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), net.predict(x, verbose=0))
    with saving.custom_object_scope({"Scale": Scale}):
        np.testing.assert_array_equal(convx.models.load_model(tmp_path / "custom.keras").predict(x, verbose=0),
                                      net.predict(x, verbose=0))

    registered = saving.register_keras_serializable(package="tests")(type("Shift", (Scale,), {}))
    assert saving.get_registered_name(registered) == "tests>Shift"
    assert saving.get_registered_object("tests>Shift") is registered
    convx.Sequential([convx.Input((4,)), registered(1.5)]).save(tmp_path / "registered.keras")
    loaded = convx.models.load_model(tmp_path / "registered.keras")
    assert type(loaded.layers[0]) is registered and float(loaded.layers[0].factor.value) == 1.5
    with pytest.raises(ValueError, match="get_config"):
        saving.register_keras_serializable()(type("NoConfig", (), {}))


def test_layers_save_and_load_their_variables_through_the_keras_protocol(tmp_path):
    calls = []

    class Logged(Scale):
        def save_own_variables(self, store):
            calls.append("save")
            super().save_own_variables(store)
            store["1"] = np.array([7.0])  # a layer may store more than its variables, as Keras' int8 layers do

        def load_own_variables(self, store):
            calls.append("load")
            assert sorted(store.keys()) == ["0", "1"] and float(store["1"][0]) == 7.0
            self.factor.assign(store["0"])

        def save_assets(self, dir_path):
            with open(os.path.join(dir_path, "vocabulary.txt"), "w") as f:
                f.write("a\nb\n")

        def load_assets(self, dir_path):
            with open(os.path.join(dir_path, "vocabulary.txt")) as f:
                calls.append(f.read())

    convx.Sequential([convx.Input((4,)), Logged(1.5)]).save(tmp_path / "logged.keras")
    with zipfile.ZipFile(tmp_path / "logged.keras") as archive:
        assert archive.read("assets/layers/logged/vocabulary.txt") == b"a\nb\n"
    convx.models.load_model(tmp_path / "logged.keras", custom_objects={"Logged": Logged})
    assert calls == ["save", "load", "a\nb\n"]


def test_lambda_layers_and_unknown_classes_are_refused_by_name(tmp_path):
    make_model(compiled=False).save(tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    for class_name, message in (("Lambda", "Lambda layer.*never does"), ("Bidirectional", "Unknown layer class")):
        config["config"]["layers"][2]["class_name"] = class_name
        path = tmp_path / f"{class_name}.keras"
        with zipfile.ZipFile(path, "w") as archive:
            for name, value in {**members, "config.json": json.dumps(config).encode()}.items():
                archive.writestr(name, value)
        with pytest.raises(saving.FileRejectedError, match=f"{class_name}.keras.*{message}"):
            convx.models.load_model(path)


def _keras2_entry(class_name, name, config, inbound):
    return {"class_name": class_name, "config": {"name": name, "trainable": True, "dtype": "float32", **config},
            "name": name, "inbound_nodes": inbound}


def test_a_tf_keras_2_h5_file_loads_with_its_weights_and_compile_settings(rng, tmp_path):
    """An HDF5 file laid out as tf.keras 2.x writes it (Keras 2 config: nested node lists, BN axis=[3])."""
    init = {"kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": None,
            "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
    conv = dict(kernel_size=[3, 3], strides=[1, 1], padding="same", data_format="channels_last",
                dilation_rate=[1, 1], groups=1, use_bias=True, **init)
    layers = [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 8, 8, 3], "dtype": "float32",
                                                "sparse": False, "ragged": False, "name": "input_1"},
         "name": "input_1", "inbound_nodes": []},
        _keras2_entry("Conv2D", "conv2d", {"filters": 4, "activation": "relu", **conv}, [[["input_1", 0, 0, {}]]]),
        _keras2_entry("Conv2D", "conv2d_1", {"filters": 4, "activation": "linear", **conv}, [[["input_1", 0, 0, {}]]]),
        _keras2_entry("Add", "add", {}, [[["conv2d", 0, 0, {}], ["conv2d_1", 0, 0, {}]]]),
        _keras2_entry("BatchNormalization", "batch_normalization", {
            "axis": [3], "momentum": 0.99, "epsilon": 0.001, "center": True, "scale": True,
            "beta_initializer": {"class_name": "Zeros", "config": {}},
            "gamma_initializer": {"class_name": "Ones", "config": {}},
            "moving_mean_initializer": {"class_name": "Zeros", "config": {}},
            "moving_variance_initializer": {"class_name": "Ones", "config": {}}, "beta_regularizer": None,
            "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None}, [[["add", 0, 0, {}]]]),
        _keras2_entry("GlobalAveragePooling2D", "global_average_pooling2d",
                      {"data_format": "channels_last", "keepdims": False}, [[["batch_normalization", 0, 0, {}]]]),
        _keras2_entry("Dense", "dense", {"units": 3, "activation": "softmax", "use_bias": True, **init},
                      [[["global_average_pooling2d", 0, 0, {}]]]),
    ]
    config = {"class_name": "Functional", "config": {"name": "model", "layers": layers,
                                                     "input_layers": [["input_1", 0, 0]],
                                                     "output_layers": [["dense", 0, 0]]}}
    training = {"loss": "categorical_crossentropy", "metrics": [[{"class_name": "MeanMetricWrapper", "config": {
        "name": "accuracy", "dtype": "float32", "fn": "categorical_accuracy"}}]], "loss_weights": None,
        "optimizer_config": {"class_name": "Adam", "config": {
            "name": "Adam", "learning_rate": 0.002, "decay": 0.0, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07,
            "amsgrad": False}}}
    weights = {"conv2d": [rng.normal(size=(3, 3, 3, 4)), rng.normal(size=4)],
               "conv2d_1": [rng.normal(size=(3, 3, 3, 4)), rng.normal(size=4)],
               "batch_normalization": [rng.normal(size=4), rng.normal(size=4), rng.normal(size=4),
                                       rng.random(4) + 0.5],
               "dense": [rng.normal(size=(4, 3)), rng.normal(size=3)]}
    suffixes = {"conv2d": ["kernel", "bias"], "conv2d_1": ["kernel", "bias"], "dense": ["kernel", "bias"],
                "batch_normalization": ["gamma", "beta", "moving_mean", "moving_variance"]}
    path = tmp_path / "tf_keras2.h5"
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"], f.attrs["backend"] = "2.15.0", "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["training_config"] = json.dumps(training)
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [e["name"].encode() for e in layers]
        for entry in layers:
            layer_group = group.create_group(entry["name"])
            names = [f"{entry['name']}/{s}:0" for s in suffixes.get(entry["name"], [])]
            layer_group.attrs["weight_names"] = [n.encode() for n in names]
            for n, value in zip(names, weights.get(entry["name"], [])):
                layer_group.create_dataset(n, data=np.asarray(value, np.float32))
    model = convx.models.load_model(path)
    assert type(model.optimizer).__name__ == "Adam" and model.optimizer.learning_rate == 0.002
    convx.utils.clear_session()
    expected = convx.Model.from_config(model.get_config())
    expected.set_weights([np.asarray(w, np.float32) for name in ("conv2d", "conv2d_1", "batch_normalization", "dense")
                          for w in weights[name]])
    x = rng.random((4, 8, 8, 3), dtype=np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected.predict(x, verbose=0))
    assert model.get_layer("batch_normalization").get_config()["axis"] == -1 or \
        model.get_layer("batch_normalization").get_config()["axis"] == 3
    model.fit(x, np.eye(3, dtype=np.float32)[[0, 1, 2, 0]], verbose=0)
