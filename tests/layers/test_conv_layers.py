"""DepthwiseConv2D, SeparableConv2D, Conv2DTranspose, Conv1DTranspose and Conv1D(padding='causal'):
PyTorch oracle (forward, gradients, one SGD step), finite differences through the layers in float64,
real Keras 3 outputs, shapes and configs (data/keras_conv_reference.npz, from
make_keras_conv_reference.py), thread identity, save/load, errors."""

import os

import numpy as np
import pytest

import convx
from convx import layers as L
from convx.layers.convolutional import (
    Conv1D, Conv1DTranspose, Conv2DTranspose, DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D,
)
from gradcheck import check_gradient
from make_keras_conv_reference import CASES as KERAS_CASES
from thread_identity import assert_same_for_any_thread_count
from torch_reference import _activation, _apply, _same_pad

REFERENCE = os.path.join(os.path.dirname(__file__), "data", "keras_conv_reference.npz")
CLASSES = {cls.__name__: cls for cls in (Conv1D, Conv1DTranspose, Conv2DTranspose, DepthwiseConv1D, DepthwiseConv2D,
                                         SeparableConv1D, SeparableConv2D)}

# (make layer, input shape): odd sizes, strides 2, 'same', dilation, batch 1, depth multipliers
CASES = {
    "dw_valid": (lambda: DepthwiseConv2D(3, activation="relu"), (2, 7, 6, 3)),
    "dw_same_s2_m2": (lambda: DepthwiseConv2D((3, 2), strides=2, padding="same", depth_multiplier=2), (1, 9, 7, 5)),
    "dw_dil2_tanh": (lambda: DepthwiseConv2D(3, padding="same", dilation_rate=2, activation="tanh"), (2, 8, 7, 4)),
    "dw_wide": (lambda: DepthwiseConv2D(5, strides=(2, 1), padding="same", use_bias=False), (2, 9, 8, 37)),
    "dw1d_same_s2_m3": (lambda: DepthwiseConv1D(4, strides=2, padding="same", depth_multiplier=3,
                                                activation="relu"), (2, 11, 5)),
    "dw1d_dil2": (lambda: DepthwiseConv1D(3, dilation_rate=2, use_bias=False), (1, 10, 9)),
    "sep1d_same": (lambda: SeparableConv1D(5, 3, padding="same", depth_multiplier=2, activation="tanh"), (2, 9, 3)),
    "sep_same": (lambda: SeparableConv2D(6, 3, padding="same", depth_multiplier=2, activation="relu"), (2, 7, 6, 3)),
    "sep_s2": (lambda: SeparableConv2D(4, (3, 3), strides=2, activation="sigmoid"), (1, 9, 8, 5)),
    "tconv_valid_s2": (lambda: Conv2DTranspose(4, 3, strides=2), (2, 5, 4, 3)),
    "tconv_same_s2_op": (lambda: Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1,
                                                 activation="tanh"), (1, 4, 5, 2)),
    "tconv_same_s1": (lambda: Conv2DTranspose(5, (3, 2), padding="same", use_bias=False), (2, 6, 5, 3)),
    "tconv_dil2": (lambda: Conv2DTranspose(2, 3, dilation_rate=2, activation="relu"), (1, 4, 4, 3)),
    "tconv1d_s2": (lambda: Conv1DTranspose(3, 4, strides=2, padding="same"), (2, 7, 2)),
    "conv1d_causal_dil2": (lambda: Conv1D(3, 3, padding="causal", dilation_rate=2, activation="relu"), (2, 9, 4)),
    "conv1d_causal_s2": (lambda: Conv1D(4, 2, strides=2, padding="causal"), (1, 8, 3)),
}


