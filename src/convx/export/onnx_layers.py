"""One ONNX translation per convx layer (Keras semantics: TF's 'same' padding, Keras' weight layouts).

Each converter takes the graph builder, the layer's node and its input
:class:`~convx.export.onnx.Tensor` values, and returns the output value. Weights
come from ``layer.get_weights()`` in Keras' order and are transposed to ONNX's
channels-first layouts here.
"""

import collections
import math

import numpy as np

# layers that only act in training: identities in an inference graph
_IDENTITY = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
             "GaussianDropout", "ActivityRegularization", "RandomFlip", "RandomRotation", "RandomTranslation",
             "RandomZoom", "RandomContrast", "RandomBrightness", "InputLayer"}
_FOLDABLE = {"Conv1D", "Conv2D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
             "Dense"}

Folds = collections.namedtuple("Folds", "bn_after skipped")


def batchnorm_folds(nodes, producers, readers):
    """Which BatchNormalization calls fold into the convolution or Dense before them.

    Returns ``bn_after`` (id of the producing node -> the BatchNormalization layer) and ``skipped``
    (ids of the folded BatchNormalization nodes): the producer must be linear, read by that BN only,
    and the BN normalizes the last axis.
    """
    bn_after, skipped = {}, set()
    for node in nodes:
        layer = node.operation
        if type(layer).__name__ != "BatchNormalization" or layer.get_config()["axis"] not in (-1, len(
                node.input_tensors[0].shape) - 1):
            continue
        tensor = node.input_tensors[0]
        producer = producers.get(id(tensor))
        if producer is None or producer.is_input or readers.get(id(tensor)) != 1:
            continue
        source = producer.operation
        if type(source).__name__ in _FOLDABLE and getattr(source, "_int8", None) is None \
                and source.get_config().get("activation", "linear") == "linear" \
                and len(source._inbound_nodes) == 1 and id(producer) not in bn_after:
            bn_after[id(producer)] = layer
            skipped.add(id(node))
    return Folds(bn_after, skipped)


def _bn_scale_shift(bn):
    config, weights = bn.get_config(), list(bn.get_weights())
    gamma = weights.pop(0) if config["scale"] else 1.0
    beta = weights.pop(0) if config["center"] else 0.0
    mean, variance = weights
    scale = gamma / np.sqrt(variance + config["epsilon"])
    return scale.astype(np.float32), (beta - mean * scale).astype(np.float32)


def convert(graph, node, inputs, bn=None):
    """The output value of ``node`` (a call of a convx layer) in the ONNX graph."""
    layer = node.operation
    name = type(layer).__name__
    if name in _IDENTITY:
        return inputs[0]
    converter = _CONVERTERS.get(name)
    if converter is None:
        if name == "TextVectorization":
            raise ValueError(f"Layer '{layer.name}' (TextVectorization) maps strings to ids: ONNX export covers the "
                             "numeric part of a model; export the model after it, and vectorize text beforehand")
        raise ValueError(f"Layer '{layer.name}' ({name}) has no ONNX export in convx; exportable layers: "
                         f"{sorted(set(_CONVERTERS) | _IDENTITY - {'InputLayer'})}")
    return converter(graph, layer, node, inputs, bn)


# ----- convolutions -----------------------------------------------------------------------------------------------

