"""``convx.models.from_onnx``: an ONNX CNN as a trainable convx functional model (the ``onnx`` extra).

ONNX image tensors are channels-first; the convx model takes and returns the
same tensors channels-last (``(batch, H, W, C)``), with the weights transposed
to convx's layouts (conv kernels HWIO, Dense kernels (in, out)). Operators:
Conv (grouped, depthwise), ConvTranspose, MaxPool, AveragePool, GlobalAveragePool,
GlobalMaxPool, Gemm and MatMul(+Add) with constant weights, BatchNormalization,
Relu, LeakyRelu, Elu, Selu, Sigmoid, Tanh, Softplus, HardSigmoid, Clip (relu6),
Softmax, Add, Sub, Mul, Max, Min, Sum, Concat, Flatten, Reshape (to (batch, -1)),
Pad (zeros), Resize (nearest, integer scales), Dropout and Identity. Anything
else raises naming the operator and the node. Weights stored outside the file
(ONNX external data) are refused: a file never makes convx read another path.
"""

import os

import numpy as np

from convx.models.onnx_ops import OPS, Value


def from_onnx(filepath, name=None):
    """The convx model of the ONNX file at ``filepath``.

    Parameters
    ----------
    filepath : str or os.PathLike
    name : str, optional
        The model's name (defaults to the ONNX graph's name).

    Returns
    -------
    convx.Model
        A functional model taking channels-last inputs (``(batch, H, W, C)`` for an ONNX
        ``(batch, C, H, W)`` input), its weights trainable; compile and fit it like any other.

    Raises
    ------
    ValueError
        For an operator or attribute convx has no layer for, naming it; an unreadable file.
    """
    import convx

    graph = _load(os.fspath(filepath))
    constants = _constants(graph)
    values = {}
    inputs = []
    for info in graph.input:
        if info.name in constants:
            continue
        shape = [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]
        if len(shape) < 2 or any(d is None for d in shape[1:]):
            raise ValueError(f"ONNX input {info.name!r} has shape {shape}: convx needs every dimension but the "
                             "batch one fixed")
        channels_last = [shape[i] for i in _to_last(len(shape))][1:]
        tensor = convx.Input(tuple(channels_last), name=_layer_name(info.name))
        inputs.append(tensor)
        values[info.name] = Value(tensor, len(shape))
    for node in graph.node:
        if node.op_type == "Constant":
            continue
        converter = OPS.get(node.op_type)
        if converter is None:
            raise ValueError(f"ONNX operator {node.op_type!r} (node {node.name!r}) has no convx layer; convx imports "
                             f"{sorted(OPS)}")
        outputs = converter(node, _attributes(node), values, constants)
        for output_name, value in zip(node.output, outputs if isinstance(outputs, list) else [outputs]):
            values[output_name] = value
    outputs = []
    for info in graph.output:
        if info.name not in values:
            raise ValueError(f"ONNX output {info.name!r} is not computed from the inputs")
        outputs.append(values[info.name].tensor)
    return convx.Model(inputs, outputs[0] if len(outputs) == 1 else outputs, name=name or _layer_name(graph.name))


def _load(path):
    try:
        import onnx
    except ImportError:
        raise ImportError("Importing ONNX files needs the onnx package: pip install 'convx-cnn[onnx]'") from None
    if not os.path.isfile(path):
        raise ValueError(f"File not found: filepath={path}.")
    from convx.saving import limits

    if os.path.getsize(path) > limits.MAX_ARCHIVE_BYTES:  # protobuf parses the whole file in memory
        raise ValueError(f"Cannot load {path!r}: {os.path.getsize(path)} bytes, more than "
                         f"convx.saving.limits.MAX_ARCHIVE_BYTES ({limits.MAX_ARCHIVE_BYTES})")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as error:  # protobuf's DecodeError and others
        raise ValueError(f"Cannot load {path!r}: not a valid ONNX model ({type(error).__name__}: {error})") from None
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise ValueError(f"Cannot load {path!r}: initializer {tensor.name!r} is stored in another file "
                             "(ONNX external data), which convx does not read")
    try:
        onnx.checker.check_model(model)
    except Exception as error:  # onnx's ValidationError
        raise ValueError(f"Cannot load {path!r}: not a valid ONNX model ({type(error).__name__}: {error})") from None
    if any(op.domain not in ("", "ai.onnx") for op in model.opset_import):
        raise ValueError(f"Cannot load {path!r}: it uses operator domains {[op.domain for op in model.opset_import]}")
    return model.graph


def _constants(graph):
    from onnx import numpy_helper

    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            attributes = _attributes(node)
            if "value" not in attributes:
                raise ValueError(f"Constant node {node.name!r}: only tensor values are supported")
            constants[node.output[0]] = attributes["value"]
    return constants


def _attributes(node):
    from onnx import helper, numpy_helper

    out = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if hasattr(value, "dims") and hasattr(value, "data_type"):
            value = numpy_helper.to_array(value)
        elif isinstance(value, bytes):
            value = value.decode("utf-8")
        out[attribute.name] = value
    return out


def _to_last(rank):
    """Axis order taking an ONNX channels-first shape to channels-last."""
    return [0] + list(range(2, rank)) + [1] if rank > 2 else list(range(rank))


def _layer_name(name):
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in str(name)).strip("_")
    return cleaned or None
