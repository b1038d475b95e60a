"""Tests for convx._kernels.norm (batch, layer and group normalization; BatchNormalization folding)."""

import numpy as np
import pytest

from convx._kernels.norm import (
    batch_norm_backward,
    batch_norm_infer,
    batch_norm_train,
    fold_batch_norm,
    group_norm_backward,
    group_norm_forward,
    layer_norm_backward,
    layer_norm_forward,
)
from gradcheck import check_gradient
from thread_identity import assert_same_for_any_thread_count

DTYPES = [np.float32, np.float64]


def _bn_reference(x, axis, gamma, beta, eps):
    """Keras' training BatchNormalization in float64: batch mean, biased variance."""
    axes = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    mean, var = x.mean(axes), x.var(axes)
    g = np.ones_like(mean) if gamma is None else gamma
    b = np.zeros_like(mean) if beta is None else beta
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * g.reshape(shape) + b.reshape(shape)
    return y, mean, var


def _params(rng, c, dtype=np.float64):
    return rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)


# ---------------------------------------------------------------- batch normalization: forward

CASES = [((7, 5), -1), ((3, 5, 4, 6), -1), ((3, 5, 4, 6), 1), ((3, 5, 4, 6), 2), ((2, 3, 7), 0), ((1, 9), -1),
         ((1, 1, 1, 3), 3), ((4, 3, 3, 5), -3)]


@pytest.mark.parametrize("shape,axis", CASES)
def test_batch_norm_train_matches_keras_formula_float64(rng, shape, axis):
    x = rng.standard_normal(shape) * 3 + 2
    gamma, beta = _params(rng, shape[axis])
    moving_mean, moving_var = rng.standard_normal(shape[axis]), rng.random(shape[axis]) + 0.5
    mm0, mv0 = moving_mean.copy(), moving_var.copy()
    y, mean, invstd = batch_norm_train(x, gamma, beta, axis, 1e-3, moving_mean, moving_var, 0.9)
    want, batch_mean, batch_var = _bn_reference(x, axis, gamma, beta, 1e-3)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mean, batch_mean, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(batch_var + 1e-3), rtol=1e-13)
    # Keras: moving = moving * momentum + batch * (1 - momentum), with the biased batch variance
    np.testing.assert_allclose(moving_mean, mm0 * 0.9 + batch_mean * (1 - 0.9), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(moving_var, mv0 * 0.9 + batch_var * (1 - 0.9), rtol=1e-13, atol=1e-14)


def test_batch_norm_without_gamma_beta_and_float32(rng):
    x = (rng.standard_normal((6, 4, 4, 3)) + 5).astype(np.float32)
    y, _, _ = batch_norm_train(x, None, None, -1, 1e-3)
    want, _, _ = _bn_reference(x.astype(np.float64), -1, None, None, 1e-3)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=2e-6)


def test_batch_norm_variance_of_a_large_mean_keeps_its_digits():
    # float32 values 1e4 + noise of 1e-2: E[x^2] - E[x]^2 in float32 would lose every digit of the variance
    rng = np.random.default_rng(0)
    x = (1e4 + 1e-2 * rng.standard_normal((4000, 3))).astype(np.float32)
    _, mean, invstd = batch_norm_train(x, None, None, -1, 1e-8)
    var = 1 / invstd.astype(np.float64) ** 2 - 1e-8
    np.testing.assert_allclose(var, x.astype(np.float64).var(0), rtol=1e-4)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(0), rtol=1e-7)


def test_batch_norm_of_a_constant_batch_is_beta(rng):
    x = np.full((1, 5), 3.0)
    gamma, beta = _params(rng, 5)
    y, mean, invstd = batch_norm_train(x, gamma, beta, -1, 1e-3)
    np.testing.assert_allclose(y, np.broadcast_to(beta, (1, 5)), atol=1e-12)
    np.testing.assert_array_equal(mean, 3.0)


