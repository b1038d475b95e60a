"""Activation layers (ReLU in full, LeakyReLU, ELU, PReLU, Softmax on any axis), the activation functions of
convx.activations, and the new activations fused in Dense/Conv2D's epilogue."""

import os

import numpy as np
import pytest

import convx
from convx import activations
from convx import layers as L
from thread_identity import assert_same_for_any_thread_count

KERAS_REF = os.path.join(os.path.dirname(__file__), "..", "kernels", "data", "keras_activations.npz")


def _forward_backward(layer, x, dy):
    layer.build_for((None,) + x.shape[1:])
    y = np.array(layer.forward(x, training=True))
    return y, np.array(layer.backward(dy))


def _torch_forward_backward(torch, fn, x, dy):
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    yt = fn(xt)
    (yt * torch.tensor(dy.astype(np.float64))).sum().backward()
    return yt.detach().numpy(), xt.grad.numpy()


LAYER_CASES = {
    "LeakyReLU()": (lambda: L.LeakyReLU(), lambda F, t: F.leaky_relu(t, 0.3)),
    "LeakyReLU(0.05)": (lambda: L.LeakyReLU(negative_slope=0.05), lambda F, t: F.leaky_relu(t, 0.05)),
    "ELU(0.5)": (lambda: L.ELU(alpha=0.5), lambda F, t: F.elu(t, 0.5)),
    "ReLU()": (lambda: L.ReLU(), lambda F, t: F.relu(t)),
    "ReLU(max_value=6)": (lambda: L.ReLU(max_value=6), lambda F, t: F.relu6(t)),
    "ReLU(max_value=1.5, negative_slope=0.1, threshold=0.5)": (
        lambda: L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.5),
        lambda F, t: F.relu(t).where(t > 0.5, t * 0).clamp(0, 1.5) - 0.1 * F.relu(0.5 - t)),
    "ReLU(negative_slope=0.2)": (lambda: L.ReLU(negative_slope=0.2), lambda F, t: F.leaky_relu(t, 0.2)),
    "Softmax()": (lambda: L.Softmax(), lambda F, t: F.softmax(t, dim=-1)),
    "Softmax(axis=1)": (lambda: L.Softmax(axis=1), lambda F, t: F.softmax(t, dim=1)),
    "Softmax(axis=[1, 2])": (lambda: L.Softmax(axis=[1, 2]),
                             lambda F, t: F.softmax(t.flatten(1, 2), dim=1).reshape(t.shape)),
    "Activation('gelu')": (lambda: L.Activation("gelu"), lambda F, t: F.gelu(t)),
    "Activation('swish')": (lambda: L.Activation("swish"), lambda F, t: F.silu(t)),
    "Activation('mish')": (lambda: L.Activation("mish"), lambda F, t: F.mish(t)),
    "Activation('log_softmax')": (lambda: L.Activation("log_softmax"), lambda F, t: F.log_softmax(t, dim=-1)),
}


def _off_kinks(x):
    for k in (0.0, 0.5, 1.5, 6.0):
        x = np.where(np.abs(x - k) < 0.02, x + 0.05, x)
    return x.astype(np.float32)


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layer_forward_and_backward_match_torch(rng, torch, case):
    import torch.nn.functional as F

    make, reference = LAYER_CASES[case]
    x = _off_kinks(3 * rng.standard_normal((2, 3, 5, 4)))
    dy = rng.standard_normal(x.shape).astype(np.float32)
    y, dx = _forward_backward(make(), x, dy)
    y_ref, dx_ref = _torch_forward_backward(torch, lambda t: reference(F, t), x, dy)
    np.testing.assert_allclose(y, y_ref, rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shared_axes", [None, [1, 2], 3])
def test_prelu_matches_torch(rng, torch, shared_axes):
    x = _off_kinks(rng.standard_normal((3, 4, 5, 2)))
    dy = rng.standard_normal(x.shape).astype(np.float32)
    layer = L.PReLU(alpha_initializer=convx.initializers.RandomUniform(0.0, 0.5, seed=3), shared_axes=shared_axes)
    y, dx = _forward_backward(layer, x, dy)
    alpha = torch.tensor(layer.alpha.value.astype(np.float64), requires_grad=True)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    yt = torch.where(xt > 0, xt, alpha * xt)
    (yt * torch.tensor(dy.astype(np.float64))).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(layer.alpha.grad, alpha.grad.numpy(), rtol=1e-5, atol=1e-6)
    expected_shape = {"None": (4, 5, 2), "[1, 2]": (1, 1, 2), "3": (4, 5, 1)}[str(shared_axes)]
    assert layer.alpha.shape == expected_shape


def test_prelu_keras_defaults_and_weight():
    layer = L.PReLU()
    assert type(layer.alpha_initializer) is convx.initializers.Zeros  # Keras 3's default (not Constant(0.25))
    layer.build_for((None, 3))
    assert [w.path for w in layer.weights] == [f"{layer.name}/alpha"] and layer.count_params() == 3


def test_activation_functions_take_keras_signatures():
    ref = np.load(KERAS_REF)
    x = ref["x"]
    A = activations
    pairs = {
        "gelu": A.gelu(x), "gelu_tanh": A.gelu(x, approximate=True), "leaky_relu": A.leaky_relu(x),
        "leaky_relu_0.3": A.leaky_relu(x, negative_slope=0.3), "elu_alpha_0.5": A.elu(x, alpha=0.5),
        "relu_general": A.relu(x, negative_slope=0.1, max_value=4.5, threshold=0.5), "relu": A.relu(x),
        "silu": A.swish(x), "hard_silu": A.hard_swish(x), "hard_sigmoid": A.hard_sigmoid(x), "mish": A.mish(x),
        "selu": A.selu(x), "softplus": A.softplus(x), "softsign": A.softsign(x), "relu6": A.relu6(x),
        "exponential": A.exponential(x), "log_softmax": A.log_softmax(x), "softmax": A.softmax(x),
    }
    for name, got in pairs.items():
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref[name], rtol=2e-6, atol=2e-6, err_msg=name)
    assert A.relu([-1, 2]).tolist() == [0.0, 2.0] and A.gelu(np.float64(1.0)).dtype == np.float64


