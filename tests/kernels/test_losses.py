"""Tests for convx._kernels.losses: per-row losses and the gradient of their mean."""

import numpy as np
import pytest

from convx._kernels import losses
from gradcheck import check_gradient
from thread_identity import assert_same_for_any_thread_count

EPS = 1e-7
N, C = 6, 5


def _onehot(labels, c):
    return np.eye(c)[labels]


def _log_softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# Keras 3 semantics, written independently in NumPy (float64).
def _ref_categorical(p, t):
    q = np.clip(p / p.sum(axis=-1, keepdims=True), EPS, 1 - EPS)
    return -np.sum(t * np.log(q), axis=-1)


def _ref_binary(p, t):
    pc = np.clip(p, EPS, 1 - EPS)
    return np.mean(-(t * np.log(pc) + (1 - t) * np.log(1 - pc)), axis=-1)


def _ref_sigmoid_binary(x, t):
    return np.mean(np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x))), axis=-1)


def _cases(rng):
    """name -> (function, first argument, second argument, NumPy reference of the losses).

    Probabilities lie in [0.1, 1] (rows not normalised) or [0.05, 0.95], and
    targets are soft, so the checks are away from the clip boundaries and
    exercise the row normalisation and non-unit target sums.
    """
    logits = 2 * rng.standard_normal((N, C))
    probs = rng.uniform(0.1, 1.0, (N, C))
    binary = rng.uniform(0.05, 0.95, (N, C))
    soft = rng.uniform(0.0, 1.0, (N, C))
    labels = rng.integers(0, C, N)
    return {
        "sparse_softmax_cross_entropy": (
            losses.sparse_softmax_cross_entropy, logits, labels,
            -np.sum(_onehot(labels, C) * _log_softmax(logits), axis=-1)),
        "softmax_cross_entropy": (
            losses.softmax_cross_entropy, logits, soft, -np.sum(soft * _log_softmax(logits), axis=-1)),
        "sparse_categorical_crossentropy": (
            losses.sparse_categorical_crossentropy, probs, labels, _ref_categorical(probs, _onehot(labels, C))),
        "categorical_crossentropy": (
            losses.categorical_crossentropy, probs, soft, _ref_categorical(probs, soft)),
        "sigmoid_binary_crossentropy": (
            losses.sigmoid_binary_crossentropy, logits, soft, _ref_sigmoid_binary(logits, soft)),
        "binary_crossentropy": (losses.binary_crossentropy, binary, soft, _ref_binary(binary, soft)),
        "mean_squared_error": (
            losses.mean_squared_error, logits, soft, np.mean((logits - soft) ** 2, axis=-1)),
    }


NAMES = [
    "sparse_softmax_cross_entropy",
    "softmax_cross_entropy",
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "sigmoid_binary_crossentropy",
    "binary_crossentropy",
    "mean_squared_error",
]
SPARSE = {"sparse_softmax_cross_entropy", "sparse_categorical_crossentropy"}
FIRST_ARGUMENT = {
    "sparse_softmax_cross_entropy": "logits",
    "softmax_cross_entropy": "logits",
    "sparse_categorical_crossentropy": "probs",
    "categorical_crossentropy": "probs",
    "sigmoid_binary_crossentropy": "logits",
    "binary_crossentropy": "probs",
    "mean_squared_error": "pred",
}


