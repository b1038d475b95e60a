"""int8 Conv2D and Dense: the layers keep their class, config and place in the graph; their
weights become Keras 3's int8 set and their forward pass runs the int8 kernels.

A quantized layer holds, in this order (Keras 3's int8 Dense order, then convx's static scales):

- ``kernel``: int8, the float kernel's shape, ``clip(round(w * kernel_scale), -127, 127)``;
- ``bias``: float32 (when the layer has one);
- ``kernel_scale``: float32 (channels,), Keras' convention ``127 / (max |w| + 1e-7)`` per output
  channel, so the real kernel is ``kernel / kernel_scale``;
- static quantization only: ``input_scale`` and ``input_zero_point`` (float32 scalars): inputs are
  quantized as ``q = clip(rint(x / input_scale) + input_zero_point, 0, qmax)``, qmax 255 (or 127 with
  7-bit activations). Dynamic quantization computes them from each batch's min and max instead.

The kernels' epilogue takes ``bias_q = rint(bias / (s_x s_w))`` and the zero point's correction
``-z_x * sum(kernel)`` as one int32 per channel, and returns ``(sum + offset) * s_x s_w`` in
float32 (see ``convx._kernels.quant``), or, along a chain of static int8 layers inside a model's
plan (:func:`link_chains`), uint8 in the next layer's input scale (``rint((sum + offset) * s_x s_w /
s_next) + z_next``, the float32 product rounded as the quantizer rounds).
Those constants and the packed kernel are cached and rebuilt when a weight is assigned
(``set_weights``, ``load_weights``, ``Variable.assign``).
"""

import numpy as np

from convx import activations
from convx._kernels import pool as _pool
from convx._kernels import quant as _quant
from convx.layers.base import Variable

INT8_POLICY_NAME = "int8_from_float32"
# Keras 3's QuantizedDTypePolicy.get_config(): its mode and source dtype (the name is "int8_from_float32")
INT8_POLICY = {"module": "keras", "class_name": "QuantizedDTypePolicy",
               "config": {"mode": "int8", "source_name": "float32"}, "registered_name": None}
KERAS_EPSILON = 1e-7
_BIAS_LIMIT = 2 ** 30  # |bias_q| bound: with the sums (|sum| < 2^31 - 2^30 for K < 33000) no int32 overflow


class TrackedVariable(Variable):
    """A Variable whose ``assign`` tells the int8 layers to rebuild their cached constants."""

    generation = 0

    def assign(self, value):
        super().assign(value)
        TrackedVariable.generation += 1


def quantize_kernel(kernel):
    """(int8 kernel, kernel_scale) of a float kernel, per output channel (last axis), as Keras 3."""
    axes = tuple(range(kernel.ndim - 1))
    scale = (np.float32(127.0) / (np.abs(kernel).max(axis=axes) + np.float32(KERAS_EPSILON))).astype(np.float32)
    q = np.clip(np.round(kernel * scale), -127, 127).astype(np.int8)
    return q, scale


class Int8State:
    """What an int8 layer adds: its mode and the cache of its packed kernel and epilogue constants."""

    def __init__(self, static, qmax):
        self.static = static
        self.qmax = qmax  # 255, or 127 (7-bit activations: AVX2 without VNNI runs them without the byte split)
        self.chain = None  # (next int8 layer, 'pooled' or 'direct'): see link_chains
        self._key = None
        self.packed = self.colsum = self.weight_scale = None
        self._constants = {}

    def refresh(self, layer):
        """Repack the kernel when a weight changed since the last call."""
        key = (TrackedVariable.generation, id(layer.kernel.value))
        if key == self._key:
            return
        kernel = layer.kernel.value
        matrix = kernel.reshape(-1, kernel.shape[-1])
        self.packed = _quant.pack_weights(matrix)
        self.colsum = matrix.sum(axis=0, dtype=np.int64)
        self.weight_scale = (np.float64(1.0) / layer.kernel_scale.value.astype(np.float64))
        self._constants = {}
        self._key = key

    def input_params(self, layer, x):
        """(s_x, z_x): the calibrated ones, or from this batch's range (dynamic)."""
        if self.static:
            return float(layer.input_scale.value), int(layer.input_zero_point.value)
        return activation_params(float(np.min(x)) if x.size else 0.0, float(np.max(x)) if x.size else 0.0,
                                 self.qmax)

    def constants(self, layer, s_x, z_x):
        """(offset int32, scale float32) of the epilogue for input scale s_x and zero point z_x."""
        cached = self._constants.get((s_x, z_x))
        if cached is not None:
            return cached
        real = s_x * self.weight_scale  # float64: s_x s_w per channel
        if layer.bias is not None:
            bias_q = np.clip(np.rint(layer.bias.value.astype(np.float64) / real), -_BIAS_LIMIT, _BIAS_LIMIT)
        else:
            bias_q = np.zeros_like(real)
        offset = (bias_q.astype(np.int64) - z_x * self.colsum).astype(np.int32)
        result = (offset, real.astype(np.float32))
        if len(self._constants) > 8:  # dynamic mode: one entry per distinct batch range
            self._constants.clear()
        self._constants[(s_x, z_x)] = result
        return result


    def requant(self, layer, s_x, target):
        """The uint8 epilogue's scale per channel into ``target``'s input scale: s_x s_w / s_next (float32)."""
        key = ("requant", s_x, float(target.input_scale.value))
        if key not in self._constants:
            self._constants[key] = (s_x * self.weight_scale / float(target.input_scale.value)).astype(np.float32)
        return self._constants[key]


