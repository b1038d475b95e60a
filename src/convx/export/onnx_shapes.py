"""ONNX translations of the pooling, reshaping, merging and normalization layers (see ``onnx_layers``)."""

import numpy as np


def _same_pads(sizes, kernel, strides):
    from convx.export.onnx_layers import _same_pads as pads

    return pads(sizes, kernel, strides, [1] * len(kernel))


def _pool(graph, layer, node, inputs, bn):
    config = layer.get_config()
    kernel, strides = list(config["pool_size"]), list(config["strides"] or config["pool_size"])
    pads = _same_pads(list(node.input_tensors[0].shape[1:-1]), kernel, strides) if config["padding"] == "same" \
        else [0] * (2 * len(kernel))
    x = graph.to_nchw(inputs[0])
    attrs = dict(kernel_shape=kernel, strides=strides, pads=pads)
    if "Average" in type(layer).__name__:
        attrs["count_include_pad"] = 0  # Keras averages over the window's real elements
    kind = "AveragePool" if "Average" in type(layer).__name__ else "MaxPool"
    return type(x)(graph.op(kind, [x.name], layer.name, **attrs), x.rank, "nchw")


def _global_pool(graph, layer, node, inputs, bn):
    x = graph.to_nchw(inputs[0])
    kind = "GlobalAveragePool" if "Average" in type(layer).__name__ else "GlobalMaxPool"
    out = graph.op(kind, [x.name], layer.name)
    if layer.get_config().get("keepdims"):
        return type(x)(out, x.rank, "nchw")
    return type(x)(graph.op("Flatten", [out], layer.name + "/flatten", axis=1), 2, "nhwc")


def _flatten(graph, layer, node, inputs, bn):
    x = graph.to_nhwc(inputs[0])
    return type(x)(graph.op("Flatten", [x.name], layer.name, axis=1), 2, "nhwc")


def _reshape(graph, layer, node, inputs, bn):
    x = graph.to_nhwc(inputs[0])
    target = [int(d) for d in layer.get_config()["target_shape"]]
    shape = graph.const(np.array([0] + target, np.int64), layer.name + "/shape")
    return type(x)(graph.op("Reshape", [x.name, shape], layer.name), len(target) + 1, "nhwc")


def _permute(graph, layer, node, inputs, bn):
    x = graph.to_nhwc(inputs[0])
    perm = [0] + [int(d) for d in layer.get_config()["dims"]]
    return type(x)(graph.op("Transpose", [x.name], layer.name, perm=perm), x.rank, "nhwc")


def _same_layout(graph, tensors):
    if all(t.layout == tensors[0].layout for t in tensors):
        return tensors
    return [graph.to_nhwc(t) for t in tensors]


def _merge(graph, layer, node, inputs, bn):
    tensors = _same_layout(graph, inputs)
    kind = type(layer).__name__
    names = [t.name for t in tensors]
    if kind == "Subtract":
        out = graph.op("Sub", names, layer.name)
    elif kind in ("Add", "Average"):
        out = graph.op("Sum", names, layer.name)
        if kind == "Average":
            out = graph.op("Mul", [out, graph.const(np.array(1 / len(names), np.float32), "inverse_count")],
                           layer.name + "/mean")
    else:
        out = graph.op({"Multiply": "Mul", "Maximum": "Max", "Minimum": "Min"}[kind], names[:2], layer.name)
        for more in names[2:]:
            out = graph.op({"Multiply": "Mul", "Maximum": "Max", "Minimum": "Min"}[kind], [out, more], layer.name)
    t = tensors[0]
    return type(t)(out, t.rank, t.layout)


def _concatenate(graph, layer, node, inputs, bn):
    tensors = _same_layout(graph, inputs)
    rank = tensors[0].rank
    axis = layer.get_config()["axis"] % rank
    if tensors[0].layout == "nchw":
        if axis == rank - 1:
            axis = 1
        else:
            tensors = [graph.to_nhwc(t) for t in tensors]
    t = tensors[0]
    return type(t)(graph.op("Concat", [t.name for t in tensors], layer.name, axis=axis), rank, t.layout)


def _pairs(value, n):
    if isinstance(value, int):
        return [(value, value)] * n
    value = list(value)
    if n == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        return [tuple(value)]
    return [(v, v) if isinstance(v, int) else tuple(v) for v in value]


def _zero_padding(graph, layer, node, inputs, bn):
    x = graph.to_nchw(inputs[0])
    pairs = _pairs(layer.get_config()["padding"], x.rank - 2)
    pads = [0, 0] + [p[0] for p in pairs] + [0, 0] + [p[1] for p in pairs]
    return type(x)(graph.op("Pad", [x.name, graph.const(np.array(pads, np.int64), "pads")], layer.name),
                   x.rank, "nchw")


