"""``Model``: the Keras 3 model API (compile, fit, evaluate, predict, weights, saving) over an execution plan.

Three kinds of model share it: :class:`~convx.models.functional.Functional`
(``Model(inputs, outputs)``), :class:`~convx.models.sequential.Sequential`
(a chain) and subclasses of ``Model`` that define ``call()`` (traced once
on symbolic inputs into the same kind of graph). Whatever the kind, the loops
here run a :class:`~convx.models.plan.Plan` of the model's graph.

The class is assembled from mixins, one job each: :mod:`~convx.models.weights`
(weights and the flat buffer), :mod:`~convx.models.compile_state` (compile,
metrics, logs), :mod:`~convx.models.inputs` (preparing ``x`` and ``y``),
:mod:`~convx.models.training` (``fit`` and the training step) and
:mod:`~convx.models.evaluation` (``evaluate``, ``predict``); this module keeps
construction, structure, calling and saving.
"""

import inspect
import threading

from convx._summary import summary_text
from convx.distribution import _writes_files
from convx.layers.base import Layer, format_shape, unique_name
from convx.layers.node import KerasHistory, KerasTensor, Node, flatten
from convx.models import custom_step as _custom_step
from convx.models.arguments import _unsupported
from convx.models.compile_state import CompileState
from convx.models.evaluation import EvaluationLoops
from convx.models.inputs import ModelInputs
from convx.models.training import TrainingLoop
from convx.models.weights import ModelWeights
from convx.ops.core import current_tape


