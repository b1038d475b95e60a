"""Tests for convx._kernels.pool: max, average, global max and global average pooling."""

import numpy as np
import pytest

from convx._kernels.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool2d_backward,
    global_avg_pool2d_forward,
    global_max_pool2d_backward,
    global_max_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_backward_windows,
    max_pool2d_forward,
)
from gradcheck import check_gradient
from thread_identity import assert_same_for_any_thread_count

# (shape, pool_size, strides, padding): stride 2 'same' on even and odd sizes,
# overlapping windows, non-square pools, pools larger than the input, batch 1, one channel.
CASES = [
    ((2, 6, 6, 3), 2, None, "valid"),
    ((2, 6, 6, 2), 2, 2, "same"),
    ((2, 7, 5, 2), 2, 2, "same"),
    ((2, 7, 7, 2), 3, 2, "valid"),
    ((2, 7, 6, 2), 3, 2, "same"),
    ((1, 5, 7, 2), (2, 3), (1, 2), "same"),
    ((1, 6, 5, 2), (3, 1), None, "valid"),
    ((1, 3, 4, 2), 5, 1, "same"),
    ((2, 3, 4, 1), 5, None, "same"),
    ((1, 5, 5, 1), 3, 1, "same"),
    # C a multiple of 8: the float32 AVX2 row kernel
    ((2, 7, 6, 8), 3, 2, "same"),
    ((1, 6, 6, 16), 2, None, "valid"),
]
CASE_IDS = [f"{s}-k{k}-s{st}-{p}" for s, k, st, p in CASES]



def _distinct(rng, shape):
    """float64 values in (-1, 1) that are pairwise >= 2/size apart, so max is differentiable."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) * 2.0 + 1.0) / size - 1.0


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _tf_pads(size, k, s, padding):
    """(out, before, after) along one axis, TensorFlow's rule, written independently."""
    if padding == "valid":
        return (size - k) // s + 1, 0, 0
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def _overlapping(pool_size, strides):
    return strides is not None and any(s < k for s, k in zip(_pair(strides), _pair(pool_size)))


def _reference(x, pool_size, strides, padding):
    """NumPy loops: (max, flat argmax, mean over real cells), each (N, OH, OW, C)."""
    n, h, w, c = x.shape
    kh, kw = _pair(pool_size)
    sh, sw = _pair(pool_size if strides is None else strides)
    oh, ph, _ = _tf_pads(h, kh, sh, padding)
    ow, pw, _ = _tf_pads(w, kw, sw, padding)
    ymax, yavg = np.empty((n, oh, ow, c)), np.empty((n, oh, ow, c))
    arg = np.empty((n, oh, ow, c), dtype=np.int64)
    flat = np.arange(x.size).reshape(x.shape)
    for i in range(oh):
        rows = slice(max(i * sh - ph, 0), min(i * sh - ph + kh, h))
        for j in range(ow):
            cols = slice(max(j * sw - pw, 0), min(j * sw - pw + kw, w))
            win = x[:, rows, cols, :].reshape(n, -1, c)
            first = win.argmax(axis=1)  # first maximum in row-major order
            ymax[:, i, j] = win.max(axis=1)
            yavg[:, i, j] = win.mean(axis=1)
            arg[:, i, j] = np.take_along_axis(flat[:, rows, cols, :].reshape(n, -1, c), first[:, None], 1)[:, 0]
    return ymax, arg, yavg


# --- forward semantics (float64, exact reference) ---------------------------------------------


@pytest.mark.parametrize("shape,pool_size,strides,padding", CASES, ids=CASE_IDS)
def test_forward_matches_reference(rng, shape, pool_size, strides, padding):
    x = rng.standard_normal(shape)
    ymax, arg, yavg = _reference(x, pool_size, strides, padding)
    y, argmax = max_pool2d_forward(x, pool_size, strides, padding)
    assert argmax.dtype == np.int64
    np.testing.assert_array_equal(y, ymax)
    np.testing.assert_array_equal(argmax, arg)
    np.testing.assert_allclose(avg_pool2d_forward(x, pool_size, strides, padding), yavg, rtol=1e-14, atol=1e-15)


