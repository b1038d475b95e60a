"""The ONNX operators ``from_onnx`` imports, each as convx layers on channels-last tensors.

A converter takes the ONNX node, its attributes, the values computed so far
(ONNX name -> :class:`Value`) and the graph's constants, and returns the node's
output value. ONNX axes of image tensors (channels first) are mapped to convx's
channels-last axes; weights are transposed to convx's layouts.
"""

import math

import numpy as np


class Value:
    """An ONNX tensor as a convx symbolic tensor; ``nonnegative`` when it comes out of a Relu-like operator."""

    def __init__(self, tensor, rank, nonnegative=False):
        self.tensor, self.rank, self.nonnegative = tensor, rank, nonnegative


def _layers():
    from convx import layers

    return layers


def _axis(axis, rank):
    """An ONNX (channels-first) axis as convx's channels-last axis."""
    axis = axis % rank
    if rank <= 2 or axis == 0:
        return axis
    return rank - 1 if axis == 1 else axis - 1


def _input(node, values, i=0):
    name = node.input[i]
    if name not in values:
        raise ValueError(f"ONNX node {node.name!r} ({node.op_type}) reads {name!r}, which is a constant or unknown: "
                         "convx imports operators on the model's tensors with constant weights")
    return values[name]


def _const(node, constants, i, what):
    if len(node.input) <= i or not node.input[i]:
        return None
    if node.input[i] not in constants:
        raise ValueError(f"ONNX node {node.name!r} ({node.op_type}): its {what} must be a constant")
    return np.asarray(constants[node.input[i]])


def _apply(layer, value, weights=None, nonnegative=False, rank=None):
    out = layer(value.tensor if isinstance(value, Value) else [v.tensor for v in value])
    if weights is not None:
        layer.set_weights([np.asarray(w, np.float32) for w in weights])
    return Value(out, rank if rank is not None else (value.rank if isinstance(value, Value) else value[0].rank),
                 nonnegative)


def _same_pads(sizes, kernel, strides, dilations):
    begin, end = [], []
    for n, k, s, d in zip(sizes, kernel, strides, dilations):
        total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


def _padding(node, attrs, x, kernel, strides, dilations, zero_padding_ok=True):
    """``(padding, x)``: 'valid', 'same', or 'valid' after a ZeroPadding layer, as ONNX's pads ask."""
    nd = len(kernel)
    sizes = list(x.tensor.shape[1:-1])
    auto = attrs.get("auto_pad", "NOTSET")
    pads = list(attrs.get("pads", [0] * (2 * nd)))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = _same_pads(sizes, kernel, strides, dilations)
        if auto == "SAME_LOWER":
            pads = pads[nd:] + pads[:nd]
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    if not any(pads):
        return "valid", x
    if pads == _same_pads(sizes, kernel, strides, dilations):
        return "same", x
    if not zero_padding_ok:
        raise ValueError(f"ONNX node {node.name!r} ({node.op_type}): pads {pads} differ from Keras' 'same' and "
                         "cannot be zeros here")
    L = _layers()
    pairs = tuple((pads[i], pads[i + nd]) for i in range(nd))
    layer = L.ZeroPadding2D(pairs) if nd == 2 else L.ZeroPadding1D(pairs[0])
    return "valid", _apply(layer, x)


