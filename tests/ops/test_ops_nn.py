"""convx.ops.nn convolution and pooling ops: forward against NumPy loops, gradients against central
differences (float64), in 2-D and 1-D forms."""

import math

import numpy as np
import pytest

from convx import ops
from opcheck import check_op


def _pad(x, sizes, strides, dilations, padding, value):
    """x padded by TensorFlow's rule; returns (padded, output lengths)."""
    pads, outs = [(0, 0)], []
    for n, k, s, d in zip(x.shape[1:3], sizes, strides, dilations):
        extent = (k - 1) * d + 1
        if padding == "same":
            out = math.ceil(n / s)
            total = max((out - 1) * s + extent - n, 0)
            pads.append((total // 2, total - total // 2))
        else:
            out = (n - extent) // s + 1
            pads.append((0, 0))
        outs.append(out)
    return np.pad(x, pads + [(0, 0)], constant_values=value), outs


def _windows(xp, sizes, strides, dilations, outs):
    """Per kernel tap (i, j): the (N, OH, OW, C) input values it meets."""
    for i in range(sizes[0]):
        for j in range(sizes[1]):
            yield i, j, xp[:, i * dilations[0]:i * dilations[0] + (outs[0] - 1) * strides[0] + 1:strides[0],
                           j * dilations[1]:j * dilations[1] + (outs[1] - 1) * strides[1] + 1:strides[1]]


def np_conv(x, k, strides, padding, dilations, depthwise=False):
    xp, outs = _pad(x, k.shape[:2], strides, dilations, padding, 0.0)
    total = 0
    for i, j, window in _windows(xp, k.shape[:2], strides, dilations, outs):
        if depthwise:
            total = total + (window[..., :, None] * k[i, j]).reshape(window.shape[:3] + (-1,))
        else:
            total = total + window @ k[i, j]
    return total


def np_pool(x, size, strides, padding, mode):
    xp, outs = _pad(x, size, strides, (1, 1), padding, np.nan)
    stacked = np.stack([w for _, _, w in _windows(xp, size, strides, (1, 1), outs)])
    return np.nanmax(stacked, 0) if mode == "max" else np.nanmean(stacked, 0)


CONVS = [((1, 1), "valid", (1, 1)), ((2, 2), "same", (1, 1)), ((1, 2), "same", (2, 1)), ((2, 1), "valid", (1, 1))]


@pytest.mark.parametrize("strides,padding,dilation", CONVS, ids=str)
def test_conv(rng, strides, padding, dilation):
    x, k = rng.normal(size=(2, 6, 5, 3)), rng.normal(size=(3, 2, 3, 4))
    check_op(lambda a, b: ops.conv(a, b, strides, padding, dilation_rate=dilation),
             lambda a, b: np_conv(a, b, strides, padding, dilation), [x, k])


@pytest.mark.parametrize("strides,padding,dilation", CONVS, ids=str)
def test_depthwise_conv(rng, strides, padding, dilation):
    x, k = rng.normal(size=(2, 6, 5, 3)), rng.normal(size=(3, 2, 3, 2))
    check_op(lambda a, b: ops.depthwise_conv(a, b, strides, padding, dilation_rate=dilation),
             lambda a, b: np_conv(a, b, strides, padding, dilation, depthwise=True), [x, k])


def test_conv_1d(rng):
    x, k = rng.normal(size=(2, 7, 3)), rng.normal(size=(3, 3, 4))
    check_op(lambda a, b: ops.conv(a, b, 2, "same"),
             lambda a, b: np_conv(a[:, :, None], b[:, None], (2, 1), "same", (1, 1))[:, :, 0], [x, k])


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("size,strides,padding", [((2, 2), None, "valid"), ((3, 3), (2, 2), "same"),
                                                  ((2, 3), (1, 2), "valid")], ids=str)
def test_pooling(rng, mode, size, strides, padding):
    x = rng.normal(size=(2, 7, 6, 3))
    op = ops.max_pool if mode == "max" else ops.average_pool
    check_op(lambda a: op(a, size, strides, padding), lambda a: np_pool(a, size, strides or size, padding, mode), [x])


def test_pooling_1d(rng):
    x = rng.normal(size=(2, 7, 3))
    check_op(lambda a: ops.max_pool(a, 2), lambda a: np_pool(a[:, :, None], (2, 1), (2, 1), "valid", "max")[:, :, 0],
             [x])


def test_bad_arguments_are_named(rng):
    x = rng.normal(size=(2, 6, 5, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="padding"):
        ops.conv(x, np.zeros((3, 3, 3, 2), np.float32), padding="full")
    with pytest.raises(ValueError, match="strides"):
        ops.max_pool(x, 2, strides=0)
    with pytest.raises(ValueError, match="data_format"):
        ops.average_pool(x, 2, data_format="channels_first")