@pytest.mark.parametrize("name", NAMES)
def test_losses_match_numpy_reference(rng, name):
    fn, a, b, expected = _cases(rng)[name]
    loss, grad = fn(a, b)
    assert loss.shape == (N,) and grad.shape == a.shape and loss.dtype == grad.dtype == np.float64
    np.testing.assert_allclose(loss, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(rng, name):
    fn, a, b, _ = _cases(rng)[name]
    _, grad = fn(a, b)
    check_gradient(lambda: float(np.mean(fn(a, b)[0])), a, grad)


def _torch_reference(torch, name, a, b):
    """PyTorch float32 losses (reduction='none', per row) of the same semantics."""
    import torch.nn.functional as F

    c = a.shape[1]
    if name == "sparse_softmax_cross_entropy":
        return F.cross_entropy(a, b, reduction="none")
    if name == "softmax_cross_entropy":
        return F.cross_entropy(a, b, reduction="none")  # probability targets
    if name in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        t = F.one_hot(b, c).to(a.dtype) if name in SPARSE else b
        q = torch.clamp(a / a.sum(dim=-1, keepdim=True), EPS, 1 - EPS)
        return -(t * torch.log(q)).sum(dim=-1)
    if name == "sigmoid_binary_crossentropy":
        return F.binary_cross_entropy_with_logits(a, b, reduction="none").mean(dim=-1)
    if name == "binary_crossentropy":
        return F.binary_cross_entropy(a, b, reduction="none").mean(dim=-1)
    return F.mse_loss(a, b, reduction="none").mean(dim=-1)


@pytest.mark.parametrize("name", NAMES)
def test_matches_torch_float32(rng, torch, name):
    # float32 against PyTorch autograd: losses (O(1)) within 2e-6 relative /
    # 1e-6 absolute, gradients of the mean (O(1/N)) within 1e-5 relative / 1e-7 absolute.
    fn, a, b, _ = _cases(rng)[name]
    a = a.astype(np.float32)
    b = b if name in SPARSE else b.astype(np.float32)
    at = torch.tensor(a, requires_grad=True)
    bt = torch.tensor(b)
    expected = _torch_reference(torch, name, at, bt)
    expected.mean().backward()

    loss, grad = fn(a, b)
    assert loss.dtype == grad.dtype == np.float32
    np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(grad, at.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_large_logits(dtype):
    logits = np.array([[1e4, 0.0, -1e4]] * 3, dtype=dtype)
    labels = np.array([0, 1, 2])
    loss, grad = losses.sparse_softmax_cross_entropy(logits, labels)
    np.testing.assert_array_equal(loss, np.array([0.0, 1e4, 2e4], dtype=dtype))
    expected_grad = (np.array([[1.0, 0, 0]] * 3) - _onehot(labels, 3)) / 3
    np.testing.assert_array_equal(grad, expected_grad.astype(dtype))

    dense_loss, dense_grad = losses.softmax_cross_entropy(logits, _onehot(labels, 3).astype(dtype))
    np.testing.assert_array_equal(dense_loss, loss)
    np.testing.assert_array_equal(dense_grad, grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_binary_crossentropy_large_logits(dtype):
    logits = np.array([[1e4, -1e4, 1e4, -1e4]], dtype=dtype)
    targets = np.array([[1.0, 0.0, 0.0, 1.0]], dtype=dtype)
    loss, grad = losses.sigmoid_binary_crossentropy(logits, targets)
    np.testing.assert_array_equal(loss, np.array([1e4 / 2], dtype=dtype))
    np.testing.assert_array_equal(grad, np.array([[0.0, 0.0, 0.25, -0.25]], dtype=dtype))


def test_probability_losses_clip_like_keras():
    # Exact zeros and ones are clipped to [1e-7, 1 - 1e-7]; the clipped entries get no gradient.
    p = np.array([[0.0, 1.0], [1.0, 0.0]])
    t = np.array([[1.0, 0.0], [1.0, 0.0]])
    loss, grad = losses.binary_crossentropy(p, t)
    np.testing.assert_allclose(loss, _ref_binary(p, t), rtol=1e-12)
    assert loss[0] > 16.0  # -log(1e-7) = 16.1
    np.testing.assert_array_equal(grad, 0.0)

    loss, grad = losses.categorical_crossentropy(p, t)
    np.testing.assert_allclose(loss, [-np.log(EPS), -np.log(1 - EPS)], rtol=1e-12)
    assert np.all(np.isfinite(grad))
    loss, grad = losses.sparse_categorical_crossentropy(p, np.array([0, 0]))
    np.testing.assert_allclose(loss, [-np.log(EPS), -np.log(1 - EPS)], rtol=1e-12)
    np.testing.assert_array_equal(grad, 0.0)


def test_labels_accept_column_and_any_integer_dtype(rng):
    logits = rng.standard_normal((N, C))
    labels = rng.integers(0, C, N)
    expected = losses.sparse_softmax_cross_entropy(logits, labels)
    for alt in (labels.reshape(N, 1), labels.astype(np.uint8), labels.astype(np.int32)):
        loss, grad = losses.sparse_softmax_cross_entropy(logits, alt)
        np.testing.assert_array_equal(loss, expected[0])
        np.testing.assert_array_equal(grad, expected[1])


def test_non_contiguous_inputs(rng):
    pred = rng.standard_normal((N, 2 * C))[:, ::2]
    targets = rng.standard_normal((C, N)).T
    loss, grad = losses.mean_squared_error(pred, targets)
    np.testing.assert_allclose(loss, np.mean((pred - targets) ** 2, axis=-1), rtol=1e-14)
    np.testing.assert_allclose(grad, 2 * (pred - targets) / (N * C), rtol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch(name):
    fn = getattr(losses, name)
    for dtype in (np.float32, np.float64):
        a = np.zeros((0, C), dtype=dtype)
        b = np.zeros(0, dtype=np.int64) if name in SPARSE else a
        loss, grad = fn(a, b)
        assert loss.shape == (0,) and grad.shape == (0, C)
        assert loss.dtype == grad.dtype == dtype



@pytest.mark.parametrize("name", NAMES)
def test_deterministic_across_thread_counts(rng, name):
    # 3600 * 37 elements is above the kernels' parallel threshold (131072).
    n, c = 3600, 37
    first = {
        "sparse_softmax_cross_entropy": 3 * rng.standard_normal((n, c)),
        "softmax_cross_entropy": 3 * rng.standard_normal((n, c)),
        "sigmoid_binary_crossentropy": 3 * rng.standard_normal((n, c)),
        "mean_squared_error": rng.standard_normal((n, c)),
    }.get(name, rng.uniform(0.05, 0.95, (n, c))).astype(np.float32)
    second = rng.integers(0, c, n) if name in SPARSE else rng.uniform(0, 1, (n, c)).astype(np.float32)
    assert_same_for_any_thread_count(lambda: getattr(losses, name)(first, second))


@pytest.mark.parametrize("name", sorted(SPARSE))
def test_labels_out_of_range(name):
    fn = getattr(losses, name)
    a = np.full((3, 5), 0.2)
    with pytest.raises(ValueError, match=r"labels must be in \[0, C\) = \[0, 5\) for C = 5 classes, got 7"):
        fn(a, np.array([0, 7, 1]))
    with pytest.raises(ValueError, match=r"labels must be in .* got -1"):
        fn(a, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\), got \(4,\)"):
        fn(a, np.array([0, 1, 1, 2]))
    with pytest.raises(TypeError, match="labels must have an integer dtype, got float64"):
        fn(a, np.array([0.0, 1.0, 1.0]))


@pytest.mark.parametrize("name", sorted(set(NAMES) - SPARSE))
def test_bad_targets(name):
    fn = getattr(losses, name)
    a = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match=r"targets must have shape \(3, 4\), got \(3, 5\)"):
        fn(a, np.zeros((3, 5)))
    with pytest.raises(TypeError, match="targets must have dtype float64.*got float32"):
        fn(a, np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="targets must be a numpy.ndarray, got list"):
        fn(a, [[0.0] * 4] * 3)


@pytest.mark.parametrize("name", NAMES)
def test_bad_first_argument(name):
    fn = getattr(losses, name)
    arg = FIRST_ARGUMENT[name]
    second = np.zeros(3, dtype=np.int64) if name in SPARSE else np.zeros(3)
    with pytest.raises(ValueError, match=rf"{arg} must be 2-D, got 1-D"):
        fn(np.zeros(3), second)
    with pytest.raises(TypeError, match=rf"{arg} must have dtype float32 or float64, got int64"):
        fn(np.zeros((3, 2), np.int64), second)
    second = np.zeros(3, dtype=np.int64) if name in SPARSE else np.zeros((3, 0))
    with pytest.raises(ValueError, match=rf"{arg} must have at least one column"):
        fn(np.zeros((3, 0)), second)
