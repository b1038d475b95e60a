"""Reshaping layers: ZeroPadding1D/2D, Cropping1D/2D, UpSampling1D/2D, Reshape, Permute.

Padding, cropping, nearest upsampling, Reshape and Permute are Keras' NumPy
formulas (np.pad, slicing, np.repeat, reshape, transpose), checked against Keras
3.15.1 when written; UpSampling2D(interpolation='bilinear') is compared with
TensorFlow's output, embedded below.
"""

import io

import numpy as np
import pytest

import convx
from convx import layers as L
from gradcheck import check_gradient


@pytest.fixture(autouse=True)
def fresh_names():
    convx.utils.clear_session()


def _image(shape):
    """The deterministic image the embedded references were computed for."""
    return ((np.arange(np.prod(shape)) * 7 % 11) * 0.5 - 1.25).astype(np.float32).reshape(shape)


# keras.layers.UpSampling2D((2, 3), interpolation="bilinear")(_image((1, 5, 6, 2))), Keras 3.15.1 / TF 2.21
UPBIL = [-1.25, 2.25, -1.25, 2.25, -0.7499999403953552, 2.75, -0.24999988079071045, 3.25, 0.25, 3.75, 0.7500000596046448,
 2.4166665077209473, 1.2500001192092896, 1.0833330154418945, 1.75, -0.25, 2.250000238418579, 0.2500002384185791, 2.75,
 0.7500001192092896, 3.25, 1.25, 1.916666030883789, 1.750000238418579, 0.5833320617675781, 2.250000476837158, -0.75,
 2.75, -0.2499997615814209, 1.416666030883789, 0.2500004768371582, 0.08333206176757812, 0.75, -1.25, 0.75, -1.25,
 -0.375, 1.75, -0.375, 1.75, 0.12500005960464478, 2.25, 0.6250001192092896, 2.75, 1.125, 3.25, 1.1666667461395264,
 2.375, 1.2083333730697632, 1.499999761581421, 1.25, 0.625, 1.750000238418579, 0.6666666865348816, 2.25,
 0.7083333730697632, 2.75, 0.75, 1.8749995231628418, 1.250000238418579, 0.9999991655349731, 1.7500004768371582, 0.125,
 2.25, 0.1666666865348816, 1.3749995231628418, 0.20833337306976318, 0.49999916553497314, 0.25, -0.375, 0.25, -0.375,
 1.375, 0.75, 1.375, 0.75, 1.875, 1.25, 2.375, 1.7500001192092896, 2.875, 2.25, 2.0, 2.2916665077209473,
 1.124999761581421, 2.3333332538604736, 0.25, 2.375, 0.7500002384185791, 1.4999995231628418, 1.2500001192092896,
 0.6249997615814209, 1.75, -0.25, 1.7916667461395264, 0.2500002384185791, 1.8333333730697632, 0.7500004768371582,
 1.875, 1.25, 0.9999995231628418, 1.2916667461395264, 0.12499916553497314, 1.3333333730697632, -0.75, 1.375, -0.75,
 1.375, 1.75, 1.125, 1.75, 1.125, 2.25, 1.1666667461395264, 2.75, 1.2083333730697632, 3.25, 1.25, 2.375, 1.75,
 1.499999761581421, 2.25, 0.625, 2.75, 0.6666666865348816, 1.8749995231628418, 0.7083333730697632, 0.9999997615814209,
 0.75, 0.125, 1.250000238418579, 0.1666666865348816, 1.7500004768371582, 0.20833337306976318, 2.25, 0.25,
 1.3749995231628418, 0.7500002384185791, 0.49999916553497314, 1.2500004768371582, -0.375, 1.75, -0.375, 1.75, 0.75,
 2.875, 0.75, 2.875, 1.25, 2.0, 1.7500001192092896, 1.124999761581421, 2.25, 0.25, 2.2916665077209473, 0.75,
 2.3333332538604736, 1.2500001192092896, 2.375, 1.75, 1.4999995231628418, 1.7916667461395264, 0.6249997615814209,
 1.8333332538604736, -0.25, 1.875, 0.2500002384185791, 0.9999995231628418, 0.7500004768371582, 0.12499916553497314,
 1.25, -0.75, 1.2916667461395264, -0.2499997615814209, 1.3333333730697632, 0.2500004768371582, 1.375, 0.75, 1.375,
 0.75, 1.125, 3.25, 1.125, 3.25, 1.1666667461395264, 2.375, 1.2083333730697632, 1.499999761581421, 1.25, 0.625, 1.75,
 0.6666666865348816, 2.25, 0.7083333730697632, 2.75, 0.75, 1.8749995231628418, 1.250000238418579, 0.9999997615814209,
 1.75, 0.125, 2.25, 0.1666666865348816, 1.3749995231628418, 0.20833337306976318, 0.49999916553497314, 0.25, -0.375,
 0.7500002384185791, 0.1250002384185791, 1.2500004768371582, 0.6250004768371582, 1.75, 1.125, 1.75, 1.125, 2.875,
 2.25, 2.875, 2.25, 2.0, 2.2916665077209473, 1.124999761581421, 2.3333332538604736, 0.25, 2.375, 0.75, 1.5,
 1.2500001192092896, 0.6249997615814209, 1.75, -0.25, 1.7916667461395264, 0.2500002384185791, 1.8333332538604736,
 0.7500001192092896, 1.875, 1.25, 0.9999995231628418, 1.2916667461395264, 0.12499916553497314, 1.3333333730697632,
 -0.75, 1.375, -0.2499997615814209, 1.875000238418579, 0.2500004768371582, 2.375000476837158, 0.75, 2.875, 0.75,
 2.875, 3.25, 1.25, 3.25, 1.25, 2.375, 1.75, 1.499999761581421, 2.25, 0.625, 2.75, 0.6666666865348816,
 1.8749998807907104, 0.7083333730697632, 0.9999997615814209, 0.75, 0.125, 1.250000238418579, 0.1666666865348816, 1.75,
 0.2083333432674408, 2.25, 0.25, 1.3749995231628418, 0.7500002384185791, 0.49999916553497314, 1.2500004768371582,
 -0.375, 1.75, 0.1250002384185791, 2.250000238418579, 0.6250004768371582, 2.750000476837158, 1.125, 3.25, 1.125, 3.25,
 2.25, 0.25, 2.25, 0.25, 2.2916665077209473, 0.75, 2.3333332538604736, 1.2500001192092896, 2.375, 1.75, 1.5,
 1.7916666269302368, 0.6249997615814209, 1.8333332538604736, -0.25, 1.875, 0.2500002384185791, 0.9999995231628418,
 0.7500001192092896, 0.12499979138374329, 1.25, -0.75, 1.2916667461395264, -0.2499997615814209, 1.3333333730697632,
 0.2500004768371582, 1.375, 0.75, 1.875000238418579, 1.250000238418579, 2.375000476837158, 1.7500004768371582, 2.875,
 2.25, 2.875, 2.25, 1.75, -0.25, 1.75, -0.25, 2.25, 0.2500000596046448, 2.75, 0.7500001192092896, 3.25, 1.25,
 1.9166665077209473, 1.75, 0.5833330154418945, 2.25, -0.75, 2.75, -0.2499997615814209, 1.416666030883789,
 0.25000011920928955, 0.08333301544189453, 0.75, -1.25, 1.250000238418579, -0.7499997615814209, 1.7500004768371582,
 -0.2499995231628418, 2.25, 0.25, 2.750000238418579, 0.7500002384185791, 3.250000476837158, 1.2500004768371582, 3.75,
 1.75, 3.75, 1.75]


