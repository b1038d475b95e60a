"""Ops on symbolic tensors: each call becomes an :class:`OpLayer` node of the graph, a step of the plan.

``x + y`` or ``convx.ops.matmul(x, w)`` on KerasTensors (in a functional
model, or in a subclassed model's ``call()`` while it is traced) records one
node, as Keras 3 records an ``Operation``. In the execution plan the node is
a step like a layer's: forward runs the op on NumPy arrays and keeps its vjp
closure, backward calls it. Op layers have no weights and are not listed in
``model.layers`` (Keras lists only layers, not operations).

The output shape comes from running the op on small probe arrays: every
unknown dimension (the batch) is tried at two lengths, and an output
dimension that follows them is unknown too.
"""

import numpy as np

from convx.layers.base import Layer, unique_name
from convx.layers.node import KerasHistory, KerasTensor, Node
from convx.ops.core import current_plan_trace, is_variable, unbroadcast

_PROBES = (2, 3)


def _probe_value(arg, length):
    if not isinstance(arg, KerasTensor):
        return arg
    shape = tuple(length if n is None else n for n in arg.shape)
    dtype = np.float32 if arg.dtype == "string" else arg.dtype
    return np.ones(shape, dtype=dtype)


def _output_spec(name, impl, args):
    """(shape with None where it follows the unknown input dimensions, dtype) of ``impl`` on ``args``."""
    outs = []
    with np.errstate(all="ignore"):
        for length in _PROBES:
            try:
                outs.append(np.asarray(impl(*[_probe_value(a, length) for a in args])[0]))
            except (ValueError, IndexError, TypeError) as error:
                shapes = [a.shape if isinstance(a, KerasTensor) else np.shape(a) for a in args]
                raise ValueError(f"convx.ops.{name} cannot be applied to arguments of shapes {shapes}: {error}") \
                    from error
    first, second = outs
    if first.ndim != second.ndim:
        raise ValueError(f"convx.ops.{name}: the rank of its output depends on the batch size")
    shape = tuple(a if a == b else None for a, b in zip(first.shape, second.shape))
    return shape, np.float32 if first.dtype == np.float64 else first.dtype


class OpLayer(Layer):
    """One op called on symbolic tensors (a node of the graph), with its non-tensor arguments bound.

    Parameters
    ----------
    op_name : str
        The op (``'add'``, ``'matmul'``, ...); the layer is named after it as Keras names operations.
    impl : callable
        ``impl(*arrays) -> (out, vjp)`` (see :mod:`convx.ops.core`).
    args : list
        The op's arguments: KerasTensors are the node's inputs, the rest are bound constants.
    """

    _is_op = True

    def __init__(self, op_name, impl, args):
        super().__init__(name=unique_name(op_name))
        self.op_name, self.impl = op_name, impl
        self._args = list(args)
        self._tensor_positions = [i for i, a in enumerate(args) if isinstance(a, KerasTensor)]
        self.built = True

    def _values(self, inputs):
        values = list(self._args)
        for position, value in zip(self._tensor_positions, inputs):
            values[position] = value
        return values

    def forward(self, x, training=False):
        inputs = x if isinstance(x, list) else [x]
        out, vjp = self.impl(*self._values(inputs))
        state = self._state
        state.vjp = vjp if training else None
        state.input_shapes = [np.shape(v) for v in inputs]
        out = np.asarray(out)
        return out.astype(np.float32) if out.dtype == np.float64 else out  # models compute in float32

    def backward(self, dy, needed=None):
        state = self._state
        if state.vjp is None:  # an op without a gradient (a comparison, one_hot, ...)
            return [None] * len(self._tensor_positions) if needed is not None else None
        grads = state.vjp(dy)
        result = []
        for position, shape in zip(self._tensor_positions, state.input_shapes):
            grad = grads[position]
            result.append(None if grad is None else np.ascontiguousarray(unbroadcast(grad, shape), dtype=dy.dtype))
        return result if needed is not None else result[0]

    def output_may_alias_input(self):
        # reshape, transpose, slicing, ... return views of their one tensor argument
        return len(self._tensor_positions) == 1

    def check_input_shape(self, input_shape):
        pass

    def get_config(self):
        raise NotImplementedError(
            f"The op {self.op_name!r} of a functional model is not serializable in convx yet; wrap it in a custom "
            "layer (with get_config) to save the model"
        )