def default_activation_bits():
    """7 where the int8 kernels are AVX2 without VNNI (vpmaddubsw needs no byte split on 7-bit data:
    about 3x faster), else 8."""
    return 7 if _quant.isa() == "avx2" else 8


def activation_params(low, high, qmax=255):
    """(scale, zero point) of the uint8 range [0, qmax] covering [low, high] and 0 (asymmetric)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"cannot quantize activations with a range [{low}, {high}]: the input holds NaN or inf")
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low <= 0:
        return 1.0, 0
    scale = float(np.float32((high - low) / qmax))
    zero_point = int(np.clip(np.rint(-low / scale), 0, qmax))
    return scale, zero_point


def _add_variable(layer, name, value):
    var = TrackedVariable(value, name, f"{layer.name}/{name}", trainable=False)
    layer._weights.append(var)
    return var


def attach(layer, static, input_range=None, activation_bits=8):
    """Turn a built float Conv2D / Dense into its int8 form in place (activations in ``activation_bits``)."""
    qmax = 2 ** activation_bits - 1
    q, scale = quantize_kernel(layer.kernel.value)
    layer._weights = []
    layer.kernel = _add_variable(layer, "kernel", q)
    if layer.bias is not None:
        layer.bias = _add_variable(layer, "bias", np.array(layer.bias.value, dtype=np.float32))
    layer.kernel_scale = _add_variable(layer, "kernel_scale", scale)
    if static:
        s_x, z_x = activation_params(*input_range, qmax) if input_range is not None else (1.0, 0)
        layer.input_scale = _add_variable(layer, "input_scale", np.array(s_x, dtype=np.float32))
        layer.input_zero_point = _add_variable(layer, "input_zero_point", np.array(z_x, dtype=np.float32))
    layer._int8 = Int8State(static, qmax)


def quantize_input(layer, x):
    """(uint8 input, s_x, z_x) for a float32 input, or for a uint8 one the layer before wrote in this
    layer's (static) input scale."""
    state = layer._int8
    if x.dtype == np.uint8:
        return x, float(layer.input_scale.value), int(layer.input_zero_point.value)
    s_x, z_x = state.input_params(layer, x)
    xq = _quant.quantize(np.ascontiguousarray(x), s_x, z_x, state.qmax, out=layer._buffer("x_int8", x.shape, np.uint8))
    return xq, s_x, z_x


def _epilogue(layer, x):
    state = layer._int8
    state.refresh(layer)
    xq, s_x, z_x = quantize_input(layer, x)
    offset, scale = state.constants(layer, s_x, z_x)
    return state, xq, s_x, z_x, offset, scale


def _uint8_output(layer, s_x, mode):
    """The requantizing epilogue's arguments when this call may hand uint8 to the next int8 layer:
    inside a model's plan (not a direct layer call), at inference, with a relu or linear activation
    whose output no loss takes over, along the chain found at quantization (``mode``)."""
    chain = layer._int8.chain
    if (chain is None or chain[1] != mode or layer._state is layer._own_state or layer._state.expose_logits
            or layer.activation not in ("relu", "linear")):
        return None
    target = chain[0]
    return dict(scale=layer._int8.requant(layer, s_x, target), out_dtype="uint8",
                out_zero_point=int(target.input_zero_point.value))


def _finish(y, act, params):
    """The float output with an activation the kernel did not apply (relu and linear it does)."""
    if act not in ("linear", "relu"):
        activations.forward(y, act, out=y, params=params)
    return y