def _cropping(graph, layer, node, inputs, bn):
    x = graph.to_nchw(inputs[0])
    pairs = _pairs(layer.get_config()["cropping"], x.rank - 2)
    sizes = node.input_tensors[0].shape[1:-1]
    starts = [p[0] for p in pairs]
    ends = [n - p[1] for n, p in zip(sizes, pairs)]
    consts = [graph.const(np.array(v, np.int64), hint) for v, hint in
              ((starts, "starts"), (ends, "ends"), (list(range(2, x.rank)), "axes"))]
    return type(x)(graph.op("Slice", [x.name] + consts, layer.name), x.rank, "nchw")


def _upsampling(graph, layer, node, inputs, bn):
    x = graph.to_nchw(inputs[0])
    config = layer.get_config()
    size = config["size"]
    size = [size] if isinstance(size, int) else list(size)
    scales = graph.const(np.array([1.0, 1.0] + [float(s) for s in size], np.float32), "scales")
    if config.get("interpolation", "nearest") == "nearest":
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    elif config["interpolation"] == "bilinear":
        attrs = dict(mode="linear", coordinate_transformation_mode="half_pixel")
    else:
        raise ValueError(f"Layer '{layer.name}': interpolation {config['interpolation']!r} has no ONNX export")
    return type(x)(graph.op("Resize", [x.name, "", scales], layer.name, **attrs), x.rank, "nchw")


def _rescaling(graph, layer, node, inputs, bn):
    config, x = layer.get_config(), inputs[0]
    scale, offset = np.asarray(config["scale"], np.float32), np.asarray(config["offset"], np.float32)
    if scale.ndim or offset.ndim:
        x = graph.to_nhwc(x)
    out = graph.op("Mul", [x.name, graph.const(scale, "scale")], layer.name)
    out = graph.op("Add", [out, graph.const(offset, "offset")], layer.name + "/offset")
    return type(x)(out, x.rank, x.layout)


def _normalization(graph, layer, node, inputs, bn):
    x = graph.to_nhwc(inputs[0])
    mean = np.asarray(layer.mean, np.float32)
    std = np.maximum(np.sqrt(np.asarray(layer.variance, np.float32)), np.float32(1e-7))
    if layer.get_config().get("invert"):
        out = graph.op("Mul", [x.name, graph.const(std, "std")], layer.name)
        out = graph.op("Add", [out, graph.const(mean, "mean")], layer.name + "/mean")
    else:
        out = graph.op("Sub", [x.name, graph.const(mean, "mean")], layer.name)
        out = graph.op("Div", [out, graph.const(std, "std")], layer.name + "/std")
    return type(x)(out, x.rank, "nhwc")


def _reduce_mean(graph, x, axes, hint):
    if graph.opset >= 18:
        return graph.op("ReduceMean", [x, graph.const(np.array(axes, np.int64), "axes")], hint, keepdims=1)
    return graph.op("ReduceMean", [x], hint, axes=axes, keepdims=1)


