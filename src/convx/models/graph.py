"""The graph of a functional model: its nodes and layers, ordered as Keras orders them.

Keras' order matters beyond looks: ``model.layers`` fixes ``model.weights``,
hence ``get_weights`` / ``set_weights``, so weights move between Keras and
convx models of the same architecture. Layers are sorted by depth (distance
from the outputs, deepest first), ties broken by the order a depth-first walk
from the outputs first meets them.
"""

import collections

from convx.layers.node import KerasTensor


class Graph:
    """The nodes between ``inputs`` and ``outputs`` (flat lists of KerasTensors).

    Attributes
    ----------
    nodes : list of Node
        Topologically sorted, inputs first.
    layers : list of Layer
        Keras' order (see module doc); InputLayers included, ``convx.ops`` calls (op layers) not.
    has_ops : bool
        Whether some nodes are ``convx.ops`` calls.
    nodes_by_depth : dict
        depth -> nodes, depth 0 at the outputs.
    """

    def __init__(self, inputs, outputs):
        for tensor in list(inputs) + list(outputs):
            if not isinstance(tensor, KerasTensor):
                raise ValueError(
                    "All `inputs` and `outputs` of a functional model must be symbolic tensors (from convx.Input "
                    f"and layers called on it); received {tensor!r} of type {type(tensor).__name__}"
                )
        self.inputs, self.outputs = list(inputs), list(outputs)
        for tensor in self.inputs:
            if not tensor.node.is_input:
                raise ValueError(
                    f"Model inputs must come from convx.Input; {tensor!r} is the output of layer "
                    f"'{tensor.node.operation.name}'"
                )
        self.nodes, order = _topological_nodes(self.outputs)
        self.nodes_by_depth, depth_of_layer = _depths(self.nodes)
        for tensor in self.inputs:  # inputs that no output depends on still belong to the model
            layer = tensor.node.operation
            if layer not in depth_of_layer:
                depth_of_layer[layer] = 0
                order[layer] = -1
                self.nodes_by_depth[0].append(tensor.node)
                self.nodes.insert(0, tensor.node)
        ordered = sorted(depth_of_layer, key=lambda layer: (-depth_of_layer[layer], order[layer]))
        # convx.ops calls are operations, not layers: Keras 3 leaves them out of model.layers (and weights)
        self.operations = ordered  # layers and ops: what Keras' config lists
        self.layers = [layer for layer in ordered if not getattr(layer, "_is_op", False)]
        self.has_ops = len(self.layers) != len(ordered)
        self.node_set = set(self.nodes)
        self._check_computable()
        self._check_unique_names()

    def _check_computable(self):
        known = {id(t) for t in self.inputs}
        for node in self.nodes:
            for tensor in node.input_tensors:
                if id(tensor) not in known:
                    raise ValueError(
                        f"Graph disconnected: cannot obtain value for tensor {tensor!r} at layer "
                        f"'{node.operation.name}'. The model's inputs are {[t.name for t in self.inputs]}; "
                        f"this tensor comes from '{tensor.node.operation.name}', which is not computed from them"
                    )
            if node.is_input and id(node.output_tensors[0]) not in known:
                raise ValueError(
                    f"Graph disconnected: the outputs depend on the input '{node.operation.name}', which is not "
                    f"among the model's inputs {[t.name for t in self.inputs]}"
                )
            known.update(id(t) for t in node.output_tensors)

    def _check_unique_names(self):
        counts = collections.Counter(layer.name for layer in self.layers)
        for name, count in counts.items():
            if count > 1:
                raise ValueError(
                    f'The name "{name}" is used {count} times in the model. All layer names should be unique.'
                )

    def node_index(self, node):
        """Index of ``node`` among the nodes of its layer that belong to this graph (Keras' reindexing)."""
        layer_nodes = [n for n in node.operation._inbound_nodes if n in self.node_set]
        return layer_nodes.index(node)


def _topological_nodes(outputs):
    """Nodes from the inputs to ``outputs`` (depth-first, post-order) and each layer's first-visit index.

    The walk keeps its own stack: a chain of thousands of layers must not hit Python's recursion limit.
    """
    finished, in_progress, ordered, order = set(), set(), [], {}

    def enter(tensor):
        node = tensor.node
        if node in finished:
            return None
        if node in in_progress:
            raise ValueError(f"Tensor {tensor!r} from layer '{node.operation.name}' is part of a cycle.")
        order.setdefault(node.operation, len(order))
        in_progress.add(node)
        return node, iter(node.input_tensors)

    done = object()
    for tensor in outputs:
        stack = [frame for frame in (enter(tensor),) if frame is not None]
        while stack:
            node, parents = stack[-1]
            parent = next(parents, done)
            if parent is done:
                stack.pop()
                in_progress.discard(node)
                finished.add(node)
                ordered.append(node)
            else:
                frame = enter(parent)
                if frame is not None:
                    stack.append(frame)
    return ordered, order


def _depths(nodes):
    """Keras' depths: 0 at the outputs, a node one deeper than its deepest reader; a layer its deepest node."""
    node_depth, layer_depth = {}, {}
    in_graph = set(nodes)
    for node in reversed(nodes):
        depth = max(node_depth.setdefault(node, 0), layer_depth.get(node.operation, 0))
        layer_depth[node.operation] = node_depth[node] = depth
        for parent in node.parent_nodes:
            if parent in in_graph:
                node_depth[parent] = max(depth + 1, node_depth.get(parent, 0))
    by_depth = collections.defaultdict(list)
    for node, depth in node_depth.items():
        by_depth[depth].append(node)
    return by_depth, layer_depth