# Keras 3.15.1's outputs for _image((1, 3, 2, 2)) (2-D layers, Permute, Reshape) and _image((1, 4, 2)) (1-D layers):
# layer expression -> (output shape, values)
KERAS_OUTPUTS = {
    'ZeroPadding2D(((1, 0), (0, 2)))': ((1, 4, 4, 2), [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.25, 2.25, 0.25, 3.75, 0.0, 0.0, 0.0, 0.0, 1.75, -0.25, 3.25, 1.25, 0.0, 0.0, 0.0, 0.0, -0.75, 2.75, 0.75, -1.25, 0.0, 0.0, 0.0, 0.0]),
    'Cropping2D(((1, 1), (1, 0)))': ((1, 1, 1, 2), [3.25, 1.25]),
    'UpSampling2D((1, 2))': ((1, 3, 4, 2), [-1.25, 2.25, -1.25, 2.25, 0.25, 3.75, 0.25, 3.75, 1.75, -0.25, 1.75, -0.25, 3.25, 1.25, 3.25, 1.25, -0.75, 2.75, -0.75, 2.75, 0.75, -1.25, 0.75, -1.25]),
    'Permute((3, 1, 2))': ((1, 2, 3, 2), [-1.25, 0.25, 1.75, 3.25, -0.75, 0.75, 2.25, 3.75, -0.25, 1.25, 2.75, -1.25]),
    'Reshape((-1, 3))': ((1, 4, 3), [-1.25, 2.25, 0.25, 3.75, 1.75, -0.25, 3.25, 1.25, -0.75, 2.75, 0.75, -1.25]),
    'ZeroPadding1D((0, 2))': ((1, 6, 2), [-1.25, 2.25, 0.25, 3.75, 1.75, -0.25, 3.25, 1.25, 0.0, 0.0, 0.0, 0.0]),
    'Cropping1D((1, 2))': ((1, 1, 2), [0.25, 3.75]),
    'UpSampling1D(2)': ((1, 8, 2), [-1.25, 2.25, -1.25, 2.25, 0.25, 3.75, 0.25, 3.75, 1.75, -0.25, 1.75, -0.25, 3.25, 1.25, 3.25, 1.25]),
}


