"""Dense kernels: finite differences (float64), PyTorch oracle (float32), bad input, determinism."""

import numpy as np
import pytest

from convx._kernels import dense
from convx._kernels.activations import activation_backward
from gradcheck import check_gradient
from thread_identity import assert_same_for_any_thread_count


@pytest.mark.parametrize("n, n_in, n_out", [(1, 1, 1), (4, 7, 3), (9, 20, 13)])
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_dense_gradients_match_finite_differences(rng, n, n_in, n_out, activation):
    x = rng.standard_normal((n, n_in))
    kernel = rng.standard_normal((n_in, n_out))
    bias = rng.standard_normal(n_out)
    weights = rng.standard_normal((n, n_out))

    def loss():
        return float(np.sum(dense.dense_forward(x, kernel, bias, activation) * weights))

    y = dense.dense_forward(x, kernel, bias, activation)
    dz = activation_backward(y, weights, activation)
    dx, dkernel, dbias = dense.dense_backward(x, kernel, dz)
    check_gradient(loss, x, dx)
    check_gradient(loss, kernel, dkernel)
    check_gradient(loss, bias, dbias)


@pytest.mark.parametrize("n, n_in, n_out", [(32, 128, 10), (64, 1152, 128), (3, 5, 700)])
def test_dense_matches_pytorch(rng, torch, n, n_in, n_out):
    """Forward (relu fused) and gradients against torch, float32, atol 1e-4 x max magnitude."""
    x = rng.standard_normal((n, n_in)).astype(np.float32)
    kernel = rng.standard_normal((n_in, n_out)).astype(np.float32)
    bias = rng.standard_normal(n_out).astype(np.float32)
    dz = rng.standard_normal((n, n_out)).astype(np.float32)
    y = dense.dense_forward(x, kernel, bias, "relu")
    dx, dkernel, dbias = dense.dense_backward(x, kernel, dz)

    xt, kt, bt = (torch.tensor(a).requires_grad_() for a in (x, kernel, bias))
    zt = xt @ kt + bt
    zt.backward(torch.tensor(dz))
    for ours, ref in [(y, torch.relu(zt)), (dx, xt.grad), (dkernel, kt.grad), (dbias, bt.grad)]:
        ref = ref.detach().numpy()
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4 * max(1.0, np.abs(ref).max()))


def test_softmax_output_is_stable_for_large_logits():
    x = np.array([[1.0, 0.0]], np.float32)
    kernel = np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], np.float32)
    y = dense.dense_forward(x, kernel, activation="softmax")
    np.testing.assert_allclose(y, [[1.0, 0.0, 0.0]], atol=1e-7)


def test_without_bias_and_without_dx(rng):
    x = rng.standard_normal((3, 4))
    kernel = rng.standard_normal((4, 2))
    np.testing.assert_allclose(dense.dense_forward(x, kernel), x @ kernel, rtol=1e-13)
    dx, dkernel, dbias = dense.dense_backward(x, kernel, np.ones((3, 2)), need_dx=False)
    assert dx is None
    np.testing.assert_allclose(dbias, [3.0, 3.0])


def test_empty_batch(rng):
    kernel = rng.standard_normal((4, 2)).astype(np.float32)
    y = dense.dense_forward(np.zeros((0, 4), np.float32), kernel)
    assert y.shape == (0, 2)
    dx, dkernel, dbias = dense.dense_backward(np.zeros((0, 4), np.float32), kernel, y)
    assert dx.shape == (0, 4) and not dkernel.any() and not dbias.any()


def test_bit_identical_for_any_thread_count(rng):
    x = rng.standard_normal((256, 300)).astype(np.float32)
    kernel = rng.standard_normal((300, 200)).astype(np.float32)
    dz = rng.standard_normal((256, 200)).astype(np.float32)
    assert_same_for_any_thread_count(
        lambda: (dense.dense_forward(x, kernel, activation="softmax"),) + dense.dense_backward(x, kernel, dz))


@pytest.mark.parametrize(
    "args, exc, message",
    [
        ((np.zeros((2, 3), np.float32), np.zeros((4, 2), np.float32)), ValueError, r"kernel must have 3 rows .* got kernel shape \(4, 2\)"),
        ((np.zeros((2, 3, 1), np.float32), np.zeros((3, 2), np.float32)), ValueError, "x must be 2-D"),
        ((np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float64)), TypeError, "kernel must have dtype float32"),
        ((np.zeros((2, 3), np.float16), np.zeros((3, 2), np.float16)), TypeError, "x must have dtype float32 or float64, got float16"),
        ((np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32), np.zeros(3, np.float32)), ValueError, r"bias must have shape \(2,\)"),
    ],
)
def test_bad_input_forward(args, exc, message):
    with pytest.raises(exc, match=message):
        dense.dense_forward(*args)


def test_bad_dz_shape():
    with pytest.raises(ValueError, match=r"dz must have shape \(2, 2\), got \(2, 3\)"):
        dense.dense_backward(np.zeros((2, 3)), np.zeros((3, 2)), np.zeros((2, 3)))
