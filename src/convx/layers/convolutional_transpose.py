"""Transposed convolution layers: Conv2DTranspose and Conv1DTranspose (a convolution's input gradient as
the forward pass; Conv1DTranspose runs the 2-D kernels with a height-1 axis)."""

from convx._kernels import _checks
from convx._kernels import conv as _conv
from convx._kernels import depthwise as _depthwise
from convx.layers.base import normalize_tuple
from convx.layers.convolutional import _BaseConv, _int8_layers, _no_strided_dilation, _positive_int


class _ConvTranspose(_BaseConv):
    """Shared code of Conv1DTranspose / Conv2DTranspose: the forward pass is the
    input gradient of the convolution from this layer's output to its input
    (kernel ``(KH, KW, filters, C_in)`` as Keras stores it); the backward pass is
    that convolution's forward (dx) and weight gradient (dkernel)."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         activity_regularizer, **kwargs)
        self.filters = _positive_int(filters, "filters")
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = normalize_tuple(output_padding, self.rank, "output_padding", allow_zero=True)
            for axis, (p, s) in enumerate(zip(self.output_padding, self.strides)):
                if p >= s:
                    raise ValueError(
                        "`output_padding` must be strictly less than `strides` for all dimensions. "
                        f"At dimension {axis}, `output_padding` is {p} but `strides` is {s}. "
                        f"Received: output_padding={self.output_padding}, strides={self.strides}"
                    )
        _no_strided_dilation(self.strides, self.dilation_rate)
        self._weight_options("kernel", kernel_initializer, kernel_regularizer, kernel_constraint)
        self._weight_options("bias", bias_initializer, bias_regularizer, bias_constraint)
        self.kernel = None

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        spatial = []
        for axis, n in enumerate(input_shape[1:-1]):
            if n is None:
                spatial.append(None)
                continue
            k, s, d = self.kernel_size[axis], self.strides[axis], self.dilation_rate[axis]
            p = None if self.output_padding is None else self.output_padding[axis]
            out = _depthwise.conv_transpose_output_length(n, k, s, d, self.padding, p)
            back, _ = _checks.output_length(out, k, s, d, self.padding == "same")
            if back != n:  # e.g. 'same', an even kernel, stride 1 and output_padding 0
                raise ValueError(
                    f'Layer "{self.name}": output size {out} along spatial axis {axis} (input shape {input_shape}, '
                    f"kernel_size={self.kernel_size}, strides={self.strides}, padding='{self.padding}', "
                    f"output_padding={self.output_padding}) is not the input of a convolution giving {n}"
                )
            spatial.append(out)
        return (input_shape[0],) + tuple(spatial) + (self.filters,)

    def build(self, input_shape):
        self.kernel = self._add("kernel", self.kernel_size + (self.filters, input_shape[-1]))
        if self.use_bias:
            self.bias = self._add("bias", (self.filters,))

    def _geometry(self):
        return dict(strides=self._as2d(self.strides), padding=self.padding, dilation=self._as2d(self.dilation_rate))

    def forward(self, x, training=False):
        x4 = self._to4d(x)
        if training:
            self._state.x = x4
        y_shape = self._as4d(self._output_shape_for(x.shape))
        y = self._activate(
            lambda act, slot: _depthwise.conv_transpose_forward(
                x4, self._kernel4d(self.kernel.value), y_shape[1:3], self._bias_value(), activation=act,
                out=self._buffer(slot, y_shape, x4.dtype), **self._geometry()),
            training,
        )
        return self._from4d(self._output(y))

    def backward(self, dy, from_logits=False):
        if self._int8 is not None:
            _int8_layers().raise_not_trainable(self)
        x4, need_dx = self._state.x, self._state.need_dx
        dz4 = self._output_grad(self._to4d(dy), from_logits)
        kernel4 = self._kernel4d(self.kernel.value)
        _depthwise.column_sums(dz4, out=self._bias_grad(self.filters, dz4.dtype))
        # the convolution from this layer's output (dz's shape) to its input (x's shape): its
        # weight gradient with x as the gradient of its output, and its forward pass for dx
        _conv.conv2d_backward(dz4, kernel4, x4, need_dx=False,
                              out=(None, self._kernel4d(self.kernel.grad),
                                   self._buffer("x_sums", (x4.shape[-1],), x4.dtype)),
                              **self._geometry())
        if not need_dx:
            return None
        dx = _conv.conv2d_forward(dz4, kernel4, out=self._buffer("dx", x4.shape, x4.dtype), **self._geometry())
        return self._from4d(dx)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "output_padding": self.output_padding}


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution over ``(N, H, W, C)`` inputs, Keras 3 semantics.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size, strides, dilation_rate : int or (int, int)
        strides > 1 and dilation_rate > 1 cannot be combined (as in Keras).
    padding : {'valid', 'same'}, default 'valid'
    output_padding : int or (int, int), optional
        Extra rows / columns at the end of the output, each < its stride; the
        output size is Keras' (TensorFlow's): 'valid' ``(n - 1) * s + k_eff +
        (output_padding or max(s - k_eff, 0))``, 'same' ``n * s`` without
        output_padding, else ``(n - 1) * s + k_eff % 2 + output_padding``.
    activation, use_bias, kernel_initializer, bias_initializer, regularizers, constraints
        As Conv2D; kernel shape ``(KH, KW, filters, C_in)``.
    """

    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate,
                         activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution over ``(N, L, C)`` inputs; kernel ``(K, filters, C_in)``.
    Parameters as Conv2DTranspose with single ints."""

    rank = 1

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate,
                         activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint, **kwargs)