def _same_pads(sizes, kernel, strides, dilation):
    begin, end = [], []
    for n, k, s, d in zip(sizes, kernel, strides, dilation):
        effective = (k - 1) * d + 1
        total = max((math.ceil(n / s) - 1) * s + effective - n, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


def _pads(layer_config, sizes, kernel, strides, dilation):
    padding = layer_config["padding"]
    if padding == "same":
        return _same_pads(sizes, kernel, strides, dilation)
    if padding == "causal":
        return [(k - 1) * d for k, d in zip(kernel, dilation)] + [0] * len(kernel)
    return [0] * (2 * len(kernel))


def _conv(graph, x, weight, bias, config, sizes, group, hint):
    nd = weight.ndim - 2
    kernel = list(weight.shape[2:])
    strides = list(config.get("strides", (1,) * nd))
    dilation = list(config.get("dilation_rate", (1,) * nd))
    pads = _pads(config, sizes, kernel, strides, dilation)
    ins = [graph.to_nchw(x).name, graph.const(weight.astype(np.float32), hint + "/W")]
    if bias is not None:
        ins.append(graph.const(bias.astype(np.float32), hint + "/B"))
    out = graph.op("Conv", ins, hint, kernel_shape=kernel, strides=strides, dilations=dilation, pads=pads,
                   group=group)
    return type(x)(out, x.rank, "nchw")


def _fold(kernel_out_last, bias, bn):
    """``kernel`` (output channels on the last axis) and ``bias`` with BatchNormalization ``bn`` folded in."""
    if bn is None:
        return kernel_out_last, bias
    scale, shift = _bn_scale_shift(bn)
    bias = np.zeros(scale.shape, np.float32) if bias is None else bias
    return kernel_out_last * scale, bias * scale + shift


def _sizes(node):
    return list(node.input_tensors[0].shape[1:-1])


def _conv_layer(graph, layer, node, inputs, bn):
    if getattr(layer, "_int8", None) is not None:
        from convx.export.onnx_qdq import int8_conv

        return _activation(graph, int8_conv(graph, layer, node, inputs[0], _conv), layer.get_config()["activation"],
                           layer.name)
    config, weights = layer.get_config(), layer.get_weights()
    kernel, bias = weights[0], (weights[1] if config["use_bias"] else None)
    kernel, bias = _fold(kernel, bias, bn)
    nd = kernel.ndim - 2
    weight = np.transpose(kernel, (nd + 1, nd) + tuple(range(nd)))
    out = _conv(graph, inputs[0], weight, bias, config, _sizes(node), config.get("groups", 1), layer.name)
    return _activation(graph, out, config["activation"], layer.name)


def _depthwise_weight(kernel):
    """(k..., C, M) -> ONNX's (C * M, 1, k...) for a Conv with group=C."""
    nd = kernel.ndim - 2
    flat = kernel.reshape(kernel.shape[:nd] + (-1,))
    return np.transpose(flat, (nd,) + tuple(range(nd)))[:, None]


def _depthwise_layer(graph, layer, node, inputs, bn):
    config, weights = layer.get_config(), layer.get_weights()
    kernel, bias = weights[0], (weights[1] if config["use_bias"] else None)
    shape = kernel.shape
    flat, bias = _fold(kernel.reshape(shape[:-2] + (-1,)), bias, bn)
    out = _conv(graph, inputs[0], _depthwise_weight(flat.reshape(shape)), bias, config, _sizes(node), shape[-2],
                layer.name)
    return _activation(graph, out, config["activation"], layer.name)


def _separable_layer(graph, layer, node, inputs, bn):
    config, weights = layer.get_config(), layer.get_weights()
    depthwise, pointwise = weights[0], weights[1]
    bias = weights[2] if config["use_bias"] else None
    pointwise, bias = _fold(pointwise, bias, bn)
    y = _conv(graph, inputs[0], _depthwise_weight(depthwise), None, config, _sizes(node), depthwise.shape[-2],
              layer.name + "/depthwise")
    nd = pointwise.ndim - 2
    one = {"padding": "valid", "strides": (1,) * nd, "dilation_rate": (1,) * nd}
    out = _conv(graph, y, np.transpose(pointwise, (nd + 1, nd) + tuple(range(nd))), bias, one, None, 1,
                layer.name + "/pointwise")
    return _activation(graph, out, config["activation"], layer.name)


def _transpose_layer(graph, layer, node, inputs, bn):
    config, weights = layer.get_config(), layer.get_weights()
    if config.get("output_padding") is not None:
        raise ValueError(f"Layer '{layer.name}': ONNX export of output_padding is not supported")
    kernel, bias = weights[0], (weights[1] if config["use_bias"] else None)
    nd = kernel.ndim - 2
    strides, dilation = list(config["strides"]), list(config["dilation_rate"])
    sizes = list(kernel.shape[:nd])
    pads, extra = [0] * (2 * nd), [0] * nd
    if config["padding"] == "same":
        for i, (k, s, d) in enumerate(zip(sizes, strides, dilation)):
            total = (k - 1) * d + 1 - s
            if total >= 0:
                pads[i], pads[i + nd] = total // 2, total - total // 2
            else:
                extra[i] = -total
    ins = [graph.to_nchw(inputs[0]).name,
           graph.const(np.transpose(kernel, (nd + 1, nd) + tuple(range(nd))).astype(np.float32), layer.name + "/W")]
    if bias is not None:
        ins.append(graph.const(bias, layer.name + "/B"))
    out = graph.op("ConvTranspose", ins, layer.name, kernel_shape=sizes, strides=strides, dilations=dilation,
                   pads=pads, output_padding=extra)
    return _activation(graph, type(inputs[0])(out, inputs[0].rank, "nchw"), config["activation"], layer.name)


def _dense_layer(graph, layer, node, inputs, bn):
    if getattr(layer, "_int8", None) is not None:
        from convx.export.onnx_qdq import int8_dense

        return _activation(graph, int8_dense(graph, layer, inputs[0]), layer.get_config()["activation"], layer.name)
    config, weights = layer.get_config(), layer.get_weights()
    kernel, bias = weights[0], (weights[1] if config["use_bias"] else None)
    kernel, bias = _fold(kernel, bias, bn)
    x = graph.to_nhwc(inputs[0])
    w = graph.const(kernel, layer.name + "/W")
    if x.rank == 2:
        ins = [x.name, w] + ([graph.const(bias, layer.name + "/B")] if bias is not None else [])
        out = graph.op("Gemm", ins, layer.name)
    else:
        out = graph.op("MatMul", [x.name, w], layer.name)
        if bias is not None:
            out = graph.op("Add", [out, graph.const(bias, layer.name + "/B")], layer.name + "/bias")
    return _activation(graph, type(x)(out, x.rank, "nhwc"), config["activation"], layer.name)


# ----- activations ------------------------------------------------------------------------------------------------

def _channel_axis(t):
    return 1 if t.layout == "nchw" else -1


def _activation(graph, t, name, hint, params=None):
    """``t`` through Keras' activation ``name``."""
    if not isinstance(name, str):
        raise ValueError(f"Layer '{hint}': activation {name!r} has no ONNX export")
    x, make = t.name, type(t)
    op = lambda kind, ins, **attrs: graph.op(kind, ins, f"{hint}/{name}", **attrs)  # noqa: E731
    if name == "linear":
        return t
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "elu": "Elu", "selu": "Selu",
              "softplus": "Softplus", "softsign": "Softsign", "exponential": "Exp"}
    if name in simple:
        return make(op(simple[name], [x]), t.rank, t.layout)
    if name == "relu6":
        return make(_clip(graph, x, 0.0, 6.0, hint), t.rank, t.layout)
    if name in ("softmax", "log_softmax"):
        return make(op("Softmax" if name == "softmax" else "LogSoftmax", [x], axis=_channel_axis(t)), t.rank,
                    t.layout)
    if name in ("swish", "silu"):
        return make(op("Mul", [x, op("Sigmoid", [x])]), t.rank, t.layout)
    if name == "hard_sigmoid":
        return make(op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5), t.rank, t.layout)
    if name in ("hard_swish", "hard_silu"):
        return make(op("Mul", [x, op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)]), t.rank, t.layout)
    if name == "leaky_relu":
        return make(op("LeakyRelu", [x], alpha=0.2), t.rank, t.layout)
    if name == "gelu":
        half = graph.const(np.array(0.5, np.float32), "half")
        erf = op("Erf", [op("Mul", [x, graph.const(np.array(1 / math.sqrt(2), np.float32), "rsqrt2")])])
        one = graph.const(np.array(1.0, np.float32), "one")
        return make(op("Mul", [op("Mul", [x, half]), op("Add", [erf, one])]), t.rank, t.layout)
    if name == "mish":
        return make(op("Mul", [x, op("Tanh", [op("Softplus", [x])])]), t.rank, t.layout)
    raise ValueError(f"Layer '{hint}': activation {name!r} has no ONNX export in convx")