def _torch_layer(torch, layer, x, params):
    """The layer on a channels-last torch tensor; ``params`` are torch tensors in convx's layouts and order."""
    F = torch.nn.functional
    act = layer.activation
    if isinstance(layer, L.Conv2D):
        by_id = {id(var): param for var, param in zip(layer.weights, params)}
        return _apply(torch, layer, [x], lambda var: by_id[id(var)])
    if isinstance(layer, Conv1D):
        kernel, *bias = params
        pad = (layer.kernel_size[0] - 1) * layer.dilation_rate[0]
        xc = F.pad(x.permute(0, 2, 1), (pad, 0))
        y = F.conv1d(xc, kernel.permute(2, 1, 0), bias[0] if bias else None, stride=layer.strides,
                     dilation=layer.dilation_rate)
        return _activation(torch, y.permute(0, 2, 1), act)
    if isinstance(layer, (Conv2DTranspose, Conv1DTranspose)):
        rank2 = isinstance(layer, Conv2DTranspose)
        kernel, *bias = params
        x4, kernel = (x, kernel) if rank2 else (x[:, None], kernel[None])
        as2d = layer._as2d
        y = F.conv_transpose2d(x4.permute(0, 3, 1, 2), kernel.permute(3, 2, 0, 1), stride=as2d(layer.strides),
                               dilation=as2d(layer.dilation_rate)).permute(0, 2, 3, 1)
        size = layer._as4d(layer.compute_output_shape((None,) + tuple(x.shape[1:])))[1:3]
        ks, st, dl = as2d(layer.kernel_size), as2d(layer.strides), as2d(layer.dilation_rate)
        (top, _), (left, _) = (_same_pad(size[i], ks[i], st[i], dl[i], layer.padding) for i in range(2))
        rows, cols = min(size[0], y.shape[1] - top), min(size[1], y.shape[2] - left)
        y = F.pad(y[:, top:top + rows, left:left + cols].permute(0, 3, 1, 2),
                  (0, size[1] - cols, 0, size[0] - rows)).permute(0, 2, 3, 1)
        if bias:
            y = y + bias[0]
        return _activation(torch, y if rank2 else y[:, 0], act)
    # depthwise (then pointwise): 1-D layers as height-1 2-D ones
    separable = isinstance(layer, (SeparableConv1D, SeparableConv2D))
    rank2, as2d = layer.rank == 2, layer._as2d
    x4 = x if rank2 else x[:, None]
    kernel = params[0] if rank2 else params[0][None]
    kh, kw, c, m = kernel.shape
    ks, st, dl = as2d(layer.kernel_size), as2d(layer.strides), as2d(layer.dilation_rate)
    (top, bottom), (left, right) = (_same_pad(x4.shape[1 + i], ks[i], st[i], dl[i], layer.padding) for i in range(2))
    xc = F.pad(x4.permute(0, 3, 1, 2), (left, right, top, bottom))
    depthwise_bias = params[1] if layer.use_bias and not separable else None
    y = F.conv2d(xc, kernel.reshape(kh, kw, c * m).permute(2, 0, 1)[:, None], depthwise_bias, stride=st,
                 dilation=dl, groups=c)
    if separable:
        pointwise = params[1] if rank2 else params[1][None]
        y = F.conv2d(y, pointwise.permute(3, 2, 0, 1), params[2] if layer.use_bias else None)
    y = y.permute(0, 2, 3, 1)
    return _activation(torch, y if rank2 else y[:, 0], act)


def _built(name, rng, dtype=np.float32):
    make, shape = CASES[name]
    layer = make()
    layer.build_for((None,) + shape[1:])
    for var in layer.weights:  # nonzero biases, weights of order 1
        var.assign(rng.standard_normal(var.shape) * 0.5)
    if dtype != np.float32:
        for var in layer.weights:
            var.value = var.value.astype(dtype)
            var.grad = np.zeros_like(var.value)
    return layer, rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("name", CASES)
def test_forward_and_gradients_match_pytorch(rng, torch, name):
    layer, x = _built(name, rng)
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)

    xt = torch.tensor(x, requires_grad=True)
    params = [torch.tensor(v.numpy(), requires_grad=True) for v in layer.weights]
    yt = _torch_layer(torch, layer, xt, params)
    yt.backward(torch.tensor(dy))

    def close(ours, ref):
        ref = ref.detach().numpy()
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4 * max(1.0, np.abs(ref).max()))

    assert y.shape == tuple(yt.shape) == layer._output_shape_for(x.shape)
    close(y, yt)
    close(dx, xt.grad)
    for var, param in zip(layer.weights, params):
        close(var.grad, param.grad)


@pytest.mark.parametrize("name", CASES)
def test_gradients_match_finite_differences_float64(rng, name):
    """The layer's own forward/backward (through the kernels) with float64 weights and inputs."""
    layer, x = _built(name, rng, np.float64)
    y = layer.forward(x, training=True)
    weights = rng.standard_normal(y.shape)
    dx = layer.backward(weights).copy()
    grads = [v.grad.copy() for v in layer.weights]

    def loss():
        return float(np.sum(layer.forward(x) * weights))

    check_gradient(loss, x, dx, rtol=1e-5, atol=1e-6)
    for var, grad in zip(layer.weights, grads):
        check_gradient(loss, var.value, grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["dw_same_s2_m2", "sep_same", "tconv_same_s2_op", "conv1d_causal_dil2"])
