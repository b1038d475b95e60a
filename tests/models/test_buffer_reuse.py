"""Models reuse layer buffers between steps without changing a number or handing a buffer to the user."""

import numpy as np
import pytest

import convx
from convx import layers as L
from convx.layers.base import Layer
from convx.models import plan as plan_module
from convx.models.plan import ConvPoolStep


def trained_pooled(net):
    """Indices (in net.layers) of the convolutions the training plan runs fused with their pooling."""
    steps = net._plan(True, True).steps
    return {net.layers.index(s.layer) for s in steps if isinstance(s, ConvPoolStep) and s.trained}


def pooled_in_inference(net):
    return {net.layers.index(s.layer) for s in net._plan(False, False).steps if isinstance(s, ConvPoolStep)}


def model(seed=7):
    convx.utils.set_random_seed(seed)
    net = convx.Sequential([
        L.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)), L.MaxPooling2D(), L.Flatten(),
        L.Dense(6, activation="tanh"), L.Dropout(0.25), L.Dense(3, activation="softmax"),
    ])
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return net


def conv1d_model(seed=7):
    convx.utils.set_random_seed(seed)
    net = convx.Sequential([
        L.Conv1D(3, 3, padding="same", activation="sigmoid", input_shape=(10, 2)), L.MaxPooling1D(),
        L.Conv1D(2, 2), L.Flatten(), L.Dense(2),
    ])
    net.compile(optimizer=convx.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return net


@pytest.fixture(autouse=True)
def fresh_names():
    convx.utils.clear_session()


def data(rng, n=45):
    return rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, n)


def poisoned_fresh_buffers(self, slot, shape, dtype=np.float32):
    """A new array per call, filled with values that would show if a kernel read an output before writing it."""
    dtype = np.dtype(dtype)
    fill = np.nan if dtype.kind == "f" else (True if dtype.kind == "b" else -(2 ** 40))
    return np.full(shape, fill, dtype=dtype)


@pytest.mark.parametrize("make, targets", [(model, "labels"), (conv1d_model, "values")])
def test_training_with_reused_buffers_matches_fresh_buffers_bit_for_bit(make, targets, rng, monkeypatch):
    shape = (8, 8, 1) if make is model else (10, 2)
    x = rng.random((45,) + shape, dtype=np.float32)
    y = rng.integers(0, 3, 45) if targets == "labels" else rng.standard_normal((45, 2)).astype(np.float32)
    val = (x[:13], y[:13])

    def run():
        net = make()
        # batch 16 leaves a partial batch of 13, and validation batches of 8 and 5: four shapes per buffer
        history = net.fit(x, y, batch_size=16, epochs=3, validation_data=val, validation_batch_size=8, verbose=0)
        return net.get_weights(), history.history, net.predict(x, batch_size=10, verbose=0)

    reused = run()
    with monkeypatch.context() as patch:
        patch.setattr(Layer, "_buffer", poisoned_fresh_buffers)
        patch.setattr(plan_module.Arena, "array", lambda self, shape, dtype: poisoned_fresh_buffers(None, "y", shape,
                                                                                                      dtype))
        fresh = run()
    for a, b in zip(reused[0], fresh[0]):
        np.testing.assert_array_equal(a, b)
    assert reused[1] == fresh[1]
    np.testing.assert_array_equal(reused[2], fresh[2])
    assert np.isfinite(reused[2]).all()


def test_train_steps_reuse_layer_buffers_and_write_gradients_into_the_flat_buffer(rng):
    net = model()
    x, y = data(rng)
    net.train_on_batch(x[:16], y[:16])
    conv, dense = net.layers[0], net.layers[3]
    # the first conv trains fused with its pooling: its output buffer is the pooled one
    outputs = [conv._state.buffers["y"][0], dense._state.buffers["dx"][0]]
    net.train_on_batch(x[16:32], y[16:32])
    assert [conv._state.buffers["y"][0], dense._state.buffers["dx"][0]] == outputs  # same objects, not reallocated
    assert len(conv._state.buffers["y"]) == 1 and conv._state.buffers["y"][0].shape == (16, 3, 3, 4)
    for w in net.trainable_weights:
        assert np.shares_memory(w.grad, net._grads)
    assert np.any(net._grads != 0)