@pytest.mark.parametrize("shape,axis", CASES[:4])
def test_batch_norm_matches_torch_float64(rng, torch, shape, axis):
    F = torch.nn.functional
    x = rng.standard_normal(shape) * 2 + 1
    c = shape[axis]
    gamma, beta = _params(rng, c)
    mm, mv = rng.standard_normal(c), rng.random(c) + 0.5
    xt = torch.tensor(np.moveaxis(x, axis, 1).copy(), requires_grad=True)  # torch: channels on axis 1
    gt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    rm, rv = torch.tensor(mm.copy()), torch.tensor(mv.copy())
    yt = F.batch_norm(xt, rm, rv, gt, bt, training=True, momentum=0.1, eps=1e-3)
    w = rng.standard_normal(shape)
    (yt * torch.tensor(np.moveaxis(w, axis, 1).copy())).sum().backward()

    moving_mean, moving_var = mm.copy(), mv.copy()
    y, mean, invstd = batch_norm_train(x, gamma, beta, axis, 1e-3, moving_mean, moving_var, 0.9)
    np.testing.assert_allclose(y, np.moveaxis(yt.detach().numpy(), 1, axis), rtol=1e-12, atol=1e-12)
    # torch's momentum is Keras' 1 - momentum; the means agree, but torch's running variance takes the unbiased
    # batch variance (n / (n - 1) times Keras' biased one)
    np.testing.assert_allclose(moving_mean, rm.numpy(), rtol=1e-12, atol=1e-14)
    n = x.size // c
    batch_var = 1 / invstd ** 2 - 1e-3
    np.testing.assert_allclose(rv.numpy(), mv * 0.9 + 0.1 * batch_var * n / (n - 1), rtol=1e-10)
    np.testing.assert_allclose(moving_var, mv * 0.9 + 0.1 * batch_var, rtol=1e-10)

    dx, dgamma, dbeta = batch_norm_backward(x, w, mean, invstd, gamma, axis)
    np.testing.assert_allclose(dx, np.moveaxis(xt.grad.numpy(), 1, axis), rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(dgamma, gt.grad.numpy(), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(dbeta, bt.grad.numpy(), rtol=1e-11, atol=1e-12)

    # inference: the moving statistics
    yt = F.batch_norm(torch.tensor(np.moveaxis(x, axis, 1).copy()), torch.tensor(mm), torch.tensor(mv),
                      torch.tensor(gamma), torch.tensor(beta), training=False, eps=1e-3)
    np.testing.assert_allclose(batch_norm_infer(x, mm, mv, gamma, beta, axis, 1e-3), np.moveaxis(yt.numpy(), 1, axis),
                               rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- batch normalization: gradients


@pytest.mark.parametrize("shape,axis", [((5, 3), -1), ((2, 3, 2, 4), -1), ((2, 3, 2, 4), 1), ((1, 1, 3), -1)])
@pytest.mark.parametrize("batch_stats", [True, False])
def test_batch_norm_backward_matches_finite_differences(rng, shape, axis, batch_stats):
    x = rng.standard_normal(shape)
    c = shape[axis]
    gamma, beta = _params(rng, c)
    mm, mv = rng.standard_normal(c), rng.random(c) + 0.5
    w = rng.standard_normal(shape)

    def loss():
        if batch_stats:
            return float(np.sum(batch_norm_train(x, gamma, beta, axis, 1e-3)[0] * w))
        return float(np.sum(batch_norm_infer(x, mm, mv, gamma, beta, axis, 1e-3) * w))

    if batch_stats:
        _, mean, invstd = batch_norm_train(x, gamma, beta, axis, 1e-3)
    else:
        invstd = np.empty(c)
        batch_norm_infer(None, mm, mv, None, None, epsilon=1e-3, invstd=invstd)
        mean = mm
    dx, dgamma, dbeta = batch_norm_backward(x, w, mean, invstd, gamma, axis, batch_stats=batch_stats)
    check_gradient(loss, x, dx, rtol=1e-5, atol=1e-7)
    check_gradient(loss, gamma, dgamma)
    check_gradient(loss, beta, dbeta)


def test_batch_norm_backward_without_gamma_and_without_dx(rng):
    x, w = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    _, mean, invstd = batch_norm_train(x, None, None)
    dx, dgamma, dbeta = batch_norm_backward(x, w, mean, invstd, None)
    dx2, dgamma2, dbeta2 = batch_norm_backward(x, w, mean, invstd, np.ones(4), need_dx=False)
    assert dx2 is None
    np.testing.assert_array_equal(dgamma, dgamma2)
    np.testing.assert_array_equal(dbeta, dbeta2)
    check_gradient(lambda: float(np.sum(batch_norm_train(x, None, None)[0] * w)), x, dx)


@pytest.mark.parametrize("relu_max", [np.inf, 6.0, 0.5])
@pytest.mark.parametrize("axis", [-1, 1])
def test_batch_norm_with_a_fused_relu(rng, relu_max, axis):
    x = rng.standard_normal((4, 3, 5)) * 3
    c = x.shape[axis]
    gamma, beta = _params(rng, c)
    gamma = np.abs(gamma) * 4 + 3  # outputs beyond 6 too
    mm, mv = rng.standard_normal(c), rng.random(c) + 0.5
    w = rng.standard_normal(x.shape)
    y, mean, invstd = batch_norm_train(x, gamma, beta, axis, 1e-3, relu_max=relu_max)
    plain = _bn_reference(x, axis, gamma, beta, 1e-3)[0]
    np.testing.assert_allclose(y, np.minimum(np.maximum(plain, 0), relu_max), rtol=1e-12, atol=1e-12)
    assert (y == 0).any() and (relu_max == np.inf or (y == relu_max).any())
    inferred = batch_norm_infer(x, mm, mv, gamma, beta, axis, 1e-3, relu_max=relu_max)
    np.testing.assert_allclose(inferred, np.minimum(np.maximum(batch_norm_infer(x, mm, mv, gamma, beta, axis), 0),
                                                    relu_max), rtol=1e-12, atol=1e-12)
    # the gradient: the relu's mask (0 < y < relu_max) applied to dy, then BatchNormalization's
    dx, dgamma, dbeta = batch_norm_backward(x, w, mean, invstd, gamma, axis, y=y, relu_max=relu_max)
    masked = np.where((y > 0) & (y < relu_max), w, 0.0)
    for got, want in zip((dx, dgamma, dbeta), batch_norm_backward(x, masked, mean, invstd, gamma, axis)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    loss = lambda: float(np.sum(batch_norm_train(x, gamma, beta, axis, 1e-3, relu_max=relu_max)[0] * w))  # noqa
    check_gradient(loss, gamma, dgamma)
    check_gradient(loss, beta, dbeta)
    check_gradient(loss, x, dx, rtol=1e-5, atol=1e-6)


def test_fused_relu_arguments():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="relu_max must be None or a number >= 0"):
        batch_norm_train(x, None, None, relu_max=-1)
    with pytest.raises(ValueError, match="y and relu_max must be given together"):
        batch_norm_backward(x, x, np.zeros(3), np.ones(3), None, y=x)


# ---------------------------------------------------------------- group and layer normalization


def _gn_reference(x, groups, axis, gamma, beta, eps):
    xc = np.moveaxis(x, axis, -1)
    n, c = xc.shape[0], xc.shape[-1]
    xg = xc.reshape(n, -1, groups, c // groups)
    mean, var = xg.mean((1, 3), keepdims=True), xg.var((1, 3), keepdims=True)
    y = ((xg - mean) / np.sqrt(var + eps)).reshape(xc.shape) * gamma + beta
    return np.moveaxis(y, -1, axis)


@pytest.mark.parametrize("shape,groups,axis", [((3, 4, 5, 6), 3, -1), ((2, 5, 4), 2, -1), ((2, 6, 3, 3), 2, 1),
                                               ((1, 7, 8), 8, -1), ((2, 3, 4), 1, -1), ((3, 4, 6, 2), 3, 2)])
def test_group_norm_matches_formula_and_torch_float64(rng, torch, shape, groups, axis):
    x = rng.standard_normal(shape) * 2 - 1
    c = shape[axis]
    gamma, beta = _params(rng, c)
    y, mean, invstd = group_norm_forward(x, gamma, beta, groups, axis, 1e-3)
    assert mean.shape == (shape[0], groups)
    np.testing.assert_allclose(y, _gn_reference(x, groups, axis, gamma, beta, 1e-3), rtol=1e-12, atol=1e-12)

    xt = torch.tensor(np.moveaxis(x, axis, 1).copy(), requires_grad=True)
    gt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    yt = torch.nn.functional.group_norm(xt, groups, gt, bt, eps=1e-3)
    np.testing.assert_allclose(y, np.moveaxis(yt.detach().numpy(), 1, axis), rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(shape)
    (yt * torch.tensor(np.moveaxis(w, axis, 1).copy())).sum().backward()
    dx, dgamma, dbeta = group_norm_backward(x, w, mean, invstd, gamma, groups, axis)
    np.testing.assert_allclose(dx, np.moveaxis(xt.grad.numpy(), 1, axis), rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(dgamma, gt.grad.numpy(), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(dbeta, bt.grad.numpy(), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("shape,groups,axis", [((2, 3, 4), 2, -1), ((2, 4, 3), 2, 1), ((1, 2, 2, 3), 3, -1)])
def test_group_norm_backward_matches_finite_differences(rng, shape, groups, axis):
    x = rng.standard_normal(shape)
    gamma, beta = _params(rng, shape[axis])
    w = rng.standard_normal(shape)
    loss = lambda: float(np.sum(group_norm_forward(x, gamma, beta, groups, axis)[0] * w))  # noqa: E731
    _, mean, invstd = group_norm_forward(x, gamma, beta, groups, axis)
    dx, dgamma, dbeta = group_norm_backward(x, w, mean, invstd, gamma, groups, axis)
    check_gradient(loss, x, dx)
    check_gradient(loss, gamma, dgamma)
    check_gradient(loss, beta, dbeta)


@pytest.mark.parametrize("shape,axis", [((4, 7), -1), ((2, 3, 5), -1), ((2, 3, 5), 1), ((1, 6), 1), ((3, 1), -1)])
def test_layer_norm_matches_torch_float64(rng, torch, shape, axis):
    x = rng.standard_normal(shape) + 3
    norm_shape = shape[axis:] if axis >= 0 else shape[axis:]
    gamma, beta = rng.standard_normal(norm_shape), rng.standard_normal(norm_shape)
    y, mean, invstd = layer_norm_forward(x, gamma, beta, axis, 1e-3)
    xt = torch.tensor(x, requires_grad=True)
    gt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    yt = torch.nn.functional.layer_norm(xt, norm_shape, gt, bt, eps=1e-3)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(shape)
    (yt * torch.tensor(w)).sum().backward()
    dx, dgamma, dbeta = layer_norm_backward(x, w, mean, invstd, gamma, axis)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(dgamma, gt.grad.numpy(), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(dbeta, bt.grad.numpy(), rtol=1e-11, atol=1e-12)


def test_layer_norm_rms_scaling_is_keras_formula_with_its_gradient(rng):
    # Keras' (deprecated) rms_scaling: x / sqrt(var + eps) * gamma, the variance centred, no mean subtracted
    x, w = rng.standard_normal((4, 6)) + 1, rng.standard_normal((4, 6))
    gamma = rng.standard_normal(6)
    y, mean, invstd = layer_norm_forward(x, gamma, None, -1, 1e-3, rms_scaling=True)
    np.testing.assert_allclose(y, x / np.sqrt(x.var(-1, keepdims=True) + 1e-3) * gamma, rtol=1e-12)
    dx, dgamma, dbeta = layer_norm_backward(x, w, mean, invstd, gamma, -1, rms_scaling=True)
    assert dbeta is None
    loss = lambda: float(np.sum(layer_norm_forward(x, gamma, None, -1, 1e-3, rms_scaling=True)[0] * w))  # noqa: E731
    check_gradient(loss, x, dx)
    check_gradient(loss, gamma, dgamma)


def test_layer_norm_without_gamma_beta_float32(rng):
    x = rng.standard_normal((5, 8)).astype(np.float32)
    y, _, _ = layer_norm_forward(x, None, None)
    x64 = x.astype(np.float64)
    want = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-3)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- folding


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_fold_batch_norm_equals_dense_then_batch_norm(rng, use_bias, affine):
    x, kernel = rng.standard_normal((7, 5)), rng.standard_normal((5, 3))
    bias = rng.standard_normal(3) if use_bias else None
    mean, var = rng.standard_normal(3), rng.random(3) + 0.1
    gamma, beta = _params(rng, 3) if affine else (None, None)
    k2, b2 = fold_batch_norm(kernel, bias, mean, var, gamma, beta, 1e-3)
    z = x @ kernel + (0 if bias is None else bias)
    np.testing.assert_allclose(x @ k2 + b2, batch_norm_infer(z, mean, var, gamma, beta, -1, 1e-3), rtol=1e-12,
                               atol=1e-12)
    conv_kernel = rng.standard_normal((3, 3, 2, 3)).astype(np.float32)
    k4, _ = fold_batch_norm(conv_kernel, None, mean.astype(np.float32), var.astype(np.float32), None, None, 1e-3)
    np.testing.assert_allclose(k4, conv_kernel / np.sqrt(var + 1e-3), rtol=1e-6)


# ---------------------------------------------------------------- determinism, buffers, errors


def test_batch_norm_deterministic_across_thread_counts(rng):
    # 300 x 7 x 7 x 32 = 470400 elements: 29 blocks of rows, above the parallel threshold (32768)
    x = (rng.standard_normal((300, 7, 7, 32)) + 3).astype(np.float32)
    xa = (rng.standard_normal((40, 32, 9, 9)) + 3).astype(np.float32)  # axis 1: strided statistics
    dy = rng.standard_normal(x.shape).astype(np.float32)
    gamma, beta = (a.astype(np.float32) for a in _params(rng, 32))

    def run():
        mm, mv = np.zeros(32, np.float32), np.ones(32, np.float32)
        y, mean, invstd = batch_norm_train(x, gamma, beta, -1, 1e-3, mm, mv, 0.99)
        ya, ma, ia = batch_norm_train(xa, gamma, beta, 1, 1e-3)
        yr, mr, ir = batch_norm_train(x, gamma, beta, -1, 1e-3, relu_max=np.inf)
        return (y, mean, invstd, mm, mv, ya, ma, ia, *batch_norm_backward(x, dy, mean, invstd, gamma),
                *batch_norm_backward(xa, xa, ma, ia, gamma, 1), batch_norm_infer(x, mm, mv, gamma, beta), yr,
                *batch_norm_backward(x, dy, mr, ir, gamma, y=yr, relu_max=np.inf))

    assert_same_for_any_thread_count(run)


def test_group_and_layer_norm_deterministic_across_thread_counts(rng):
    x = rng.standard_normal((64, 16, 16, 32)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    gamma, beta = (a.astype(np.float32) for a in _params(rng, 32))

    def run():
        y, mean, invstd = group_norm_forward(x, gamma, beta, 8)
        yl, ml, il = layer_norm_forward(x, gamma, beta, -1)
        return (y, mean, invstd, *group_norm_backward(x, dy, mean, invstd, gamma, 8), yl,
                *layer_norm_backward(x, dy, ml, il, gamma, -1))

    assert_same_for_any_thread_count(run)


def test_out_buffers_are_used_and_inputs_copied_when_strided(rng):
    base = rng.standard_normal((6, 8))
    x = base[:, ::2]  # not contiguous
    out, stats = np.empty((6, 4)), (np.empty(4), np.empty(4))
    y, mean, invstd = batch_norm_train(x, None, None, -1, 1e-3, out=out, stats=stats)
    assert y is out and mean is stats[0] and invstd is stats[1]
    np.testing.assert_allclose(y, _bn_reference(x.copy(), -1, None, None, 1e-3)[0], rtol=1e-12)
    grads = (np.empty((6, 4)), np.empty(4), np.empty(4))
    assert all(a is b for a, b in zip(batch_norm_backward(x, x, mean, invstd, None, out=grads), grads))


def test_argument_errors(rng):
    x = rng.standard_normal((4, 6))
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 2\) for x of rank 2, got axis=2"):
        batch_norm_train(x, None, None, 2)
    with pytest.raises(ValueError, match=r"gamma must have shape \(6,\), got \(5,\)"):
        batch_norm_train(x, np.ones(5), None)
    with pytest.raises(TypeError, match="gamma must have dtype float64"):
        batch_norm_train(x, np.ones(6, np.float32), None)
    with pytest.raises(ValueError, match="epsilon must be a finite number > 0, got epsilon=0"):
        batch_norm_train(x, None, None, epsilon=0)
    with pytest.raises(ValueError, match="moving_mean and moving_variance must be given together"):
        batch_norm_train(x, None, None, moving_mean=np.zeros(6))
    with pytest.raises(ValueError, match="groups=4 must divide the 6 channels"):
        group_norm_forward(x, None, None, 4)
    with pytest.raises(ValueError, match="groups must be a positive int, got groups=0"):
        group_norm_forward(x, None, None, 0)
    with pytest.raises(ValueError, match="axis must not be the batch axis"):
        group_norm_forward(x, None, None, 2, axis=0)
    with pytest.raises(ValueError, match=r"dy must have shape \(4, 6\), got \(6, 4\)"):
        batch_norm_backward(x, x.T, np.zeros(6), np.ones(6), None)
    with pytest.raises(ValueError, match="out and x must be distinct arrays"):
        batch_norm_train(x, None, None, out=x)
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        layer_norm_forward([1.0, 2.0], None, None)
