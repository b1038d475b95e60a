"""`out=` arguments: kernels write into caller-owned buffers (reused from step to step) and check them."""

import numpy as np
import pytest

from convx._kernels import conv, dense, pool


def test_conv_writes_into_given_buffers(rng):
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    y = np.full((2, 4, 4, 4), np.nan, np.float32)
    assert conv.conv2d_forward(x, kernel, out=y) is y
    np.testing.assert_array_equal(y, conv.conv2d_forward(x, kernel))
    bufs = (np.empty_like(x), np.empty_like(kernel), np.empty(4, np.float32))
    got = conv.conv2d_backward(x, kernel, y, out=bufs)
    assert all(g is b for g, b in zip(got, bufs))
    for g, e in zip(got, conv.conv2d_backward(x, kernel, y)):
        np.testing.assert_array_equal(g, e)
    dx, dk, db = conv.conv2d_backward(x, kernel, y, need_dx=False, out=(None, bufs[1], None))
    assert dx is None and dk is bufs[1]


def test_dense_writes_into_given_buffers(rng):
    x = rng.standard_normal((5, 3))
    kernel = rng.standard_normal((3, 2))
    y = np.empty((5, 2))
    assert dense.dense_forward(x, kernel, activation="tanh", out=y) is y
    bufs = (np.empty((5, 3)), np.empty((3, 2)), np.empty(2))
    got = dense.dense_backward(x, kernel, y, out=bufs)
    for g, b, e in zip(got, bufs, dense.dense_backward(x, kernel, y)):
        assert g is b
        np.testing.assert_array_equal(g, e)


def test_pool_writes_into_given_buffers(rng):
    x = rng.standard_normal((2, 6, 6, 3))
    y, argmax = np.empty((2, 3, 3, 3)), np.empty((2, 3, 3, 3), np.int64)
    got = pool.max_pool2d_forward(x, 2, out=(y, argmax))
    assert got[0] is y and got[1] is argmax
    dx = np.full(x.shape, 7.0)  # stale content must be cleared
    assert pool.max_pool2d_backward(y, argmax, x.shape, out=dx) is dx
    np.testing.assert_array_equal(dx, pool.max_pool2d_backward(y, argmax, x.shape))
    avg = np.empty((2, 3, 3, 3))
    assert pool.avg_pool2d_forward(x, 2, out=avg) is avg
    dxa = np.empty(x.shape)
    assert pool.avg_pool2d_backward(avg, x.shape, 2, out=dxa) is dxa
    np.testing.assert_array_equal(dxa, pool.avg_pool2d_backward(avg, x.shape, 2))


@pytest.mark.parametrize(
    "out, exc, message",
    [
        (np.empty((2, 4, 4, 5), np.float32), ValueError, r"out must have shape \(2, 4, 4, 4\), got \(2, 4, 4, 5\)"),
        (np.empty((2, 4, 4, 4), np.float64), TypeError, "out must have dtype float32, got float64"),
        (np.empty((2, 4, 4, 8), np.float32)[..., ::2], ValueError, "writeable C-contiguous"),
        ([0.0], TypeError, "out must be a numpy.ndarray or None, got list"),
    ],
)
def test_bad_out_buffers_are_rejected(out, exc, message):
    x = np.zeros((2, 6, 6, 3), np.float32)
    kernel = np.zeros((3, 3, 3, 4), np.float32)
    with pytest.raises(exc, match=message):
        conv.conv2d_forward(x, kernel, out=out)


def test_backward_out_must_be_a_tuple_of_three():
    x = np.zeros((1, 3, 3, 1))
    with pytest.raises(TypeError, match=r"out must be None or a tuple of 3 arrays \(dx, dkernel, dbias\)"):
        conv.conv2d_backward(x, np.zeros((3, 3, 1, 1)), np.zeros((1, 1, 1, 1)), out=[None, None, None])