def _conv(node, attrs, values, constants):
    L = _layers()
    x = _input(node, values)
    weight, bias = _const(node, constants, 1, "weight"), _const(node, constants, 2, "bias")
    nd = weight.ndim - 2
    if nd not in (1, 2):
        raise ValueError(f"ONNX node {node.name!r}: Conv over {nd} spatial axes is not supported")
    kernel = list(weight.shape[2:])
    strides, dilations = list(attrs.get("strides", [1] * nd)), list(attrs.get("dilations", [1] * nd))
    padding, x = _padding(node, attrs, x, kernel, strides, dilations)
    group, channels, filters = int(attrs.get("group", 1)), x.tensor.shape[-1], weight.shape[0]
    common = dict(kernel_size=kernel, strides=strides, dilation_rate=dilations, padding=padding,
                  use_bias=bias is not None)
    to_last = tuple(range(2, 2 + nd))
    if group > 1 and group == channels and filters % channels == 0:
        multiplier = filters // channels
        kernel_array = weight.reshape((channels, multiplier) + tuple(kernel)).transpose(to_last + (0, 1))
        layer = (L.DepthwiseConv2D if nd == 2 else L.DepthwiseConv1D)(depth_multiplier=multiplier, **common)
    else:
        kernel_array = weight.transpose(to_last + (1, 0))
        layer = (L.Conv2D if nd == 2 else L.Conv1D)(filters, groups=group, **common)
    return _apply(layer, x, [kernel_array] + ([bias] if bias is not None else []))


def _pool(node, attrs, values, constants):
    L = _layers()
    x = _input(node, values)
    kernel = list(attrs["kernel_shape"])
    nd = len(kernel)
    strides = list(attrs.get("strides", [1] * nd))
    if attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1] * nd)):
        raise ValueError(f"ONNX node {node.name!r} ({node.op_type}): ceil_mode and dilations are not supported")
    average = node.op_type == "AveragePool"
    zeros_ok = x.nonnegative if not average else bool(attrs.get("count_include_pad", 0))
    padding, x = _padding(node, attrs, x, kernel, strides, [1] * nd, zero_padding_ok=zeros_ok)
    cls = {(True, 2): L.AveragePooling2D, (True, 1): L.AveragePooling1D, (False, 2): L.MaxPooling2D,
           (False, 1): L.MaxPooling1D}[(average, nd)]
    return _apply(cls(pool_size=kernel, strides=strides, padding=padding), x, nonnegative=x.nonnegative)


def _global_pool(node, attrs, values, constants):
    L = _layers()
    x = _input(node, values)
    average = node.op_type in ("GlobalAveragePool", "ReduceMean")
    if node.op_type == "ReduceMean":
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1:
            axes = _const(node, constants, 1, "axes").tolist()
        if sorted(a % x.rank for a in (axes or [])) != list(range(2, x.rank)):
            raise ValueError(f"ONNX node {node.name!r}: ReduceMean over axes {axes} is not supported (only the "
                             "spatial axes)")
        if not attrs.get("keepdims", 1):
            cls = L.GlobalAveragePooling2D if x.rank == 4 else L.GlobalAveragePooling1D
            return _apply(cls(), x, rank=2)
    cls = {(True, 4): L.GlobalAveragePooling2D, (True, 3): L.GlobalAveragePooling1D,
           (False, 4): L.GlobalMaxPooling2D, (False, 3): L.GlobalMaxPooling1D}[(average, x.rank)]
    return _apply(cls(keepdims=True), x, nonnegative=x.nonnegative)


def _gemm(node, attrs, values, constants):
    L = _layers()
    x = _input(node, values)
    weight, bias = _const(node, constants, 1, "weight"), _const(node, constants, 2, "bias")
    if attrs.get("transA", 0) or x.rank != 2:
        raise ValueError(f"ONNX node {node.name!r}: Gemm with transA or a non-2-D input is not supported")
    kernel = (weight.T if attrs.get("transB", 0) else weight) * attrs.get("alpha", 1.0)
    weights = [kernel]
    if bias is not None:
        weights.append(np.broadcast_to(bias * attrs.get("beta", 1.0), (kernel.shape[1],)))
    return _apply(L.Dense(kernel.shape[1], use_bias=bias is not None), x, weights)


def _matmul(node, attrs, values, constants):
    L = _layers()
    x = _input(node, values)
    weight = _const(node, constants, 1, "weight")
    if weight.ndim != 2 or x.rank != 2:
        raise ValueError(f"ONNX node {node.name!r}: MatMul is imported for a 2-D input and a 2-D constant weight")
    value = _apply(L.Dense(weight.shape[1], use_bias=False), x, [weight])
    value.dense = value.tensor.node.operation  # an Add of a constant vector next becomes its bias
    return value


