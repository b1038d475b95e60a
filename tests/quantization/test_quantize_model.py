"""model.quantize('int8'): static and dynamic activation scales on a small MNIST model, its API
(predict, evaluate, save / load_model, summary), an exact integer reference of a quantized layer,
and the refusals."""

import numpy as np
import pytest

import convx
from quant_reference import conv_sums, epilogue, max_pool, quantize
from thread_identity import assert_same_for_any_thread_count


def _model():
    return convx.Sequential([
        convx.layers.Conv2D(8, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        convx.layers.MaxPooling2D((2, 2)),
        convx.layers.Conv2D(16, (3, 3), activation="relu", padding="same"),
        convx.layers.MaxPooling2D((2, 2)),
        convx.layers.Flatten(),
        convx.layers.Dense(32, activation="relu"),
        convx.layers.Dense(10, activation="softmax"),
    ])


@pytest.fixture(scope="module")
def mnist():
    (x, y), (xt, yt) = convx.datasets.mnist.load_data()
    x = (x[:3000] / 255.0).astype(np.float32)[..., None]
    xt = (xt[:1000] / 255.0).astype(np.float32)[..., None]
    return x, y[:3000], xt, yt[:1000]


@pytest.fixture(scope="module")
def trained(mnist, tmp_path_factory):
    x, y, _, _ = mnist
    convx.utils.set_random_seed(0)
    model = _model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("q") / "float.keras"
    model.save(path)
    return path


@pytest.mark.parametrize("calibrated", [True, False])
def test_int8_model_keeps_accuracy_and_api(trained, mnist, tmp_path, calibrated):
    x, _, xt, yt = mnist
    model = convx.models.load_model(trained)
    float_pred = model.predict(xt, verbose=0)
    model.quantize("int8", calibration_data=x[:500] if calibrated else None)
    pred = model.predict(xt, verbose=0)
    assert pred.dtype == np.float32 and pred.shape == float_pred.shape
    assert np.mean(pred.argmax(1) == float_pred.argmax(1)) > 0.98
    assert np.abs(pred - float_pred).max() < 0.2
    loss, accuracy = model.evaluate(xt, yt, verbose=0)
    assert abs(accuracy - np.mean(float_pred.argmax(1) == yt)) < 0.02
    # batch 1 (dynamic scales come from each batch: those of a 1-sample batch differ from a 32-sample one's)
    np.testing.assert_array_equal(model.predict_on_batch(xt[:1]), pred[:1] if calibrated else
                                  model.predict(xt[:1], verbose=0))
    weights = model.layers[0].weights
    assert [w.name for w in weights][:3] == ["kernel", "bias", "kernel_scale"]
    assert weights[0].dtype == np.int8 and weights[2].shape == (8,)
    assert (len(weights) == 5) == calibrated
    path = tmp_path / "int8.keras"
    model.save(path)
    restored = convx.models.load_model(path)
    np.testing.assert_array_equal(restored.predict(xt, verbose=0), pred)
    assert restored.layers[0].get_config()["dtype"]["config"] == {"mode": "int8", "source_name": "float32"}
    assert path.stat().st_size * 3 < trained.stat().st_size
    lines = []
    restored.summary(print_fn=lines.append)
    assert "conv2d (Conv2D, int8)" in lines[0] or "(Conv2D, int8)" in lines[0]


def test_static_layer_matches_integer_reference(trained, mnist):
    """The first layer's fused conv + relu + pool output equals the integer reference exactly."""
    x, _, xt, _ = mnist
    model = convx.models.load_model(trained)
    model.quantize("int8", calibration_data=x[:200])
    layer = model.layers[0]
    batch = xt[:7]
    got = layer.forward_pooled(batch, (2, 2))
    s_x, z_x = float(layer.input_scale.value), int(layer.input_zero_point.value)
    xq = quantize(batch, s_x, z_x)
    kernel = layer.kernel.value
    real = s_x / layer.kernel_scale.value.astype(np.float64)
    bias_q = np.rint(layer.bias.value / real).astype(np.int64)
    offset = (bias_q - z_x * kernel.astype(np.int64).sum(axis=(0, 1, 2))).astype(np.int32)
    want = epilogue(max_pool(conv_sums(xq, kernel, zero_point=z_x), (2, 2)), offset,
                    scale=real.astype(np.float32), relu=True)
    np.testing.assert_array_equal(got, want)


def test_predict_same_bits_for_any_thread_count(trained, mnist):
    x, _, xt, _ = mnist
    model = convx.models.load_model(trained)
    model.quantize("int8", calibration_data=x[:200], method="percentile", percentile=99.9)
    assert_same_for_any_thread_count(lambda: model.predict(xt[:300], verbose=0))


def test_refusals(trained, mnist):
    x, _, _, _ = mnist
    with pytest.raises(ValueError, match="not built"):
        _model_unbuilt = convx.Sequential([convx.layers.Dense(3)])
        _model_unbuilt.quantize("int8")
    with pytest.raises(ValueError, match="untrained"):
        _model().quantize("int8")
    model = convx.models.load_model(trained)
    with pytest.raises(ValueError, match="mode"):
        model.quantize("int4")
    with pytest.raises(ValueError, match="incompatible|expected"):
        model.quantize("int8", calibration_data=np.zeros((4, 27, 28, 1), np.float32))
    bad = x[:10].copy()
    bad[3, 4, 5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.quantize("int8", calibration_data=bad)
    with pytest.raises(ValueError, match="percentile"):
        model.quantize("int8", calibration_data=x[:10], method="percentile", percentile=120)
    model.quantize("int8")
    with pytest.raises(ValueError, match="already quantized"):
        model.quantize("int8")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="int8"):
        model.fit(x[:64], np.zeros(64, np.int64), epochs=1, verbose=0)


def test_static_int8_layers_chain_in_uint8(trained, mnist):
    """Inside the plan each static int8 layer requantizes its output into the next one's input scale
    (through the fused pooling and Flatten); a direct layer call still returns float32."""
    x, _, xt, _ = mnist
    model = convx.models.load_model(trained)
    model.quantize("int8", calibration_data=x[:200])
    model.predict(xt[:4], verbose=0)
    chains = [layer._int8.chain for layer in model.layers if layer._int8 is not None]
    assert [(c[0] is model.layers[i], c[1]) for c, i in zip(chains[:3], (2, 5, 6))] == [
        (True, "pooled"), (True, "pooled"), (True, "direct")]
    assert chains[3] is None  # the output layer
    assert model.layers[0](xt[:2]).dtype == np.float32
    dynamic = convx.models.load_model(trained)
    dynamic.quantize("int8")
    dynamic.predict(xt[:4], verbose=0)
    assert all(layer._int8.chain is None for layer in dynamic.layers if layer._int8 is not None)


def test_seven_bit_activations(trained, mnist, tmp_path):
    """activation_bits=7: inputs in [0, 127] (AVX2 runs them without splitting bytes), saved with the model."""
    x, _, xt, _ = mnist
    model = convx.models.load_model(trained)
    float_pred = model.predict(xt, verbose=0)
    model.quantize("int8", calibration_data=x[:300], activation_bits=7)
    pred = model.predict(xt, verbose=0)
    assert np.mean(pred.argmax(1) == float_pred.argmax(1)) > 0.98
    first = model.layers[0]
    assert first._int8.qmax == 127
    from convx.quantization.layers import quantize_input

    assert quantize_input(first, xt[:8] * 5.0)[0].max() == 127  # beyond the calibrated range: clipped
    path = tmp_path / "int8_7bit.keras"
    model.save(path)
    restored = convx.models.load_model(path)
    assert restored.layers[0]._int8.qmax == 127
    np.testing.assert_array_equal(restored.predict(xt, verbose=0), pred)
    with pytest.raises(ValueError, match="activation_bits"):
        convx.models.load_model(trained).quantize("int8", calibration_data=x[:10], activation_bits=4)


def test_keras_loads_a_dynamic_int8_dense_model(tmp_path):
    """Keras 3 reads convx's int8 Dense as its own int8 layer: the int8 kernel and kernel_scale as saved
    (its inputs are quantized per row, convx's per tensor: predictions agree to ~1e-2)."""
    from conftest import optional

    keras = optional("keras", "test")
    model = convx.Sequential([convx.layers.Dense(16, activation="relu", input_shape=(8,)), convx.layers.Dense(4)])
    model.build((None, 8))
    weights = model.get_weights()
    weights[1][:] = 0.1
    model.set_weights(weights)
    model.quantize("int8")
    x = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    path = tmp_path / "dense_int8.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert restored.layers[0].quantization_mode == "int8"
    np.testing.assert_array_equal(np.asarray(restored.layers[0]._kernel), model.layers[0].kernel.value)
    np.testing.assert_allclose(np.asarray(restored.layers[0].kernel_scale), model.layers[0].kernel_scale.value)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=0.05)
