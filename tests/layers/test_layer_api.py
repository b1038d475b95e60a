"""Layers: Keras defaults, output shapes, initialisation, config round trips, Conv1D/Dropout glue, errors."""

import numpy as np
import pytest

import convx
from convx import initializers
from convx import layers as L

ALL_LAYERS = [
    lambda: L.Dense(4, activation="tanh", use_bias=False),
    lambda: L.Conv2D(3, (2, 3), strides=2, padding="same", activation="relu"),
    lambda: L.Conv1D(3, 2, dilation_rate=2),
    lambda: L.MaxPooling2D(3, strides=1, padding="same"),
    lambda: L.AveragePooling2D((2, 1)),
    lambda: L.MaxPooling1D(2),
    lambda: L.GlobalAveragePooling2D(keepdims=True),
    lambda: L.GlobalMaxPooling2D(),
    lambda: L.Flatten(),
    lambda: L.Activation("sigmoid"),
    lambda: L.ReLU(),
    lambda: L.Softmax(),
    lambda: L.Dropout(0.3, seed=1),
    lambda: L.Dense(3, kernel_regularizer="l2", bias_regularizer="l1", activity_regularizer="l1_l2",
                    kernel_constraint="max_norm", bias_constraint="non_neg"),
    lambda: L.LeakyReLU(0.1), lambda: L.ELU(0.7), lambda: L.ReLU(max_value=4.0, negative_slope=0.1, threshold=1.0),
    lambda: L.Softmax(axis=[1, 2]), lambda: L.Activation("hard_silu"),
    lambda: L.PReLU(alpha_initializer="ones", alpha_regularizer="l2", alpha_constraint="non_neg", shared_axes=[1]),
    lambda: L.SpatialDropout1D(0.2, seed=3), lambda: L.SpatialDropout2D(0.1), lambda: L.SpatialDropout3D(0.3),
    lambda: L.GaussianNoise(0.5, seed=2), lambda: L.GaussianDropout(0.4), lambda: L.ActivityRegularization(0.1),
]


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_config_round_trip(make):
    layer = make()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def test_keras_defaults():
    conv = L.Conv2D(8, 3)
    assert (conv.strides, conv.padding, conv.dilation_rate, conv.activation, conv.use_bias) == ((1, 1), "valid", (1, 1), "linear", True)
    assert type(conv.kernel_initializer) is initializers.GlorotUniform and type(conv.bias_initializer) is initializers.Zeros
    assert L.MaxPooling2D().pool_size == (2, 2) and L.MaxPooling2D(3).strides == (3, 3)
    assert L.MaxPooling1D().pool_size == (2,) and L.Conv1D(2, 3).strides == (1,)
    dense = L.Dense(5)
    assert dense.activation == "linear" and dense.use_bias


@pytest.mark.parametrize(
    "layer, input_shape, expected",
    [
        (lambda: L.Conv2D(4, 3), (None, 28, 28, 1), (None, 26, 26, 4)),
        (lambda: L.Conv2D(4, 3, padding="same", strides=2), (None, 7, 8, 2), (None, 4, 4, 4)),
        (lambda: L.Conv2D(4, 3, dilation_rate=2), (None, 9, 9, 1), (None, 5, 5, 4)),
        (lambda: L.Conv1D(6, 3, strides=2), (None, 11, 2), (None, 5, 6)),
        (lambda: L.MaxPooling2D(), (None, 5, 5, 3), (None, 2, 2, 3)),
        (lambda: L.AveragePooling2D(2, padding="same"), (None, 5, 5, 3), (None, 3, 3, 3)),
        (lambda: L.MaxPooling1D(3, strides=1), (None, 6, 2), (None, 4, 2)),
        (lambda: L.GlobalAveragePooling2D(), (None, 4, 5, 3), (None, 3)),
        (lambda: L.GlobalMaxPooling2D(keepdims=True), (None, 4, 5, 3), (None, 1, 1, 3)),
        (lambda: L.Flatten(), (None, 3, 4, 5), (None, 60)),
        (lambda: L.Dense(7), (None, 3, 5), (None, 3, 7)),
    ],
)
def test_output_shapes_agree_with_forward(layer, input_shape, expected, rng):
    layer = layer()
    assert layer.compute_output_shape(input_shape) == expected
    x = rng.random((2,) + input_shape[1:], dtype=np.float32)
    assert layer(x).shape == (2,) + expected[1:]


def test_glorot_uniform_fans_include_receptive_field():
    convx.utils.set_random_seed(0)
    layer = L.Conv2D(64, (5, 5))
    layer.build((None, 10, 10, 32))
    kernel = layer.kernel.numpy()
    limit = np.sqrt(6.0 / (32 * 25 + 64 * 25))
    assert kernel.shape == (5, 5, 32, 64) and kernel.dtype == np.float32
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.99 * limit
    np.testing.assert_allclose(kernel.std(), limit / np.sqrt(3), rtol=0.02)
    np.testing.assert_array_equal(layer.bias.numpy(), 0)


def test_initializer_seed_and_global_seed_reproducibility():
    init = initializers.HeNormal(seed=3)
    np.testing.assert_array_equal(init((4, 5)), init((4, 5)))
    convx.utils.set_random_seed(11)
    a = L.Dense(3)
    a.build((None, 4))
    convx.utils.set_random_seed(11)
    b = L.Dense(3)
    b.build((None, 4))
    np.testing.assert_array_equal(a.kernel.numpy(), b.kernel.numpy())