def test_one_sgd_step_matches_pytorch(rng, torch, name):
    layer, x = _built(name, rng)
    model = convx.Sequential([convx.Input(shape=x.shape[1:]), layer])
    model.compile(optimizer=convx.optimizers.SGD(learning_rate=0.1), loss="mse")
    target = rng.standard_normal(layer._output_shape_for(x.shape)).astype(np.float32)
    params = [torch.tensor(v.numpy(), requires_grad=True) for v in layer.weights]
    loss = model.train_on_batch(x, target)

    yt = _torch_layer(torch, layer, torch.tensor(x), params)
    loss_t = ((yt - torch.tensor(target)) ** 2).mean()
    loss_t.backward()
    np.testing.assert_allclose(loss, loss_t.item(), rtol=1e-5)
    for var, param in zip(layer.weights, params):
        np.testing.assert_allclose(var.numpy(), (param - 0.1 * param.grad).detach().numpy(), rtol=0, atol=1e-5)


class _ActivityConv2D(L.Conv2D):
    """Conv2D with its activity-penalty code switched on (Conv2D still refuses the argument)."""

    _supports_activity_regularizer = True


# layer, input shape, regularizer / constraint arguments (Keras' string forms: l1, l2 are 0.01)
REGULARIZED = {
    "depthwise": (lambda **kw: DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2,
                                               activation="tanh", **kw), (2, 7, 6, 3),
                  dict(depthwise_regularizer="l1", bias_constraint="non_neg", activity_regularizer="l2")),
    "separable": (lambda **kw: SeparableConv2D(4, 3, padding="same", activation="relu", **kw), (2, 6, 5, 3),
                  dict(pointwise_regularizer="l2", depthwise_constraint="non_neg", activity_regularizer="l2")),
    "transpose": (lambda **kw: Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1, **kw),
                  (1, 4, 5, 2), dict(kernel_regularizer="l2", bias_regularizer="l1", activity_regularizer="l1")),
    "transpose1d": (lambda **kw: Conv1DTranspose(3, 3, strides=2, activation="sigmoid", **kw), (2, 5, 2),
                    dict(kernel_constraint="non_neg", activity_regularizer="l2")),
    "causal": (lambda **kw: Conv1D(3, 3, padding="causal", dilation_rate=2, **kw), (2, 9, 2),
               dict(kernel_regularizer="l1", bias_regularizer="l2")),
    "conv2d_pooled": (lambda **kw: _ActivityConv2D(4, 3, activation="relu", **kw), (2, 8, 8, 2),
                      dict(activity_regularizer="l2")),
}


def _penalty(torch, name, value):
    return {"l1": lambda v: 0.01 * v.abs().sum(), "l2": lambda v: 0.01 * (v ** 2).sum()}[name](value)


@pytest.mark.parametrize("name", REGULARIZED)
def test_regularizers_constraints_and_activity_penalty_in_one_sgd_step(rng, torch, name):
    """Weight penalties and the output's penalty / batch size join the loss, constraints follow the update."""
    make, shape, kwargs = REGULARIZED[name]
    layer = make(**kwargs)
    stack = [convx.Input(shape=shape[1:]), layer] + ([L.MaxPooling2D(2)] if name == "conv2d_pooled" else [])
    model = convx.Sequential(stack)
    model.compile(optimizer=convx.optimizers.SGD(learning_rate=0.1), loss="mse")
    for var in layer.weights:
        var.assign(rng.standard_normal(var.shape) * 0.5)
    x = rng.standard_normal(shape).astype(np.float32)
    target = rng.standard_normal(model.compute_output_shape((None,) + shape[1:])[1:]).astype(np.float32)
    target = np.broadcast_to(target, (shape[0],) + target.shape).copy()
    params = [torch.tensor(v.numpy(), requires_grad=True) for v in layer.weights]
    loss = model.train_on_batch(x, target)

    y = _torch_layer(torch, layer, torch.tensor(x), params)
    out = torch.nn.functional.max_pool2d(y.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1) if len(stack) > 2 else y
    loss_t = ((out - torch.tensor(target)) ** 2).mean()
    if "activity_regularizer" in kwargs:
        loss_t = loss_t + _penalty(torch, kwargs["activity_regularizer"], y) / shape[0]
    constraints = []
    for var, param in zip(layer.weights, params):
        prefix = layer.weight_args[var.name]
        if f"{prefix}_regularizer" in kwargs:
            loss_t = loss_t + _penalty(torch, kwargs[f"{prefix}_regularizer"], param)
        constraints.append(kwargs.get(f"{prefix}_constraint"))
    loss_t.backward()
    np.testing.assert_allclose(loss, loss_t.item(), rtol=1e-5)
    for var, param, constraint in zip(layer.weights, params, constraints):
        want = (param - 0.1 * param.grad).detach().numpy()
        if constraint == "non_neg":
            want = np.maximum(want, 0)
        np.testing.assert_allclose(var.numpy(), want, rtol=0, atol=1e-5, err_msg=var.path)