def test_softmax_function_on_any_axis(rng):
    x = rng.standard_normal((2, 3, 4))
    for axis in (0, 1, -2, 2):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        np.testing.assert_allclose(activations.softmax(x, axis=axis), e / e.sum(axis=axis, keepdims=True), rtol=1e-14)
        np.testing.assert_allclose(activations.log_softmax(x, axis=axis), np.log(e / e.sum(axis=axis, keepdims=True)),
                                   rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"softmax: `axis` must be an int in \[-3, 3\).*axis=3"):
        activations.softmax(x, axis=3)


def test_names_aliases_and_serialization():
    assert activations.get("swish") == "silu" and activations.get("hard_swish") == "hard_silu"
    assert activations.get(activations.gelu) == "gelu" and activations.get("GELU") == "gelu"
    assert L.Dense(2, activation="swish").get_config()["activation"] == "silu"
    assert activations.deserialize("hard_swish") is activations.hard_silu
    with pytest.raises(ValueError, match="Could not interpret activation function identifier: 'gelo'"):
        L.Dense(2, activation="gelo")
    with pytest.raises(ValueError, match="Could not interpret activation function identifier"):
        activations.get(np.tanh)


FUSED = ["softplus", "softsign", "elu", "selu", "gelu", "gelu_tanh", "silu", "hard_sigmoid", "hard_silu", "leaky_relu",
         "relu6", "mish", "exponential", "log_softmax", "sigmoid", "tanh", "relu", "softmax"]


def _pair(make_fused, make_linear, act, input_shape):
    fused = make_fused(act)
    linear = make_linear()
    fused.build_for(input_shape)
    linear.build_for(input_shape)
    linear.set_weights(fused.get_weights())
    return fused, linear, L.Activation(act)


@pytest.mark.parametrize("act", FUSED)
@pytest.mark.parametrize("kind", ["dense", "conv2d"])
def test_fused_epilogue_equals_the_separate_activation(rng, act, kind):
    """Dense / Conv2D with ``activation=act`` (the epilogue's code) give the same output, input gradient
    and weight gradients, bit for bit, as the linear layer followed by Activation(act)."""
    if kind == "dense":
        x = rng.standard_normal((5, 7)).astype(np.float32)
        fused, linear, separate = _pair(lambda a: L.Dense(6, activation=a), lambda: L.Dense(6), act, (None, 7))
    else:
        x = rng.standard_normal((2, 6, 7, 3)).astype(np.float32)
        fused, linear, separate = _pair(lambda a: L.Conv2D(4, 3, activation=a), lambda: L.Conv2D(4, 3), act,
                                        (None, 6, 7, 3))
    separate.build_for(fused.output_shape)
    for training in (False, True):
        y_fused = np.array(fused.forward(x, training=training))
        y_sep = np.array(separate.forward(linear.forward(x, training=training), training=training))
        np.testing.assert_array_equal(y_fused, y_sep)
    dy = rng.standard_normal(y_fused.shape).astype(np.float32)
    dx_fused = np.array(fused.backward(dy))
    dx_sep = np.array(linear.backward(separate.backward(dy)))
    np.testing.assert_array_equal(dx_fused, dx_sep)
    for a, b in zip(fused.weights, linear.weights):
        np.testing.assert_array_equal(a.grad, b.grad)


@pytest.mark.parametrize("act", ["gelu", "mish", "elu", "hard_silu"])
def test_dense_training_step_same_for_any_thread_count(rng, act):
    x = rng.standard_normal((600, 64)).astype(np.float32)
    dy = rng.standard_normal((600, 300)).astype(np.float32)  # 180000 outputs: above the parallel threshold
    layer = L.Dense(300, activation=act)
    layer.build_for((None, 64))

    def step():
        y = np.array(layer.forward(x, training=True))
        dx = np.array(layer.backward(dy))
        return y, dx, layer.kernel.grad.copy(), layer.bias.grad.copy()

    assert_same_for_any_thread_count(step)