def conv_forward(layer, x, training=False, pool_size=None):
    """Output of an int8 Conv2D, with a following valid max pooling when ``pool_size`` is given."""
    if training:
        raise_not_trainable(layer)
    state, xq, s_x, z_x, offset, scale = _epilogue(layer, x)
    pooled = pool_size is not None and layer.activation in ("linear", "relu")
    conv_args = dict(strides=layer.strides, padding=layer.padding, dilation=layer.dilation_rate,
                     pool_size=pool_size if pooled else (1, 1))
    shape = layer._output_shape_for(x.shape)
    if pooled:
        shape = (shape[0], shape[1] // pool_size[0], shape[2] // pool_size[1], shape[3])
    requant = _uint8_output(layer, s_x, "pooled" if pool_size is not None else "direct")
    if requant is not None:
        layer._state.y = layer._state.logits = None
        return _quant.conv2d(xq, z_x, state.packed, layer.kernel.shape, offset, relu=layer.activation == "relu",
                             out=layer._buffer("y", shape, np.uint8), **requant, **conv_args)

    def compute(act, slot):
        y = _quant.conv2d(xq, z_x, state.packed, layer.kernel.shape, offset, scale=scale, relu=act == "relu",
                          out=layer._buffer(slot, shape, np.float32), **conv_args)
        return _finish(y, act, layer._activation_params)

    y = layer._activate(compute, False)
    if pool_size is not None and not pooled:
        out_shape = (y.shape[0], y.shape[1] // pool_size[0], y.shape[2] // pool_size[1], y.shape[3])
        y, _ = _pool.max_pool2d_forward(y, pool_size, out=(layer._buffer("y_pooled", out_shape, np.float32), None),
                                        with_argmax=False)
    return y


def dense_forward(layer, x, training=False):
    """Output of an int8 Dense."""
    if training:
        raise_not_trainable(layer)
    rows = x.reshape(-1, x.shape[-1])
    state, xq, s_x, z_x, offset, scale = _epilogue(layer, rows)
    shape = (rows.shape[0], layer.units)
    requant = _uint8_output(layer, s_x, "direct")
    if requant is not None:
        layer._state.y = layer._state.logits = None
        y = _quant.dense(xq, z_x, state.packed, layer.units, offset, relu=layer.activation == "relu",
                         out=layer._buffer("y", shape, np.uint8), **requant)
        return y.reshape(x.shape[:-1] + (layer.units,))

    def compute(act, slot):
        y = _quant.dense(xq, z_x, state.packed, layer.units, offset, scale=scale, relu=act == "relu",
                         out=layer._buffer(slot, shape, np.float32))
        return _finish(y, act, layer._activation_params)

    return layer._activate(compute, False).reshape(x.shape[:-1] + (layer.units,))


def raise_not_trainable(layer):
    raise ValueError(f"Layer {layer.name!r} is quantized to int8 and runs inference only: train the float model "
                     "(or a pruned one) and quantize it afterwards")


def from_config(cls, config):
    """A Conv2D / Dense from a config whose dtype is Keras' ``int8_from_float32`` policy: built float,
    then turned int8 (the weights to load are the int8 set)."""
    from convx.layers.convolutional import Conv2D
    from convx.layers.core import Dense

    if cls not in (Conv2D, Dense):
        raise ValueError(f"convx quantizes Conv2D and Dense layers to int8, not {cls.__name__}")
    config = dict(config)
    activation = config.pop("int8_activation", "dynamic")
    static = activation.startswith("static")
    bits = 7 if activation.endswith("7bit") else 8
    config["dtype"] = "float32"
    layer = cls(**config)
    build = layer.build

    def build_int8(input_shape):
        build(input_shape)
        attach(layer, static, activation_bits=bits)

    layer.build = build_int8
    return layer


def config_of(layer, config):
    """``config`` (the float layer's) with the int8 dtype policy (and convx's static-activation key)."""
    config = dict(config, dtype=dict(INT8_POLICY, config=dict(INT8_POLICY["config"])))
    if layer._int8.static:
        config["int8_activation"] = "static" if layer._int8.qmax == 255 else "static_7bit"
    return config


def link_chains(model):
    """Mark each static int8 layer whose output reaches another static int8 layer only through a
    max pooling that the plan fuses into it (a Conv2D's 2-D valid pooling with windows = strides)
    and / or Flatten: it hands that layer uint8 in its input scale (the requantizing epilogue)
    instead of float32 that the next layer would quantize again. Model outputs stay float32."""
    graph = model._graph
    for node in graph.nodes:
        if node.operation._int8 is not None:
            node.operation._int8.chain = None
    readers = {}
    for node in graph.nodes:
        for tensor in node.input_tensors:
            readers.setdefault(id(tensor), []).append(node)
    outputs = {id(t) for t in graph.outputs}

    def only_reader(node):
        tensor = node.output_tensors[0]
        found = readers.get(id(tensor), [])
        return found[0] if len(found) == 1 and id(tensor) not in outputs else None

    for node in graph.nodes:
        layer = node.operation
        if layer._int8 is None or not layer._int8.static or len(layer._inbound_nodes) != 1:
            continue
        mode, nxt = "direct", only_reader(node)
        if nxt is not None and type(nxt.operation).__name__ == "MaxPooling2D" and hasattr(layer, "forward_pooled") \
                and nxt.operation.tiles_its_input():
            mode, nxt = "pooled", only_reader(nxt)
        while nxt is not None and type(nxt.operation).__name__ == "Flatten":
            nxt = only_reader(nxt)
        target = None if nxt is None else nxt.operation
        if (target is not None and target._int8 is not None and target._int8.static
                and len(target._inbound_nodes) == 1):
            layer._int8.chain = (target, mode)
