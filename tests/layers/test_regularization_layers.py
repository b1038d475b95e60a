"""SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout, ActivityRegularization: Keras 3 semantics
(training only), reproducibility under set_random_seed, gradients, configs, errors."""

import numpy as np
import pytest

import convx
from convx import layers as L
from gradcheck import check_gradient


def _train(layer, x, dy=None):
    layer.build_for((None,) + x.shape[1:])
    y = np.array(layer.forward(x, training=True))
    dx = None if dy is None else np.array(layer.backward(dy))
    return y, dx


@pytest.mark.parametrize("cls, shape", [(L.SpatialDropout1D, (4, 9, 6)), (L.SpatialDropout2D, (4, 5, 6, 8)),
                                        (L.SpatialDropout3D, (3, 3, 4, 5, 7))])
def test_spatial_dropout_drops_whole_channels(rng, cls, shape):
    x = rng.uniform(1, 2, shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    layer = cls(0.4, seed=5)
    y, dx = _train(layer, x, dy)
    scale = np.broadcast_to(layer._state.mask, shape)
    np.testing.assert_array_equal(y, x * scale)
    per_map = scale.reshape(shape[0], -1, shape[-1])
    assert np.all(per_map == per_map[:, :1, :])  # one draw per (sample, channel)
    assert set(np.unique(per_map)) <= {0.0, np.float32(1 / 0.6)}
    assert 0 < np.mean(per_map[:, 0, :] == 0) < 1
    np.testing.assert_array_equal(dx, dy * scale)
    assert layer.forward(x, training=False) is x  # identity at inference


@pytest.mark.parametrize("make", [lambda: L.SpatialDropout2D(0.5), lambda: L.GaussianNoise(0.3),
                                  lambda: L.GaussianDropout(0.3)])
def test_noise_is_reproducible_under_set_random_seed(rng, make):
    x = rng.standard_normal((4, 5, 6, 3)).astype(np.float32)
    outs = []
    for _ in range(2):
        convx.utils.set_random_seed(21)
        layer = make()
        outs.append(_train(layer, x)[0])
    np.testing.assert_array_equal(*outs)
    assert not np.array_equal(outs[0], x)


def test_gaussian_noise_statistics_and_gradient(rng):
    x = np.zeros((200, 500), np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    y, dx = _train(L.GaussianNoise(0.2, seed=1), x, dy)
    assert abs(y.mean()) < 2e-3 and abs(y.std() - 0.2) < 2e-3
    np.testing.assert_array_equal(dx, dy)


def test_gaussian_dropout_statistics_and_gradient(rng):
    x = np.full((200, 500), 2.0, np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    layer = L.GaussianDropout(0.2, seed=1)
    y, dx = _train(layer, x, dy)
    noise = y / 2
    assert abs(noise.mean() - 1) < 2e-3 and abs(noise.std() - np.sqrt(0.2 / 0.8)) < 3e-3
    np.testing.assert_allclose(dx, dy * noise, rtol=1e-6)
    assert layer.forward(x, training=False) is x


def test_activity_regularization_loss_and_gradient(rng):
    x = rng.standard_normal((4, 3, 5))
    layer = L.ActivityRegularization(l1=0.3, l2=0.2)
    y = layer(x.astype(np.float32))
    np.testing.assert_array_equal(y, x.astype(np.float32))
    expected = (0.3 * np.abs(x).sum() + 0.2 * np.square(x).sum()) / 4  # Keras 3 divides by the batch size
    assert layer.losses == [pytest.approx(expected, rel=1e-6)]
    layer.forward(x.astype(np.float32), training=True)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    dx = layer.backward(dy)
    grad = (0.3 * np.sign(x) + 0.4 * x) / 4
    np.testing.assert_allclose(dx, dy + grad, rtol=1e-5, atol=1e-6)
    x64 = x.copy()
    check_gradient(lambda: (0.3 * np.abs(x64).sum() + 0.2 * np.square(x64).sum()) / 4, x64, grad, rtol=1e-5, atol=1e-7)


def test_dense_activity_regularizer_gradient_through_a_fused_softmax_loss(rng):
    """Dense(softmax) + crossentropy: the loss takes over the softmax, the activity penalty of the
    softmax output still gets its gradient (taken back through the softmax)."""
    x = rng.standard_normal((6, 4)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    m = convx.Sequential([L.Dense(3, activation="softmax", input_shape=(4,),
                                  activity_regularizer=convx.regularizers.L2(0.5))])
    m.compile(optimizer=convx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    kernel, bias = [w.astype(np.float64) for w in m.get_weights()]

    def total(k):
        z = x.astype(np.float64) @ k + bias
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return -np.mean(np.log(p[np.arange(6), y])) + 0.5 * np.sum(p ** 2) / 6

    eps, numeric = 1e-6, np.zeros_like(kernel)
    for idx in np.ndindex(kernel.shape):
        up, down = kernel.copy(), kernel.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (total(up) - total(down)) / (2 * eps)
    logged = m.train_on_batch(x, y)
    assert logged == pytest.approx(total(kernel), rel=1e-5)
    np.testing.assert_allclose(m.get_weights()[0], kernel - 0.1 * numeric, rtol=1e-5, atol=1e-6)


CONFIGS = [lambda: L.SpatialDropout1D(0.2, seed=3), lambda: L.SpatialDropout2D(0.1), lambda: L.SpatialDropout3D(0.3),
           lambda: L.GaussianNoise(0.5, seed=2), lambda: L.GaussianDropout(0.4), lambda: L.ActivityRegularization(0.1)]


@pytest.mark.parametrize("make", CONFIGS)
def test_config_keys_are_keras(make):
    # the round trips themselves: tests/layers/test_layer_api.py (ALL_LAYERS)
    config = make().get_config()
    assert "noise_shape" not in config and "activity_regularizer" not in config
    assert set(config) - {"name", "trainable", "dtype"} <= {"rate", "seed", "data_format", "stddev", "l1", "l2"}


def test_a_model_with_regularization_layers_saves_and_loads(rng, tmp_path):
    convx.utils.set_random_seed(2)
    model = convx.Sequential([L.Conv2D(4, 3, input_shape=(7, 7, 2)), L.SpatialDropout2D(0.3), L.GaussianNoise(0.1),
                              L.Flatten(), L.GaussianDropout(0.2), L.ActivityRegularization(l2=0.01), L.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x = rng.standard_normal((8, 7, 7, 2)).astype(np.float32)
    model.fit(x, np.zeros((8, 2), np.float32), verbose=0)
    model.save(tmp_path / "r.keras")
    loaded = convx.saving.load_model(tmp_path / "r.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))  # inference: no noise
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]


@pytest.mark.parametrize("make, message", [
    (lambda: L.SpatialDropout2D(-0.1), r"Invalid value received for argument `rate`.*Received: rate=-0.1"),
    (lambda: L.SpatialDropout1D(1.0), r"Received: rate=1.0"),
    (lambda: L.GaussianNoise(-1), r"Invalid value received for argument `stddev`.*Received: stddev=-1"),
    (lambda: L.GaussianDropout(1.5), r"Invalid value received for argument `rate` of GaussianDropout.*rate=1.5"),
    (lambda: L.SpatialDropout2D(0.1)(np.zeros((2, 3, 4), np.float32)), "expected ndim=4, found ndim=3"),
    (lambda: L.SpatialDropout2D(0.1, data_format="channels_first"), "data_format='channels_first'"),
    (lambda: L.ActivityRegularization(l1=-1.0), "Invalid value for argument l1: expected a non-negative float"),
])
def test_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_an_activity_regularizer_is_refused_where_it_would_be_ignored():
    # a layer class applies one only when it says so (Layer._supports_activity_regularizer)
    with pytest.raises(ValueError, match="MaxPooling2D does not apply an activity regularizer.*activity_regularizer='l2'"):
        L.MaxPooling2D(activity_regularizer="l2")
    with pytest.raises(ValueError, match="Flatten does not apply an activity regularizer"):
        L.Flatten(activity_regularizer=convx.regularizers.L1())
    assert L.Dense(2, activity_regularizer="l2").activity_regularizer.l2 == 0.01


def test_conv2d_activity_regularizer_step_matches_torch(torch, rng):
    """Conv2D's activity penalty (Keras 3: regularizer(output) / batch size) in the loss and its gradient."""
    convx.utils.set_random_seed(2)
    model = convx.Sequential([L.Conv2D(3, 3, activation="relu", activity_regularizer=convx.regularizers.L2(0.1),
                                       input_shape=(6, 6, 2)), L.MaxPooling2D(), L.Flatten(),
                              L.Dense(2, activation="softmax")])
    model.compile(optimizer=convx.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    x, y = rng.random((5, 6, 6, 2)).astype(np.float32), rng.integers(0, 2, 5)
    kernel, bias, dense_kernel, dense_bias = (torch.tensor(w, dtype=torch.float64, requires_grad=True)
                                              for w in model.get_weights())
    conv = torch.relu(torch.nn.functional.conv2d(torch.as_tensor(x, dtype=torch.float64).permute(0, 3, 1, 2),
                                                 kernel.permute(3, 2, 0, 1), bias))
    pooled = torch.nn.functional.max_pool2d(conv, 2).permute(0, 2, 3, 1).reshape(5, -1)
    probs = torch.softmax(pooled @ dense_kernel + dense_bias, -1)
    loss = -torch.log(probs[torch.arange(5), torch.as_tensor(y)]).mean() + 0.1 * (conv ** 2).sum() / 5
    loss.backward()
    before = model.get_weights()
    np.testing.assert_allclose(model.train_on_batch(x, y), float(loss.detach()), rtol=1e-5)
    for w0, w1, ref in zip(before, model.get_weights(), (kernel, bias, dense_kernel, dense_bias)):
        np.testing.assert_allclose((w0 - w1) / 0.5, ref.grad.numpy(), rtol=1e-3, atol=1e-6)