def test_relu_is_still_exported_by_core_and_layers():
    from convx.layers import core

    assert core.ReLU is L.ReLU and core.Softmax is L.Softmax and core.Activation is L.Activation
    assert L.ReLU().get_config()["max_value"] is None and L.LeakyReLU().negative_slope == 0.3
    for name in ("LeakyReLU", "PReLU", "ELU", "ReLU", "Softmax", "Activation"):
        assert name in convx.layers.__all__
    # config round trips: tests/layers/test_layer_api.py (ALL_LAYERS)


def test_a_model_of_activation_layers_saves_loads_and_trains_on_identically(rng, tmp_path):
    convx.utils.set_random_seed(4)
    inputs = convx.Input((6, 6, 2))
    h = L.Conv2D(4, 3, activation="gelu")(inputs)
    h = L.PReLU(shared_axes=[1, 2], alpha_initializer=convx.initializers.Constant(0.2))(h)
    h = L.Softmax(axis=1)(h)
    h = L.Flatten()(h)
    h = L.Dense(5, activation="mish")(h)
    h = L.LeakyReLU(0.2)(h)
    h = L.ReLU(max_value=3.0, threshold=0.1, negative_slope=0.05)(h)
    h = L.ELU(0.8)(h)
    outputs = L.Dense(3, activation="softmax")(h)
    model = convx.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = rng.standard_normal((16, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "a.keras")
    loaded = convx.saving.load_model(tmp_path / "a.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    a = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    b = loaded.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    assert a == b and a[-1] < a[0]


@pytest.mark.parametrize("make, message", [
    (lambda: L.LeakyReLU(-0.1), "negative_slope value of a Leaky ReLU layer cannot be None or negative.*-0.1"),
    (lambda: L.LeakyReLU(None), "Received: negative_slope=None"),
    (lambda: L.ReLU(max_value=-1), "max_value of a ReLU layer cannot be a negative value. Received: max_value=-1"),
    (lambda: L.ReLU(negative_slope=-1), "negative_slope of a ReLU layer cannot be None or a negative value"),
    (lambda: L.ReLU(threshold=-0.5), "threshold of a ReLU layer cannot be None or a negative value.*threshold=-0.5"),
    (lambda: L.ReLU(max_value="6"), "ReLU: `max_value` must be a number, received max_value='6'"),
    (lambda: L.ELU(alpha="x"), "ELU: `alpha` must be a number, received alpha='x'"),
    (lambda: L.Softmax(axis=4)(np.zeros((2, 3, 4), np.float32)), r"Softmax: `axis` must be.*received axis=4"),
    (lambda: L.Softmax(axis=0)(np.zeros((2, 3), np.float32)), "must not include the batch axis 0"),
    (lambda: L.PReLU(shared_axes=[3])(np.zeros((2, 3, 4), np.float32)), r"PReLU: `shared_axes`.*shared_axes=\[3\]"),
    (lambda: L.Activation("relu7"), "Could not interpret activation function identifier: 'relu7'"),
])
def test_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_training_a_model_of_the_new_activations_matches_keras():
    """make_keras_regularization_reference.py trained the same model (Dense with gelu, swish, mish, selu,
    hard_silu; LeakyReLU, ELU, ReLU with max_value/negative_slope/threshold, PReLU) in Keras 3.15.1 from the
    same weights with SGD(0.05), 4 epochs of 2 batches: losses, weights and predictions agree to 1e-5."""
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from make_keras_regularization_reference import build_activations, data, initial_weights

    ref = np.load(os.path.join(os.path.dirname(__file__), "..", "data", "keras_activation_training.npz"))
    model = build_activations(convx)
    model.set_weights(initial_weights(model))
    model.compile(optimizer=convx.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    x, y = data()
    history = model.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], ref["loss"], rtol=1e-5)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, ref[f"w{i}"], rtol=1e-5, atol=1e-5, err_msg=model.weights[i].path)
    np.testing.assert_allclose(model.predict(x, verbose=0), ref["predict"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, code", [({}, "relu"), ({"max_value": 6}, "relu6"), ({"negative_slope": 0.2}, "leaky_relu"),
                                          ({"max_value": 4.0}, "relu_general"), ({"threshold": 0.5}, "relu_general")])
def test_relu_picks_the_op_keras_picks_with_the_same_values(rng, kwargs, code):
    """Keras' relu uses nn.relu6 for max_value 6 and nn.leaky_relu for a slope alone; those codes give
    the general form's values bit for bit."""
    layer = L.ReLU(**kwargs)
    assert layer.activation == code
    x = (4 * rng.standard_normal((50, 7))).astype(np.float32)
    general = (kwargs.get("negative_slope", 0.0), kwargs.get("max_value", np.inf), kwargs.get("threshold", 0.0))
    np.testing.assert_array_equal(layer(x), activations.forward(x, "relu_general", params=general))
    np.testing.assert_array_equal(activations.relu(x, **kwargs), layer(x))