@pytest.mark.parametrize("expression", sorted(KERAS_OUTPUTS))
def test_outputs_of_real_keras(expression):
    shape, values = KERAS_OUTPUTS[expression]
    x = _image((1, 3, 2, 2)) if "2D" in expression or expression.startswith(("Permute", "Reshape")) else _image((1, 4, 2))
    y = eval("L." + expression)(x)
    np.testing.assert_array_equal(y, np.array(values, np.float32).reshape(shape))


def _forward_cases():
    """(layer, input shape, Keras' result as a NumPy formula of the input)."""
    return [
        (L.ZeroPadding2D(((1, 2), (3, 0))), (2, 6, 8, 3), lambda x: np.pad(x, ((0, 0), (1, 2), (3, 0), (0, 0)))),
        (L.ZeroPadding2D(2), (1, 3, 4, 2), lambda x: np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))),
        (L.ZeroPadding2D((1, 3)), (1, 3, 4, 2), lambda x: np.pad(x, ((0, 0), (1, 1), (3, 3), (0, 0)))),
        (L.ZeroPadding1D((2, 1)), (2, 7, 3), lambda x: np.pad(x, ((0, 0), (2, 1), (0, 0)))),
        (L.ZeroPadding1D(), (2, 7, 3), lambda x: np.pad(x, ((0, 0), (1, 1), (0, 0)))),
        (L.Cropping2D(((1, 2), (3, 1))), (2, 6, 8, 3), lambda x: x[:, 1:-2, 3:-1]),
        (L.Cropping2D(1), (2, 6, 8, 3), lambda x: x[:, 1:-1, 1:-1]),
        (L.Cropping2D(), (2, 6, 8, 3), lambda x: x),
        (L.Cropping1D((3, 5)), (2, 48, 3), lambda x: x[:, 3:-5]),
        (L.UpSampling1D(3), (2, 5, 3), lambda x: np.repeat(x, 3, axis=1)),
        (L.UpSampling2D((2, 3)), (2, 4, 5, 3), lambda x: np.repeat(np.repeat(x, 2, axis=1), 3, axis=2)),
        (L.UpSampling2D(2), (1, 3, 3, 1), lambda x: np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)),
        (L.Reshape((-1, 4)), (2, 6, 2, 2), lambda x: x.reshape(2, -1, 4)),
        (L.Reshape((3, 2, 4)), (2, 24), lambda x: x.reshape(2, 3, 2, 4)),
        (L.Permute((2, 1)), (2, 5, 3), lambda x: x.transpose(0, 2, 1)),
        (L.Permute((3, 1, 2)), (2, 4, 5, 3), lambda x: x.transpose(0, 3, 1, 2)),
    ]


