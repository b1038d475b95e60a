"""Convolution layers: Conv2D and Conv1D (a Conv2D with a height-1 kernel)."""

import math

import numpy as np

from convx import activations, initializers
from convx._kernels import _checks
from convx._kernels import conv as _conv
from convx.layers.base import ActivationOutput, Layer, check_data_format, normalize_padding, normalize_tuple


class _Conv(ActivationOutput, Layer):
    """Shared code of Conv1D/Conv2D; ``rank`` spatial axes, channels last."""

    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"Invalid value for argument `filters`. Expected a strictly positive integer. Received filters={filters!r}")
        if groups != 1:
            raise ValueError(f"convx supports only groups=1, received groups={groups!r}")
        check_data_format(data_format)
        self.filters = int(filters)
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = normalize_tuple(strides, self.rank, "strides")
        self.padding = normalize_padding(padding)
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel = self.bias = None

    # the kernels are 2-D: Conv1D views its tensors with a height-1 axis
    def _as2d(self, values):
        return tuple(values) if self.rank == 2 else (1,) + tuple(values)

    def compute_output_shape(self, input_shape):
        self._require_ndim(input_shape, self.rank + 2)
        if input_shape[-1] is None:
            self._incompatible("the channel axis (last) must be defined", input_shape)
        spatial = []
        for axis, (n, k, s, d) in enumerate(zip(input_shape[1:-1], self.kernel_size, self.strides, self.dilation_rate)):
            if n is None:
                spatial.append(None)
                continue
            out, _ = _checks.output_length(n, k, s, d, self.padding == "same")
            if out < 1:
                raise ValueError(
                    f'Layer "{self.name}": computed output size would be {out} along spatial axis {axis} '
                    f"for input shape {input_shape}, kernel_size={self.kernel_size}, dilation_rate={self.dilation_rate} "
                    f"and padding='{self.padding}'; the input is too small"
                )
            spatial.append(out)
        return (input_shape[0],) + tuple(spatial) + (self.filters,)

    def build(self, input_shape):
        shape = self.kernel_size + (input_shape[-1], self.filters)
        self.kernel = self.add_weight(shape, self.kernel_initializer, "kernel")
        if self.use_bias:
            self.bias = self.add_weight((self.filters,), self.bias_initializer, "bias")

    def _kernel4d(self, array):
        return array if self.rank == 2 else array.reshape((1,) + array.shape)

    def _as4d(self, shape):
        return shape if self.rank == 2 else (shape[0], 1) + tuple(shape[1:])

    def forward(self, x, training=False, output_window=None):
        """``output_window`` (2-D only): (rows, columns) of the output that the
        next layer reads, e.g. a valid pooling; the rest is skipped and set to 0."""
        x4 = x if self.rank == 2 else x.reshape(self._as4d(x.shape))
        if training:
            self._state.x = x4
        kernel = self._kernel4d(self.kernel.value)
        bias = None if self.bias is None else self.bias.value
        y_shape = self._as4d(self._output_shape_for(x.shape))
        y = self._activate(
            lambda act, slot: _conv.conv2d_forward(
                x4, kernel, bias, strides=self._as2d(self.strides), padding=self.padding,
                dilation=self._as2d(self.dilation_rate), activation=act, out=self._buffer(slot, y_shape, x4.dtype),
                output_window=output_window if self.rank == 2 else None,
            ),
            training,
        )
        return y if self.rank == 2 else y.reshape((y.shape[0],) + y.shape[2:])

    def forward_pooled(self, x, pool_size, training=False):
        """Output of this layer followed by a valid max pooling with windows
        ``pool_size`` and equal strides, without storing this layer's own
        output (2-D only): shape (N, OH // PH, OW // PW, filters). In training
        (only when :meth:`trains_pooled`), :meth:`backward_pooled` follows."""
        ph, pw = pool_size
        oh, ow = self._output_shape_for(x.shape)[1:3]
        pooled_shape = (x.shape[0], oh // ph, ow // pw, self.filters)
        # the maxima's positions, unless the backward pass recomputes this layer's output
        codes = self._buffer("codes", pooled_shape, np.uint8) if training and not self._recomputes_pooled() else None
        pooled = _conv.conv2d_maxpool_forward(
            x, self.kernel.value, self._bias_value(), strides=self.strides, padding=self.padding,
            dilation=self.dilation_rate, activation=self.activation, pool_size=pool_size,
            out=self._buffer("y", pooled_shape, x.dtype), codes=codes,
        )
        if training:
            state = self._state
            state.x, state.pooled, state.pool_size, state.pool_codes = x, pooled, pool_size, codes
        return pooled

    def trains_pooled(self, pool_size):
        """Whether training may fuse this layer with a following max pooling
        with windows ``pool_size`` (:meth:`forward_pooled`,
        :meth:`backward_pooled`): a 2-D layer with a 'relu' or 'linear'
        activation, whose gradient then comes from the pooling's output and
        its maxima's positions alone, and windows of at most 64 cells."""
        return self.rank == 2 and self.built and self.activation in ("relu", "linear") and math.prod(pool_size) <= 64

    def _recomputes_pooled(self):
        """A first layer (no input gradient) with a small patch (``KH * KW *
        C_in <= SMALL_PATCH``, e.g. 3x3 on grey or RGB images) trains fused by
        recomputing its output in the backward pass (cheaper than storing it)."""
        return not self._state.need_dx and math.prod(self.kernel.shape[:-1]) <= _conv.SMALL_PATCH

    def backward_pooled(self, dy):
        """Gradient w.r.t. the input (None for a first layer) from ``dy``, the
        gradient w.r.t. the pooled output of the last training
        :meth:`forward_pooled`; fills the kernel and bias gradients."""
        state = self._state
        dbias = self.bias.grad if self.bias is not None else self._buffer("dbias", (self.filters,), dy.dtype)
        geometry = dict(strides=self.strides, padding=self.padding, dilation=self.dilation_rate,
                        activation=self.activation, pool_size=state.pool_size)
        if state.pool_codes is None:
            _conv.conv2d_maxpool_backward(state.x, self.kernel.value, dy, state.pooled, self._bias_value(),
                                          out=(self.kernel.grad, dbias), **geometry)
            return None
        dx = self._buffer("dx", state.x.shape, state.x.dtype) if state.need_dx else None
        dx, _, _ = _conv.conv2d_maxpool_backward_codes(
            state.x, self.kernel.value, dy, state.pooled, state.pool_codes, need_dx=state.need_dx,
            out=(dx, self.kernel.grad, dbias), **geometry,
        )
        return dx

    def _bias_value(self):
        return None if self.bias is None else self.bias.value

    def backward(self, dy, from_logits=False):
        x4, need_dx = self._state.x, self._state.need_dx
        dy4 = dy if self.rank == 2 else dy.reshape(self._as4d(dy.shape))
        dz4 = self._pre_activation_grad(dy4, from_logits)
        dx = self._buffer("dx", x4.shape, x4.dtype) if need_dx else None
        # weight gradients go straight into the variables' grad arrays (views of the model's flat buffer)
        dbias = self.bias.grad if self.bias is not None else self._buffer("dbias", (self.filters,), x4.dtype)
        dx, _, _ = _conv.conv2d_backward(
            x4, self._kernel4d(self.kernel.value), dz4, strides=self._as2d(self.strides),
            padding=self.padding, dilation=self._as2d(self.dilation_rate), need_dx=need_dx,
            out=(dx, self._kernel4d(self.kernel.grad), dbias),
        )
        if dx is None or self.rank == 2:
            return dx
        return dx.reshape((dx.shape[0],) + dx.shape[2:])

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": "channels_last",
            "dilation_rate": self.dilation_rate,
            "groups": 1,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        }


class Conv2D(_Conv):
    """2-D convolution over ``(N, H, W, C)`` inputs, Keras 3 semantics.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int)
    strides : int or (int, int), default 1
    padding : {'valid', 'same'}, default 'valid'
        'same' pads as TensorFlow does (extra pixel after).
    dilation_rate : int or (int, int), default 1
        Cannot exceed 1 together with strides > 1 (as in Keras).
    activation : str, callable or None, default None
        Fused into the kernel's epilogue.
    use_bias : bool, default True
    kernel_initializer : default 'glorot_uniform'
        Kernel shape ``(KH, KW, C_in, filters)``; fans include the receptive field.
    bias_initializer : default 'zeros'
    """

    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, groups, activation,
                         use_bias, kernel_initializer, bias_initializer, **kwargs)


class Conv1D(_Conv):
    """1-D convolution over ``(N, L, C)`` inputs; kernel ``(K, C_in, filters)``.

    Runs on the 2-D kernels as a convolution of height 1. Parameters as Conv2D
    with single ints; padding 'causal' is not supported.
    """

    rank = 1

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, groups, activation,
                         use_bias, kernel_initializer, bias_initializer, **kwargs)