def test_padded_cells_never_win_and_ties_pick_the_first_cell():
    # All-negative constant input: a zero pad would win a max; every cell ties.
    x = np.full((1, 3, 3, 2), -2.0)
    y, argmax = max_pool2d_forward(x, 2, 2, "same")  # pads 0 before, 1 after
    np.testing.assert_array_equal(y, -2.0)
    first_cells = np.array([[0, 2], [6, 8]])  # (h * 3 + w) of each window's first real cell
    np.testing.assert_array_equal(argmax, first_cells[None, :, :, None] * 2 + np.arange(2))
    np.testing.assert_array_equal(avg_pool2d_forward(x, 2, 2, "same"), -2.0)


def test_same_padding_puts_the_extra_cell_after():
    # 4 columns, pool 3, stride 1: total padding 2 -> 1 before, 1 after; pool 2 -> 0 before, 1 after.
    x = np.arange(4.0).reshape(1, 1, 4, 1)
    np.testing.assert_array_equal(avg_pool2d_forward(x, (1, 3), 1, "same")[0, 0, :, 0], [0.5, 1, 2, 2.5])
    np.testing.assert_array_equal(avg_pool2d_forward(x, (1, 2), 1, "same")[0, 0, :, 0], [0.5, 1.5, 2.5, 3])


@pytest.mark.parametrize("dtype, channels", [(np.float64, 1), (np.float32, 8)])
def test_max_propagates_nan(dtype, channels):
    x = np.zeros((1, 2, 2, channels), dtype=dtype)
    x[0, 1, 0, :] = np.nan
    x[0, 1, 1, :] = 5  # a larger number after the NaN does not replace it
    y, argmax = max_pool2d_forward(x, 2)
    assert np.isnan(y).all() and (argmax[0, 0, 0] == 2 * channels + np.arange(channels)).all()


def test_non_contiguous_input_is_copied(rng):
    x = rng.standard_normal((2, 5, 6, 3)).transpose(0, 2, 1, 3)  # (2, 6, 5, 3), not C-contiguous
    ymax, arg, yavg = _reference(np.ascontiguousarray(x), 2, 1, "same")
    y, argmax = max_pool2d_forward(x, 2, 1, "same")
    np.testing.assert_array_equal(y, ymax)
    np.testing.assert_array_equal(argmax, arg)
    np.testing.assert_allclose(avg_pool2d_forward(x, 2, 1, "same"), yavg, rtol=1e-14)


# --- finite-difference gradients (float64) ----------------------------------------------------


@pytest.mark.parametrize("shape,pool_size,strides,padding", CASES, ids=CASE_IDS)
def test_max_pool_gradient(rng, shape, pool_size, strides, padding):
    x = _distinct(rng, shape)
    y, argmax = max_pool2d_forward(x, pool_size, strides, padding)
    w = rng.standard_normal(y.shape)
    dx = max_pool2d_backward(w, argmax, x.shape)
    check_gradient(lambda: np.sum(max_pool2d_forward(x, pool_size, strides, padding)[0] * w), x, dx)


@pytest.mark.parametrize("shape,pool_size,strides,padding", CASES, ids=CASE_IDS)
def test_avg_pool_gradient(rng, shape, pool_size, strides, padding):
    x = rng.standard_normal(shape)
    w = rng.standard_normal(avg_pool2d_forward(x, pool_size, strides, padding).shape)
    dx = avg_pool2d_backward(w, x.shape, pool_size, strides, padding)
    check_gradient(lambda: np.sum(avg_pool2d_forward(x, pool_size, strides, padding) * w), x, dx)


