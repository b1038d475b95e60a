"""Pooling layers: Max/Average 2-D and 1-D, global average/max 2-D and 1-D."""

import numpy as np

from convx._kernels import _checks
from convx._kernels import pool as _pool
from convx.layers.base import Layer, check_data_format, normalize_padding, normalize_tuple


class _Pooling(Layer):
    """Windowed pooling over ``rank`` spatial axes; strides default to pool_size."""

    rank = 2
    mode = "max"

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        check_data_format(data_format)
        self.pool_size = normalize_tuple(pool_size, self.rank, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, self.rank, "strides")
        self.padding = normalize_padding(padding)

    def _as2d(self, values):
        return tuple(values) if self.rank == 2 else (1,) + tuple(values)

    def compute_output_shape(self, input_shape):
        self._require_ndim(input_shape, self.rank + 2)
        spatial = []
        for axis, (n, k, s) in enumerate(zip(input_shape[1:-1], self.pool_size, self.strides)):
            if n is None:
                spatial.append(None)
                continue
            out, _ = _checks.output_length(n, k, s, 1, self.padding == "same")
            if out < 1:
                raise ValueError(
                    f'Layer "{self.name}": computed output size would be {out} along spatial axis {axis} '
                    f"for input shape {input_shape} with pool_size={self.pool_size} and padding='{self.padding}'; "
                    "the input is too small"
                )
            spatial.append(out)
        return (input_shape[0],) + tuple(spatial) + (input_shape[-1],)

    def _as4d(self, shape):
        return shape if self.rank == 2 else (shape[0], 1) + tuple(shape[1:])

    def input_window(self, input_shape):
        """(rows, columns) of a 2-D input of ``input_shape`` that the windows read,
        or None when they read it all (or padding is 'same')."""
        if self.rank != 2 or self.padding != "valid":
            return None
        used = tuple((n - k) // s * s + k for n, k, s in zip(input_shape[1:3], self.pool_size, self.strides))
        return None if used == tuple(input_shape[1:3]) else used

    def tiles_its_input(self):
        """A 2-D max pooling whose windows tile its input: 'valid', strides equal to pool_size."""
        return self.rank == 2 and self.mode == "max" and self.padding == "valid" and self.strides == self.pool_size

    def _windows_overlap(self):
        return any(s < k for s, k in zip(self.strides, self.pool_size))

    def forward(self, x, training=False):
        x4 = x if self.rank == 2 else x.reshape(self._as4d(x.shape))
        args = (self._as2d(self.pool_size), self._as2d(self.strides), self.padding)
        y_shape = self._as4d(self._output_shape_for(x.shape))
        y = self._buffer("y", y_shape, x4.dtype)
        if self.mode == "max":
            # indices only where the backward pass needs them: windows that do
            # not overlap find their maxima again from x and y
            with_argmax = training and self._windows_overlap()
            argmax = self._buffer("argmax", y_shape, np.int64) if with_argmax else None
            y, argmax = _pool.max_pool2d_forward(x4, *args, out=(y, argmax), with_argmax=with_argmax)
        else:
            y, argmax = _pool.avg_pool2d_forward(x4, *args, out=y), None
        if training:
            state = self._state
            state.x, state.y, state.argmax = x4, y, argmax
        return y if self.rank == 2 else y.reshape((y.shape[0],) + y.shape[2:])

    def backward(self, dy, through_relu=False):
        """Gradient w.r.t. the input; with ``through_relu`` (max pooling only, its
        input being a relu's output) w.r.t. that relu's input instead."""
        dy4 = dy if self.rank == 2 else dy.reshape(self._as4d(dy.shape))
        state = self._state
        x4 = state.x
        dx = self._buffer("dx", x4.shape, dy4.dtype)
        args = (self._as2d(self.pool_size), self._as2d(self.strides), self.padding)
        if self.mode == "max" and state.argmax is None:
            dx = _pool.max_pool2d_backward_windows(dy4, x4, state.y, *args, out=dx, through_relu=through_relu)
        elif self.mode == "max":
            dx = _pool.max_pool2d_backward(dy4, state.argmax, x4.shape, out=dx,
                                           relu_input=x4 if through_relu else None)
        else:
            dx = _pool.avg_pool2d_backward(dy4, x4.shape, *args, out=dx)
        return dx if self.rank == 2 else dx.reshape((dx.shape[0],) + dx.shape[2:])

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": "channels_last",
        }


