"""Core layers: Input, Dense, Activation, ReLU, Softmax, Dropout, Flatten."""

import math

import numpy as np

from convx import activations, constraints, initializers, regularizers
from convx import random as _random
from convx._kernels import dense as _dense
from convx.layers.activations import Activation, ReLU, Softmax  # noqa: F401  (defined there, exported here too)
from convx.layers.base import ActivationOutput, Layer, format_shape
from convx.layers.node import KerasHistory, KerasTensor, Node


_INPUT_DTYPES = ("float32", "float64", "int32", "int64", "uint8", "bool", "string")


class InputLayer(Layer):
    """The entry point of a model: declares the shape and dtype of one sample.

    Its output, ``layer.output``, is the symbolic tensor that ``convx.Input``
    returns. Usually made by ``convx.Input``; a Sequential model also accepts
    the layer itself as its first entry.

    Parameters
    ----------
    shape : tuple of int or None
        Shape of one sample, without the batch axis (e.g. ``(28, 28, 1)``).
    batch_size : int, optional
    dtype : str, default 'float32'
    batch_shape : tuple, optional
        ``(batch_size,) + shape`` in one argument (instead of both).
    name : str, optional
        Defaults to ``input_layer``, ``input_layer_1``, ...
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, input_tensor=None,
                 optional=False, name=None, **kwargs):
        if shape is None and "input_shape" in kwargs:
            shape = kwargs.pop("input_shape")
        if sparse or input_tensor is not None or optional:
            raise ValueError("convx's InputLayer supports neither sparse, input_tensor nor optional inputs; received "
                             f"sparse={sparse!r}, input_tensor={input_tensor!r}, optional={optional!r}")
        if batch_shape is not None:
            if shape is not None:
                raise ValueError("You cannot pass both `shape` and `batch_shape` at the same time.")
            batch_size, shape = batch_shape[0], tuple(batch_shape)[1:]
        if shape is None:
            raise ValueError("You must pass a `shape` argument (the shape of one sample), received shape=None")
        dtype = "float32" if dtype is None else (dtype if dtype in ("string", str) else np.dtype(dtype).name)
        if dtype not in _INPUT_DTYPES:
            raise ValueError(f"InputLayer supports the dtypes {_INPUT_DTYPES}, received dtype={dtype!r}")
        tensor_name = name
        super().__init__(name=name, **kwargs)
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if not all(s is None or (isinstance(s, (int, np.integer)) and s > 0) for s in shape):
            raise ValueError(f"InputLayer `shape` must hold positive ints or None, received shape={shape!r}")
        self.batch_size = batch_size
        self.input_dtype = dtype
        self.shape = (batch_size,) + tuple(None if s is None else int(s) for s in shape)
        self.build_for(self.shape)
        tensor = KerasTensor(self.shape, dtype, name=tensor_name, history=KerasHistory(self, 0, 0))
        self._inbound_nodes.append(Node(self, [], [tensor]))

    @property
    def batch_shape(self):
        return self.shape

    def output_may_alias_input(self):
        return True

    def forward(self, x, training=False):
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        return {"batch_shape": self.shape, "dtype": self.input_dtype, "sparse": False, "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None, tensor=None,
          optional=False):
    """``keras.Input``: a symbolic tensor to build a functional model on.

    Parameters
    ----------
    shape : tuple of int or None
        Shape of one sample, without the batch axis.
    batch_size : int, optional
    dtype : str, default 'float32'
    batch_shape : tuple, optional
        The shape with its batch axis, instead of ``shape`` and ``batch_size``.
    name : str, optional
        Name of the input layer (``input_layer``, ``input_layer_1``, ... by default).

    Returns
    -------
    KerasTensor
        ``.shape`` is ``(batch_size,) + shape``; ``convx.Model(inputs, outputs)`` takes it.
    """
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse, batch_shape=batch_shape,
                       input_tensor=tensor, optional=optional, name=name)
    return layer.output


class Dense(ActivationOutput, Layer):
    """Fully connected layer: ``activation(x @ kernel + bias)`` on the last axis.

    Parameters
    ----------
    units : int
        Output size.
    activation : str, callable or None, default None (linear)
    use_bias : bool, default True
    kernel_initializer : default 'glorot_uniform'
        Kernel shape ``(in, units)``.
    bias_initializer : default 'zeros'
    kernel_regularizer, bias_regularizer : optional
        Their penalties enter the training loss (``model.losses``).
    activity_regularizer : optional
        Penalty of the layer's output, divided by the batch size (Keras 3).
    kernel_constraint, bias_constraint : optional
        Applied to the weights after each optimizer update.
    """

    _supports_activity_regularizer = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, lora_rank=None,
                 lora_alpha=None, quantization_config=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if lora_rank is not None or quantization_config is not None:
            raise ValueError("Dense supports neither LoRA nor a quantization_config; received "
                             f"lora_rank={lora_rank!r}, quantization_config={quantization_config!r}")
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"Received an invalid value for `units`, expected a positive integer. Received: units={units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.kernel = self.bias = None

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2:
            self._incompatible("expected min_ndim=2", input_shape)
        if input_shape[-1] is None:
            self._incompatible("the last axis must be defined", input_shape)
        return tuple(input_shape[:-1]) + (self.units,)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer=self.kernel_initializer,
                                      name="kernel", regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.units,), initializer=self.bias_initializer, name="bias",
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def forward(self, x, training=False):
        if self._int8 is not None:
            from convx.quantization import layers as int8_layers

            return int8_layers.dense_forward(self, x, training)
        rows = x.reshape(-1, x.shape[-1])
        if training:
            self._state.x = rows
        bias = None if self.bias is None else self.bias.value
        shape = (rows.shape[0], self.units)
        y = self._activate(
            lambda act, slot: _dense.dense_forward(
                rows, self.kernel.value, bias, activation=act, out=self._buffer(slot, shape, rows.dtype)
            ),
            training,
        )
        y = y.reshape(x.shape[:-1] + (self.units,))
        if self.activity_regularizer is not None:
            self._activity_forward(y)
        return y

    def backward(self, dy, from_logits=False):
        if self._int8 is not None:
            from convx.quantization import layers as int8_layers

            int8_layers.raise_not_trainable(self)
        x, need_dx = self._state.x, self._state.need_dx
        dy = dy.reshape(-1, self.units)
        if self.activity_regularizer is not None:
            dy = self._add_activity_grad(dy, from_logits)
        dz = self._pre_activation_grad(dy, from_logits)
        dx = self._buffer("dx", x.shape, x.dtype) if need_dx else None
        # weight gradients go straight into the variables' grad arrays (views of the model's flat buffer)
        dbias = self.bias.grad if self.bias is not None else self._buffer("dbias", (self.units,), x.dtype)
        dx, _, _ = _dense.dense_backward(x, self.kernel.value, dz, need_dx=need_dx,
                                         out=(dx, self.kernel.grad, dbias))
        return None if dx is None else dx.reshape(dy.shape[:-1] + (x.shape[1],))

    def get_config(self):
        config = {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "quantization_config": None,
        }
        if self._int8 is not None:
            from convx.quantization import layers as int8_layers

            return int8_layers.config_of(self, config)
        return config


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of the inputs during training, scaling the rest by 1 / (1 - rate).

    Parameters
    ----------
    rate : float in [0, 1)
    noise_shape : tuple, optional
        Shape of the mask, broadcast to the input (None entries take the input's size).
    seed : int, optional
        Own generator; otherwise the process-wide one (``set_random_seed``).
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0 <= rate < 1:
            raise ValueError(
                f"Invalid value received for argument `rate`. Expected a float value between 0 and 1 (1 excluded). Received: rate={rate!r}"
            )
        self.rate = float(rate)
        self.noise_shape = _noise_shape(noise_shape)
        self.seed = seed
        self._generator = _random.make_generator(seed) if seed is not None else None

    def output_may_alias_input(self):
        return True

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            self._state.mask = None
            return x
        shape = x.shape if self.noise_shape is None else self._mask_shape(x.shape)
        gen = self._generator or _random.generator()
        # no dropout kernel in the contract: the mask is the only NumPy arithmetic here, done in place in
        # reused buffers (the uniform draws become the scaled mask)
        mask = gen.random(out=self._buffer("mask", shape), dtype=np.float32)
        keep = np.greater_equal(mask, self.rate, out=self._buffer("keep", shape, np.bool_))
        self._state.mask = np.multiply(keep, np.float32(1.0 / (1.0 - self.rate)), out=mask)
        return np.multiply(x, self._state.mask, out=self._buffer("y", x.shape, x.dtype))

    def _mask_shape(self, shape):
        """The mask's shape: ``noise_shape`` must broadcast to the input (each entry None, 1 or the size)."""
        noise = self.noise_shape
        if len(noise) != len(shape) or any(n not in (None, 1, d) for n, d in zip(noise, shape)):
            raise ValueError(f"Layer '{self.name}': noise_shape={noise} does not broadcast to inputs of shape "
                             f"{shape}: it needs one entry per axis, each None, 1 or the input's size")
        return tuple(d if n is None else n for n, d in zip(noise, shape))

    def backward(self, dy):
        if self._state.mask is None:
            return dy
        return np.multiply(dy, self._state.mask, out=self._buffer("dx", dy.shape, dy.dtype))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}


def _noise_shape(value):
    """``noise_shape`` as a tuple of positive ints and None (it sizes the mask buffer), or None."""
    if value is None:
        return None
    try:
        shape = None if isinstance(value, str) else tuple(value)
    except TypeError:
        shape = None
    if shape is None or not all(n is None or (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1)
                                for n in shape):
        raise ValueError("Invalid value received for argument `noise_shape`: expected a tuple of positive ints or "
                         f"None entries. Received: noise_shape={value!r}")
    return tuple(None if n is None else int(n) for n in shape)


class Flatten(Layer):
    """Flattens each sample to one axis (row-major, like Keras' channels_last)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"Flatten supports only data_format='channels_last' (or None), received {data_format!r}")

    def output_may_alias_input(self):
        return True

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(s is None for s in rest) else math.prod(rest)
        return (input_shape[0], size)

    def forward(self, x, training=False):
        if training:
            self._state.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._state.x_shape)

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last"}


__all__ = ["InputLayer", "Input", "Dense", "Activation", "ReLU", "Softmax", "Dropout", "Flatten", "format_shape"]
