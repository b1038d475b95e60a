"""convx.ops on symbolic tensors: op nodes in functional and subclassed models, run by the plan."""

import numpy as np
import pytest

import convx
from convx import ops

L = convx.layers


@pytest.fixture(autouse=True)
def fresh_names():
    convx.utils.clear_session()


def test_op_nodes_have_shapes_and_stay_out_of_model_layers():
    inputs = convx.Input(shape=(5, 4))
    x = L.Dense(3)(inputs)
    y = ops.reshape(ops.transpose(x, (0, 2, 1)), (-1, 15)) * 2
    assert x.shape == (None, 5, 3) and y.shape == (None, 15) and y.dtype == "float32"
    assert ops.sum(x, axis=1).shape == (None, 3) and ops.shape(ops.expand_dims(x, 1)) == (None, 1, 5, 3)
    model = convx.Model(inputs, L.Dense(2)(y))
    assert [layer.name for layer in model.layers] == ["input_layer", "dense", "dense_1"]
    assert len(model.weights) == 4
    # ... but Keras' config lists them, as Operation entries (tests/saving/test_ops_config.py)
    assert [entry["class_name"] for entry in model.get_config()["layers"]] == [
        "InputLayer", "Dense", "Transpose", "Reshape", "Multiply", "Dense"]


def test_ops_between_layers_predict_and_train(rng):
    inputs = convx.Input(shape=(4,))
    h = L.Dense(6)(inputs)
    y = ops.where(h > 0, h, 0.1 * h) + ops.max(h, axis=-1, keepdims=True) - 1.0 / (1.0 + ops.abs(h))
    model = convx.Model(inputs, L.Dense(1)(ops.concatenate([y, inputs], axis=-1)))
    x = rng.normal(size=(8, 4)).astype(np.float32)
    dense, head = model.layers[1], model.layers[2]
    hv = dense(x)
    yv = np.where(hv > 0, hv, 0.1 * hv) + hv.max(-1, keepdims=True) - 1 / (1 + np.abs(hv))
    expected = head(np.concatenate([yv, x], -1))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    model.compile(optimizer="sgd", loss="mse")
    losses = model.fit(x, rng.normal(size=(8, 1)), epochs=5, batch_size=8, verbose=0).history["loss"]
    assert losses[-1] < losses[0]


def test_a_view_op_output_survives_arena_reuse(rng):
    inputs = convx.Input(shape=(4, 4, 2))
    x = L.Conv2D(2, 1)(inputs)
    flat = ops.reshape(x, (-1, 32))  # a view of the convolution's output
    y = L.Dense(32)(L.Dense(32)(L.Conv2D(2, 1)(x)[:, 0, 0, :]))
    model = convx.Model(inputs, flat + y)
    data = rng.normal(size=(3, 4, 4, 2)).astype(np.float32)
    conv, conv_1, dense, dense_1 = model.layers[1:]
    xv = conv(data)
    expected = xv.reshape(-1, 32) + dense_1(dense(conv_1(xv)[:, 0, 0, :]))
    np.testing.assert_allclose(model.predict(data, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_subclassed_model_call_with_ops(rng):
    class Net(convx.Model):
        def __init__(self):
            super().__init__()
            self.conv = L.Conv2D(4, 3, padding="same")
            self.dense = L.Dense(3)

        def call(self, inputs):
            x = ops.relu(self.conv(inputs))
            x = ops.max_pool(x, 2) + ops.average_pool(x, 2)
            return ops.log_softmax(self.dense(ops.mean(x, axis=(1, 2))))

    model = Net()
    x = rng.normal(size=(4, 6, 6, 2)).astype(np.float32)
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(np.exp(out).sum(-1), 1.0, rtol=1e-5)
    assert [layer.name for layer in model.layers] == ["conv2d", "dense"]


def test_comparisons_in_a_training_graph_pass_no_gradient(rng):
    inputs = convx.Input(shape=(3,))
    h = L.Dense(3)(inputs)
    mask = ops.cast(ops.greater(h, 0.0), "float32")
    model = convx.Model(inputs, L.Dense(1)(h * mask))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(rng.normal(size=(6, 3)), rng.normal(size=(6, 1)), epochs=1, verbose=0)


def test_unsupported_numpy_on_symbolic_tensors_says_so():
    x = convx.Input(shape=(3,))
    with pytest.raises(TypeError, match="NumPy's sin"):
        np.sin(x)
    with pytest.raises(TypeError, match="basic indices"):
        x[[0, 1]]
    with pytest.raises(TypeError, match="bool"):
        bool(x > 0)