@pytest.mark.parametrize("case", range(len(_forward_cases())))
def test_forward_matches_keras_formula_and_output_shape(case, rng):
    layer, shape, formula = _forward_cases()[case]
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer(x)
    np.testing.assert_array_equal(y, formula(x))
    assert layer.compute_output_shape((None,) + shape[1:]) == (None,) + y.shape[1:]


@pytest.mark.parametrize("size", [(5, 7), (16, 3), (1, 11)])
def test_nearest_upsampling_is_repetition_for_large_factors(size, rng):
    """The kernel's half-pixel nearest index floor((j + 0.5) / s), in float32, is j // s."""
    x = rng.standard_normal((2, 37, 23, 3)).astype(np.float32)
    y = L.UpSampling2D(size)(x)
    np.testing.assert_array_equal(y, np.repeat(np.repeat(x, size[0], axis=1), size[1], axis=2))
    x1 = rng.standard_normal((2, 301, 2)).astype(np.float32)
    np.testing.assert_array_equal(L.UpSampling1D(size[0])(x1), np.repeat(x1, size[0], axis=1))


def test_bilinear_upsampling_matches_tensorflow():
    y = L.UpSampling2D((2, 3), interpolation="bilinear")(_image((1, 5, 6, 2)))
    np.testing.assert_array_equal(y, np.array(UPBIL, np.float32).reshape(1, 10, 18, 2))


@pytest.mark.parametrize("case", range(len(_forward_cases())))
def test_gradients_float64(case, rng):
    layer, shape, _ = _forward_cases()[case]
    x = rng.standard_normal(shape)
    layer.build_for((None,) + shape[1:])
    w = rng.standard_normal(layer.forward(x, training=True).shape)
    dx = layer.backward(w).copy()
    check_gradient(lambda: float(np.sum(w * layer.forward(x, training=True))), x, dx)


@pytest.mark.parametrize("size", [(2, 3), (1, 2)])
def test_bilinear_upsampling_gradient_float64(size, rng):
    layer = L.UpSampling2D(size, interpolation="bilinear")
    x = rng.standard_normal((2, 4, 3, 2))
    layer.build_for((None, 4, 3, 2))
    w = rng.standard_normal((2, 4 * size[0], 3 * size[1], 2))
    layer.forward(x, training=True)
    dx = layer.backward(w).copy()
    check_gradient(lambda: float(np.sum(w * layer.forward(x, training=True))), x, dx)


CONFIGS = [
    (L.ZeroPadding2D, {}, {"padding": ((1, 1), (1, 1)), "data_format": "channels_last"}),
    (L.ZeroPadding1D, {}, {"padding": (1, 1), "data_format": "channels_last"}),
    (L.Cropping2D, {}, {"cropping": ((0, 0), (0, 0)), "data_format": "channels_last"}),
    (L.Cropping1D, {}, {"cropping": (1, 1)}),
    (L.UpSampling2D, {}, {"size": (2, 2), "data_format": "channels_last", "interpolation": "nearest"}),
    (L.UpSampling1D, {}, {"size": 2}),
    (L.Reshape, {"target_shape": (2, -1)}, {"target_shape": (2, -1)}),
    (L.Permute, {"dims": (2, 1)}, {"dims": (2, 1)}),
]


