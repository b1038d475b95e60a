"""Targets are validated like inputs: NaN or infinite values in y raise a ValueError naming the argument
(arrays and streamed batches, fit / evaluate / train_on_batch / validation data) before any weight moves;
layer arguments that size buffers (Dropout's noise_shape) are checked."""

import numpy as np
import pytest

import convx
from convx import layers as L


def _model(loss="mse", units=2):
    convx.utils.clear_session()
    model = convx.Sequential([convx.Input((4,)), L.Dense(units)])
    model.compile(optimizer="adam", loss=loss)
    return model


def _data(bad=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = rng.normal(size=(16, 2)).astype(np.float32)
    if bad is not None:
        y[5, 1] = bad
    return x, y


def _unchanged(model, before):
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300], ids=["nan", "inf", "-inf", "too_large"])
def test_non_finite_targets_are_refused_naming_y(bad):
    x, y = _data()
    y64 = y.astype(np.float64)
    y64[5, 1] = bad
    model = _model()
    before = model.get_weights()
    for call in (lambda: model.fit(x, y64, epochs=1, verbose=0), lambda: model.evaluate(x, y64, verbose=0),
                 lambda: model.train_on_batch(x, y64), lambda: model.test_on_batch(x, y64)):
        with pytest.raises(ValueError, match="Argument `y` contains NaN or infinite values"):
            call()
    with pytest.raises(ValueError, match=r"Argument `validation_data\[1\]` contains NaN"):
        model.fit(x, y, validation_data=(x, y64), epochs=1, verbose=0)
    _unchanged(model, before)


def test_streamed_batches_and_one_hot_targets():
    x, y = _data(np.nan)
    model = _model()
    before = model.get_weights()

    def batches():
        yield x[:8], _data()[1][:8]
        yield x[8:], y[:8]  # the bad row (5) arrives in the second batch

    with pytest.raises(ValueError, match="Argument `y` contains NaN"):
        model.fit(batches(), epochs=1, verbose=0)
    dataset = convx.data.Dataset.from_tensor_slices((x, y)).batch(4)
    with pytest.raises(ValueError, match="Argument `y` contains NaN"):
        model.evaluate(dataset, verbose=0)
    classifier = _model("categorical_crossentropy", units=3)
    one_hot = np.eye(3, dtype=np.float32)[np.arange(16) % 3]
    one_hot[2, 0] = np.inf
    with pytest.raises(ValueError, match="Argument `y` contains NaN or infinite"):
        classifier.fit(x, one_hot, epochs=1, verbose=0)
    assert np.isfinite(model.get_weights()[0]).all()
    del before


def test_finite_targets_still_train():
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=2, verbose=0)
    assert np.isfinite(model.evaluate(x, y, verbose=0))


@pytest.mark.parametrize("noise_shape", ["abc", (None, -1), (None, 0), (None, 2.5), (None, True), 7])
def test_dropout_noise_shape_values_are_checked(noise_shape):
    with pytest.raises(ValueError, match="noise_shape"):
        L.Dropout(0.5, noise_shape=noise_shape)


@pytest.mark.parametrize("noise_shape", [(None, 4, 4), (None, 10 ** 6, 2), (None, 3, 1)])
def test_dropout_noise_shape_must_broadcast_to_the_input(noise_shape):
    convx.utils.clear_session()
    model = convx.Sequential([convx.Input((4, 2)), L.Dropout(0.5, noise_shape=noise_shape), L.Flatten(), L.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((3, 4, 2), np.float32)
    with pytest.raises(ValueError, match="noise_shape=.* does not broadcast"):
        model.fit(x, np.ones((3, 1), np.float32), verbose=0)


def test_dropout_noise_shape_broadcasts_as_keras():
    convx.utils.clear_session()
    layer = L.Dropout(0.5, noise_shape=[None, 1, 2], seed=3)
    assert layer.noise_shape == (None, 1, 2)
    y = layer(np.ones((5, 4, 2), np.float32), training=True)
    assert (y == y[:, :1, :]).all()  # one mask value per (sample, channel), shared along axis 1


@pytest.mark.parametrize("layer", [lambda: L.UpSampling2D(size=(10 ** 6, 10 ** 6)), lambda: L.ZeroPadding2D(10 ** 9)],
                         ids=["upsampling", "zero_padding"])
def test_outputs_no_buffer_can_hold_are_refused_when_the_layer_is_built(layer):
    convx.utils.clear_session()
    with pytest.raises(ValueError, match="values per sample, more than any buffer can"):
        convx.Sequential([convx.Input((4, 4, 2)), layer()])