def _clip(graph, x, low, high, hint):
    bounds = [graph.const(np.array(low, np.float32), "min"),
              graph.const(np.array(high, np.float32), "max") if high is not None else ""]
    return graph.op("Clip", [x] + bounds, f"{hint}/clip")


def _activation_layer(graph, layer, node, inputs, bn):
    return _activation(graph, inputs[0], layer.get_config()["activation"], layer.name)


def _relu_layer(graph, layer, node, inputs, bn):
    config, t = layer.get_config(), inputs[0]
    if config.get("threshold", 0.0) != 0.0:
        raise ValueError(f"Layer '{layer.name}': ReLU(threshold != 0) has no ONNX export in convx")
    slope = config.get("negative_slope", 0.0)
    out = graph.op("LeakyRelu", [t.name], layer.name, alpha=float(slope)) if slope else \
        graph.op("Relu", [t.name], layer.name)
    if config.get("max_value") is not None:
        out = _clip(graph, out, -math.inf if slope else 0.0, float(config["max_value"]), layer.name)
    return type(t)(out, t.rank, t.layout)


def _leaky_layer(graph, layer, node, inputs, bn):
    t = inputs[0]
    return type(t)(graph.op("LeakyRelu", [t.name], layer.name, alpha=float(layer.get_config()["negative_slope"])),
                   t.rank, t.layout)