@pytest.mark.parametrize("shape", [(2, 4, 5, 3), (1, 1, 1, 1), (1, 3, 2, 1)])
def test_global_pool_gradients(rng, shape):
    x = _distinct(rng, shape)
    w = rng.standard_normal((shape[0], shape[3]))
    dx = global_avg_pool2d_backward(w, x.shape)
    check_gradient(lambda: np.sum(global_avg_pool2d_forward(x) * w), x, dx)
    y, argmax = global_max_pool2d_forward(x)
    np.testing.assert_array_equal(y, x.max(axis=(1, 2)))
    dx = global_max_pool2d_backward(w, argmax, x.shape)
    check_gradient(lambda: np.sum(global_max_pool2d_forward(x)[0] * w), x, dx)


# --- PyTorch oracle (float32) -----------------------------------------------------------------


def _torch_pool(torch, x, pool_size, strides, padding, kind):
    """Torch NCHW pooling with TensorFlow's asymmetric 'same' padding built explicitly."""
    F = torch.nn.functional
    kh, kw = _pair(pool_size)
    sh, sw = _pair(pool_size if strides is None else strides)
    _, top, bottom = _tf_pads(x.shape[2], kh, sh, padding)
    _, left, right = _tf_pads(x.shape[3], kw, sw, padding)
    pads = (left, right, top, bottom)
    if kind == "max":
        return F.max_pool2d(F.pad(x, pads, value=float("-inf")), (kh, kw), (sh, sw))
    sums = F.avg_pool2d(F.pad(x, pads), (kh, kw), (sh, sw), divisor_override=1)
    counts = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pads), (kh, kw), (sh, sw), divisor_override=1)
    return sums / counts


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("shape,pool_size,strides,padding", CASES, ids=CASE_IDS)
def test_matches_torch(rng, torch, kind, shape, pool_size, strides, padding):
    x = rng.standard_normal(shape).astype(np.float32)
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    yt = _torch_pool(torch, xt, pool_size, strides, padding, kind)
    dy = rng.standard_normal(yt.shape).astype(np.float32)  # NCHW
    yt.backward(torch.tensor(dy))
    y_ref, dx_ref = yt.detach().numpy().transpose(0, 2, 3, 1), xt.grad.numpy().transpose(0, 2, 3, 1)
    dy = np.ascontiguousarray(dy.transpose(0, 2, 3, 1))
    if kind == "max":
        y, argmax = max_pool2d_forward(x, pool_size, strides, padding)
        dx = max_pool2d_backward(dy, argmax, x.shape)
        np.testing.assert_array_equal(y, y_ref)
        if not _overlapping(pool_size, strides):
            np.testing.assert_array_equal(max_pool2d_backward_windows(dy, x, y, pool_size, strides, padding), dx_ref)
    else:
        y = avg_pool2d_forward(x, pool_size, strides, padding)
        dx = avg_pool2d_backward(dy, x.shape, pool_size, strides, padding)
        np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    assert y.dtype == dx.dtype == np.float32
    # Overlapping windows sum several gradients per cell, in an order that may differ from torch's.
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-6)