class Model(TrainingLoop, EvaluationLoops, CompileState, ModelInputs, ModelWeights, Layer):
    """A model: ``Model(inputs, outputs)`` (functional) or a subclass that defines ``call()``.

    Parameters
    ----------
    inputs : KerasTensor, list or dict of KerasTensors
        From ``convx.Input``.
    outputs : KerasTensor, list or dict of KerasTensors
        Layers' outputs computed from ``inputs``.
    name : str, optional
        Defaults to ``functional``, ``functional_1``, ... (subclasses: their snake-cased class name).
    trainable : bool, default True

    Examples
    --------
    >>> inputs = convx.Input(shape=(28, 28, 1))
    >>> x = convx.layers.Conv2D(8, 3, activation="relu")(inputs)
    >>> outputs = convx.layers.Dense(10, activation="softmax")(convx.layers.Flatten()(x))
    >>> model = convx.Model(inputs, outputs)
    """

    _is_model = True

    def __new__(cls, *args, **kwargs):
        if cls is Model and (len(args) >= 2 or "inputs" in kwargs or "outputs" in kwargs):
            from convx.models.functional import Functional

            return super().__new__(Functional)
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        if type(self) is Model or args or "inputs" in kwargs:
            raise ValueError(
                "A Model is either `convx.Model(inputs, outputs)` (functional) or a subclass of convx.Model "
                f"that defines `call()`; received positional arguments {args!r} and {sorted(kwargs)}"
            )
        if type(self).call is Model.call:
            raise ValueError(f"Model subclass {type(self).__name__} must define `call(self, inputs)`")
        self._init_model(name=kwargs.pop("name", None), trainable=kwargs.pop("trainable", True), **kwargs)
        self._graph = None

    def _init_model(self, name=None, trainable=True, default_name=None, **kwargs):
        object.__setattr__(self, "_tracked_layers", [])
        super().__init__(name=name if name is not None else unique_name(default_name or self._default_name()),
                         trainable=trainable, **kwargs)
        self.compiled = False
        self.optimizer = self.loss = None
        self.stop_training = False
        self.history = None
        self._params = self._grads = None
        self._bound_key = None
        self._penalties = None
        self._plans, self._plans_generation = {}, Layer.trainable_generation
        self._run_lock = threading.RLock()
        self._output_losses = []
        self._metric_specs = []
        self._metric_objects = None

    def _default_name(self):
        from convx.layers.base import to_snake_case

        return to_snake_case(type(self).__name__)

    def __setattr__(self, name, value):
        # Keras tracks the layers a subclassed model assigns, in assignment order: that order is the weights' order
        tracked = self.__dict__.get("_tracked_layers")
        if tracked is not None and not name.startswith("_"):
            values = value if isinstance(value, (list, tuple)) else [value]
            for item in values:
                if isinstance(item, Layer) and item is not self and all(item is not t for t in tracked):
                    tracked.append(item)
        super().__setattr__(name, value)

    def call(self, inputs, training=None):
        """The forward computation of a subclassed model, on symbolic tensors (traced once)."""
        raise NotImplementedError

    # ----- structure ---------------------------------------------------------------------------------------------

    @property
    def layers(self):
        """The model's layers (a subclassed model: the layers it assigned, in order)."""
        return list(self._tracked_layers)

    def _require_graph(self, what):
        if self._graph is None:
            raise ValueError(
                f"Model '{self.name}' has not been built yet, so it has no {what}: call it on data, fit it, "
                "or call `model.build(input_shape)`"
            )
        return self._graph

    @property
    def inputs(self):
        return list(self._require_graph("inputs").inputs)

    @property
    def outputs(self):
        return list(self._require_graph("outputs").outputs)

    @property
    def input(self):
        """The model's symbolic input (a list when it has several)."""
        inputs = self.inputs
        return inputs[0] if len(inputs) == 1 else inputs

    @property
    def output(self):
        """The model's symbolic output (a list when it has several)."""
        outputs = self.outputs
        return outputs[0] if len(outputs) == 1 else outputs

    @property
    def input_shape(self):
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @input_shape.setter
    def input_shape(self, value):
        pass  # Layer.__init__ assigns it; a model's input shape is its graph's

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @output_shape.setter
    def output_shape(self, value):
        pass

    @property
    def output_names(self):
        """Names of the layers producing the outputs (Keras 3: used in logs and loss/metric dicts)."""
        return [t.node.operation.name for t in self.outputs]

    def get_layer(self, name=None, index=None):
        """A layer by name or by index in ``model.layers``."""
        if index is not None:
            if name is not None:
                raise ValueError("Provide only a layer name or a layer index, not both")
            layers = self.layers
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only has {len(layers)} "
                                 "layers.")
            return layers[index]
        if name is None:
            raise ValueError("Provide either a layer name or layer index at `get_layer`.")
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in self.layers]}.")

    def build(self, input_shape):
        """Trace ``call()`` on symbolic inputs of ``input_shape`` (a shape, or a list of shapes)."""
        if self._graph is not None:
            return
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        from convx.layers.core import Input

        inputs = [Input(batch_shape=(None,) + tuple(shape)[1:]) for shape in shapes]
        call_inputs = inputs[0] if len(inputs) == 1 else inputs
        kwargs = {"training": None} if "training" in inspect.signature(self.call).parameters else {}
        outputs = self.call(call_inputs, **kwargs)
        for tensor in flatten(outputs):
            if not isinstance(tensor, KerasTensor):
                raise ValueError(
                    f"{type(self).__name__}.call() returned {tensor!r}: convx traces call() once on symbolic inputs, "
                    "so it may only pass tensors through convx layers (and merge layers) and return their outputs"
                )
        self._set_graph(inputs, flatten(outputs), outputs)

    def _set_graph(self, inputs, outputs, outputs_structure=None, inputs_structure=None):
        from convx.models.graph import Graph

        self._graph = Graph(inputs, outputs)
        self._all_layers = _all_layers(self._graph.layers)
        self._outputs_structure = outputs if outputs_structure is None else outputs_structure
        self._inputs_structure = inputs if inputs_structure is None else inputs_structure
        self._plans, self._plans_generation = {}, Layer.trainable_generation
        self._checked_shapes = None
        self.built = True
        self._bind_flat()

    # A model is a layer: called on symbolic tensors it becomes one node of an outer graph
    def compute_output_shape(self, input_shape):
        shapes = [t.shape for t in self._require_graph("output shape").outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def build_for(self, input_shape):
        if self._graph is None:
            self.build(input_shape)
        else:
            self._check_model_input_shapes(input_shape if isinstance(input_shape, list) else [input_shape])
        return self.compute_output_shape(input_shape)

    def _check_model_input_shapes(self, shapes):
        expected = [t.shape for t in self._graph.inputs]
        if len(shapes) != len(expected):
            raise ValueError(f'Layer "{self.name}" expects {len(expected)} input(s), but it received '
                             f"{len(shapes)} input tensors")
        for i, (tensor, shape) in enumerate(zip(self._graph.inputs, shapes)):
            if len(shape) != len(tensor.shape) or any(
                    e is not None and r is not None and e != r for e, r in zip(tensor.shape[1:], shape[1:])):
                raise ValueError(
                    f'Input {i} of layer "{self.name}" is incompatible with the layer: '
                    f"expected shape={format_shape(tensor.shape)}, found shape={format_shape(tuple(shape))}"
                )

    def _call_symbolic(self, inputs):
        tensors = flatten(inputs)
        self.build_for([t.shape for t in tensors] if len(tensors) > 1 else tensors[0].shape)
        node_index = len(self._inbound_nodes)
        outputs = [KerasTensor(t.shape, t.dtype, history=KerasHistory(self, node_index, i))
                   for i, t in enumerate(self._graph.outputs)]
        self._inbound_nodes.append(Node(self, tensors, outputs, "list" if len(tensors) > 1 else "single"))
        return outputs[0] if len(outputs) == 1 else outputs

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False,
                layer_range=None):
        """Print the Keras 3 summary table (layers, output shapes, parameter counts, and for
        graphs that are not a chain, the "Connected to" column)."""
        _unsupported(layer_range=layer_range)
        text = summary_text(self, line_length=line_length, positions=positions)
        if print_fn is None:
            print(text, end="")
        else:
            print_fn(text)

    def __call__(self, x, training=False):
        from convx.layers.node import is_symbolic

        if is_symbolic(x) or isinstance(x, dict) and any(isinstance(v, KerasTensor) for v in x.values()):
            return self._call_symbolic(list(x.values()) if isinstance(x, dict) else x)
        tape = current_tape()
        if training and getattr(tape, "model", None) is self:  # self(x, training=True) in a train_step
            return _custom_step.record_forward(self, tape, x)
        return self._run_copy(x, training)

    def _overrides(self, method):
        return getattr(type(self), method) is not getattr(Model, method)

    def _dispatches(self, method):
        """Whether the loops call the user's ``method`` (not when it is already running: ``super().train_step``)."""
        return self._overrides(method) and not self.__dict__.get("_in_custom_step", False)

    # ----- config and saving -------------------------------------------------------------------------------------

    def _serialization_state(self):
        """What :mod:`convx.saving` (and the scikit-learn wrappers' clones) read of a model beyond its config and
        weights, so that the save format depends on this method rather than on attribute names.

        Returns
        -------
        dict
            ``compile``: the arguments ``compile`` was given, ``{"loss", "loss_weights", "metrics"}`` (None when
            the model is not compiled).
        """
        if not self.compiled:
            return {"compile": None}
        return {"compile": {"loss": self._loss_spec, "loss_weights": self._loss_weights_spec,
                            "metrics": self._metric_specs}}

    def _built_optimizer(self):
        """``self.optimizer`` built on the flat trainable weight buffer (bound first): loading optimizer state
        needs both."""
        self._bind_flat()
        self.optimizer.build(self.trainable_weights)
        return self.optimizer

    def to_json(self, **kwargs):
        """The architecture as a JSON string (``convx.models.model_from_json`` rebuilds it)."""
        import json

        from convx.saving import serialize_model

        return json.dumps(serialize_model(self), **kwargs)

    def save(self, filepath, overwrite=True):
        """Save the architecture, weights, compile settings and optimizer state to
        ``filepath`` (``*.keras``: a Keras 3 archive, see :mod:`convx.saving`).
        The previous file survives a failed save. In a data-parallel job (``convx.distribution``) only rank 0
        writes."""
        from convx import saving

        if _writes_files():
            saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights (and optimizer state) as Keras 3's ``*.weights.h5`` file; in a data-parallel job only
        rank 0 writes."""
        from convx import saving

        if _writes_files():
            saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        """Load weights of a ``.weights.h5``, ``.keras`` or legacy ``.h5`` file (Keras' or convx's) into this built model."""
        from convx import saving

        saving.load_weights(self, filepath)

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Export for inference (Keras 3's method): ``format='onnx'`` writes an ONNX file (``opset_version=``
        or ``opset=``), see :mod:`convx.export.onnx`."""
        from convx.export import export_model

        return export_model(self, filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)

    @classmethod
    def from_config(cls, config):
        """``Model.from_config`` of a functional model's config builds that model (as in Keras)."""
        if cls is Model and "input_layers" in config:
            from convx.models.functional import Functional

            return Functional.from_config(config)
        return cls(**config)

    def get_config(self):
        raise NotImplementedError(
            f"{type(self).__name__} is a subclassed model: implement get_config() and from_config() to serialize it"
        )

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _all_layers(layers):
    """``layers`` and, recursively, the layers of the models among them."""
    found = []
    for layer in layers:
        found.append(layer)
        graph = getattr(layer, "_graph", None)
        if graph is not None and getattr(layer, "_is_model", False):
            found.extend(_all_layers(graph.layers))
        elif layer._has_call:
            found.extend(_custom_sublayers(layer))
    return found


def _custom_sublayers(layer):
    from convx.layers.custom import flatten_layers

    return flatten_layers(layer)
