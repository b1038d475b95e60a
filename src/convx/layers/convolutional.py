"""Convolution layers: Conv2D, Conv1D (a Conv2D with a height-1 kernel; 'causal' padding),
DepthwiseConv2D/1D, SeparableConv2D/1D (depthwise then pointwise); Conv2DTranspose and
Conv1DTranspose are in :mod:`convx.layers.convolutional_transpose` (also importable from here).
The 1-D layers run on the 2-D kernels with a height-1 axis."""

import math

import numpy as np

from convx import activations, constraints, initializers, regularizers
from convx._kernels import _checks
from convx._kernels import conv as _conv
from convx._kernels import depthwise as _depthwise
from convx._kernels import pool as _pool
from convx.layers.base import ActivationOutput, Layer, check_data_format, normalize_padding, normalize_tuple


def _int8_layers():
    from convx.quantization import layers

    return layers


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Invalid value for argument `{name}`. Expected a strictly positive value. "
                         f"Received {name}={value!r}.")
    return int(value)


def _no_strided_dilation(strides, dilation_rate):
    if max(strides) > 1 and max(dilation_rate) > 1:
        raise ValueError(
            "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
            f"Received: strides={strides} and dilation_rate={dilation_rate}"
        )


class _BaseConv(ActivationOutput, Layer):
    """What every convolution layer shares: geometry arguments, activation, bias,
    the regularizer / constraint arguments of its weights, and the 1-D layers'
    view of their tensors as 2-D ones with a height-1 axis. An activity
    regularizer's penalty is taken on the output (after the activation), as Keras does."""

    rank = 2
    _supports_activity_regularizer = True
    paddings = ("valid", "same")
    # weight name -> argument prefix of its initializer / regularizer / constraint
    weight_args = {"kernel": "kernel", "bias": "bias"}

    def __init__(self, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                 activity_regularizer=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        check_data_format(data_format)
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = normalize_tuple(strides, self.rank, "strides")
        self.padding = normalize_padding(padding, self.paddings)
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias = None

    def _weight_options(self, prefix, initializer, regularizer, constraint):
        setattr(self, f"{prefix}_initializer", initializers.get(initializer))
        setattr(self, f"{prefix}_regularizer", regularizers.get(regularizer))
        setattr(self, f"{prefix}_constraint", constraints.get(constraint))

    def _add(self, name, shape):
        """A weight with its initializer, regularizer and constraint (``weight_args[name]``)."""
        prefix = self.weight_args[name]
        return self.add_weight(shape=shape, initializer=getattr(self, f"{prefix}_initializer"), trainable=True,
                               regularizer=getattr(self, f"{prefix}_regularizer"),
                               constraint=getattr(self, f"{prefix}_constraint"), name=name)

    def _output(self, y):
        """The layer's output ``y``, its activity penalty recorded (when it has a regularizer)."""
        if self.activity_regularizer is not None:
            self._activity_forward(y)
        return y

    def _output_grad(self, dy, from_logits):
        """``dy`` (and the activity penalty's gradient), w.r.t. the pre-activation output."""
        if self.activity_regularizer is not None:
            dy = self._add_activity_grad(dy, from_logits)
        return self._pre_activation_grad(dy, from_logits)

    # the kernels are 2-D: 1-D layers view their tensors with a height-1 axis
    def _as2d(self, values):
        return tuple(values) if self.rank == 2 else (1,) + tuple(values)

    def _as4d(self, shape):
        return shape if self.rank == 2 else (shape[0], 1) + tuple(shape[1:])

    def _to4d(self, array):
        return array if self.rank == 2 else array.reshape(self._as4d(array.shape))

    def _from4d(self, array):
        return array if array is None or self.rank == 2 else array.reshape((array.shape[0],) + array.shape[2:])

    def _kernel4d(self, array):
        return array if self.rank == 2 else array.reshape((1,) + array.shape)

    def _bias_value(self):
        return None if self.bias is None else self.bias.value

    def _bias_grad(self, count, dtype):
        return self.bias.grad if self.bias is not None else self._buffer("dbias", (count,), dtype)

    def _check_input(self, input_shape):
        self._require_ndim(input_shape, self.rank + 2)
        if input_shape[-1] is None:
            self._incompatible("the channel axis (last) must be defined", input_shape)

    def _conv_output_shape(self, input_shape, channels, same):
        """(batch, spatial..., channels) of a convolution with this layer's geometry."""
        self._check_input(input_shape)
        spatial = []
        for axis, (n, k, s, d) in enumerate(zip(input_shape[1:-1], self.kernel_size, self.strides,
                                                self.dilation_rate)):
            if n is None:
                spatial.append(None)
                continue
            out, _ = _checks.output_length(n, k, s, d, same)
            if out < 1:
                raise ValueError(
                    f'Layer "{self.name}": computed output size would be {out} along spatial axis {axis} '
                    f"for input shape {input_shape}, kernel_size={self.kernel_size}, "
                    f"dilation_rate={self.dilation_rate} and padding='{self.padding}'; the input is too small"
                )
            spatial.append(out)
        return (input_shape[0],) + tuple(spatial) + (channels,)

    def _geometry_config(self):
        return {
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": "channels_last",
            "dilation_rate": self.dilation_rate,
        }

    def _weights_config(self):
        config = {}
        prefixes = list(dict.fromkeys(self.weight_args.values()))
        for kind in ("initializer", "regularizer", "constraint"):
            for prefix in prefixes:
                value = getattr(self, f"{prefix}_{kind}")
                if kind == "initializer":
                    config[f"{prefix}_initializer"] = initializers.serialize(value)
                else:
                    module = regularizers if kind == "regularizer" else constraints
                    config[f"{prefix}_{kind}"] = module.serialize(value)
            if kind == "regularizer":
                config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    def get_config(self):
        return {**super().get_config(), **self._geometry_config(), "activation": self.activation,
                "use_bias": self.use_bias, **self._weights_config()}


class _Conv(_BaseConv):
    """Shared code of Conv1D/Conv2D; ``rank`` spatial axes, channels last."""

    # The activity penalty goes through the plan's fusions too: trains_pooled is False with one,
    # forward_pooled computes the whole output, output windows are ignored.

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         activity_regularizer, **kwargs)
        self.filters = _positive_int(filters, "filters")
        if groups != 1:
            raise ValueError(f"convx supports only groups=1, received groups={groups!r}")
        _no_strided_dilation(self.strides, self.dilation_rate)
        self._weight_options("kernel", kernel_initializer, kernel_regularizer, kernel_constraint)
        self._weight_options("bias", bias_initializer, bias_regularizer, bias_constraint)
        self.kernel = None

    @property
    def _kernel_padding(self):
        """The padding the kernels apply: 'causal' pads x itself (on the left) and runs 'valid'."""
        return "valid" if self.padding == "causal" else self.padding

    def _causal_pad(self):
        return (self.kernel_size[0] - 1) * self.dilation_rate[0] if self.padding == "causal" else 0

    def compute_output_shape(self, input_shape):
        # causal: valid on an input longer by (K - 1) * dilation, the length 'same' gives
        return self._conv_output_shape(input_shape, self.filters, self.padding != "valid")

    def build(self, input_shape):
        self.kernel = self._add("kernel", self.kernel_size + (input_shape[-1], self.filters))
        if self.use_bias:
            self.bias = self._add("bias", (self.filters,))

    def _padded_input(self, x):
        """x with the causal zeros in front (a reused buffer), or x itself."""
        pad = self._causal_pad()
        if not pad:
            return x
        xp = self._buffer("x_causal", (x.shape[0], x.shape[1] + pad) + x.shape[2:], x.dtype)
        xp[:, :pad] = 0
        xp[:, pad:] = x
        return xp

    def forward(self, x, training=False, output_window=None):
        """``output_window`` (2-D only): (rows, columns) of the output that the
        next layer reads, e.g. a valid pooling; the rest is skipped and set to 0."""
        if self._int8 is not None:
            return _int8_layers().conv_forward(self, x, training)
        x4 = self._to4d(self._padded_input(x))
        if training:
            self._state.x = x4
        kernel = self._kernel4d(self.kernel.value)
        y_shape = self._as4d(self._output_shape_for(x.shape))
        if self.rank == 1 or self.activity_regularizer is not None:  # the penalty needs the whole output
            output_window = None
        y = self._activate(
            lambda act, slot: _conv.conv2d_forward(
                x4, kernel, self._bias_value(), strides=self._as2d(self.strides), padding=self._kernel_padding,
                dilation=self._as2d(self.dilation_rate), activation=act, out=self._buffer(slot, y_shape, x4.dtype),
                output_window=output_window,
            ),
            training,
        )
        return self._from4d(self._output(y))

    def forward_pooled(self, x, pool_size, training=False):
        """Output of this layer followed by a valid max pooling with windows
        ``pool_size`` and equal strides, without storing this layer's own
        output (2-D only): shape (N, OH // PH, OW // PW, filters). In training
        (only when :meth:`trains_pooled`), :meth:`backward_pooled` follows."""
        if self._int8 is not None:
            return _int8_layers().conv_forward(self, x, training, pool_size)
        ph, pw = pool_size
        oh, ow = self._output_shape_for(x.shape)[1:3]
        pooled_shape = (x.shape[0], oh // ph, ow // pw, self.filters)
        if self.activity_regularizer is not None:  # inference only (not trains_pooled): the penalty needs y
            y = _conv.conv2d_forward(x, self.kernel.value, self._bias_value(), self.strides, self.padding,
                                     self.dilation_rate, self.activation,
                                     out=self._buffer("y_unpooled", (x.shape[0], oh, ow, self.filters), x.dtype))
            self._output(y)
            pooled, _ = _pool.max_pool2d_forward(y, pool_size, out=(self._buffer("y", pooled_shape, x.dtype), None),
                                                 with_argmax=False)
            return pooled
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
        return (self.rank == 2 and self.built and self.activation in ("relu", "linear") and math.prod(pool_size) <= 64
                and self.activity_regularizer is None)

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
        dbias = self._bias_grad(self.filters, dy.dtype)
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

    def backward(self, dy, from_logits=False):
        if self._int8 is not None:
            _int8_layers().raise_not_trainable(self)
        x4, need_dx = self._state.x, self._state.need_dx
        dz4 = self._output_grad(self._to4d(dy), from_logits)
        dx = self._buffer("dx", x4.shape, x4.dtype) if need_dx else None
        # weight gradients go straight into the variables' grad arrays (views of the model's flat buffer)
        dx, _, _ = _conv.conv2d_backward(
            x4, self._kernel4d(self.kernel.value), dz4, strides=self._as2d(self.strides),
            padding=self._kernel_padding, dilation=self._as2d(self.dilation_rate), need_dx=need_dx,
            out=(dx, self._kernel4d(self.kernel.grad), self._bias_grad(self.filters, x4.dtype)),
        )
        dx = self._from4d(dx)
        pad = self._causal_pad()
        if dx is None or not pad:
            return dx
        # the gradient of the causal zeros is dropped
        out = self._buffer("dx_causal", (dx.shape[0], dx.shape[1] - pad) + dx.shape[2:], dx.dtype)
        np.copyto(out, dx[:, pad:])
        return out

    def get_config(self):
        config = {**super().get_config(), "filters": self.filters, "groups": 1}
        return config if self._int8 is None else _int8_layers().config_of(self, config)


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
    kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint : optional
        Keras' regularizers and constraints of the weights (and of the output).
    """

    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, groups, activation,
                         use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class Conv1D(_Conv):
    """1-D convolution over ``(N, L, C)`` inputs; kernel ``(K, C_in, filters)``.

    Runs on the 2-D kernels as a convolution of height 1. Parameters as Conv2D
    with single ints, and padding 'causal' (Keras): ``(K - 1) * dilation_rate``
    zeros before the sequence, none after, so that output t sees inputs <= t.
    """

    rank = 1
    paddings = ("valid", "same", "causal")

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, groups, activation,
                         use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class _DepthwiseConv(_BaseConv):
    """Shared code of DepthwiseConv1D/2D (and of the separable layers' first step):
    each input channel c is convolved with its own ``depth_multiplier`` filters,
    output channel ``c * depth_multiplier + m`` from ``kernel[..., c, m]``."""

    weight_args = {"kernel": "depthwise", "bias": "bias"}

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         activity_regularizer, **kwargs)
        self.depth_multiplier = _positive_int(depth_multiplier, "depth_multiplier")
        self._weight_options("depthwise", depthwise_initializer, depthwise_regularizer, depthwise_constraint)
        self._weight_options("bias", bias_initializer, bias_regularizer, bias_constraint)
        self.kernel = None

    def _geometry(self):
        return dict(strides=self._as2d(self.strides), padding=self.padding, dilation=self._as2d(self.dilation_rate))

    def _depthwise_shape(self, channels):
        return self.kernel_size + (channels, self.depth_multiplier)

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        return self._conv_output_shape(input_shape, input_shape[-1] * self.depth_multiplier, self.padding == "same")

    def build(self, input_shape):
        channels = input_shape[-1]
        self.kernel = self._add("kernel", self._depthwise_shape(channels))
        if self.use_bias:
            self.bias = self._add("bias", (channels * self.depth_multiplier,))

    def forward(self, x, training=False):
        x4 = self._to4d(x)
        if training:
            self._state.x = x4
        y_shape = self._as4d(self._output_shape_for(x.shape))
        return self._from4d(self._output(self._activate(
            lambda act, slot: _depthwise.depthwise_forward(
                x4, self._kernel4d(self.kernel.value), self._bias_value(), activation=act,
                out=self._buffer(slot, y_shape, x.dtype), **self._geometry()),
            training,
        )))

    def backward(self, dy, from_logits=False):
        if self._int8 is not None:
            _int8_layers().raise_not_trainable(self)
        x4, need_dx = self._state.x, self._state.need_dx
        dz4 = self._output_grad(self._to4d(dy), from_logits)
        dx = self._buffer("dx", x4.shape, x4.dtype) if need_dx else None
        dx, _, _ = _depthwise.depthwise_backward(
            x4, self._kernel4d(self.kernel.value), dz4, need_dx=need_dx,
            out=(dx, self._kernel4d(self.kernel.grad), self._bias_grad(dz4.shape[-1], dz4.dtype)),
            **self._geometry(),
        )
        return self._from4d(dx)

    def get_config(self):
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier}


class DepthwiseConv2D(_DepthwiseConv):
    """Depthwise 2-D convolution over ``(N, H, W, C)`` inputs, Keras 3 semantics.

    Each input channel c is convolved with its own ``depth_multiplier`` filters:
    output channel ``c * depth_multiplier + m`` uses ``kernel[:, :, c, m]``.

    Parameters
    ----------
    kernel_size : int or (int, int)
    strides : int or (int, int), default (1, 1)
    padding : {'valid', 'same'}, default 'valid'
    depth_multiplier : int, default 1
    dilation_rate : int or (int, int), default (1, 1)
    activation, use_bias
        As Conv2D; the activation is fused into the kernel.
    depthwise_initializer : default 'glorot_uniform'
        Kernel ``(KH, KW, C, depth_multiplier)``, weight name 'kernel' (as Keras).
    bias_initializer : default 'zeros'
        Bias ``(C * depth_multiplier,)``.
    depthwise_regularizer, bias_regularizer, activity_regularizer, depthwise_constraint, bias_constraint : optional
    """

    rank = 2

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)


class DepthwiseConv1D(_DepthwiseConv):
    """Depthwise 1-D convolution over ``(N, L, C)`` inputs; kernel ``(K, C, depth_multiplier)``.
    Parameters as DepthwiseConv2D with single ints (run on the 2-D kernels with height 1)."""

    rank = 1


class _SeparableConv(_DepthwiseConv):
    """Shared code of SeparableConv1D/2D: a depthwise convolution (no bias, no
    activation), then a pointwise (1x1) convolution to ``filters`` channels with
    the bias and the activation fused into its GEMM's epilogue. Keras' weights,
    in this order: depthwise_kernel, pointwise_kernel, bias."""

    weight_args = {"depthwise_kernel": "depthwise", "pointwise_kernel": "pointwise", "bias": "bias"}

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)
        self.filters = _positive_int(filters, "filters")
        self._weight_options("pointwise", pointwise_initializer, pointwise_regularizer, pointwise_constraint)
        self.depthwise_kernel = self.pointwise_kernel = None

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        return self._conv_output_shape(input_shape, self.filters, self.padding == "same")

    def build(self, input_shape):
        mid = input_shape[-1] * self.depth_multiplier
        self.depthwise_kernel = self._add("depthwise_kernel", self._depthwise_shape(input_shape[-1]))
        self.pointwise_kernel = self._add("pointwise_kernel", (1,) * self.rank + (mid, self.filters))
        if self.use_bias:
            self.bias = self._add("bias", (self.filters,))

    def forward(self, x, training=False):
        state = self._state
        x4 = self._to4d(x)
        y_shape = self._as4d(self._output_shape_for(x.shape))
        mid = _depthwise.depthwise_forward(
            x4, self._kernel4d(self.depthwise_kernel.value), None,
            out=self._buffer("mid", y_shape[:3] + (x.shape[-1] * self.depth_multiplier,), x.dtype),
            **self._geometry())
        if training:
            state.x, state.mid = x4, mid
        return self._from4d(self._output(self._activate(
            lambda act, slot: _conv.conv2d_forward(mid, self._kernel4d(self.pointwise_kernel.value),
                                                   self._bias_value(), activation=act,
                                                   out=self._buffer(slot, y_shape, x.dtype)),
            training,
        )))

    def backward(self, dy, from_logits=False):
        state = self._state
        dz4 = self._output_grad(self._to4d(dy), from_logits)
        dmid, _, _ = _conv.conv2d_backward(
            state.mid, self._kernel4d(self.pointwise_kernel.value), dz4,
            out=(self._buffer("dmid", state.mid.shape, dz4.dtype), self._kernel4d(self.pointwise_kernel.grad),
                 self._bias_grad(self.filters, dz4.dtype)),
        )
        dx = self._buffer("dx", state.x.shape, state.x.dtype) if state.need_dx else None
        dx, _, _ = _depthwise.depthwise_backward(
            state.x, self._kernel4d(self.depthwise_kernel.value), dmid, need_dx=state.need_dx,
            out=(dx, self._kernel4d(self.depthwise_kernel.grad),
                 self._buffer("dmid_bias", (dmid.shape[-1],), dz4.dtype)),
            **self._geometry(),
        )
        return self._from4d(dx)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


class SeparableConv2D(_SeparableConv):
    """Depthwise separable 2-D convolution over ``(N, H, W, C)`` inputs, Keras 3
    semantics: depthwise_kernel ``(KH, KW, C, depth_multiplier)``, pointwise_kernel
    ``(1, 1, C * depth_multiplier, filters)``, bias ``(filters,)``.

    Parameters
    ----------
    filters : int
    kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier
        Of the depthwise step.
    activation, use_bias
    depthwise_initializer, pointwise_initializer : default 'glorot_uniform'
    bias_initializer : default 'zeros'
    depthwise_regularizer, pointwise_regularizer, bias_regularizer, activity_regularizer : optional
    depthwise_constraint, pointwise_constraint, bias_constraint : optional
    """

    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier,
                         activation, use_bias, depthwise_initializer, pointwise_initializer, bias_initializer,
                         depthwise_regularizer, pointwise_regularizer, bias_regularizer, activity_regularizer,
                         depthwise_constraint, pointwise_constraint, bias_constraint, **kwargs)


class SeparableConv1D(_SeparableConv):
    """Depthwise separable 1-D convolution over ``(N, L, C)`` inputs: depthwise_kernel
    ``(K, C, depth_multiplier)``, pointwise_kernel ``(1, C * depth_multiplier, filters)``,
    bias ``(filters,)``. Parameters as SeparableConv2D with single ints."""

    rank = 1


# the transposed convolutions live in their own module; this one has always exported them
from convx.layers.convolutional_transpose import Conv1DTranspose, Conv2DTranspose  # noqa: E402


# Keras' aliases
Convolution2DTranspose = Conv2DTranspose
Convolution1DTranspose = Conv1DTranspose
SeparableConvolution2D = SeparableConv2D
SeparableConvolution1D = SeparableConv1D