def _elu_layer(graph, layer, node, inputs, bn):
    t = inputs[0]
    return type(t)(graph.op("Elu", [t.name], layer.name, alpha=float(layer.get_config().get("alpha", 1.0))),
                   t.rank, t.layout)


def _prelu_layer(graph, layer, node, inputs, bn):
    t = graph.to_nhwc(inputs[0])
    slope = graph.const(layer.get_weights()[0], layer.name + "/slope")
    return type(t)(graph.op("PRelu", [t.name, slope], layer.name), t.rank, "nhwc")


def _softmax_layer(graph, layer, node, inputs, bn):
    axis = layer.get_config().get("axis", -1)
    t = inputs[0]
    if axis not in (-1, t.rank - 1):
        t = graph.to_nhwc(t)
        return type(t)(graph.op("Softmax", [t.name], layer.name, axis=int(axis)), t.rank, "nhwc")
    return type(t)(graph.op("Softmax", [t.name], layer.name, axis=_channel_axis(t)), t.rank, t.layout)


from convx.export.onnx_shapes import SHAPE_CONVERTERS  # noqa: E402

_CONVERTERS = {
    "Conv1D": _conv_layer, "Conv2D": _conv_layer, "DepthwiseConv1D": _depthwise_layer,
    "DepthwiseConv2D": _depthwise_layer, "SeparableConv1D": _separable_layer, "SeparableConv2D": _separable_layer,
    "Conv1DTranspose": _transpose_layer, "Conv2DTranspose": _transpose_layer, "Dense": _dense_layer,
    "Activation": _activation_layer, "ReLU": _relu_layer, "LeakyReLU": _leaky_layer, "ELU": _elu_layer,
    "PReLU": _prelu_layer, "Softmax": _softmax_layer, **SHAPE_CONVERTERS,
}