def test_predict_results_survive_later_calls(rng):
    net = model()
    x1, _ = data(rng, 20)
    x2, _ = data(rng, 20)
    kept = []

    class Keep(convx.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            kept.append(logs["outputs"])

    results = [net.predict(x1, batch_size=8, verbose=0, callbacks=[Keep()]), net.predict_on_batch(x1), net(x1)]
    expected = [r.copy() for r in results]
    expected_batches = [k.copy() for k in kept]
    net.predict(x2, batch_size=8, verbose=0, callbacks=[Keep()])
    net.predict_on_batch(x2)
    net(x2)
    net.fit(x2, np.zeros(20, dtype=int), batch_size=8, verbose=0)
    for result, values in zip(results, expected):
        np.testing.assert_array_equal(result, values)
    for batch, values in zip(kept, expected_batches):
        np.testing.assert_array_equal(batch, values)
    assert not np.array_equal(results[0], net.predict(x1, verbose=0))  # fit changed the weights


def test_outputs_are_not_views_of_layer_buffers_or_inputs(rng):
    net = convx.Sequential([L.Flatten(input_shape=(2, 3)), L.Dense(4)])
    x = rng.random((5, 2, 3), dtype=np.float32)
    for result in (net.predict_on_batch(x), net(x), net.predict(x, verbose=0)):
        states = [state for plan in net._plans.values() for state in plan.states.values()]
        buffers = [a for state in states for cache in state.buffers.values() for a in cache]
        buffers += [s.arena._memory for p in net._plans.values() for s in p.steps if s.arena is not None]
        assert buffers and not any(np.shares_memory(result, b) for b in buffers)
    only_flatten = convx.Sequential([L.Flatten(input_shape=(2, 3))])
    assert not np.shares_memory(only_flatten.predict_on_batch(x), x)


@pytest.mark.parametrize("pool", [L.MaxPooling2D, L.AveragePooling2D])
def test_conv_skips_the_edge_a_valid_pooling_drops(rng, monkeypatch, pool):
    """A Conv2D before a valid pooling that drops its last row and column computes
    only what the pooling reads; predictions and training are bit-identical to
    computing everything."""
    def build():
        convx.utils.set_random_seed(3)
        net = convx.Sequential([
            L.Conv2D(6, 3, activation="tanh", input_shape=(11, 11, 4)), pool(), L.Conv2D(5, 2), pool(),
            L.Flatten(), L.Dense(3, activation="softmax"),
        ])
        net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return net

    x, y = rng.random((20, 11, 11, 4), dtype=np.float32), rng.integers(0, 3, 20)
    windowed = build()
    first = windowed._plan(True, True).steps[0]  # training: a tanh conv is not fused with its pooling
    assert first._output_window((None, 11, 11, 4)) == (8, 8)  # 9x9 output, 4x4 pooled
    full = build()
    windowed_predictions = windowed.predict(x, verbose=0)
    windowed.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    monkeypatch.setattr(plan_module, "REWRITES", [r for r in plan_module.REWRITES
                                                  if r is not plan_module.window_conv_outputs])
    assert full._plan(True, True).steps[0].window_pooling is None
    np.testing.assert_array_equal(windowed_predictions, full.predict(x, verbose=0))
    full.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(windowed.get_weights(), full.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_inference_pools_conv_outputs_in_one_pass(rng, monkeypatch):
    """predict/evaluate fuse Conv2D + valid MaxPooling2D (strides = pool size):
    the same numbers as running the two layers."""
    convx.utils.set_random_seed(5)
    net = convx.Sequential([
        L.Conv2D(8, 3, activation="relu", input_shape=(13, 13, 1)), L.MaxPooling2D(), L.Conv2D(16, 3),
        L.MaxPooling2D((2, 3)), L.Flatten(), L.Dense(3, activation="softmax"),
    ])
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = rng.random((10, 13, 13, 1), dtype=np.float32)
    assert pooled_in_inference(net) == {0, 2}
    fused = net.predict(x, verbose=0)
    monkeypatch.setattr(plan_module, "REWRITES", [r for r in plan_module.REWRITES
                                                  if r is not plan_module.fuse_conv_pool])
    net._plans.clear()
    assert pooled_in_inference(net) == set()
    np.testing.assert_array_equal(fused, net.predict(x, verbose=0))


def _first_layer_model(activation="relu", input_shape=(13, 13, 3), frozen_first=False):
    convx.utils.set_random_seed(11)
    net = convx.Sequential([
        L.Conv2D(8, 3, activation=activation, input_shape=input_shape), L.MaxPooling2D(), L.Conv2D(16, 3),
        L.MaxPooling2D(), L.Flatten(), L.Dense(3, activation="softmax"),
    ])
    net.layers[0].trainable = not frozen_first
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return net


def _train_separately(net, monkeypatch):
    for layer in net.layers:
        if hasattr(layer, "trains_pooled"):
            monkeypatch.setattr(layer, "trains_pooled", lambda pool_size: False)


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_training_fuses_each_conv_with_its_pooling(rng, monkeypatch, activation):
    """Both Conv2D + MaxPooling2D pairs train fused: the first (a small patch,
    no input gradient) recomputes its output in the backward pass, the second
    keeps only its maxima's positions. The same training as running the layers
    one by one, up to the order of the first layer's weight-gradient sums."""
    x, y = rng.random((40, 13, 13, 3), dtype=np.float32), rng.integers(0, 3, 40)
    fused, separate = _first_layer_model(activation), _first_layer_model(activation)
    _train_separately(separate, monkeypatch)
    calls = []
    for i in (0, 2):
        backward_pooled = type(fused.layers[i]).backward_pooled
        monkeypatch.setattr(fused.layers[i], "backward_pooled", lambda dy, i=i, f=backward_pooled: calls.append(i) or f(
            fused.layers[i], dy))
    fused_history = fused.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False).history
    separate_history = separate.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False).history
    assert calls == [2, 0] * 10 and trained_pooled(fused) == {0, 2} and trained_pooled(separate) == set()
    assert fused.layers[0]._state.pool_codes is None and fused.layers[2]._state.pool_codes is not None
    for i in (0, 2):  # the only output buffer is the pooled one: the conv outputs are never stored
        assert [a.shape[1:] for a in fused.layers[i]._state.buffers["y"]] == [fused.layers[i + 1].output_shape[1:]]
    for a, b in zip(fused.get_weights(), separate.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fused_history["loss"], separate_history["loss"], rtol=1e-5)


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_training_through_pooling_codes_is_the_layer_by_layer_training(rng, monkeypatch, activation):
    """Pairs trained from the pooling's codes (here both: the first layer's
    patch of 36 values is too large to recompute) give every bit of the
    layer-by-layer training: same forward values, same gradient rows, same sums."""
    x, y = rng.random((40, 13, 13, 4), dtype=np.float32), rng.integers(0, 3, 40)
    fused = _first_layer_model(activation, input_shape=(13, 13, 4))
    separate = _first_layer_model(activation, input_shape=(13, 13, 4))
    _train_separately(separate, monkeypatch)
    fused_history = fused.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False).history
    separate_history = separate.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False).history
    assert trained_pooled(fused) == {0, 2} and fused.layers[0]._state.pool_codes is not None
    for a, b in zip(fused.get_weights(), separate.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert fused_history == separate_history


@pytest.mark.parametrize("make, fused_pairs", [
    (lambda: _first_layer_model("tanh"), {2}),                         # the pooling's gradient needs relu or linear
    (lambda: _first_layer_model(input_shape=(13, 13, 4)), {0, 2}),     # 36 > 32 values: codes, not recomputing
    (lambda: _first_layer_model(frozen_first=True), {2}),              # below the first trainable layer: no backward
])
def test_training_fuses_the_pairs_it_can(rng, make, fused_pairs):
    net = make()
    x = rng.random((8,) + net.layers[0].input_shape[1:], dtype=np.float32)
    net.train_on_batch(x, rng.integers(0, 3, 8))
    assert trained_pooled(net) == fused_pairs
