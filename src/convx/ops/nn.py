"""Neural-network ops of ``convx.ops`` (Keras 3's ``keras.ops.nn``) over convx's compiled kernels.

Activations run the activation kernels forward and backward (float32 and
float64); ``conv``, ``depthwise_conv``, ``max_pool`` and ``average_pool`` the
convolution, depthwise and pooling kernels (inputs ``(N, H, W, C)`` or, for
the 1-D forms, ``(N, L, C)``; kernels ``(KH, KW, C_in, C_out)`` /
``(KH, KW, C, M)``), so an op in a custom layer is as fast as the layer.
"""

import numpy as np

from convx import activations as _activations
from convx._kernels import activations as _act
from convx._kernels import conv as _conv
from convx._kernels import depthwise as _depthwise
from convx._kernels import pool as _pool
from convx.ops.core import apply
from convx.ops.operations import record_all


def _float_array(a):
    a = np.asarray(a)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def activation(x, name, params=None):
    """Activation ``name`` (a kernel code, see ``convx.activations``) on the last axis' rows."""
    needs_x = _activations.needs_input(name, params)

    def impl(a):
        a = _float_array(a)
        y = _act.activation_forward(a, name, params=params)

        def vjp(g):
            g = np.ascontiguousarray(g, dtype=y.dtype)
            return (_act.activation_backward(y, g, name, x=a if needs_x else None, params=params),)

        return y, vjp

    return apply(name, impl, x)


def _along_axis(x, axis, name):
    """A row activation (softmax, log_softmax) along ``axis``: moved last, applied, moved back."""
    from convx.ops.numpy import transpose

    ndim = len(x.shape)
    axis = axis % ndim if ndim else 0
    if ndim == 0 or axis == ndim - 1:
        return activation(x, name)
    order = [i for i in range(ndim) if i != axis] + [axis]
    row_op = softmax if name == "softmax" else log_softmax  # (the recording op: one Keras op per node)
    return transpose(row_op(transpose(x, order)), np.argsort(order))


def relu(x):
    return activation(x, "relu")


def relu6(x):
    return activation(x, "relu6")


def sigmoid(x):
    return activation(x, "sigmoid")


def tanh(x):
    return activation(x, "tanh")


def softplus(x):
    return activation(x, "softplus")


def silu(x):
    return activation(x, "silu")


swish = silu


def gelu(x, approximate=True):
    """Gaussian error linear unit; Keras' ``ops.gelu`` defaults to the tanh approximation."""
    return activation(x, "gelu_tanh" if approximate else "gelu")


def elu(x, alpha=1.0):
    return activation(x, "elu", (float(alpha),))


def leaky_relu(x, negative_slope=0.2):
    return activation(x, "leaky_relu", (float(negative_slope),))


def softmax(x, axis=-1):
    """Softmax along ``axis``."""
    return _along_axis(x, axis, "softmax")


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis``."""
    return _along_axis(x, axis, "log_softmax")


def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    """Integer labels ``x`` as one-hot vectors of ``num_classes`` along ``axis`` (float32 unless ``dtype``)."""
    if sparse:
        raise ValueError("convx has no sparse tensors; received sparse=True")

    def impl(labels):
        labels = np.asarray(labels).astype(np.int64)
        out = (labels[..., None] == np.arange(num_classes)).astype(dtype or np.float32)
        return np.moveaxis(out, -1, axis), None

    return apply("one_hot", impl, x)


# ----- convolutions and pooling ---------------------------------------------------------------------------------------

def _spatial(value, rank, name):
    values = (value,) * rank if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != rank or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in values):
        raise ValueError(f"`{name}` must be an int or a tuple of {rank} ints >= 1, received {name}={value!r}")
    return values if rank == 2 else values + (1,)


def _check_format(data_format, padding):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"convx ops take data_format='channels_last' (or None), received data_format={data_format!r}")
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"`padding` must be 'valid' or 'same', received padding={padding!r}")
    return padding.lower()


def _as_2d(a, kernel=None):
    """A 1-D input ``(N, L, C)`` viewed as ``(N, L, 1, C)`` (and its kernel ``(K, ...)`` as ``(K, 1, ...)``)."""
    a = _float_array(a)
    if a.ndim == 3:
        a = a[:, :, None, :]
        if kernel is not None:
            kernel = kernel[:, None]
    elif a.ndim != 4:
        raise ValueError(f"convx ops take inputs of shape (N, L, C) or (N, H, W, C), received shape {a.shape}")
    return a, kernel


def _conv_op(name, forward, backward, inputs, kernel, strides, padding, data_format, dilation_rate):
    padding = _check_format(data_format, padding)

    def impl(x, k):
        one_d = np.ndim(x) == 3
        rank = 1 if one_d else 2
        x4, k4 = _as_2d(x, np.ascontiguousarray(k, dtype=_float_array(x).dtype))
        geometry = dict(strides=_spatial(strides, rank, "strides"), padding=padding,
                        dilation=_spatial(dilation_rate, rank, "dilation_rate"))
        y = forward(x4, k4, **geometry)

        def vjp(g):
            g4 = np.ascontiguousarray(g, dtype=y.dtype).reshape(y.shape)
            dx, dk, _ = backward(x4, k4, g4, **geometry)
            return dx.reshape(np.shape(x)), dk.reshape(np.shape(k))

        return (y[:, :, 0, :] if one_d else y), vjp

    return apply(name, impl, inputs, kernel)


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """Convolution of ``inputs`` (N, H, W, C_in) or (N, L, C_in) with ``kernel`` (KH, KW, C_in, C_out) or
    (K, C_in, C_out); padding ``'valid'`` or ``'same'`` (TensorFlow's rule)."""
    return _conv_op("conv", _conv.conv2d_forward, _conv.conv2d_backward, inputs, kernel, strides, padding,
                    data_format, dilation_rate)


def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """Depthwise convolution: ``kernel`` (KH, KW, C, M) gives every input channel M outputs (C * M in all)."""
    return _conv_op("depthwise_conv", _depthwise.depthwise_forward, _depthwise.depthwise_backward, inputs, kernel,
                    strides, padding, data_format, dilation_rate)


def _pool_op(name, inputs, pool_size, strides, padding, data_format):
    padding = _check_format(data_format, padding)

    def impl(x):
        one_d = np.ndim(x) == 3
        rank = 1 if one_d else 2
        x4, _ = _as_2d(x)
        size = _spatial(pool_size, rank, "pool_size")
        step = size if strides is None else _spatial(strides, rank, "strides")
        if name == "max_pool":
            y, argmax = _pool.max_pool2d_forward(x4, size, step, padding)
        else:
            y = _pool.avg_pool2d_forward(x4, size, step, padding)

        def vjp(g):
            g4 = np.ascontiguousarray(g, dtype=y.dtype).reshape(y.shape)
            if name == "max_pool":
                dx = _pool.max_pool2d_backward(g4, argmax, x4.shape)
            else:
                dx = _pool.avg_pool2d_backward(g4, x4.shape, size, step, padding)
            return (dx.reshape(np.shape(x)),)

        return (y[:, :, 0, :] if one_d else y), vjp

    return apply(name, impl, inputs)


def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Max pooling of ``inputs`` (N, H, W, C) or (N, L, C); strides default to ``pool_size``."""
    return _pool_op("max_pool", inputs, pool_size, strides, padding, data_format)


def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Average pooling over the real (unpadded) cells of each window, as Keras does."""
    return _pool_op("average_pool", inputs, pool_size, strides, padding, data_format)


record_all(globals())  # symbolic calls record their Keras 3 Operation (convx.ops.operations)