class MaxPooling2D(_Pooling):
    """Max over ``pool_size`` windows of ``(N, H, W, C)``; defaults pool (2, 2), strides = pool_size, 'valid'."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling2D(_Pooling):
    """Mean over windows (padding cells excluded from the count, as in Keras)."""

    mode = "avg"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling1D(_Pooling):
    """Max over windows of ``(N, L, C)``; defaults pool_size 2, strides = pool_size, 'valid'."""

    rank = 1

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(_Pooling):
    """Mean over windows of ``(N, L, C)``."""

    rank = 1
    mode = "avg"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class _GlobalPooling(Layer):
    """Reduces all spatial axes of ``(N, *spatial, C)`` to ``(N, C)`` (or keeps them as 1s)."""

    rank = 2
    mode = "avg"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        check_data_format(data_format)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        self._require_ndim(input_shape, self.rank + 2)
        if self.keepdims:
            return (input_shape[0],) + (1,) * self.rank + (input_shape[-1],)
        return (input_shape[0], input_shape[-1])

    def forward(self, x, training=False):
        x4 = x if self.rank == 2 else x.reshape((x.shape[0], 1) + x.shape[1:])
        if self.mode == "max":
            y, argmax = _pool.global_max_pool2d_forward(x4)
            if training:
                self._state.argmax = argmax
        else:
            y = _pool.global_avg_pool2d_forward(x4)
        if training:
            self._state.x_shape = x4.shape
        return y.reshape((y.shape[0],) + (1,) * self.rank + (y.shape[1],)) if self.keepdims else y

    def backward(self, dy):
        dy2 = dy.reshape(dy.shape[0], dy.shape[-1])
        if self.mode == "max":
            dx = _pool.global_max_pool2d_backward(dy2, self._state.argmax, self._state.x_shape)
        else:
            dx = _pool.global_avg_pool2d_backward(dy2, self._state.x_shape)
        return dx if self.rank == 2 else dx.reshape((dx.shape[0],) + dx.shape[2:])

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last", "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over H and W: ``(N, H, W, C)`` -> ``(N, C)``."""


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over H and W: ``(N, H, W, C)`` -> ``(N, C)``."""

    mode = "max"


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over L: ``(N, L, C)`` -> ``(N, C)``.

    With a mask (bool ``(N, L)``, e.g. from ``Embedding(mask_zero=True)`` inside a model, or
    ``layer(x, mask=...)``), the mean of the unmasked steps only, as Keras: a sample whose steps are all
    masked gives NaN (0 / 0).
    """

    rank = 1
    uses_mask = True

    def __call__(self, x, training=False, mask=None):
        self._own_state.mask_source = None if mask is None else _GivenMask(mask)
        return super().__call__(x, training=training)

    def _mask(self, x):
        source = getattr(self._state, "mask_source", None)
        if source is None:
            return None
        mask = np.asarray(source.mask)
        if mask.shape != x.shape[:2]:
            raise ValueError(f'Layer "{self.name}" received a mask of shape {mask.shape} for an input of shape '
                             f"{x.shape}: expected {x.shape[:2]}")
        return mask

    def forward(self, x, training=False):
        mask = self._mask(x)
        if mask is None:
            self._state.weights = None
            return super().forward(x, training)
        # weights[n, l] = mask / count: the masked mean is one batched product, and its own gradient
        weights = self._buffer("mask_weights", mask.shape, x.dtype)
        np.copyto(weights, mask)
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(weights, weights.sum(axis=1, keepdims=True), out=weights)
        y = np.matmul(weights[:, None, :], x, out=self._buffer("y", (x.shape[0], 1, x.shape[2]), x.dtype))
        if training:
            self._state.weights = weights
        return y if self.keepdims else y.reshape(x.shape[0], x.shape[2])

    def backward(self, dy):
        weights = self._state.weights
        if weights is None:
            return super().backward(dy)
        dy = dy.reshape(dy.shape[0], 1, dy.shape[-1])
        return np.multiply(weights[:, :, None], dy, out=self._buffer("dx", weights.shape + dy.shape[2:], dy.dtype))


class _GivenMask:
    """A mask passed to a direct call (``layer(x, mask=m)``), read like an Embedding's call state."""

    def __init__(self, mask):
        self.mask = mask


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over L: ``(N, L, C)`` -> ``(N, C)``."""

    rank = 1
    mode = "max"
