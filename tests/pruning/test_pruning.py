"""Magnitude pruning (schedules, masks through training, save/load, strip) and filter pruning."""

import numpy as np
import pytest

import convx
from convx import pruning


def _model(bn=False):
    layers = [convx.layers.Conv2D(8, (3, 3), activation="relu", input_shape=(12, 12, 2))]
    if bn:
        layers.append(convx.layers.BatchNormalization())
    layers += [convx.layers.MaxPooling2D((2, 2)), convx.layers.Conv2D(12, (3, 3), activation="relu"),
               convx.layers.Flatten(), convx.layers.Dense(16, activation="relu"), convx.layers.Dense(3)]
    model = convx.Sequential(layers)
    model.build((None, 12, 12, 2))
    return model


def _data(n=96):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 12, 12, 2)).astype(np.float32), rng.integers(0, 3, size=n)


def test_schedules_as_the_toolkit():
    constant = pruning.ConstantSparsity(0.8, begin_step=10, frequency=5)
    assert constant(9) == (False, 0.8) and constant(10) == (True, 0.8) and constant(15)[0] and not constant(16)[0]
    decay = pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=100, frequency=10)
    assert decay(0) == (True, 0.0)
    assert decay(50)[1] == pytest.approx(0.8 - 0.8 * 0.5 ** 3)
    assert decay(100) == (True, pytest.approx(0.8)) and decay(200)[1] == pytest.approx(0.8) and not decay(110)[0]


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, "x"])
def test_sparsity_outside_range_refused(bad):
    with pytest.raises(ValueError, match="sparsity"):
        pruning.ConstantSparsity(bad, 0)
    with pytest.raises(ValueError, match="final_sparsity"):
        pruning.PolynomialDecay(0.0, bad, 0, 10)
    with pytest.raises(ValueError, match="fraction"):
        pruning.prune_filters(_model(), bad)


def test_masks_hold_through_training_and_save(tmp_path):
    x, y = _data()
    model = _model()
    pruned = pruning.prune_low_magnitude(model, pruning_schedule=pruning.ConstantSparsity(0.75, 0, frequency=1000))
    np.testing.assert_array_equal(pruned.predict(x, verbose=0), model.predict(x, verbose=0))
    pruned.compile(optimizer="adam", loss=convx.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[pruning.UpdatePruningStep()])
    for layer in pruned.layers:
        if getattr(layer, "kernel", None) is not None:
            mask = layer.weights[-1]
            assert mask.name == "pruning_mask"
            assert np.mean(mask.value == 0) == pytest.approx(0.75, abs=0.01)
            assert np.all(layer.kernel.value[mask.value == 0] == 0)
            assert np.all(layer.kernel.grad[mask.value == 0] == 0)  # the last step's gradients
    path = tmp_path / "pruned.keras"
    pruned.save(path)
    restored = convx.models.load_model(path)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), pruned.predict(x, verbose=0))
    assert [w.name for w in restored.layers[0].weights] == ["kernel", "bias", "pruning_mask"]
    stripped = pruning.strip_pruning(restored)
    assert [w.name for w in stripped.layers[0].weights] == ["kernel", "bias"]
    np.testing.assert_array_equal(stripped.predict(x, verbose=0), pruned.predict(x, verbose=0))
    assert pruning.sparsity(stripped) == pytest.approx(0.75, abs=0.01)


def test_polynomial_decay_reaches_final_sparsity():
    x, y = _data(64)
    pruned = pruning.prune_low_magnitude(_model(), pruning.PolynomialDecay(0.2, 0.6, 0, 8, frequency=2))
    pruned.compile(optimizer="sgd", loss=convx.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[pruning.UpdatePruningStep()])
    assert pruning.sparsity(pruned) == pytest.approx(0.6, abs=0.01)


def test_callback_without_pruned_layers_refused():
    x, y = _data(16)
    model = _model()
    model.compile(optimizer="sgd", loss=convx.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="prune_low_magnitude"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[pruning.UpdatePruningStep()])


@pytest.mark.parametrize("bn", [False, True])
def test_prune_filters_removes_channels_consistently(bn):
    """Filters whose outputs are exactly 0 (after BatchNormalization too) are the ones removed, and
    the smaller model computes what the original did: every reader's input channels were cut to match."""
    x, _ = _data(8)
    model = _model(bn)
    rng = np.random.default_rng(1)
    for layer in model.layers[:-1]:
        if getattr(layer, "kernel", None) is None:
            continue
        kernel, bias = layer.get_weights()
        kernel[..., ::2], bias[:] = 0.0, rng.uniform(0.1, 0.5, size=bias.shape)
        bias[::2] = 0.0
        layer.set_weights([kernel, bias])
    if bn:
        gamma, beta, mean, var = (rng.uniform(0.5, 2, 8), rng.normal(size=8), rng.normal(size=8),
                                  rng.uniform(0.5, 2, 8))
        beta[::2] = mean[::2] = 0.0  # a zero channel stays zero through the normalization
        model.layers[1].set_weights([gamma, beta, mean, var])
    smaller = pruning.prune_filters(model, 0.5)
    assert smaller.layers[0].kernel.shape == (3, 3, 2, 4)
    conv2 = smaller.layers[3 if bn else 2]
    assert conv2.kernel.shape == (3, 3, 4, 6)
    assert smaller.layers[-2].kernel.shape == (3 * 3 * 6, 8) and smaller.layers[-1].kernel.shape == (8, 3)
    if bn:
        assert smaller.layers[1].moving_mean.shape == (4,)
    np.testing.assert_allclose(smaller.layers[0].get_weights()[0], model.layers[0].get_weights()[0][..., 1::2])
    np.testing.assert_allclose(smaller.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    assert smaller.count_params() < model.count_params() / 3


def test_prune_filters_refusals():
    with pytest.raises(ValueError, match="criterion"):
        pruning.prune_filters(_model(), 0.5, criterion="l3")
    inputs = convx.Input((4,))
    functional = convx.Model(inputs, convx.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="Sequential"):
        pruning.prune_filters(functional, 0.5)
