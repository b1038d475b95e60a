"""Custom layers' ``call()`` as plan steps: what the plan inlines for a node of a layer defining ``call()``.

A plan (:mod:`convx.models.plan`) runs a layer defining ``call()`` as the
graph its call makes on symbolic inputs: the built-in layers it calls, the
``convx.ops`` it applies (those with a built-in equivalent as that layer:
``ops.relu`` as ``Activation('relu')``, ``x + y`` as ``Add``), and one
:class:`~convx.ops.symbolic.VariableRead` node per weight its ops read. The
graph is inlined as a nested model's is, so the plan's fusions, buffer reuse
and arenas reach inside the layer, and its backward is the steps' backward
instead of a tape replayed op by op.

The call is traced once per plan mode (``training`` is fixed in a plan). A
call that does what a graph cannot hold -- Python control flow on values, a
weight assigned (``assign_add``), ``add_loss``, a layer called with a
``training`` other than the plan's, NumPy on a tensor, anything raising --
is not inlined: the plan runs it as one step, on a tape
(:mod:`convx.layers.custom`), as before.
"""

import contextlib

from convx.layers import base
from convx.layers.custom import invoke
from convx.layers.node import KerasTensor
from convx.ops.core import plan_trace
from convx.ops.symbolic import plan_layer


@contextlib.contextmanager
def _unobserved():
    """Layers and tensors made while tracing leave no trace a user sees: Keras' name counters (``add_1``)
    and the trainable generation (plans in the cache stay valid) are as before."""
    names = base._name_counts.copy()
    generation = base.Layer.trainable_generation
    try:
        yield
    finally:
        base._name_counts.clear()
        base._name_counts.update(names)
        base.Layer.trainable_generation = generation


def inlined_graph(node, training):
    """The graph a plan inlines for ``node``: a nested model's, a custom layer's traced call, else None."""
    layer = node.operation
    if getattr(layer, "_is_model", False):
        return getattr(layer, "_graph", None)
    if layer._has_call:
        return _traced(layer, node, training)
    return None


def adds_losses(layer):
    """Whether a plan step of ``layer`` may call ``add_loss``: a layer with ``call()`` that is not inlined (a
    traced call holds no ``add_loss``), so its backward runs even when no output loss reaches it."""
    return layer._has_call


def step_layer(node):
    """The layer a plan step runs for ``node``: an op with a built-in equivalent runs as that layer."""
    layer = node.operation
    if not getattr(layer, "_is_op", False):
        return layer
    with _unobserved():
        return plan_layer(layer)


def _traced(layer, node, training):
    """``layer.call`` at ``node`` as a Graph (cached on the layer per node and mode), or None."""
    cache = layer.__dict__.get("_plan_traces")
    if cache is None or cache[0] != base.Layer.trainable_generation:
        cache = layer._plan_traces = (base.Layer.trainable_generation, {})
    key = (id(node), bool(training))
    if key not in cache[1]:
        with _unobserved():
            cache[1][key] = (node, _trace(layer, node, bool(training)))  # the node kept: its id stays its own
    return cache[1][key][1]


def _trace(layer, node, training):
    from convx.layers.core import Input
    from convx.models.graph import Graph

    try:
        inputs = [Input(batch_shape=t.shape, dtype=t.dtype) for t in node.input_tensors]
        with plan_trace(inputs[0], training):
            out = invoke(layer, inputs if node.call_structure == "list" else inputs[0], training, {})
        if not (isinstance(out, KerasTensor) and all(out is not t for t in inputs)
                and _same_shape(out.shape, node.output_tensors[0].shape)):
            return None
        graph = Graph(inputs, [out])
    except Exception:  # noqa: BLE001  anything the trace cannot follow: the call runs on a tape, which reports errors
        return None
    for traced in graph.nodes:  # the sublayers' own node lists stay as the user's model made them
        nodes = traced.operation._inbound_nodes
        nodes[:] = [n for n in nodes if n is not traced] if not traced.is_input else nodes
    return graph


def _same_shape(traced, declared):
    return len(traced) == len(declared) and all(a is None or b is None or a == b for a, b in zip(traced, declared))
