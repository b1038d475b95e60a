"""Loss and metric objects: Keras values, lookup, target validation."""

import numpy as np
import pytest

import convx
from convx import losses, metrics


def test_loss_objects_match_keras_formulas(rng):
    probs = rng.random((6, 4)).astype(np.float32) + 0.05
    probs /= probs.sum(1, keepdims=True)
    labels = rng.integers(0, 4, 6)
    expected = -np.log(probs[np.arange(6), labels]).mean()
    np.testing.assert_allclose(losses.SparseCategoricalCrossentropy()(labels, probs), expected, rtol=1e-5)
    onehot = convx.utils.to_categorical(labels, 4)
    np.testing.assert_allclose(losses.get("categorical_crossentropy")(onehot, probs), expected, rtol=1e-5)
    logits = np.log(probs)
    np.testing.assert_allclose(losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.get("mse")(onehot, probs), ((onehot - probs) ** 2).mean(), rtol=1e-5)
    p = rng.random((5, 1)).astype(np.float32) * 0.9 + 0.05
    t = rng.integers(0, 2, 5)
    bce = -(t * np.log(p[:, 0]) + (1 - t) * np.log(1 - p[:, 0])).mean()
    np.testing.assert_allclose(losses.BinaryCrossentropy()(t, p), bce, rtol=1e-4)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(labels, probs), -np.log(probs[np.arange(6), labels]), rtol=1e-5)


def test_label_smoothing_changes_targets():
    probs = np.array([[0.7, 0.2, 0.1]], dtype=np.float32)
    smooth = losses.CategoricalCrossentropy(label_smoothing=0.3)([[1, 0, 0]], probs)
    targets = np.array([0.8, 0.1, 0.1])
    np.testing.assert_allclose(smooth, -(targets * np.log(probs[0])).sum(), rtol=1e-5)


def test_lookup_errors_and_target_validation():
    with pytest.raises(ValueError, match="Could not interpret loss identifier: 'kld'"):
        losses.get("kld")
    with pytest.raises(ValueError, match="Could not interpret metric identifier: 'auc'"):
        metrics.get("auc")
    with pytest.raises(ValueError, match=r"labels y must be in \[0, 2\).*\[-1, 1\]"):
        losses.SparseCategoricalCrossentropy()(np.array([-1, 1]), np.full((2, 2), 0.5, np.float32))
    with pytest.raises(ValueError, match=r"targets y of shape \(N,\) \+ \(3,\).*received y of shape \(2, 2\)"):
        losses.CategoricalCrossentropy()(np.zeros((2, 2)), np.full((2, 3), 1 / 3, np.float32))


def test_metrics_accumulate_running_means():
    acc = metrics.SparseCategoricalAccuracy()
    acc.update_state(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]))
    acc.update_state(np.array([1]), np.array([[0.1, 0.9]]))
    assert acc.result() == pytest.approx(2 / 3)
    acc.reset_state()
    assert acc.result() == 0.0
    binary = metrics.get("binary_accuracy")
    binary.update_state(np.array([[1], [0]]), np.array([[0.6], [0.7]]))
    assert binary.result() == 0.5 and binary.name == "binary_accuracy"
    assert metrics.get("acc", (4,), (4, 3)).name == "acc"
    mean = metrics.Mean()
    mean.update_state(2.0, sample_weight=3)
    mean.update_state(4.0, sample_weight=1)
    assert mean.result() == pytest.approx(2.5)


def test_to_categorical():
    np.testing.assert_array_equal(convx.utils.to_categorical([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"labels in \[0, 2\)"):
        convx.utils.to_categorical([2], 2)
