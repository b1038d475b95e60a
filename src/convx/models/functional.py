"""``Functional``: the model ``convx.Model(inputs, outputs)`` returns, and its config format.

The config follows Keras 3's functional config: ``layers`` (each with its
``inbound_nodes``, whose arguments name the tensors they read as
``[layer_name, node_index, tensor_index]``), ``input_layers`` and
``output_layers``.
"""

from convx.layers.node import KerasTensor, flatten
from convx.models.model import Model


class Functional(Model):
    """A model defined by the graph between its symbolic inputs and outputs (``convx.Model(inputs, outputs)``)."""

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        self._init_model(name=name, trainable=trainable, default_name="functional", **kwargs)
        if isinstance(inputs, dict):
            for key, tensor in inputs.items():
                if isinstance(tensor, KerasTensor) and key != tensor.name:
                    raise ValueError(
                        "When providing `inputs` as a dict, all keys in the dict must match the names of the "
                        f"corresponding tensors. Received key '{key}' mapping to value {tensor} which has name "
                        f"'{tensor.name}'. Change the tensor name to '{key}' (via `Input(..., name='{key}')`)"
                    )
        flat_outputs = flatten(outputs)
        if not flat_outputs:
            raise ValueError("A functional model needs at least one output")
        self._set_graph(flatten(inputs), flat_outputs, outputs, inputs)

    @property
    def layers(self):
        """Every layer of the graph, input layers included, in Keras' order (see ``convx.models.graph``)."""
        return list(self._graph.layers)

    def get_config(self):
        """Keras 3's functional config: layers with their inbound nodes, input and output layers."""
        graph = self._graph

        def tensor_ref(tensor):
            operation, node_index, tensor_index = tensor._keras_history
            return [operation.name, graph.node_index(operation._inbound_nodes[node_index]), tensor_index]

        def tensor_config(tensor):
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(tensor.shape), "dtype": tensor.dtype, "keras_history": tensor_ref(tensor)}}

        from convx.saving import serialize_layer

        layers = []
        in_graph = graph.node_set
        for layer in graph.operations:
            if getattr(layer, "_is_op", False):  # a convx.ops call: Keras 3 lists it as an Operation
                layers.append(_op_entry(layer, tensor_config))
                continue
            entry = serialize_layer(layer)
            entry["name"] = layer.name
            entry["inbound_nodes"] = []
            for node in layer._inbound_nodes:
                if node in in_graph and not node.is_input:
                    tensors = [tensor_config(t) for t in node.input_tensors]
                    entry["inbound_nodes"].append(
                        {"args": [tensors if node.call_structure == "list" else tensors[0]], "kwargs": {}})
            layers.append(entry)

        def structure(value, convert):
            if isinstance(value, dict):
                return {key: structure(v, convert) for key, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [structure(v, convert) for v in value]
            return convert(value)

        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": layers,
            "input_layers": structure(self._inputs_structure, tensor_ref),
            "output_layers": structure(self._outputs_structure, tensor_ref),
        }

    @classmethod
    def from_config(cls, config):
        """Rebuild the graph from :meth:`get_config`'s output (layers created, then called in order)."""
        from convx.saving import deserialize_layer

        from convx.ops.operations import OpCall, is_op_entry

        return cls._from_config_with_layers(config, {entry["name"]: OpCall(entry) if is_op_entry(entry)
                                                     else deserialize_layer(entry) for entry in config["layers"]})

    @classmethod
    def _from_config_with_layers(cls, config, created):
        """The graph of ``config`` called on the layers ``created`` (name -> new layer)."""
        pending = [(created[entry["name"]], node) for entry in config["layers"]
                   for node in entry.get("inbound_nodes", [])]

        def resolve(value):
            if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
                name, node_index, tensor_index = value["config"]["keras_history"]
                return _tensor(created, name, node_index, tensor_index)
            if isinstance(value, list):
                return [resolve(v) for v in value]
            return value

        # A shared layer's later calls may read layers listed after it: call each node once its inputs exist
        while pending:
            remaining = []
            for layer, node in pending:
                try:
                    args = resolve(node["args"])
                except LookupError:
                    remaining.append((layer, node))
                    continue
                layer(*args, **node.get("kwargs", {}))
            if len(remaining) == len(pending):
                names = sorted({layer.name for layer, _ in remaining})
                raise ValueError(f"Invalid functional model config: the inputs of layers {names} are never computed")
            pending = remaining

        def structure(value):
            if isinstance(value, dict):
                return {key: structure(v) for key, v in value.items()}
            if isinstance(value, list) and value and isinstance(value[0], (list, dict)):
                return [structure(v) for v in value]
            return _tensor(created, *value)

        return cls(structure(config["input_layers"]), structure(config["output_layers"]), name=config.get("name"),
                   trainable=config.get("trainable", True))


def _tensor(created, layer_name, node_index, tensor_index):
    layer = created.get(layer_name)
    if layer is None:
        raise ValueError(f"Invalid functional model config: no layer named {layer_name!r}")
    if node_index >= len(layer._inbound_nodes):
        raise LookupError(layer_name)
    return layer._inbound_nodes[node_index].output_tensors[tensor_index]


def _op_entry(layer, tensor_config):
    from convx.ops.operations import serialize_op

    entry, args = serialize_op(layer, tensor_config)
    entry["name"] = layer.name
    entry["inbound_nodes"] = [{"args": args, "kwargs": {}}]
    return entry
