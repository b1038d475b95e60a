"""Files both ways between convx and TensorFlow-Keras 3 (run in a subprocess: keras_side.py).

convx -> Keras: every layer's model (zoo.py) saved by convx, loaded by
``keras.models.load_model``, predicts the same (1e-5); Keras continues the
training of a convx-saved Adam state exactly as convx does. Keras -> convx: the
files Keras re-saved (``.keras``, ``.weights.h5``), a model Keras built itself
(functional, nested Sequential, RMSprop with momentum, trained) and its legacy
``.h5`` load in convx with the same predictions and optimizer state.
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import convx
import model_zoo as zoo

HERE = os.path.dirname(__file__)
TOL = dict(rtol=1e-5, atol=1e-5)


def _require_keras():
    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("tensorflow") is None:
        message = "TensorFlow-Keras 3 not installed: pip install tensorflow-cpu"
        if os.environ.get("CONVX_REQUIRE_OPTIONAL") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from conftest import optional

    optional("h5py", "keras")


def _train_data():
    rng = np.random.default_rng(5)
    return rng.random((8,) + zoo.IMAGE, dtype=np.float32), np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)]


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """The folder of files convx wrote and Keras read and wrote, and convx's predictions."""
    _require_keras()
    folder = tmp_path_factory.mktemp("keras_exchange")
    predictions = {}
    for name in zoo.MODELS:
        convx.utils.clear_session()
        model, x = zoo.build(convx, name), zoo.inputs(name)
        model.save(folder / f"{name}.keras")
        model.save_weights(folder / f"{name}.convx.weights.h5")
        np.savez(folder / f"{name}.inputs.npz", *x)
        predictions[name] = model.predict(x if len(x) > 1 else x[0], verbose=0)
    convx.utils.clear_session()
    train = zoo.build(convx, "residual")
    train.compile(optimizer=convx.optimizers.Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy"])
    x, y = _train_data()
    train.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    train.save(folder / "train.keras")
    np.savez(folder / "train.inputs.npz", x)
    np.savez(folder / "train.data.npz", x=x, y=y)
    predictions["train"] = train.predict(x, verbose=0)
    train.train_on_batch(x, y)
    predictions["train.after_step"] = train.get_weights()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, os.path.join(HERE, "keras_side.py"), str(folder)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, predictions


@pytest.mark.parametrize("name", sorted(zoo.MODELS))
def test_keras_loads_convx_files_and_predicts_the_same(exchange, name):
    folder, predictions = exchange
    np.testing.assert_allclose(np.load(folder / f"{name}.keras_pred.npy"), predictions[name], **TOL)


@pytest.mark.parametrize("name", sorted(zoo.MODELS))
def test_keras_loads_convx_weights_files(exchange, name):
    folder, predictions = exchange
    np.testing.assert_allclose(np.load(folder / f"{name}.keras_from_weights.npy"), predictions[name], **TOL)


@pytest.mark.parametrize("name", sorted(zoo.MODELS))
def test_convx_loads_what_keras_saved(exchange, name):
    folder, predictions = exchange
    x = zoo.inputs(name)
    loaded = convx.models.load_model(folder / f"{name}.by_keras.keras")
    np.testing.assert_allclose(loaded.predict(x if len(x) > 1 else x[0], verbose=0), predictions[name], **TOL)
    convx.utils.clear_session()
    fresh = zoo.build(convx, name, seed=99)
    fresh.load_weights(folder / f"{name}.by_keras.weights.h5")
    np.testing.assert_allclose(fresh.predict(x if len(x) > 1 else x[0], verbose=0), predictions[name], **TOL)


def test_keras_continues_training_from_convx_adam_state(exchange):
    folder, predictions = exchange
    np.testing.assert_allclose(np.load(folder / "train.keras_pred.npy"), predictions["train"], **TOL)
    with np.load(folder / "train.after_step.npz") as after:
        keras_weights = [after[f"arr_{i}"] for i in range(len(after.files) - 1)]
        assert int(after["iterations"]) == 3
    for mine, theirs in zip(predictions["train.after_step"], keras_weights, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)


def test_convx_continues_training_from_keras_state(exchange):
    folder, _ = exchange
    loaded = convx.models.load_model(folder / "native_functional.keras")
    assert loaded.layers[0].name == "pixels" and loaded.get_layer("head").layers[0].name == "dense"
    assert type(loaded.optimizer).__name__ == "RMSprop" and loaded.optimizer.iterations == 2
    with np.load(folder / "native_functional.data.npz") as data:
        x, y = data["x"], data["y"]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), np.load(folder / "native_functional.keras_pred.npy"),
                               **TOL)
    loaded.train_on_batch(x, y)
    with np.load(folder / "native_functional.after_step.npz") as after:
        for mine, theirs in zip(loaded.get_weights(), [after[f"arr_{i}"] for i in range(len(after.files))],
                                strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)


def test_convx_loads_keras_legacy_h5(exchange):
    folder, _ = exchange
    loaded = convx.models.load_model(folder / "native_functional.h5")
    with np.load(folder / "native_functional.data.npz") as data:
        x = data["x"]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), np.load(folder / "native_functional.keras_pred.npy"),
                               **TOL)
    weights_only = convx.models.clone_model(loaded)
    weights_only.load_weights(folder / "native_functional.h5")
    np.testing.assert_allclose(weights_only.predict(x, verbose=0), loaded.predict(x, verbose=0), **TOL)
