"""``Sequential``: a model whose graph is a chain of layers (Keras 3 ``keras.Sequential``)."""

from convx.layers.base import Layer, unique_name
from convx.layers.core import InputLayer
from convx.layers.node import KerasTensor
from convx.models.model import Model


class Sequential(Model):
    """A linear stack of layers.

    Parameters
    ----------
    layers : list of Layer, optional
        May start with ``convx.Input(shape)``, or give ``input_shape=`` to the
        first layer; otherwise the model builds on the first data it sees.
    trainable : bool, default True
    name : str, optional
        Defaults to ``sequential``, ``sequential_1``, ...
    """

    def __init__(self, layers=None, trainable=True, name=None):
        self._init_model(name=name if name is not None else unique_name("sequential"), trainable=trainable)
        self._layers = []
        self._layer_names = set()  # the unique-name check of add() stays O(1): configs hold thousands of layers
        self._input_layer = None
        self._graph = None
        for layer in layers or []:
            self.add(layer, rebuild=False)
        self._build_from_input_layer()

    @property
    def layers(self):
        """The layers, without the input layer (as in Keras)."""
        return list(self._layers)

    def add(self, layer, rebuild=True):
        """Append a layer (or an ``Input``) to the stack."""
        if isinstance(layer, KerasTensor) and layer.node.is_input:
            layer = layer.node.operation
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError(
                    f"Sequential model '{self.name}': an Input can only be the first entry and only once; "
                    f"received {layer!r} after {len(self._layers)} layers"
                )
            self._input_layer = layer
        elif isinstance(layer, Layer):
            if layer.name in self._layer_names:
                raise ValueError(
                    "All layers added to a Sequential model should have unique names. "
                    f"Name '{layer.name}' is already the name of a layer in this model."
                )
            if not self._layers and self._input_layer is None and layer._input_shape_arg is not None:
                self._input_layer = InputLayer(shape=layer._input_shape_arg)
            self._layers.append(layer)
            self._layer_names.add(layer.name)
            self._graph = None
            self.built = False
        else:
            raise ValueError(
                "Only instances of `convx.layers.Layer` can be added to a Sequential model. "
                f"Received: {layer!r} (of type {type(layer).__name__})"
            )
        if rebuild:
            self._build_from_input_layer()

    def pop(self):
        """Remove and return the last layer."""
        if not self._layers:
            raise ValueError(f"There are no layers in model '{self.name}' to pop")
        layer = self._layers.pop()
        self._layer_names.discard(layer.name)
        self._graph = None
        self.built = False
        self._build_from_input_layer()
        return layer

    def _build_from_input_layer(self):
        if self._input_layer is not None and self._layers:
            self._chain(self._input_layer)

    def build(self, input_shape=None):
        """Build every layer for inputs of ``input_shape`` (batch axis first, may be None)."""
        if not self._layers:
            raise ValueError(f"Sequential model '{self.name}' has no layers")
        if self._input_layer is None or tuple(self._input_layer.shape[1:]) != tuple(input_shape)[1:]:
            self._input_layer = InputLayer(batch_shape=(None,) + tuple(input_shape)[1:])
        self._chain(self._input_layer)

    def _chain(self, input_layer):
        """The graph: the input layer's tensor through every layer in turn."""
        x = input_layer.output
        for layer in self._layers:
            x = layer(x)
        self._set_graph([input_layer.output], [x], x, input_layer.output)

    def _prepare_x(self, x, name="x"):
        if not self._layers:
            raise ValueError(f"Sequential model '{self.name}' has no layers")
        return super()._prepare_x(x, name)

    def get_config(self):
        """``{'name', 'trainable', 'layers': [{'class_name', 'config'}, ...]}``."""
        from convx.saving import serialize_layer

        entries = [self._input_layer] if self._input_layer is not None else []
        entries += self._layers
        return {"name": self.name, "trainable": self.trainable, "layers": [serialize_layer(layer) for layer in entries]}

    @classmethod
    def from_config(cls, config):
        from convx.saving import deserialize_layer

        layers = [deserialize_layer(entry) for entry in config["layers"]]
        return cls(layers, trainable=config.get("trainable", True), name=config.get("name"))