def test_global_pools_match_torch(rng, torch):
    x = rng.standard_normal((3, 5, 4, 6)).astype(np.float32)
    dy = rng.standard_normal((3, 6)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = xt.mean(dim=(1, 2))
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(global_avg_pool2d_forward(x), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(global_avg_pool2d_backward(dy, x.shape), xt.grad.numpy(), rtol=1e-5, atol=1e-7)
    xt = torch.tensor(x, requires_grad=True)
    yt = xt.reshape(3, 20, 6).max(dim=1).values
    yt.backward(torch.tensor(dy))
    y, argmax = global_max_pool2d_forward(x)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(global_max_pool2d_backward(dy, argmax, x.shape), xt.grad.numpy())


# --- determinism, empty batch -----------------------------------------------------------------


@pytest.mark.parametrize("pool_size,strides,padding", [(3, 2, "same"), (2, None, "valid")])
def test_deterministic_across_thread_counts(rng, pool_size, strides, padding):
    # 16 * 64 * 65 * 16 input elements is above the pooling kernels' parallel threshold (2^18).
    x = rng.standard_normal((16, 64, 65, 16)).astype(np.float32)

    def every_pooling():
        y, argmax = max_pool2d_forward(x, pool_size, strides, padding)
        a = avg_pool2d_forward(x, pool_size, strides, padding)
        gy, garg = global_max_pool2d_forward(x)
        g = global_avg_pool2d_forward(x)
        dy = np.linspace(-1, 1, y.size, dtype=np.float32).reshape(y.shape)
        dg = np.linspace(-1, 1, g.size, dtype=np.float32).reshape(g.shape)
        return (
            y, argmax, a, gy, garg, g,
            max_pool2d_backward(dy, argmax, x.shape),
            max_pool2d_backward_windows(dy, x, y, pool_size, strides, padding, through_relu=True)
            if not _overlapping(pool_size, strides) else None,
            avg_pool2d_backward(dy, x.shape, pool_size, strides, padding),
            global_max_pool2d_backward(dg, garg, x.shape),
            global_avg_pool2d_backward(dg, x.shape),
        )

    assert_same_for_any_thread_count(every_pooling)


def test_empty_batch():
    x = np.empty((0, 5, 4, 3), dtype=np.float32)
    y, argmax = max_pool2d_forward(x, 2, 2, "same")
    assert y.shape == argmax.shape == (0, 3, 2, 3) and y.dtype == np.float32
    assert max_pool2d_backward(y, argmax, x.shape).shape == x.shape
    a = avg_pool2d_forward(x, 2, 2, "same")
    assert a.shape == (0, 3, 2, 3)
    assert avg_pool2d_backward(a, x.shape, 2, 2, "same").shape == x.shape
    gy, garg = global_max_pool2d_forward(x)
    assert gy.shape == garg.shape == (0, 3)
    assert global_max_pool2d_backward(gy, garg, x.shape).shape == x.shape
    g = global_avg_pool2d_forward(x)
    assert g.shape == (0, 3) and global_avg_pool2d_backward(g, x.shape).shape == x.shape


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x,kwargs,error,match",
    [
        ([[[[1.0]]]], {}, TypeError, "x must be a numpy.ndarray"),
        (np.zeros((1, 4, 4, 1), np.int32), {}, TypeError, "x must have dtype float32 or float64"),
        (np.zeros((4, 4, 1)), {}, ValueError, "x must be 4-D"),
        (np.zeros((1, 4, 4, 1)), {"pool_size": 0}, ValueError, "pool_size must be >= 1"),
        (np.zeros((1, 4, 4, 1)), {"pool_size": (2, 2, 2)}, TypeError, "pool_size must be an int or a pair"),
        (np.zeros((1, 4, 4, 1)), {"strides": (1, 0)}, ValueError, "strides must be >= 1"),
        (np.zeros((1, 4, 4, 1)), {"padding": "full"}, ValueError, "padding must be 'valid' or 'same'"),
        (np.zeros((1, 4, 4, 1)), {"pool_size": (5, 2)}, ValueError, "empty output"),
    ],
)
@pytest.mark.parametrize("forward", [max_pool2d_forward, avg_pool2d_forward])
def test_forward_rejects_bad_input(forward, x, kwargs, error, match):
    args = {"pool_size": 2, **kwargs}
    with pytest.raises(error, match=match):
        forward(x, **args)


def test_global_forward_rejects_bad_input():
    for forward in (global_avg_pool2d_forward, global_max_pool2d_forward):
        with pytest.raises(ValueError, match="x must be 4-D"):
            forward(np.zeros((2, 3)))
        with pytest.raises(ValueError, match="non-empty spatial size"):
            forward(np.zeros((2, 0, 3, 1)))
        with pytest.raises(TypeError, match="x must have dtype float32 or float64"):
            forward(np.zeros((2, 2, 2, 1), np.float16))


def test_max_backward_rejects_bad_input(rng):
    x = rng.standard_normal((2, 4, 4, 3))
    y, argmax = max_pool2d_forward(x, 2)
    with pytest.raises(TypeError, match="argmax must have an integer dtype"):
        max_pool2d_backward(y, argmax.astype(np.float64), x.shape)
    with pytest.raises(ValueError, match=r"argmax must have shape \(2, 2, 2, 3\)"):
        max_pool2d_backward(y, argmax[:, :1], x.shape)
    with pytest.raises(TypeError, match="x_shape must be a tuple of 4 ints"):
        max_pool2d_backward(y, argmax, (2, 4, 4))
    with pytest.raises(ValueError, match="x_shape must be non-negative"):
        max_pool2d_backward(y, argmax, (2, -4, 4, 3))
    with pytest.raises(ValueError, match="does not match dy"):
        max_pool2d_backward(y, argmax, (2, 4, 4, 2))
    with pytest.raises(ValueError, match="dy must be 4-D"):
        max_pool2d_backward(y[0], argmax[0], x.shape)
    for bad in (x.size, -1, 5):  # past the end, negative, another channel's cell
        wrong = argmax.copy()
        wrong[0, 1, 1, 0] = bad
        with pytest.raises(ValueError, match="argmax has 1 index"):
            max_pool2d_backward(y, wrong, x.shape)
    wrong = argmax.copy()
    wrong[1] = argmax[0]  # image 1 pointing into image 0
    with pytest.raises(ValueError, match="argmax has 12 index"):
        max_pool2d_backward(y, wrong, x.shape)
    with pytest.raises(ValueError, match="argmax has 24 index"):
        max_pool2d_backward(y, argmax, (2, 0, 4, 3))  # x_shape too small for any index
    gy, garg = global_max_pool2d_forward(x)
    with pytest.raises(ValueError, match="argmax must have shape"):
        global_max_pool2d_backward(gy, garg[:, :2], x.shape)
    with pytest.raises(ValueError, match="argmax has 1 index"):
        global_max_pool2d_backward(gy, garg + np.array([[0, 0, 0], [0, 0, x.size]]), x.shape)


def test_avg_backward_rejects_bad_input(rng):
    dy = rng.standard_normal((2, 2, 2, 3))
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3, 3, 3\)"):
        avg_pool2d_backward(dy, (2, 5, 5, 3), 2, padding="same")
    with pytest.raises(TypeError, match="x_shape must be a tuple of 4 ints"):
        avg_pool2d_backward(dy, (2, 4.0, 4, 3), 2)
    with pytest.raises(TypeError, match="dy must have dtype float32 or float64"):
        avg_pool2d_backward(dy.astype(np.int64), (2, 4, 4, 3), 2)
    with pytest.raises(ValueError, match="empty output"):
        avg_pool2d_backward(dy, (2, 1, 4, 3), 2)
    with pytest.raises(ValueError, match="does not match dy"):
        global_avg_pool2d_backward(dy[:, 0, 0], (3, 4, 4, 3))
    with pytest.raises(ValueError, match="non-empty spatial size"):
        global_avg_pool2d_backward(dy[:, 0, 0], (2, 4, 0, 3))


