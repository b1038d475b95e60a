"""Layers write outputs and gradients into buffers kept between steps (no large allocation per step)."""

import numpy as np
import pytest

from convx import layers as L


def step(layer, x, rng):
    """One forward + backward; returns (y, dx)."""
    y = layer.forward(x, training=True)
    return y, layer.backward(rng.standard_normal(y.shape).astype(np.float32))


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: L.Conv2D(3, 3, activation="relu"), (4, 7, 7, 2)),
        (lambda: L.Conv1D(3, 2, padding="same", activation="tanh"), (4, 9, 2)),
        (lambda: L.MaxPooling2D(), (4, 6, 6, 3)),
        (lambda: L.AveragePooling1D(2), (4, 8, 3)),
        (lambda: L.Dense(5, activation="sigmoid"), (4, 6)),
        (lambda: L.Activation("softmax"), (4, 6)),
        (lambda: L.Dropout(0.5, seed=3), (4, 6)),
    ],
)
def test_outputs_and_input_gradients_reuse_their_buffers(make, shape, rng):
    layer = make()
    layer.build_for((None,) + shape[1:])
    x1, x2 = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    y1, dx1 = step(layer, x1, rng)
    y1_values, dx1_values = y1.copy(), dx1.copy()
    y2, dx2 = step(layer, x2, rng)
    assert np.shares_memory(y1, y2) and np.shares_memory(dx1, dx2)
    # the buffers really were rewritten (the reuse is visible), so callers must copy what they keep
    assert not np.array_equal(y1_values, y2) and not np.array_equal(dx1_values, dx2)


def test_weight_gradients_are_written_into_the_variables_grad_arrays(rng):
    conv = L.Conv1D(4, 3)
    conv.build_for((None, 8, 2))
    grads = [w.grad for w in conv.weights]
    step(conv, rng.standard_normal((2, 8, 2)).astype(np.float32), rng)
    assert all(w.grad is g for w, g in zip(conv.weights, grads))
    assert all(np.any(g != 0) for g in grads)


def test_cache_keeps_the_two_most_recent_shapes_per_output(rng):
    dense = L.Dense(3)
    dense.build_for((None, 4))
    full, partial, other = (rng.standard_normal((n, 4)).astype(np.float32) for n in (8, 5, 2))
    y_full = dense.forward(full)
    y_partial = dense.forward(partial)
    assert np.shares_memory(dense.forward(full), y_full)  # alternating shapes: no reallocation
    assert np.shares_memory(dense.forward(partial), y_partial)
    dense.forward(other)  # a third shape evicts the least recently used one (full)
    assert len(dense._state.buffers["y"]) == 2
    assert not np.shares_memory(dense.forward(full), y_full)


def test_dropout_mask_is_unchanged_by_the_in_place_computation():
    layer = L.Dropout(0.3, seed=5)
    x = np.ones((6, 7), dtype=np.float32)
    y = layer.forward(x, training=True)
    keep = np.random.default_rng(5).random((6, 7), dtype=np.float32) >= 0.3
    np.testing.assert_array_equal(y, keep.astype(np.float32) * np.float32(1 / 0.7))


def test_layer_call_returns_an_array_the_next_call_does_not_touch(rng):
    conv = L.Conv2D(2, 3)
    x1, x2 = (rng.standard_normal((2, 5, 5, 1)).astype(np.float32) for _ in range(2))
    y1 = conv(x1)
    expected = y1.copy()
    conv(x2)
    np.testing.assert_array_equal(y1, expected)