def test_conv1d_matches_conv2d_with_height_one(rng):
    conv1 = L.Conv1D(5, 3, strides=2, padding="same", activation="relu")
    conv2 = L.Conv2D(5, (1, 3), strides=(1, 2), padding="same", activation="relu")
    x = rng.standard_normal((4, 9, 2)).astype(np.float32)
    conv1(x)
    conv2(x[:, None])
    assert conv1.kernel.shape == (3, 2, 5)
    conv2.set_weights([w.reshape(conv2.kernel.shape) if w.ndim == 3 else w for w in conv1.get_weights()])
    y1 = conv1.forward(x, training=True)
    y2 = conv2.forward(x[:, None], training=True)
    np.testing.assert_array_equal(y1, y2[:, 0])
    dy = rng.standard_normal(y1.shape).astype(np.float32)
    dx1, dx2 = conv1.backward(dy), conv2.backward(dy[:, None])
    np.testing.assert_array_equal(dx1, dx2[:, 0])
    np.testing.assert_array_equal(conv1.kernel.grad, conv2.kernel.grad.reshape(conv1.kernel.shape))


def test_conv1d_and_maxpool1d_match_torch(torch, rng):
    F = torch.nn.functional
    conv = L.Conv1D(4, 3, dilation_rate=2, activation="tanh")
    pool = L.MaxPooling1D(2)
    x = rng.standard_normal((3, 12, 2)).astype(np.float32)
    conv.build_for((None, 12, 2))
    y = pool.forward(conv.forward(x, training=True), training=True)
    xt = torch.tensor(x, requires_grad=True)
    w = torch.tensor(conv.kernel.numpy().transpose(2, 1, 0), requires_grad=True)  # (K, I, O) -> (O, I, K)
    yt = F.max_pool1d(torch.tanh(F.conv1d(xt.transpose(1, 2), w, torch.tensor(conv.bias.numpy()), dilation=2)), 2)
    np.testing.assert_allclose(y, yt.transpose(1, 2).detach().numpy(), rtol=1e-5, atol=1e-6)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    yt.backward(torch.tensor(dy).transpose(1, 2))
    np.testing.assert_allclose(conv.backward(pool.backward(dy)), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(conv.kernel.grad, w.grad.numpy().transpose(2, 1, 0), rtol=1e-5, atol=1e-6)


def test_dropout_is_inverted_and_training_only(rng):
    layer = L.Dropout(0.25, seed=2)
    x = np.ones((200, 50), dtype=np.float32)
    np.testing.assert_array_equal(layer(x), x)
    y = layer.forward(x, training=True)
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    dy = rng.random(x.shape, dtype=np.float32)
    np.testing.assert_array_equal(layer.backward(dy), dy * y)  # the same mask, scaled


def test_layer_weights_order_and_set_weights_errors():
    layer = L.Dense(3)
    with pytest.raises(ValueError, match="isn't built"):
        layer.count_params()
    layer.build_for((None, 4))
    assert [w.name for w in layer.weights] == ["kernel", "bias"] and layer.count_params() == 15
    with pytest.raises(ValueError, match=r"weight 'kernel' has shape \(4, 3\), received value of shape \(3, 4\)"):
        layer.set_weights([np.zeros((3, 4)), np.zeros(3)])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: L.Dense(0), "expected a positive integer. Received: units=0"),
        (lambda: L.Dense(3, activation="swoosh"), "Could not interpret activation function identifier: 'swoosh'"),
        (lambda: L.Conv2D(4, (3, 3, 3)), r"`kernel_size` argument must be a tuple of 2 integers"),
        (lambda: L.Conv2D(4, 3, padding="full"), "`padding` argument must be one of"),
        (lambda: L.Conv2D(4, 3, strides=2, dilation_rate=2), "`strides > 1` not supported in conjunction with `dilation_rate > 1`"),
        (lambda: L.Conv2D(4, 3, data_format="channels_first"), "channels_last"),
        (lambda: L.Dropout(1.0), "Expected a float value between 0 and 1"),
        (lambda: L.ReLU(max_value=-6.0), "max_value of a ReLU layer cannot be a negative value. Received: max_value=-6.0"),
        (lambda: L.Dense(3, kernel_regularizer="l3"), "Could not interpret regularizer identifier: .l3."),
        (lambda: L.Dense(3, kernel_regulariser="l2"), "Unrecognized keyword arguments passed to Dense"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_input_shapes_name_the_layer(rng):
    conv = L.Conv2D(4, 3, name="c")
    with pytest.raises(ValueError, match=r'layer "c".*expected ndim=4, found ndim=3'):
        conv(rng.random((2, 5, 5)))
    with pytest.raises(ValueError, match=r'Layer "c2": computed output size would be 0.*too small'):
        L.Conv2D(4, 5, name="c2")(rng.random((1, 4, 4, 1)))
    dense = L.Dense(2, name="d")
    dense(rng.random((1, 3)))
    with pytest.raises(ValueError, match=r'layer "d".*expected shape=\(None, 3\), found shape=\(None, 4\)'):
        dense(rng.random((1, 4)))


def test_activation_functions_module(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(convx.activations.softmax(x).sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(convx.activations.relu(x), np.maximum(x, 0))
    assert L.Dense(2, activation=convx.activations.tanh).activation == "tanh"


def test_dtype_is_serialized_as_keras_dtype_policy_and_read_in_either_form():
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
    config = L.Dense(2).get_config()
    assert config["dtype"] == policy and config["quantization_config"] is None  # Keras 3.15's Dense keys
    for dtype in (policy, "float32", None):
        assert L.Dense.from_config({**config, "dtype": dtype}).get_config() == config
    with pytest.raises(ValueError, match="supports only dtype 'float32'"):
        L.Dense(2, dtype={"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}})