@pytest.mark.parametrize("pool_size, strides", [((2, 2), (2, 2)), ((3, 3), (1, 1))])
def test_relu_input_fuses_the_relu_backward(rng, pool_size, strides):
    from convx._kernels.activations import activation_backward

    # a relu's output: zeros (ties included) and positives; overlapping windows when strides < pool
    x = np.maximum(rng.standard_normal((3, 7, 6, 4)), 0)
    x[0, :3, :3, 0] = 0
    y, argmax = max_pool2d_forward(x, pool_size, strides)
    dy = rng.standard_normal(y.shape)
    plain = max_pool2d_backward(dy, argmax, x.shape)
    fused = max_pool2d_backward(dy, argmax, x.shape, relu_input=x)
    np.testing.assert_array_equal(fused, activation_backward(x, plain, "relu"))
    with pytest.raises(ValueError, match="relu_input"):
        max_pool2d_backward(dy, argmax, x.shape, relu_input=x[:2])
    with pytest.raises(TypeError, match="relu_input"):
        max_pool2d_backward(dy, argmax, x.shape, relu_input=x.astype(np.float32))


def test_forward_without_argmax_gives_the_same_maxima(rng):
    x = rng.standard_normal((2, 7, 6, 3)).astype(np.float32)
    y, argmax = max_pool2d_forward(x, 3, 2, "same")
    y_only, none = max_pool2d_forward(x, 3, 2, "same", with_argmax=False)
    assert none is None
    np.testing.assert_array_equal(y_only, y)