def _group_normalization(graph, layer, node, inputs, bn):
    config = layer.get_config()
    x = graph.to_nhwc(inputs[0])
    shape = node.input_tensors[0].shape
    channels = shape[-1]
    groups = channels if config["groups"] == -1 else config["groups"]
    if config["axis"] not in (-1, x.rank - 1):
        raise ValueError(f"Layer '{layer.name}': GroupNormalization exports over the channels axis (-1) only")
    grouped = graph.op("Reshape", [x.name, graph.const(np.array([0, -1, groups, channels // groups], np.int64),
                                                       "grouped")], layer.name + "/groups")
    mean = _reduce_mean(graph, grouped, [1, 3], layer.name + "/mean")
    centered = graph.op("Sub", [grouped, mean], layer.name + "/centered")
    variance = _reduce_mean(graph, graph.op("Mul", [centered, centered], layer.name + "/square"), [1, 3],
                            layer.name + "/variance")
    std = graph.op("Sqrt", [graph.op("Add", [variance, graph.const(np.array(config["epsilon"], np.float32), "eps")],
                                     layer.name + "/eps")], layer.name + "/std")
    out = graph.op("Reshape", [graph.op("Div", [centered, std], layer.name + "/normalized"),
                               graph.const(np.array([0] + list(shape[1:]), np.int64), "shape")], layer.name)
    weights = list(layer.get_weights())
    if config["scale"]:
        out = graph.op("Mul", [out, graph.const(weights.pop(0), "gamma")], layer.name + "/gamma")
    if config["center"]:
        out = graph.op("Add", [out, graph.const(weights.pop(0), "beta")], layer.name + "/beta")
    return type(x)(out, x.rank, "nhwc")


def _resizing(graph, layer, node, inputs, bn):
    config = layer.get_config()
    if config["crop_to_aspect_ratio"] or config["pad_to_aspect_ratio"] or config["antialias"]:
        raise ValueError(f"Layer '{layer.name}': Resizing exports without crop/pad to aspect ratio or antialias")
    # TF's half-pixel nearest (floor((i + 0.5) * in / out)) is ONNX's half_pixel rounded half up
    modes = {"bilinear": dict(mode="linear", coordinate_transformation_mode="half_pixel"),
             "nearest": dict(mode="nearest", coordinate_transformation_mode="half_pixel",
                             nearest_mode="round_prefer_ceil")}
    if config["interpolation"] not in modes:
        raise ValueError(f"Layer '{layer.name}': interpolation {config['interpolation']!r} has no ONNX export")
    x = graph.to_nchw(inputs[0])
    size = np.array([config["height"], config["width"]], np.int64)
    # sizes (not scales, whose float rounding can lose a row) of the whole shape, the batch taken from x
    batch_channels = graph.op("Slice", [graph.op("Shape", [x.name], layer.name + "/shape"),
                                        graph.const(np.array([0], np.int64), "start"),
                                        graph.const(np.array([2], np.int64), "end")], layer.name + "/nc")
    sizes = graph.op("Concat", [batch_channels, graph.const(size, "sizes")], layer.name + "/sizes", axis=0)
    ins, attrs = [x.name, "", "", sizes], {}
    return type(x)(graph.op("Resize", ins, layer.name, **attrs, **modes[config["interpolation"]]), x.rank, "nchw")


def _center_crop(graph, layer, node, inputs, bn):
    config = layer.get_config()
    height, width = node.input_tensors[0].shape[1:3]
    if config["height"] > height or config["width"] > width:
        raise ValueError(f"Layer '{layer.name}': CenterCrop to a larger size (a resize) has no ONNX export")
    x = graph.to_nchw(inputs[0])
    top, left = (height - config["height"]) // 2, (width - config["width"]) // 2
    consts = [graph.const(np.array(v, np.int64), hint) for v, hint in
              (([top, left], "starts"), ([top + config["height"], left + config["width"]], "ends"), ([2, 3], "axes"))]
    return type(x)(graph.op("Slice", [x.name] + consts, layer.name), x.rank, "nchw")


def _channel_shape(t, values):
    return values.reshape((-1,) + (1,) * (t.rank - 2)) if t.layout == "nchw" else values


def _batch_normalization(graph, layer, node, inputs, bn):
    from convx.export.onnx_layers import _bn_scale_shift

    x = inputs[0]
    if layer.get_config()["axis"] not in (-1, x.rank - 1):
        raise ValueError(f"Layer '{layer.name}': BatchNormalization over axis {layer.get_config()['axis']} has no "
                         "ONNX export in convx (the channels axis, -1, has)")
    scale, shift = _bn_scale_shift(layer)
    out = graph.op("Mul", [x.name, graph.const(_channel_shape(x, scale), layer.name + "/scale")], layer.name)
    out = graph.op("Add", [out, graph.const(_channel_shape(x, shift), layer.name + "/shift")], layer.name + "/shift")
    return type(x)(out, x.rank, x.layout)


def _layer_normalization(graph, layer, node, inputs, bn):
    config = layer.get_config()
    x = graph.to_nhwc(inputs[0])
    if config["axis"] not in (-1, [-1], x.rank - 1, [x.rank - 1]) or config.get("rms_scaling") or graph.opset < 17:
        raise ValueError(f"Layer '{layer.name}': LayerNormalization has an ONNX export over the last axis, "
                         "without rms_scaling, from opset 17")
    weights = list(layer.get_weights())
    channels = node.input_tensors[0].shape[-1]
    gamma = weights.pop(0) if config["scale"] else np.ones(channels, np.float32)
    beta = weights.pop(0) if config["center"] else np.zeros(channels, np.float32)
    out = graph.op("LayerNormalization", [x.name, graph.const(gamma, "gamma"), graph.const(beta, "beta")],
                   layer.name, axis=-1, epsilon=float(config["epsilon"]))
    return type(x)(out, x.rank, "nhwc")


SHAPE_CONVERTERS = {
    "MaxPooling1D": _pool, "MaxPooling2D": _pool, "AveragePooling1D": _pool, "AveragePooling2D": _pool,
    "GlobalAveragePooling1D": _global_pool, "GlobalAveragePooling2D": _global_pool,
    "GlobalMaxPooling1D": _global_pool, "GlobalMaxPooling2D": _global_pool,
    "Flatten": _flatten, "Reshape": _reshape, "Permute": _permute, "Add": _merge, "Subtract": _merge, "Multiply": _merge,
    "Average": _merge, "Maximum": _merge, "Minimum": _merge, "Concatenate": _concatenate,
    "ZeroPadding1D": _zero_padding, "ZeroPadding2D": _zero_padding, "Cropping1D": _cropping,
    "Cropping2D": _cropping, "UpSampling1D": _upsampling, "UpSampling2D": _upsampling, "Rescaling": _rescaling,
    "BatchNormalization": _batch_normalization, "Normalization": _normalization,
    "GroupNormalization": _group_normalization, "Resizing": _resizing, "CenterCrop": _center_crop, "LayerNormalization": _layer_normalization,
}
