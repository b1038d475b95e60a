"""ONNX export: a convx model as an ONNX graph built with the ``onnx`` package (the ``onnx`` extra).

The graph takes and returns the model's own (channels-last) tensors, named as
the model's inputs and outputs, with a free batch dimension. Inside, image
tensors run channels-first as ONNX's Conv/Pool operators want: each tensor
carries its layout, and a Transpose is inserted only where a layer needs the
other one (Flatten, Dense on images, Reshape, the outputs). BatchNormalization
right after a convolution or Dense without activation is folded into its
weights; the layers that only act in training (dropouts, noise, augmentation)
are identities. A layer with no ONNX form raises naming it.
"""

import os

import numpy as np

from convx.export import onnx_layers

DEFAULT_OPSET = 17
MIN_OPSET = 13


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("Exporting to ONNX needs the onnx package: pip install 'convx-cnn[onnx]'") from None
    return onnx


class Tensor:
    """A value of the ONNX graph: its name, rank and layout (``'nhwc'``: Keras' own; ``'nchw'``: channels first)."""

    def __init__(self, name, rank, layout="nhwc"):
        self.name, self.rank, self.layout = name, rank, layout


class GraphBuilder:
    """Collects nodes and initializers; names are made unique."""

    def __init__(self, onnx, opset):
        self.onnx, self.opset = onnx, opset
        self.nodes, self.initializers, self._count = [], [], 0

    def fresh(self, hint):
        self._count += 1
        return f"{hint}:{self._count}"

    def const(self, array, hint):
        from onnx import numpy_helper

        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type, inputs, hint, **attrs):
        output = self.fresh(hint)
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [output], name=output, **attrs))
        return output

    def to_nchw(self, t):
        if t.layout == "nchw" or t.rank < 3:
            return t
        perm = [0, t.rank - 1] + list(range(1, t.rank - 1))
        return Tensor(self.op("Transpose", [t.name], "to_nchw", perm=perm), t.rank, "nchw")

    def to_nhwc(self, t):
        if t.layout == "nhwc" or t.rank < 3:
            return Tensor(t.name, t.rank, "nhwc")
        perm = [0] + list(range(2, t.rank)) + [1]
        return Tensor(self.op("Transpose", [t.name], "to_nhwc", perm=perm), t.rank, "nhwc")


def export_onnx(model, filepath, opset=None, verbose=None):
    """Write ``model`` as an ONNX file at ``filepath``; returns the ``onnx.ModelProto``.

    Parameters
    ----------
    model : Sequential or functional Model
        Built; its inputs become the graph inputs ``(batch, ...)`` float32, its outputs the graph outputs.
    filepath : str or os.PathLike
    opset : int, default 17
        ONNX opset (13 or later).
    """
    onnx = _require_onnx()
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if opset < MIN_OPSET:
        raise ValueError(f"convx exports ONNX opset {MIN_OPSET} or later; received opset={opset}")
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet: build it (or call it on data) before exporting")
    graph = GraphBuilder(onnx, opset)
    inputs, values = [], {}
    for tensor in model._graph.inputs:
        name = tensor.node.operation.name
        values[id(tensor)] = Tensor(name, len(tensor.shape))
        inputs.append(_value_info(onnx, name, tensor.shape))
    emit_graph(graph, model._graph, values)
    outputs = []
    for name, tensor in zip(model.output_names, model._graph.outputs):
        t = graph.to_nhwc(values[id(tensor)])
        graph.nodes.append(onnx.helper.make_node("Identity", [t.name], [name], name=f"output:{name}"))
        outputs.append(_value_info(onnx, name, tensor.shape))
    proto = onnx.helper.make_model(
        onnx.helper.make_graph(graph.nodes, model.name, inputs, outputs, graph.initializers),
        opset_imports=[onnx.helper.make_opsetid("", opset)], producer_name="convx")
    proto.ir_version = min(proto.ir_version, 8 if opset <= 17 else 9)
    onnx.checker.check_model(proto)
    from convx.saving.archive import write_file_atomically

    write_file_atomically(os.fspath(filepath), proto.SerializeToString())
    if verbose:
        print(f"Saved ONNX model to {os.fspath(filepath)} (opset {opset})")
    return proto


def _value_info(onnx, name, shape):
    dims = ["batch"] + [int(d) for d in shape[1:]]
    return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, dims)


def emit_graph(graph, model_graph, values):
    """Add the nodes of a convx graph; ``values`` maps id(KerasTensor) -> Tensor (inputs filled in)."""
    readers = {}
    for node in model_graph.nodes:
        for tensor in node.input_tensors:
            readers[id(tensor)] = readers.get(id(tensor), 0) + 1
    for tensor in model_graph.outputs:
        readers[id(tensor)] = readers.get(id(tensor), 0) + 1
    producers = {id(t): node for node in model_graph.nodes for t in node.output_tensors}
    folded = onnx_layers.batchnorm_folds(model_graph.nodes, producers, readers)
    for node in model_graph.nodes:
        if node.is_input:
            continue
        layer = node.operation
        inputs = [values[id(t)] for t in node.input_tensors]
        if id(node) in folded.skipped:
            values[id(node.output_tensors[0])] = inputs[0]
            continue
        from convx.models import Model

        if isinstance(layer, Model):
            inner = {id(t): v for t, v in zip(layer._graph.inputs, inputs)}
            emit_graph(graph, layer._graph, inner)
            out = inner[id(layer._graph.outputs[0])]
        else:
            out = onnx_layers.convert(graph, node, inputs, folded.bn_after.get(id(node)))
        values[id(node.output_tensors[0])] = out