# --- max-pool gradient from x and y (windows that do not overlap) -------------------------------

# stride > pool (cells between windows), odd sizes (uncovered last row/column), 'same',
# C a multiple of 8 (AVX2 lanes) and C above the kernel's 256-channel chunk
WINDOW_CASES = [case for case in CASES if not _overlapping(case[1], case[2])] + [
    ((2, 7, 9, 3), 2, 3, "valid"),
    ((2, 8, 8, 5), (2, 3), (3, 4), "same"),
    ((2, 9, 7, 8), 2, None, "valid"),
    ((1, 5, 5, 300), 2, None, "same"),
]
WINDOW_IDS = [f"{s}-k{k}-s{st}-{p}" for s, k, st, p in WINDOW_CASES]


def _ties_and_nan(rng, shape, dtype):
    """A relu-like input: zeros (ties within windows), positives, a repeated maximum, a NaN."""
    x = np.maximum(rng.standard_normal(shape), 0).astype(dtype)
    x[0, :2, :2, 0] = 0.5  # a window whose maximum appears several times
    x[-1, -1, 0, -1] = np.nan
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,pool_size,strides,padding", WINDOW_CASES, ids=WINDOW_IDS)
def test_windows_backward_equals_the_argmax_scatter(rng, dtype, shape, pool_size, strides, padding):
    x = _ties_and_nan(rng, shape, dtype)
    y, argmax = max_pool2d_forward(x, pool_size, strides, padding)
    dy = rng.standard_normal(y.shape).astype(dtype)
    for relu in (False, True):
        want = max_pool2d_backward(dy, argmax, x.shape, relu_input=x if relu else None)
        out = np.full(x.shape, np.nan, dtype=dtype)  # every cell must be written
        got = max_pool2d_backward_windows(dy, x, y, pool_size, strides, padding, out=out, through_relu=relu)
        assert got is out
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape,pool_size,strides,padding", WINDOW_CASES, ids=WINDOW_IDS)
def test_windows_backward_gradient(rng, shape, pool_size, strides, padding):
    x = _distinct(rng, shape)
    y, _ = max_pool2d_forward(x, pool_size, strides, padding)
    w = rng.standard_normal(y.shape)
    dx = max_pool2d_backward_windows(w, x, y, pool_size, strides, padding)
    check_gradient(lambda: np.sum(max_pool2d_forward(x, pool_size, strides, padding)[0] * w), x, dx)


def test_windows_backward_rejects_bad_input(rng):
    x = rng.standard_normal((2, 6, 6, 3))
    y, _ = max_pool2d_forward(x, 2)
    with pytest.raises(ValueError, match="do not overlap"):
        max_pool2d_backward_windows(y, x, y, 3, 2)
    with pytest.raises(ValueError, match="dy must have shape"):
        max_pool2d_backward_windows(y[:, :2], x, y, 2)
    with pytest.raises(ValueError, match="y must have shape"):
        max_pool2d_backward_windows(y, x, y[:1], 2)
    with pytest.raises(TypeError, match="x must have dtype float64"):
        max_pool2d_backward_windows(y, x.astype(np.float32), y, 2)
    with pytest.raises(ValueError, match="out and x must be distinct arrays"):
        max_pool2d_backward_windows(y, x, y, 2, out=x)