@pytest.mark.parametrize("name", REGULARIZED)
def test_regularizer_and_constraint_configs_round_trip(name):
    make, _, kwargs = REGULARIZED[name]
    config = make(**kwargs).get_config()
    for key, value in kwargs.items():
        assert config[key]["class_name"] == {"l1": "L1", "l2": "L2", "non_neg": "NonNeg"}[value], key
    clone = type(make()).from_config(config)
    assert clone.get_config() == {**config, "name": clone.name}


def test_activity_penalty_through_the_fused_conv_pool_inference(rng):
    """predict fuses Conv2D + MaxPooling2D; with an activity regularizer the penalty still sees the whole output."""
    layer = _ActivityConv2D(4, 3, activation="relu", activity_regularizer="l2")
    model = convx.Sequential([convx.Input(shape=(8, 8, 2)), layer, L.MaxPooling2D(2)])
    x = rng.standard_normal((3, 8, 8, 2)).astype(np.float32)
    pooled = model.predict(x, verbose=0)
    y = layer(x)
    np.testing.assert_allclose(layer.losses[-1], 0.01 * np.sum(y.astype(np.float64) ** 2) / 3, rtol=1e-5)
    np.testing.assert_array_equal(pooled, y.reshape(3, 3, 2, 3, 2, 4).max(axis=(2, 4)))


def test_outputs_match_keras():
    """Values, shapes, parameter counts, weight names and config keys of real Keras 3 layers."""
    ref = np.load(REFERENCE)
    names = sorted({key.split("/")[0] for key in ref.files if "/" in key})
    assert len(names) == 13
    for name in names:
        x, y = ref[f"{name}/x"], ref[f"{name}/y"]
        weights = [ref[f"{name}/w{i}"] for i in range(int(ref[f"{name}/n_weights"]))]
        cls, kwargs, _ = KERAS_CASES[name]
        layer = CLASSES[cls](**kwargs)
        layer.build_for((None,) + x.shape[1:])
        layer.set_weights(weights)
        out = layer(x)
        assert out.shape == y.shape, name
        assert layer.compute_output_shape((None,) + x.shape[1:]) == (None,) + y.shape[1:], name
        np.testing.assert_allclose(out, y, rtol=0, atol=1e-5 * max(1.0, np.abs(y).max()), err_msg=name)
        assert layer.count_params() == int(ref[f"{name}/params"]), name
        assert [w.name for w in layer.weights] == list(ref[f"{name}/weight_names"]), name
        assert sorted(layer.get_config()) == list(ref[f"{name}/config_keys"]), name


@pytest.mark.parametrize("make, shape", [
    (lambda: DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu"), (6, 20, 19, 16)),
    (lambda: SeparableConv2D(24, 3, strides=2, padding="same"), (6, 20, 19, 16)),
    (lambda: Conv2DTranspose(16, 3, strides=2, padding="same", output_padding=1), (6, 12, 11, 16)),
])
def test_layers_are_bit_identical_for_any_thread_count(rng, make, shape):
    layer = make()
    x = rng.standard_normal(shape).astype(np.float32)
    layer.build_for((None,) + shape[1:])
    dy = rng.standard_normal(layer._output_shape_for(shape)).astype(np.float32)

    def run():
        y = layer.forward(x, training=True).copy()
        dx = layer.backward(dy).copy()
        return (y, dx) + tuple(v.grad.copy() for v in layer.weights)

    assert_same_for_any_thread_count(run)


@pytest.mark.parametrize("name", ["dw_same_s2_m2", "sep_same", "tconv_same_s2_op", "tconv1d_s2", "conv1d_causal_dil2",
                                  "dw1d_same_s2_m3", "sep1d_same"])
def test_config_round_trip(rng, name):
    layer, x = _built(name, rng)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == {**layer.get_config(), "name": clone.name}
    clone.build_for((None,) + x.shape[1:])
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x), layer(x))