def symbolic_call(name, impl, args):
    """The KerasTensor that ``impl`` on ``args`` gives, recorded as a node of an :class:`OpLayer`."""
    trace = current_plan_trace()
    if trace is not None:
        args = [_variable_tensor(trace, a) if is_variable(a) else a for a in args]
    shape, dtype = _output_spec(name, impl, args)
    layer = OpLayer(name, impl, args)
    tensors = [a for a in args if isinstance(a, KerasTensor)]
    output = KerasTensor(shape, dtype, history=KerasHistory(layer, 0, 0))
    layer._inbound_nodes.append(Node(layer, tensors, [output], "list" if len(tensors) > 1 else "single"))
    layer.input_shape = [t.shape for t in tensors] if len(tensors) > 1 else tensors[0].shape
    layer.output_shape = shape
    return output


# ----- in a plan: ops as built-in layers, weights as graph nodes ----------------------------------------------------

# ops computed by a built-in layer with the same kernel, numbers and gradient: run as that layer, the plan's
# fusions (relu into BatchNormalization, into the loss, ...) and reused buffers apply to them
_ACTIVATION_OPS = ("relu", "relu6", "sigmoid", "tanh", "silu", "softplus", "softmax")
_MERGE_OPS = ("add", "subtract", "multiply")


def _as_layer(op):
    """The built-in layer equivalent to the OpLayer ``op`` (named like it, built), or None."""
    from convx.layers import merging
    from convx.layers.activations import Activation

    tensors = [op._args[i] for i in op._tensor_positions]
    if len(op._args) != len(tensors) or any(t.dtype != "float32" for t in tensors):
        return None  # constants bound (x + 1.0, ...), or not float32
    if op.op_name in _ACTIVATION_OPS and len(tensors) == 1:
        layer = Activation(op.op_name, name=op.name)
        layer.build_for(tensors[0].shape)
        return layer
    if op.op_name in _MERGE_OPS and len(tensors) == 2 and tensors[0].shape == tensors[1].shape:
        layer = getattr(merging, op.op_name.capitalize())(name=op.name)
        layer.build_for([t.shape for t in tensors])
        return layer
    return None


def plan_layer(op):
    """What a plan step runs for the OpLayer ``op``: its built-in equivalent when it has one, else ``op``."""
    if not isinstance(op, OpLayer):
        return op
    if "plan_layer" not in op.__dict__:
        op.plan_layer = _as_layer(op) or op
    return op.plan_layer


class VariableRead(Layer):
    """A weight used by an op in a traced custom-layer call: a node whose output is the weight's value and
    whose backward writes the weight's gradient (the plan sums what its readers send). It reads the
    call's first input only to hang in the graph."""

    _is_op = True

    def __init__(self, variable):
        super().__init__(name=variable.path.replace("/", "_"))
        self.variable = variable
        self.built = True

    @property
    def trainable_weights(self):
        return [self.variable] if self.trainable and self.variable.trainable else []

    @property
    def weights(self):
        return [self.variable]

    def forward(self, x, training=False):
        return self.variable.value

    def backward(self, dy, needed=None):
        if self.variable.trainable:
            np.copyto(self.variable.grad, dy, casting="unsafe")
        return None

    def check_input_shape(self, input_shape):
        pass


def _variable_tensor(trace, variable):
    """The traced graph's tensor for ``variable``: one :class:`VariableRead` per weight (shared across
    traces, so two calls of one layer add their gradients as a shared layer's do)."""
    tensor = trace.variables.get(id(variable))
    if tensor is None:
        layer = variable.__dict__.get("_read_layer")
        if layer is None:
            layer = variable._read_layer = VariableRead(variable)
        tensor = KerasTensor(variable.shape, variable.dtype, history=KerasHistory(layer, len(layer._inbound_nodes), 0))
        layer._inbound_nodes.append(Node(layer, [trace.anchor], [tensor]))
        trace.variables[id(variable)] = tensor
    return tensor
