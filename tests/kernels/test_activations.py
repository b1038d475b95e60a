"""Tests for convx._kernels.activations (forward epilogue and backward kernels)."""

import warnings

import numpy as np
import pytest

from convx._kernels.activations import activation_backward, activation_code, activation_forward
from gradcheck import check_gradient
from thread_identity import assert_same_for_any_thread_count

ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax"]


def _away_from_kink(rng, shape):
    """Values with |x| in [0.1, 2]: relu's kink at 0 would break finite differences."""
    x = rng.uniform(0.1, 2.0, size=shape)
    return x * rng.choice([-1.0, 1.0], size=shape)



@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_matches_finite_differences(rng, activation):
    x = _away_from_kink(rng, (3, 2, 5))
    w = rng.standard_normal(x.shape)
    y = activation_forward(x, activation)
    dx = activation_backward(y, w, activation)
    check_gradient(lambda: float(np.sum(activation_forward(x, activation) * w)), x, dx)


TORCH_FORWARD = {
    "linear": lambda F, t: t,
    "relu": lambda F, t: F.relu(t),
    "sigmoid": lambda F, t: F.sigmoid(t),
    "tanh": lambda F, t: F.tanh(t),
    "softmax": lambda F, t: F.softmax(t, dim=-1),
}


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_matches_torch_float32(rng, torch, activation):
    # float32 against PyTorch: forward within 1e-6 absolute (outputs are O(1)),
    # backward within 1e-6 absolute / 1e-5 relative.
    import torch.nn.functional as F

    x = (3 * rng.standard_normal((4, 3, 3, 6))).astype(np.float32)
    w = rng.standard_normal(x.shape).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = TORCH_FORWARD[activation](F, xt)
    (yt * torch.tensor(w)).sum().backward()

    y = activation_forward(x, activation)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(activation_backward(y, w, activation), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_inputs_are_stable(dtype):
    x = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = activation_forward(x, "sigmoid")
        sm = activation_forward(x, "softmax")
        t = activation_forward(x, "tanh")
    assert s[0, 0] == 0.0 and s[0, -1] == 1.0 and s[0, 2] == 0.5
    assert np.all(np.isfinite(sm)) and sm[0, -1] == 1.0 and np.sum(sm) == 1.0
    np.testing.assert_array_equal(t[0, [0, -1]], [-1.0, 1.0])


def test_softmax_rows_sum_to_one_and_shift_invariant(rng):
    x = rng.standard_normal((5, 7))
    y = activation_forward(x, "softmax")
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(activation_forward(x + 500.0, "softmax"), y, rtol=1e-12)


def test_in_place_forward_and_backward(rng):
    x = rng.standard_normal((4, 6))
    expected = np.tanh(x)
    out = activation_forward(x, "tanh", out=x)
    assert out is x
    np.testing.assert_allclose(x, expected, rtol=1e-15)

    dy = rng.standard_normal(x.shape)
    expected_dx = dy * (1 - x * x)
    dx = activation_backward(x, dy, "tanh", out=dy)
    assert dx is dy
    np.testing.assert_allclose(dy, expected_dx, rtol=1e-14)


def test_softmax_backward_in_place_on_y(rng):
    y = activation_forward(rng.standard_normal((3, 5)), "softmax")
    dy = rng.standard_normal(y.shape)
    expected = y * (dy - np.sum(dy * y, axis=-1, keepdims=True))
    activation_backward(y, dy, "softmax", out=y)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-15)


def test_out_given_and_non_contiguous_input(rng):
    base = rng.standard_normal((4, 10))
    x = base[:, ::2]
    out = np.empty((4, 5))
    y = activation_forward(x, "relu", out=out)
    assert y is out
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(base[:, ::2], x)  # input untouched


def test_input_is_not_modified_without_out(rng):
    x = rng.standard_normal((3, 4))
    saved = x.copy()
    activation_forward(x, "sigmoid")
    np.testing.assert_array_equal(x, saved)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_empty_batch(activation):
    for dtype in (np.float32, np.float64):
        x = np.zeros((0, 4, 4, 3), dtype=dtype)
        y = activation_forward(x, activation)
        assert y.shape == x.shape and y.dtype == dtype
        dx = activation_backward(y, y, activation)
        assert dx.shape == x.shape and dx.dtype == dtype


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_deterministic_across_thread_counts(rng, activation):
    # 600 * 257 elements is above the kernels' parallel threshold (131072).
    x = rng.standard_normal((600, 257)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)

    def forward_and_backward():
        y = activation_forward(x, activation)
        return y, activation_backward(y, dy, activation)

    assert_same_for_any_thread_count(forward_and_backward)


def test_zero_dimensional_input_keeps_its_shape():
    y = activation_forward(np.array(-3.0), "sigmoid")
    assert y.shape == () and y == pytest.approx(1 / (1 + np.exp(3.0)), rel=1e-15)
    assert activation_backward(y, np.array(2.0), "sigmoid").shape == ()


def test_activation_codes():
    assert activation_code(None) == 0
    assert [activation_code(a) for a in ACTIVATIONS] == [0, 1, 2, 3, 4]
    assert activation_code("ReLU") == 1
    assert activation_forward(np.array([-1.0, 2.0]), None).tolist() == [-1.0, 2.0]


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match=r"'linear', 'relu', 'sigmoid', 'tanh', 'softmax'.*got 'gelu'"):
        activation_forward(np.zeros(3), "gelu")
    with pytest.raises(ValueError, match="got 'swish'"):
        activation_backward(np.zeros(3), np.zeros(3), "swish")
    with pytest.raises(TypeError, match="activation must be a str or None, got int"):
        activation_code(3)


def test_bad_arrays():
    x = np.zeros((2, 3))
    with pytest.raises(TypeError, match="x must be a numpy.ndarray, got list"):
        activation_forward([1.0, 2.0], "relu")
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int64"):
        activation_forward(np.zeros(3, dtype=np.int64), "relu")
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3\), got \(3, 2\)"):
        activation_backward(x, np.zeros((3, 2)), "relu")
    with pytest.raises(TypeError, match="dy must have dtype float64.*got float32"):
        activation_backward(x, np.zeros((2, 3), np.float32), "relu")


def test_bad_out():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3\), got \(3, 2\)"):
        activation_forward(x, "relu", out=np.zeros((3, 2)))
    with pytest.raises(TypeError, match="out must have dtype float64, got float32"):
        activation_forward(x, "relu", out=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="out must be a writeable C-contiguous array"):
        activation_forward(x, "relu", out=np.zeros((3, 2)).T)
    with pytest.raises(TypeError, match="out must be a numpy.ndarray or None, got list"):
        activation_backward(x, x, "relu", out=[0.0])