def test_save_load_round_trip_and_summary(rng, tmp_path, monkeypatch):
    for cls in CLASSES.values():  # until convx.layers exports the new classes (layers/__init__.py)
        monkeypatch.setattr(L, cls.__name__, cls, raising=False)
    inputs = convx.Input(shape=(9, 8, 3))
    h = DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu")(inputs)
    h = SeparableConv2D(8, 3, strides=2, padding="same")(h)
    outputs = Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=(0, 1))(h)
    model = convx.Model(inputs, outputs)
    x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = convx.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.layers[-1].output_padding == (0, 1)
    # Keras' parameter counts: 3*3*3*2 + 6; 3*3*6 + 6*8 + 8; 3*3*3*8 + 3
    assert [layer.count_params() for layer in model.layers[1:]] == [60, 110, 219]
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 389" in text and "(None, 9, 8, 3)" in text


@pytest.mark.parametrize("make, message", [
    (lambda: DepthwiseConv2D(3, depth_multiplier=0), r"depth_multiplier.*Received depth_multiplier=0"),
    (lambda: DepthwiseConv2D(3, strides=-1), r"`strides` argument .* Received strides=-1"),
    (lambda: DepthwiseConv2D(0), r"`kernel_size` argument .* Received kernel_size=0"),
    (lambda: DepthwiseConv2D(3, padding="causal"), r"`padding` argument .* Received padding='causal'"),
    (lambda: SeparableConv2D(0, 3), r"filters.*Received filters=0"),
    (lambda: DepthwiseConv1D(3, depth_multiplier=0), r"Received depth_multiplier=0"),
    (lambda: SeparableConv1D(2, (3, 3)), r"`kernel_size` argument must be a tuple of 1 integers"),
    (lambda: SeparableConv2D(4, 3, depth_multiplier=-2), r"Received depth_multiplier=-2"),
    (lambda: Conv2DTranspose(4, 3, strides=2, output_padding=2), r"`output_padding` must be strictly less than "
                                                                  r"`strides`.*output_padding=\(2, 2\)"),
    (lambda: Conv2DTranspose(4, 3, strides=(2, 1), output_padding=(1, 1)), r"At dimension 1"),
    (lambda: Conv2DTranspose(4, 3, output_padding=-1), r"Received output_padding=-1"),
    (lambda: Conv2DTranspose(4, 3, strides=2, dilation_rate=2), r"`strides > 1` not supported"),
    (lambda: Conv2DTranspose(4, 3, strides=(0, 1)), r"Received strides=\(0, 1\)"),
    (lambda: Conv1DTranspose(2, 3, strides=-2), r"Received strides=-2"),
    (lambda: L.Conv2D(4, 3, padding="causal"), r"Received padding='causal'"),
    (lambda: Conv1D(4, 3, padding="full"), r"Received padding='full'"),
    (lambda: DepthwiseConv2D(3, data_format="channels_first"), "channels_last"),
])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_shape_errors():
    with pytest.raises(ValueError, match="expected ndim=4, found ndim=3"):
        DepthwiseConv2D(3).build_for((None, 5, 5))
    with pytest.raises(ValueError, match="input is too small"):
        DepthwiseConv2D(5).build_for((None, 3, 3, 2))
    # 'same', an even kernel at stride 1 and output_padding 0: Keras' size is no convolution's input
    with pytest.raises(ValueError, match="is not the input of a convolution"):
        Conv2DTranspose(2, 2, padding="same", output_padding=0).build_for((None, 5, 5, 2))


def test_model_of_the_new_layers_trains_bit_identically_on_any_thread_count(rng):
    """A MobileNet-like stack with a decoder, through the plan (fit with Adam, then predict): the same
    weights and predictions for 1, 2 and 3 threads; predict equals the layers called one by one."""
    # batches of 16 put every kernel above its parallel threshold
    x = rng.standard_normal((32, 24, 24, 16)).astype(np.float32)
    y = rng.standard_normal((32, 24, 24, 8)).astype(np.float32)

    def train():
        convx.utils.set_random_seed(3)
        model = convx.Sequential([
            convx.Input(shape=(24, 24, 16)),
            DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu"),
            L.Conv2D(16, 1, activation="relu"),
            SeparableConv2D(32, 3, strides=2, padding="same", activation="relu"),
            Conv2DTranspose(8, 3, strides=2, padding="same", output_padding=1),
        ])
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
        return (model.predict(x, verbose=0),) + tuple(model.get_weights()), model

    (first, model), = [train()]
    assert_same_for_any_thread_count(lambda: train()[0])
    h = x
    for layer in model.layers:
        h = layer(h)
    np.testing.assert_allclose(first[0], h, rtol=0, atol=1e-6)
