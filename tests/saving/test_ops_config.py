"""convx.ops between the layers of a functional model in config.json, as Keras 3 writes them: one Operation
entry per op call (module keras.src.ops.*, its attributes in config, tensors and constants in the node's args).
Keras 3 itself reads and writes these files in tests/saving/test_keras_interop.py (model_zoo's graph_ops)."""

import json
import zipfile

import numpy as np
import pytest

import convx
from conftest import optional
from convx import ops

h5py = optional("h5py", "keras")
L = convx.layers


def _entries(model):
    return {entry["name"]: entry for entry in model.get_config()["layers"]}


def test_ops_are_keras_operation_entries():
    convx.utils.clear_session()  # the names below are the first of their kind
    inputs = convx.Input(shape=(4,), name="x")
    h = L.Dense(4, name="hidden")(inputs)
    y = ops.sum(ops.relu(h) + h, axis=-1, keepdims=True) * 2.0
    y = ops.concatenate([y, ops.matmul(h, np.eye(4, dtype=np.float32))], axis=-1)
    entries = _entries(convx.Model(inputs, L.Dense(2)(y)))
    relu = entries["relu"]
    assert (relu["module"], relu["class_name"], relu["registered_name"], relu["config"]) == \
        ("keras.src.ops.nn", "Relu", "Relu", {"name": "relu"})
    assert relu["inbound_nodes"] == [{"args": [{"class_name": "__keras_tensor__", "config": {
        "shape": [None, 4], "dtype": "float32", "keras_history": ["hidden", 0, 0]}}], "kwargs": {}}]
    assert entries["sum"]["config"] == {"name": "sum", "axis": -1, "keepdims": True}
    assert entries["multiply"]["inbound_nodes"][0]["args"][1] == 2.0
    concatenate = entries["concatenate"]
    assert concatenate["config"] == {"name": "concatenate", "axis": -1}
    assert [t["config"]["keras_history"][0] for t in concatenate["inbound_nodes"][0]["args"][0]] == ["multiply",
                                                                                                   "matmul"]
    assert entries["matmul"]["inbound_nodes"][0]["args"][1] == {
        "class_name": "__numpy__", "config": {"value": np.eye(4).tolist(), "dtype": "float32"}}


OPS = {
    "arithmetic": lambda h: (h - 0.5) / 2.0 + ops.maximum(h, 0.1) * ops.minimum(h, 0.3) - ops.power(ops.abs(h), 2.0),
    "unary": lambda h: ops.exp(-ops.square(h)) + ops.sqrt(ops.abs(h)) + ops.log(ops.abs(h) + 1.0),
    "activations": lambda h: ops.gelu(h) + ops.elu(h, 0.5) + ops.leaky_relu(h) + ops.silu(h) + ops.softplus(h)
    + ops.relu6(h) + ops.log_softmax(h) + ops.reshape(ops.softmax(ops.reshape(h, (-1, 2, 3)), axis=1), (-1, 6)),
    "reductions": lambda h: ops.concatenate([ops.mean(h, axis=-1, keepdims=True), ops.max(h, axis=1, keepdims=True),
                                             ops.var(h, axis=-1, keepdims=True),
                                             ops.squeeze(ops.std(ops.expand_dims(h, 1), axis=(1, 2), keepdims=True), 1)],
                                            axis=1),
    "shapes": lambda h: ops.reshape(ops.transpose(ops.stack([h, h], axis=1), (0, 2, 1)), (-1, 12)),
    "squeeze": lambda h: ops.squeeze(ops.expand_dims(ops.prod(h, axis=-1, keepdims=True), 1), axis=1),
    "where": lambda h: ops.where(ops.greater(h, 0.0), h, ops.clip(h, -0.2, 0.0) * 3.0),
    "einsum": lambda h: ops.einsum("bi,ij->bj", h, np.ones((6, 2), np.float32)),
    "cast": lambda h: ops.cast(ops.cast(h, "float64"), "float32") + ops.min(h),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_a_functional_model_with_ops_saves_and_loads(tmp_path, name):
    inputs = convx.Input(shape=(6,))
    model = convx.Model(inputs, L.Dense(2)(OPS[name](L.Dense(6, activation="tanh")(inputs))))
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    loaded = convx.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [(e["class_name"], e.get("config", {}).get("axis")) for e in _entries(loaded).values()] == \
        [(e["class_name"], e.get("config", {}).get("axis")) for e in _entries(model).values()]
    clone = convx.models.clone_model(model)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))


# What Keras 3.15 (TensorFlow backend) wrote for: h = Dense(3)(x); y = ops.max(abs(h) / 2.0, axis=-1, keepdims=True)
KERAS_WRITTEN = [
    {"module": "keras.src.ops.numpy", "class_name": "Absolute", "config": {"name": "absolute"},
     "registered_name": "Absolute", "name": "absolute", "inbound_nodes": [{"args": [
         {"class_name": "__keras_tensor__", "config": {"shape": [None, 3], "dtype": "float32",
                                                       "keras_history": ["dense", 0, 0]}}], "kwargs": {}}]},
    {"module": "keras.src.ops.numpy", "class_name": "TrueDivide", "config": {"name": "true_divide"},
     "registered_name": "TrueDivide", "name": "true_divide", "inbound_nodes": [{"args": [
         {"class_name": "__keras_tensor__", "config": {"shape": [None, 3], "dtype": "float32",
                                                       "keras_history": ["absolute", 0, 0]}}, 2.0], "kwargs": {}}]},
    {"module": "keras.src.ops.numpy", "class_name": "Max",
     "config": {"name": "max", "axis": -1, "keepdims": True, "initial": None}, "registered_name": "Max",
     "name": "max", "inbound_nodes": [{"args": [
         {"class_name": "__keras_tensor__", "config": {"shape": [None, 3], "dtype": "float32",
                                                       "keras_history": ["true_divide", 0, 0]}}], "kwargs": {}}]},
]


def test_a_config_keras_wrote_loads():
    inputs = convx.Input(shape=(2,), name="x")
    model = convx.Model(inputs, L.Dense(3, name="dense")(inputs))
    config = model.get_config()
    config["layers"] += KERAS_WRITTEN
    config["output_layers"] = ["max", 0, 0]
    loaded = convx.Model.from_config(config)
    loaded.set_weights([np.array([[1.0, -2.0, 0.5], [0.0, 1.0, -3.0]], np.float32), np.zeros(3, np.float32)])
    np.testing.assert_allclose(loaded.predict(np.array([[1.0, 1.0]], np.float32), verbose=0), [[1.25]])
    assert [e["name"] for e in loaded.get_config()["layers"]] == ["x", "dense", "absolute", "true_divide", "max"]
    bad = dict(KERAS_WRITTEN[2], config={"name": "max", "axis": -1, "keepdims": True, "initial": 3.0})
    config["layers"][-1] = bad
    with pytest.raises(ValueError, match="initial"):
        convx.Model.from_config(config)
    config["layers"][-1] = dict(bad, class_name="Logaddexp")
    with pytest.raises(ValueError, match="Logaddexp.*not supported"):
        convx.Model.from_config(config)


def test_an_op_without_a_keras_config_says_so(tmp_path):
    inputs = convx.Input(shape=(4,))
    model = convx.Model(inputs, L.Dense(2)(inputs[:, 1:]))
    with pytest.raises(NotImplementedError, match="get_item"):
        model.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