@pytest.mark.parametrize("cls, kwargs, keras_config", CONFIGS)
def test_keras_config_keys_defaults_and_round_trip(cls, kwargs, keras_config):
    """Keras 3.15.1's get_config values for these arguments (its 'dtype' entry is a policy dict)."""
    layer = cls(**kwargs)
    config = layer.get_config()
    assert {k: config[k] for k in keras_config} == keras_config
    assert set(config) == set(keras_config) | {"name", "trainable", "dtype"}
    assert type(layer).from_config(config).get_config() == config


def test_model_save_load_summary_and_training(rng, tmp_path):
    inp = convx.Input((6, 5, 2))
    h = L.ZeroPadding2D(((1, 0), (2, 1)))(inp)
    h = L.UpSampling2D((2, 1), interpolation="bilinear")(h)
    h = L.Cropping2D(((2, 1), (0, 3)))(h)
    h = L.Conv2D(3, 3, activation="relu")(h)
    h = L.UpSampling2D(2)(h)
    h = L.Permute((2, 1, 3))(h)
    h = L.Reshape((-1, 6))(h)
    h = L.ZeroPadding1D(2)(h)
    h = L.Cropping1D((1, 0))(h)
    h = L.UpSampling1D(2)(h)
    out = L.Dense(2, activation="softmax")(L.Flatten()(h))
    model = convx.Model(inp, out)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = rng.standard_normal((8, 6, 5, 2)).astype(np.float32), rng.integers(0, 2, 8)
    before = model.get_weights()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = convx.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for name in ("zero_padding2d", "up_sampling2d", "cropping2d", "permute", "reshape", "zero_padding1d",
                 "cropping1d", "up_sampling1d"):
        assert name in text


def test_reshape_is_a_view_and_says_so(rng):
    layer = L.Reshape((-1,))
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    layer.build_for((None, 3, 4))
    assert layer.output_may_alias_input() and np.shares_memory(layer.forward(x), x)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: L.ZeroPadding2D(-1), r"`padding`.*Received: padding=-1"),
        (lambda: L.ZeroPadding2D((1, 2, 3)), r"`padding`.*Received: padding=\(1, 2, 3\)"),
        (lambda: L.ZeroPadding1D((1, -2)), r"`padding`.*Received: padding=\(1, -2\)"),
        (lambda: L.Cropping2D(((1, 2), (3,))), r"`cropping`.*Received: cropping="),
        (lambda: L.Cropping1D(-1), r"`cropping`.*Received: cropping=-1"),
        (lambda: L.UpSampling2D(0), r"`size`.*Received: size=0"),
        (lambda: L.UpSampling1D(1.5), r"`size`.*Received: size=1.5"),
        (lambda: L.UpSampling2D(interpolation="bicubic"), r"`interpolation`.*Received: interpolation='bicubic'"),
        (lambda: L.UpSampling2D(data_format="channels_first"), "channels_last"),
        (lambda: L.Reshape((-1, -1)), r"`target_shape`.*Received: target_shape=\(-1, -1\)"),
        (lambda: L.Reshape((2, 0)), r"`target_shape`.*Received: target_shape=\(2, 0\)"),
        (lambda: L.Permute((1, 3)), r"`dims`.*Received: dims=\(1, 3\)"),
        (lambda: L.Permute((0, 1)), r"`dims`.*Received: dims=\(0, 1\)"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_input_shapes():
    with pytest.raises(ValueError, match="cannot reshape samples of shape"):
        L.Reshape((5, -1)).build_for((None, 3, 4))
    with pytest.raises(ValueError, match="leaves nothing"):
        L.Cropping2D(((2, 2), (0, 0))).build_for((None, 4, 5, 1))
    with pytest.raises(ValueError, match="expected ndim=4"):
        L.ZeroPadding2D().build_for((None, 4, 5))