def _batch_normalization(node, attrs, values, constants):
    L = _layers()
    x = _input(node, values)
    gamma, beta, mean, variance = (_const(node, constants, i, what) for i, what in
                                   ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    layer = L.BatchNormalization(axis=-1, epsilon=float(attrs.get("epsilon", 1e-5)),
                                 momentum=float(attrs.get("momentum", 0.9)))
    return _apply(layer, x, [gamma, beta, mean, variance])


def _activation(kind, **kwargs):
    def convert(node, attrs, values, constants):
        L = _layers()
        x = _input(node, values)
        if kind == "LeakyReLU":
            layer = L.LeakyReLU(negative_slope=float(attrs.get("alpha", 0.01)))
        elif kind == "ELU":
            layer = L.ELU(alpha=float(attrs.get("alpha", 1.0)))
        elif kind == "ReLU":
            layer = L.ReLU()
        else:
            layer = L.Activation(kind)
        return _apply(layer, x, nonnegative=kind in ("ReLU", "sigmoid", "softplus"))

    return convert


def _hard_sigmoid(node, attrs, values, constants):
    if not (math.isclose(attrs.get("alpha", 0.2), 1 / 6, rel_tol=1e-6) and attrs.get("beta", 0.5) == 0.5):
        raise ValueError(f"ONNX node {node.name!r}: HardSigmoid(alpha={attrs.get('alpha', 0.2)}) differs from "
                         "Keras' hard_sigmoid (alpha=1/6, beta=0.5)")
    return _apply(_layers().Activation("hard_sigmoid"), _input(node, values), nonnegative=True)


def _clip(node, attrs, values, constants):
    low = attrs.get("min", _const(node, constants, 1, "min"))
    high = attrs.get("max", _const(node, constants, 2, "max"))
    low = None if low is None else float(low)
    high = None if high is None else float(high)
    if low != 0.0:
        raise ValueError(f"ONNX node {node.name!r}: Clip({low}, {high}) has no convx layer (Clip(0, max) has: ReLU)")
    return _apply(_layers().ReLU(max_value=high), _input(node, values), nonnegative=True)


def _softmax(node, attrs, values, constants):
    x = _input(node, values)
    return _apply(_layers().Softmax(axis=_axis(attrs.get("axis", -1), x.rank)), x, nonnegative=True)


def _merge(kind):
    def convert(node, attrs, values, constants):
        L = _layers()
        if kind == "Add" and len(node.input) == 2 and node.input[1] in constants and node.input[0] in values:
            return _bias_add(node, values[node.input[0]], np.asarray(constants[node.input[1]]))
        inputs = [_input(node, values, i) for i in range(len(node.input))]
        layer = getattr(L, kind)()
        return _apply(layer, inputs, nonnegative=kind in ("Maximum",) and any(v.nonnegative for v in inputs))

    return convert


def _bias_add(node, x, bias):
    dense = getattr(x, "dense", None)
    if dense is None or dense.use_bias or bias.shape != (dense.units,):
        raise ValueError(f"ONNX node {node.name!r}: an Add of a constant is imported only as the bias of a MatMul")
    kernel = dense.get_weights()[0]
    layer = _layers().Dense(dense.units)
    # a Dense with the bias replaces the MatMul's (which no output then reads, so the model leaves it out)
    return _apply(layer, Value(dense._inbound_nodes[0].input_tensors[0], 2), [kernel, bias])


def _concat(node, attrs, values, constants):
    inputs = [_input(node, values, i) for i in range(len(node.input))]
    return _apply(_layers().Concatenate(axis=_axis(attrs["axis"], inputs[0].rank)), inputs,
                  nonnegative=all(v.nonnegative for v in inputs))


def _flatten(node, attrs, values, constants):
    L = _layers()
    x = _input(node, values)
    if attrs.get("axis", 1) != 1:
        raise ValueError(f"ONNX node {node.name!r}: Flatten(axis={attrs['axis']}) is not supported (axis=1 is)")
    if x.rank == 2:
        return x
    if x.rank > 2 and math.prod(x.tensor.shape[1:-1]) > 1:  # ONNX flattens channels first
        x = _apply(L.Permute((x.rank - 1,) + tuple(range(1, x.rank - 1))), x, nonnegative=x.nonnegative)
    return _apply(L.Flatten(), x, nonnegative=x.nonnegative, rank=2)


def _reshape(node, attrs, values, constants):
    x = _input(node, values)
    shape = _const(node, constants, 1, "shape").tolist()
    size = math.prod(x.tensor.shape[1:])
    if len(shape) == 2 and shape[1] in (-1, size):
        return _flatten(node, {}, values, constants)
    raise ValueError(f"ONNX node {node.name!r}: Reshape to {shape} is not supported (flattening to (batch, -1) is)")


def _pad(node, attrs, values, constants):
    x = _input(node, values)
    pads = attrs.get("pads")
    pads = _const(node, constants, 1, "pads").tolist() if pads is None else list(pads)
    value = _const(node, constants, 2, "value")
    if attrs.get("mode", "constant") != "constant" or (value is not None and float(value) != 0.0):
        raise ValueError(f"ONNX node {node.name!r}: only zero padding is supported")
    rank, L = x.rank, _layers()
    if pads[0] or pads[1] or pads[rank] or pads[rank + 1]:
        raise ValueError(f"ONNX node {node.name!r}: padding the batch or channel axis is not supported")
    pairs = tuple((pads[i], pads[i + rank]) for i in range(2, rank))
    layer = L.ZeroPadding2D(pairs) if rank == 4 else L.ZeroPadding1D(pairs[0])
    return _apply(layer, x, nonnegative=x.nonnegative)


def _resize(node, attrs, values, constants):
    x = _input(node, values)
    scales = _const(node, constants, 2, "scales")
    sizes = _const(node, constants, 3, "sizes")
    if scales is None or not scales.size:
        if sizes is None:
            raise ValueError(f"ONNX node {node.name!r}: Resize needs constant scales or sizes")
        full = [1, x.tensor.shape[-1]] + list(x.tensor.shape[1:-1])
        scales = np.array(sizes, np.float64)[2:] / np.array(full[2:])
        scales = np.concatenate([[1.0, 1.0], scales])
    factors = [float(s) for s in scales[2:]]
    if attrs.get("mode", "nearest") != "nearest" or any(f != int(f) or f < 1 for f in factors) or x.rank != 4:
        raise ValueError(f"ONNX node {node.name!r}: Resize is imported for nearest upsampling of images by whole "
                         f"factors; received mode {attrs.get('mode')!r}, scales {list(scales)}")
    return _apply(_layers().UpSampling2D(size=tuple(int(f) for f in factors)), x, nonnegative=x.nonnegative)


def _identity(node, attrs, values, constants):
    return _input(node, values)


OPS = {
    "Conv": _conv, "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool, "ReduceMean": _global_pool, "Gemm": _gemm, "MatMul": _matmul,
    "BatchNormalization": _batch_normalization, "Relu": _activation("ReLU"), "LeakyRelu": _activation("LeakyReLU"),
    "Elu": _activation("ELU"), "Selu": _activation("selu"), "Sigmoid": _activation("sigmoid"),
    "Tanh": _activation("tanh"), "Softplus": _activation("softplus"), "HardSigmoid": _hard_sigmoid, "Clip": _clip,
    "Softmax": _softmax, "Add": _merge("Add"), "Sub": _merge("Subtract"), "Mul": _merge("Multiply"),
    "Max": _merge("Maximum"), "Min": _merge("Minimum"), "Sum": _merge("Add"), "Concat": _concat,
    "Flatten": _flatten, "Reshape": _reshape, "Pad": _pad, "Resize": _resize, "Dropout": _identity,
    "Identity": _identity,
}
