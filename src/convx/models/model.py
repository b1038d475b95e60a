"""``Model``: the Keras 3 model API (compile, fit, evaluate, predict, weights, saving) over an execution plan.

Three kinds of model share it: :class:`~convx.models.functional.Functional`
(``Model(inputs, outputs)``), :class:`~convx.models.sequential.Sequential`
(a chain) and subclasses of ``Model`` that define ``call()`` (traced once
on symbolic inputs into the same kind of graph). Whatever the kind, the loops
here run a :class:`~convx.models.plan.Plan` of the model's graph.

Training step: batch -> plan forward -> fused loss + gradient kernel per
output -> plan backward -> one optimizer kernel call on a flat buffer holding
every trainable weight (layer weights are views into it), with the gradients
in a matching flat buffer.
"""

import functools
import inspect
import math
import threading

import numpy as np

from convx import losses as _losses
from convx import metrics as _metrics
from convx import optimizers as _optimizers
from convx._summary import summary_text
from convx.distribution import _data_parallel, _writes_files
from convx.layers.base import Layer, _weight_penalties, format_shape, unique_name
from convx.layers.node import KerasHistory, KerasTensor, Node, flatten
from convx.models import custom_step as _custom_step
from convx.models import data_adapters as _adapters
from convx.models.plan import Plan
from convx.ops.core import current_tape


def _callback_list(callbacks, **kwargs):
    from convx.callbacks import CallbackList

    if isinstance(callbacks, CallbackList):
        return callbacks
    return CallbackList(callbacks, **kwargs)


def _verbosity(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, received verbose={verbose!r}")
    return verbose


def _batch_size(batch_size, name="batch_size"):
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{name} must be a positive integer or None, received {name}={batch_size!r}")
    return int(batch_size)


def _unsupported(**kwargs):
    for name, value in kwargs.items():
        if value is not None:
            raise ValueError(f"Argument `{name}` is not supported by convx; received {name}={value!r}")


def _one_at_a_time(method):
    """Calls of ``method`` on one model take turns: they run through the same plan's reused buffers.

    A thread pool serving one model is correct; to run calls in parallel, give each thread its own
    model (``clone_model`` + ``set_weights``); each call's kernels use all threads anyway.
    """
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._run_lock:
            return method(self, *args, **kwargs)

    return run


class _OutputLoss:
    """The loss of one output: the Loss object, its weight and its log name."""

    def __init__(self, index, loss, weight, name):
        self.index, self.loss, self.weight, self.name = index, loss, weight, name


class Model(Layer):
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

    # ----- weights -----------------------------------------------------------------------------------------------

    def _weight_layers(self):
        return self.layers

    @property
    def weights(self):
        """Every weight once, layer by layer in ``model.layers`` order (Keras' order)."""
        seen, weights = set(), []
        for layer in self._weight_layers():
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    weights.append(w)
        return weights

    def _weight_trainable(self):
        """id(variable) -> whether it trains (its layer and every model around it trainable)."""
        flags = {}
        for layer in self._weight_layers():
            if isinstance(layer, Model):
                inner = layer._weight_trainable()
                for w in layer.weights:
                    flags.setdefault(id(w), self.trainable and layer.trainable and inner[id(w)])
            else:
                trains = {id(w) for w in layer.trainable_weights}
                for w in layer.weights:
                    flags.setdefault(id(w), self.trainable and id(w) in trains)
        return flags

    @property
    def trainable_weights(self):
        flags = self._weight_trainable()
        return [w for w in self.weights if flags[id(w)]]

    @property
    def non_trainable_weights(self):
        flags = self._weight_trainable()
        return [w for w in self.weights if not flags[id(w)]]

    def get_weights(self):
        """Copies of all weights, in ``model.weights`` order (Keras' order)."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        """Assign a list of arrays as returned by ``get_weights`` (or by Keras' for the same architecture)."""
        variables, weights = self.weights, list(weights)
        if len(weights) != len(variables):
            raise ValueError(
                f"Model '{self.name}' expects {len(variables)} weight arrays, received {len(weights)}"
            )
        for var, value in zip(variables, weights):
            if np.shape(value) != var.shape:
                raise ValueError(f"Weight {var.path!r} expects shape {var.shape}, received shape {np.shape(value)}")
        for var, value in zip(variables, weights):
            var.assign(value)

    def count_params(self):
        """Number of scalars in the weights (the model must be built)."""
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but the layer isn't built. "
                "You can build it manually via: `model.build(input_shape)`."
            )
        return int(sum(math.prod(w.shape) for w in self.weights))

    def _bind_flat(self):
        """Move all trainable weights into one flat buffer (weights become views of it)."""
        trainable = self.trainable_weights
        key = tuple(id(w) for w in trainable)
        if key == self._bound_key:
            return
        total = sum(w.value.size for w in trainable)
        params = np.empty(total, dtype=np.float32)
        grads = np.zeros(total, dtype=np.float32)
        offset = 0
        for w in trainable:
            n = w.value.size
            params[offset:offset + n] = w.value.reshape(-1)
            w.value = params[offset:offset + n].reshape(w.shape)
            w.grad = grads[offset:offset + n].reshape(w.shape)
            offset += n
        self._params, self._grads, self._bound_key = params, grads, key
        if self.optimizer is not None:
            self.optimizer.reset_state()

    def quantize(self, mode, calibration_data=None, filters=None, method="minmax", percentile=99.99, batch_size=256,
                 activation_bits=None):
        """Quantize the Conv2D and Dense layers to int8 in place (Keras 3's method, plus static
        calibration on ``calibration_data``); see :func:`convx.quantization.quantize_model`."""
        from convx.quantization import quantize_model

        quantize_model(self, mode, calibration_data=calibration_data, filters=filters, method=method,
                       percentile=percentile, batch_size=batch_size, activation_bits=activation_bits)

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

    # ----- compile -----------------------------------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        """Set the optimizer, the loss(es) and the metrics (Keras names or objects).

        For several outputs, ``loss``, ``loss_weights`` and ``metrics`` may be
        lists (in output order) or dicts keyed by output name
        (``model.output_names``); a single loss applies to every output.
        ``run_eagerly``, ``steps_per_execution``, ``jit_compile`` and
        ``auto_scale_loss`` are accepted for compatibility and have no effect.
        """
        self.optimizer = _optimizers.get(optimizer)
        self._loss_spec, self._loss_weights_spec = loss, loss_weights
        self.loss = None if loss is None or isinstance(loss, (list, tuple, dict)) else _losses.get(loss)
        self._check_metric_specs(metrics)
        self._check_metric_specs(weighted_metrics)
        self._metric_specs = metrics if metrics is not None else []
        self._weighted_metric_specs = weighted_metrics if weighted_metrics is not None else []
        self._weighted_metric_ids = frozenset()
        self._metric_objects = None
        self._output_losses = []
        self._loss_tracker = _metrics.Mean(name="loss")
        self.compiled = True
        if self._graph is not None:
            self._resolve_losses()
        if self.built:
            self.optimizer.reset_state()

    @staticmethod
    def _check_metric_specs(metrics):
        if metrics is None:
            return
        if not isinstance(metrics, (list, tuple, dict)):
            raise ValueError(f"metrics must be a list, tuple or dict, received metrics={metrics!r}")
        for metric in flatten(metrics):
            if metric is not None and not (isinstance(metric, str) and metric.lower() in ("accuracy", "acc")):
                _metrics.get(metric)

    def _per_output(self, spec, what, default=None):
        """``spec`` (one value, list in output order or dict by output name) as a list per output."""
        names = self.output_names
        if isinstance(spec, dict):
            unknown = sorted(set(spec) - set(names))
            if unknown:
                raise ValueError(f"{what} has keys {unknown} that are not output names; the outputs are {names}")
            return [spec.get(name, default) for name in names]
        if isinstance(spec, (list, tuple)):
            if len(spec) != len(names):
                raise ValueError(f"{what} has {len(spec)} entries for a model with {len(names)} outputs {names}")
            return list(spec)
        return [spec] * len(names)

    def _resolve_losses(self):
        spec = self._loss_spec
        if isinstance(spec, dict) and set(spec) != set(self.output_names):
            # as Keras 3: a loss dict names every output (None for an output without a loss)
            raise ValueError(f"Expected keys {self.output_names} in loss dict, but found loss.keys()={list(spec)}")
        losses = self._per_output(spec, "loss")
        weights = self._per_output(self._loss_weights_spec, "loss_weights", 1.0) \
            if self._loss_weights_spec is not None else [1.0] * len(losses)
        self._output_losses = []
        names = self.output_names
        for k, (loss, weight) in enumerate(zip(losses, weights)):
            if loss is None:
                continue
            loss = _losses.get(loss)
            name = names[k] if len(names) > 1 else loss.name
            self._output_losses.append(_OutputLoss(k, loss, float(1.0 if weight is None else weight), name))
        if len(self._output_losses) > 1:
            self._output_loss_trackers = [_metrics.Mean(name=f"{ol.name}_loss") for ol in self._output_losses]
        else:
            self._output_loss_trackers = []

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must call `compile()` before using the model for {what}.")
        if self._loss_spec is None and not (self._overrides("train_step") or self._overrides("test_step")):
            raise ValueError(f"Model '{self.name}' was compiled without a loss; `{what}` needs one")

    @property
    def metrics_names(self):
        names = ["loss"] + [t.name for t in getattr(self, "_output_loss_trackers", [])]
        if self._metric_objects:
            names += [name for name, _, _ in self._metric_objects]
        return names

    # ----- data --------------------------------------------------------------------------------------------------

    def _as_input_list(self, x, name):
        inputs = self._graph.inputs if self._graph is not None else None
        if isinstance(x, dict):
            if inputs is None:
                raise ValueError(f"Argument `{name}` is a dict, but model '{self.name}' is not built: its input "
                                 "names are unknown")
            missing = [t.name for t in inputs if t.name not in x]
            if missing:
                raise ValueError(f"Argument `{name}` lacks the model inputs {missing}; it has keys {sorted(x)}")
            return [x[t.name] for t in inputs], [f"{name}[{t.name!r}]" for t in inputs]
        if isinstance(x, (list, tuple)) and (inputs is None and len(x) > 1 or inputs is not None and len(inputs) > 1):
            return list(x), [f"{name}[{i}]" for i in range(len(x))]
        if isinstance(x, (list, tuple)) and len(x) == 1 and isinstance(x[0], np.ndarray):
            return [x[0]], [f"{name}[0]"]  # Keras takes a one-element list for a one-input model
        return [x], [name]

    def _prepare_x(self, x, name="x"):
        """Validate once and cast to float32 (no copy when already float32 and contiguous): a list per input."""
        if x is None:
            raise ValueError(f"Argument `{name}` must be an array, received None")
        arrays, names = self._as_input_list(x, name)
        prepared = []
        for index, (array, array_name) in enumerate(zip(arrays, names)):
            text = _text_batch(array)
            prepared.append(_adapters.float32_batch(array, array_name) if text is None else self._shaped_text(text, index))
        if len({len(a) for a in prepared}) > 1:
            raise ValueError(
                "Data cardinality is ambiguous: make sure all arrays contain the same number of samples. "
                + ", ".join(f"'{n}' sizes: {len(a)}" for n, a in zip(names, prepared))
            )
        if self._graph is None:
            shapes = [a.shape for a in prepared]
            self.build(shapes if len(shapes) > 1 else shapes[0])
        sample_shapes = [a.shape[1:] for a in prepared]
        if sample_shapes != self._checked_shapes:  # checked once per new sample shape, not per batch
            self._check_model_input_shapes([a.shape for a in prepared])
            self._checked_shapes = sample_shapes
        return prepared

    def _shaped_text(self, text, index):
        """Strings for a model input of shape (None, 1) given as (N,): Keras adds the axis."""
        inputs = self._graph.inputs if self._graph is not None else None
        if inputs is not None and len(inputs[index].shape) == text.ndim + 1 and inputs[index].shape[-1] == 1:
            return text.reshape(text.shape + (1,))
        return text

    def _prepare_xy(self, x, y, name="x", y_name="y"):
        custom = self._overrides("train_step") or self._overrides("test_step")
        if y is None and custom:  # a custom step may train without targets (Keras passes it x alone)
            x = self._prepare_x(x, name)
            if self._metric_objects is None:
                self._metric_objects = []
            return x, [None] * len(self._graph.outputs)
        if y is None:
            raise ValueError(f"Argument `{y_name}` (targets) is required, received None")
        x = self._prepare_x(x, name)
        if not self._output_losses:
            self._resolve_losses()
        n = len(x[0])
        outputs = self._graph.outputs
        if isinstance(y, dict):
            ys = self._per_output(y, y_name)
        elif isinstance(y, (list, tuple)) and len(outputs) > 1:
            ys = self._per_output(list(y), y_name)
        elif isinstance(y, (list, tuple)) and len(y) == 1 and isinstance(y[0], np.ndarray):
            ys = [y[0]]
        else:
            ys = [y] * len(outputs) if len(outputs) > 1 else [y]
        targets = [None] * len(outputs)
        for ol in self._output_losses:
            target = ys[ol.index]
            if target is None:
                raise ValueError(f"No target given for output '{self.output_names[ol.index]}', which has a loss")
            target = np.asarray(target)
            if target.ndim < 1 or len(target) != n:
                raise ValueError(
                    "Data cardinality is ambiguous: make sure all arrays contain the same number of samples. "
                    f"'{name}' sizes: {n}, '{y_name}' sizes: {len(target) if target.ndim else 'scalar'}"
                )
            targets[ol.index] = ol.loss.prepare_targets(target, outputs[ol.index].shape)
        if custom:  # the step's own code reads the targets of outputs without a compiled loss
            targets = [np.asarray(t) if p is None and t is not None else p for p, t in zip(targets, ys)]
        if n == 0:
            raise ValueError(f"Argument `{name}` must contain at least one sample, received shape {x[0].shape}")
        if self._metric_objects is None:
            metrics = self._build_metrics(targets)
            self._metric_objects = metrics + self._build_weighted_metrics(targets, metrics)
        return x, targets

    def _build_weighted_metrics(self, targets, metrics):
        """The ``weighted_metrics`` entries (updated with the sample weights); a name taken by a metric
        becomes ``weighted_<name>``, as Keras 3 names it."""
        taken = {name for name, _, _ in metrics}
        weighted = []
        for name, k, metric in self._build_metrics(targets, getattr(self, "_weighted_metric_specs", [])):
            if name in taken:
                name = f"weighted_{metric.name}" if len(self._graph.outputs) == 1 \
                    else f"{self.output_names[k]}_weighted_{metric.name}"
            taken.add(name)
            weighted.append((name, k, metric))
        self._weighted_metric_ids = frozenset(id(metric) for _, _, metric in weighted)
        return weighted

    def _build_metrics(self, targets, specs=None):
        """(log name, output index, Metric) for every metric, named as Keras 3 names them."""
        outputs, names = self._graph.outputs, self.output_names
        specs = self._metric_specs if specs is None else specs
        per_output_lists = (isinstance(specs, (list, tuple)) and specs
                            and all(isinstance(s, (list, tuple)) or s is None for s in specs))
        if isinstance(specs, dict) or (len(outputs) > 1 and per_output_lists):
            per_output = self._per_output(specs, "metrics", [])
        elif len(outputs) > 1 and specs:
            raise ValueError(
                f"Invalid `metrics` for a model with {len(outputs)} outputs {names}: give a dict keyed by output "
                f"name or a list with one list of metrics per output (as Keras 3 requires); received metrics={specs!r}"
            )
        else:
            per_output = [list(specs)] * len(outputs)
        metrics = []
        for k, entry in enumerate(per_output):
            entry = [] if entry is None else (list(entry) if isinstance(entry, (list, tuple)) else [entry])
            target = targets[k]
            for spec in entry:
                if target is None:
                    raise ValueError(f"Metric {spec!r} on output '{names[k]}' needs a target; that output has no loss")
                metric = _metrics.get(spec, target.shape, outputs[k].shape)
                log_name = metric.name if len(outputs) == 1 else f"{names[k]}_{metric.name}"
                metrics.append((log_name, k, metric))
        return metrics

    # ----- steps -------------------------------------------------------------------------------------------------

    def _plan(self, training, with_loss):
        """The plan for this mode, made once per mode and set of trainable flags."""
        if with_loss:
            losses = [False] * len(self._graph.outputs)
            for ol in self._output_losses:
                fused = ol.loss.fused_activation is not None and not ol.loss.from_logits
                losses[ol.index] = ol.loss.fused_activation if fused else True
        else:
            losses = [False] * len(self._graph.outputs)
        if self._plans_generation != Layer.trainable_generation:
            # a layer's trainable flag changed somewhere: the plans (which steps run backward) are rebuilt
            self._plans, self._plans_generation = {}, Layer.trainable_generation
        key = (training, tuple(losses))
        plan = self._plans.get(key)
        if plan is None:
            if any(layer._int8 is not None for layer in self._graph.layers):  # a quantized model (also once loaded)
                from convx.quantization.layers import link_chains

                link_chains(self)
            plan = self._plans[key] = Plan(self._graph, training, losses, self.trainable)
        return plan

    def _prepare_step(self):
        self._bind_flat()
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_weights)  # per-variable state views, in Keras' order
        key = (self._bound_key, tuple(id(layer) for layer in self._all_layers))
        if self._penalties is None or self._penalties.key != key:
            self._penalties = _Penalties(self, key)
        return self._plan(True, True), self._plan(False, True)

    @property
    def losses(self):
        """The penalties as Keras' ``model.losses`` lists them (float32 scalars): the layers' activity
        penalties of the last call, in layer order, then the weights' regularizers in weight order."""
        if self._graph is None:
            return []
        activity = [loss for layer in self._all_layers for loss in getattr(layer, "_activity_losses", ())]
        return activity + _weight_penalties(self.weights)

    def _loss_and_grads(self, plan, outputs, targets, sample_weight=None):
        """(loss values per output loss, gradient per output) for one batch; with ``sample_weight`` (a
        float32 (n,) array or None per output) each sample's loss and gradient are scaled by its weight,
        the mean still over the batch size (Keras 3's ``sum_over_batch_size``)."""
        values, grads = [], [None] * len(outputs)
        for ol in self._output_losses:
            logits = plan.logits(ol.index)
            loss_input = outputs[ol.index] if logits is None else logits
            losses, grad = ol.loss.value_and_grad(loss_input, targets[ol.index], logits=logits is not None)
            if sample_weight is not None and sample_weight[ol.index] is not None:
                losses, grad = _adapters.weigh(losses, grad, sample_weight[ol.index])
            if ol.weight != 1.0:
                np.multiply(grad, np.float32(ol.weight), out=grad)
            values.append(losses)
            grads[ol.index] = grad
        return values, grads

    def _update_trackers(self, loss_values, targets, outputs, penalty=None, sample_weight=None):
        n = len(outputs[0])
        # losses.mean() in float32, as Keras averages the batch; sum / n is that value without np.mean's Python layer
        means = [values.sum() / values.size for values in loss_values]
        if len(means) == 1 and self._output_losses[0].weight == 1.0:
            total = means[0]
        else:
            total = np.float32(0.0)
            for ol, mean in zip(self._output_losses, means):
                total = total + np.float32(ol.weight) * mean
        if penalty is not None:  # Keras adds sum(model.losses) to the loss it logs
            total = np.float32(total) + penalty
        self._loss_tracker.update_state(float(total), sample_weight=n)
        for tracker, mean in zip(self._output_loss_trackers, means):
            tracker.update_state(float(mean), sample_weight=n)
        if sample_weight is None:
            for _, k, metric in self._metric_objects:
                metric.update_state(targets[k], outputs[k])
            return
        weighted = self._weighted_metric_ids
        for _, k, metric in self._metric_objects:
            metric.update_state(targets[k], outputs[k], sample_weight=sample_weight[k] if id(metric) in weighted else None)

    def _train_step(self, x, targets, plan, sample_weight=None):
        self._step_logs = _custom_step.run_train_step(self, x, targets) if self._dispatches("train_step") else None
        if self._step_logs is not None:
            return
        penalties = self._penalties
        penalties.clear_activity()
        outputs = plan.forward(x, training=True)
        loss_values, grads = self._loss_and_grads(plan, outputs, targets, sample_weight)
        plan.backward(grads)
        penalty = penalties.value_and_add_grads()
        if self._params.size:
            self.optimizer.update_flat(self._params, self._grads)
        penalties.constrain()
        self._update_trackers(loss_values, targets, outputs, penalty, sample_weight)

    def _test_step(self, x, targets, plan, sample_weight=None):
        self._step_logs = _custom_step.run_test_step(self, x, targets) if self._dispatches("test_step") else None
        if self._step_logs is not None:
            return
        penalties = self._penalties
        penalties.clear_activity()
        outputs = plan.forward(x, training=False)
        loss_values, _ = self._loss_and_grads(plan, outputs, targets, sample_weight)
        self._update_trackers(loss_values, targets, outputs, penalties.value(), sample_weight)

    def _reset_metrics(self):
        for metric in self.metrics:  # an override of `metrics` lists its own (Keras resets them per epoch)
            metric.reset_state()
        self._loss_tracker.reset_state()
        for tracker in getattr(self, "_output_loss_trackers", []):
            tracker.reset_state()
        for _, _, metric in self._metric_objects or []:
            metric.reset_state()

    def reset_metrics(self):
        """Reset the loss trackers and the metrics."""
        self._reset_metrics()

    def _logs(self):
        if getattr(self, "_step_logs", None) is not None:  # what an overridden train_step/test_step returned
            return dict(self._step_logs)
        # Keras 3 sorts log keys: 'accuracy', 'loss', 'val_accuracy', 'val_loss'
        logs = {name: metric.result() for name, _, metric in self._metric_objects}
        for tracker in self._output_loss_trackers:
            logs[tracker.name] = tracker.result()
        logs["loss"] = self._loss_tracker.result()
        return dict(sorted(logs.items()))

    def _flatten_logs(self, logs):
        values = [logs[name] for name in self.metrics_names]
        return values[0] if len(values) == 1 else values

    # ----- public loops ------------------------------------------------------------------------------------------

    @_one_at_a_time
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; returns the History (also ``model.history``).

        ``x`` is an array, or for several inputs a list (input order) or a dict
        (by input name); ``y`` likewise per output. Inputs are validated and
        cast to float32 once. ``x`` may instead be a :class:`convx.data.Dataset`,
        a :class:`convx.utils.PyDataset` or a generator yielding batches ``(x, y)``
        or ``(x, y, sample_weight)`` (then ``y`` is None; ``steps_per_epoch``
        bounds an epoch). ``sample_weight`` (n,) and ``class_weight`` (class ->
        weight) scale each sample's loss (and the ``weighted_metrics``).
        ``validation_split`` takes the last fraction of the samples (before
        shuffling) as validation data; ``validation_data`` (arrays or any of the
        streams above) takes precedence over it. Logged training values are
        running means over the epoch, as in Keras 3.
        """
        self._require_compiled("fit")
        batch_size = _batch_size(batch_size)
        validation_batch_size = _batch_size(validation_batch_size or batch_size, "validation_batch_size")
        verbose = _verbosity(verbose)
        for value, arg in ((epochs, "epochs"), (initial_epoch, "initial_epoch"), (validation_freq, "validation_freq")):
            low = 1 if arg == "validation_freq" else 0
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{arg} must be a {'positive' if low else 'non-negative'} integer, "
                                 f"received {arg}={value!r}")
        if not isinstance(validation_split, (int, float)) or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be a float in [0, 1), received validation_split={validation_split!r}")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise ValueError(f"shuffle must be True or False, received shuffle={shuffle!r}")
        prepare = _adapters.BatchPreparer(self, _adapters.check_class_weight(class_weight))
        if _adapters.is_stream(x):
            _adapters.check_stream_arguments(x, y=y, sample_weight=sample_weight, validation_split=validation_split)
            data = _adapters.StreamBatches(x, prepare, steps_per_epoch, bool(shuffle))
            val = None
        else:
            _unsupported(steps_per_epoch=steps_per_epoch)
            x, y, sw = prepare(x, y, sample_weight)
            val = None
            if validation_split and validation_data is None:
                x, y, sw, val = _adapters.split_validation(x, y, sw, validation_split, validation_batch_size)
            data = _adapters.ArrayBatches(x, y, sw, batch_size, bool(shuffle))
        if validation_data is not None:
            val = _adapters.validation_batches(self, validation_data, validation_batch_size, validation_steps)
        return self._fit_loop(data, val, epochs, initial_epoch, verbose, callbacks, validation_freq)

    def _fit_loop(self, data, val, epochs, initial_epoch, verbose, callbacks, validation_freq):
        replica = _data_parallel()
        if replica is not None:  # each rank takes its share of every global batch; rank 0 prints
            data, verbose = replica.shares(data), verbose if replica.rank == 0 else 0
        callbacks = _callback_list(callbacks, add_history=True, add_progbar=verbose != 0, model=self,
                                   verbose=verbose, epochs=epochs, steps=data.steps)
        plans = None  # made at the first batch: a model fed by a dataset is built by it
        self.stop_training = False
        self._initial_epoch = None
        callbacks.on_train_begin()
        initial_epoch = self._initial_epoch or initial_epoch  # BackupAndRestore resumes after its last epoch
        logs = None
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            callbacks.on_epoch_begin(epoch)
            batches, step = data.epoch(), -1
            for step, (xb, yb, swb) in enumerate(batches):
                if plans is None:
                    plans = self._prepare_step()
                    if replica is not None:  # after on_train_begin: weights restored on rank 0 reach every rank
                        replica.broadcast_weights(self)
                callbacks.on_train_batch_begin(step)
                if replica is None:
                    self._train_step(xb, yb, plans[0], swb)
                else:  # the step sums every rank's gradients
                    replica.train_step(self, xb, yb, plans[0], swb)
                callbacks.on_train_batch_end(step, self._logs())
                if self.stop_training:
                    break
            batches.close()
            if step < 0:
                if plans is None:
                    raise ValueError("The training data is empty: fit received no batch")
                break  # the data ran out (Keras' warning was given)
            logs = self._logs()
            if val is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._evaluate_prepared(val, callbacks, plans[1])
                logs.update({"val_" + name: value for name, value in val_logs.items()})
            callbacks.on_epoch_end(epoch, logs)
            if self.stop_training or data.ran_out:
                break
        if epochs > initial_epoch:
            self.optimizer.finalize_variable_values(self.trainable_weights)  # use_ema: the averaged weights
        callbacks.on_train_end(logs=logs)
        return self._history_from(callbacks)

    def _history_from(self, callbacks):
        from convx.callbacks import History

        for callback in getattr(callbacks, "callbacks", []):
            if isinstance(callback, History):
                self.history = callback
        return self.history

    def _evaluate_prepared(self, data, callbacks, plan=None):
        self._reset_metrics()
        callbacks.on_test_begin()
        replica = _data_parallel()
        data = data if replica is None else replica.shares(data)
        step = -1
        for step, (xb, yb, swb) in enumerate(data.epoch()):
            if plan is None:
                plan = self._prepare_step()[1]
            callbacks.on_test_batch_begin(step)
            if replica is None:
                self._test_step(xb, yb, plan, swb)
            else:
                replica.test_step(self, xb, yb, plan, swb)
            callbacks.on_test_batch_end(step, self._logs())
        if step < 0:
            raise ValueError("The evaluation data is empty: no batch was received")
        logs = self._logs()
        callbacks.on_test_end(logs)
        return logs

    @_one_at_a_time
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss and metrics on ``(x, y)`` (arrays, or a Dataset/PyDataset/generator of batches): a float
        (loss only), a list ``[loss, *metrics]`` or a dict."""
        self._require_compiled("evaluate")
        batch_size = _batch_size(batch_size)
        verbose = _verbosity(verbose) if _writes_files() else 0
        prepare = _adapters.BatchPreparer(self, None)
        if _adapters.is_stream(x):
            _adapters.check_stream_arguments(x, y=y, sample_weight=sample_weight)
            data = _adapters.StreamBatches(x, prepare, steps, kind="evaluation")
        else:
            _unsupported(steps=steps)
            data = _adapters.ArrayBatches(*prepare(x, y, sample_weight), batch_size, False)
        callbacks = _callback_list(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                   steps=data.steps)
        logs = self._evaluate_prepared(data, callbacks)
        return logs if return_dict else self._flatten_logs(logs)

    @_one_at_a_time
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x`` (arrays, or a Dataset/PyDataset/generator of batches), computed in batches:
        one float32 array, or a list/dict like the model's outputs."""
        batch_size = _batch_size(batch_size)
        verbose = _verbosity(verbose) if _writes_files() else 0
        if _adapters.is_stream(x):
            data = _adapters.StreamBatches(x, _adapters.BatchPreparer(self, None, with_targets=False), steps,
                                           kind="prediction")
            callbacks = _callback_list(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                       steps=data.steps)
            return _adapters.predict_stream(self, data, callbacks)
        _unsupported(steps=steps)
        x = self._prepare_x(x)
        steps = -(-len(x[0]) // batch_size)
        callbacks = _callback_list(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                   steps=steps)
        replica = _data_parallel()
        if replica is not None:  # each rank predicts its share of every batch; every rank returns all rows
            return replica.predict_arrays(self, x, batch_size, steps, callbacks)
        return _adapters.predict_arrays(self, x, batch_size, steps, callbacks)

    def _structure(self, arrays):
        """Arrays per output, shaped like the model's outputs (one array, a list or a dict)."""
        structure = self._outputs_structure
        if isinstance(structure, dict):
            return dict(zip(structure, arrays))
        if isinstance(structure, (list, tuple)):
            return list(arrays)
        return arrays[0]

    def _clear_activity_losses(self):
        """Forget the activity penalties of earlier calls (Keras clears them at each top-level call)."""
        for layer in self._all_layers:
            if getattr(layer, "_activity_losses", None):
                layer._activity_losses.clear()

    @_one_at_a_time
    def _run_copy(self, x, training):
        x = self._prepare_x(x)  # builds a subclassed model on its first call
        self._clear_activity_losses()
        outputs = self._plan(bool(training), False).forward(x, training=bool(training))
        # the plan's outputs are reused buffers (or the input itself): the caller gets its own arrays
        return self._structure([np.array(o) for o in outputs])

    @_one_at_a_time
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One training step on one batch; returns the running loss/metrics (Keras 3: not reset per call)."""
        self._require_compiled("train_on_batch")
        prepare = _adapters.BatchPreparer(self, _adapters.check_class_weight(class_weight))
        x, y, sw = prepare(x, y, sample_weight)
        self._train_step(x, y, self._prepare_step()[0], sw)
        logs = self._logs()
        return logs if return_dict else self._flatten_logs(logs)

    @_one_at_a_time
    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss/metrics on one batch without updating the weights."""
        self._require_compiled("test_on_batch")
        x, y, sw = _adapters.BatchPreparer(self, None)(x, y, sample_weight)
        self._test_step(x, y, self._prepare_step()[1], sw)
        logs = self._logs()
        return logs if return_dict else self._flatten_logs(logs)

    def predict_on_batch(self, x):
        """Outputs for one batch (new arrays)."""
        return self._run_copy(x, False)

    def __call__(self, x, training=False):
        from convx.layers.node import is_symbolic

        if is_symbolic(x) or isinstance(x, dict) and any(isinstance(v, KerasTensor) for v in x.values()):
            return self._call_symbolic(list(x.values()) if isinstance(x, dict) else x)
        tape = current_tape()
        if training and getattr(tape, "model", None) is self:  # self(x, training=True) in a train_step
            return _custom_step.record_forward(self, tape, x)
        return self._run_copy(x, training)

    # ----- custom training logic (train_step / test_step overrides; see convx.models.custom_step) ------------------

    def train_step(self, data):
        """One training step on ``data`` (``(x, y)``); returns the logs. Override it for custom training
        logic: ``self(x, training=True)``, ``self.compute_loss(...)``, ``loss.backward()``,
        ``self.optimizer.apply([v.grad for v in self.trainable_weights], self.trainable_weights)``."""
        x, y = data if isinstance(data, tuple) else (data, None)
        x, targets = self._prepare_xy(x, y)
        self._train_step(x, targets, self._prepare_step()[0])
        return self._logs()

    def test_step(self, data):
        """One evaluation step on ``data`` (``(x, y)``); returns the logs (override as ``train_step``)."""
        x, y = data if isinstance(data, tuple) else (data, None)
        x, targets = self._prepare_xy(x, y)
        self._test_step(x, targets, self._prepare_step()[1])
        return self._logs()

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss(es) of ``y_pred`` against ``y`` plus ``sum(self.losses)`` (Keras 3's
        ``compute_loss``); in a train_step a tape tensor whose ``backward()`` trains the model."""
        _unsupported(sample_weight=sample_weight)
        return _custom_step.compute_loss(self, y, y_pred)

    @property
    def metrics(self):
        """The loss tracker and the compiled metrics (Keras 3's ``model.metrics``)."""
        tracker = getattr(self, "_loss_tracker", None)
        return ([tracker] if tracker is not None else []) + [m for _, _, m in self._metric_objects or []]

    def zero_grad(self):
        """Zero the trainable weights' gradients (the flat buffer)."""
        if self._grads is not None:
            self._grads.fill(0)

    def _overrides(self, method):
        return getattr(type(self), method) is not getattr(Model, method)

    def _dispatches(self, method):
        """Whether the loops call the user's ``method`` (not when it is already running: ``super().train_step``)."""
        return self._overrides(method) and not self.__dict__.get("_in_custom_step", False)

    # ----- config and saving -------------------------------------------------------------------------------------

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


class _Penalties:
    """A model's regularization and constraints, as Keras 3 counts them: the training loss adds the
    weights' regularizer penalties and the layers' activity penalties (``model.losses``); the
    penalties' gradients go into the weights' gradients (views of the flat buffer) in place, before
    the optimizer step; constraints project their variables after it. Nothing here allocates per
    step for the built-in regularizers and constraints (each entry keeps a scratch array)."""

    def __init__(self, model, key):
        self.key = key
        trainable = {id(w) for w in model.trainable_weights}
        layers = [layer for layer in model._all_layers if not isinstance(layer, Model)]
        seen, self.weights, self.constraints = set(), [], []
        for layer in layers:
            for w in layer.weights:
                if id(w) in seen:
                    continue
                seen.add(id(w))
                if w.regularizer is not None:
                    if id(w) in trainable and not callable(getattr(w.regularizer, "add_gradient", None)):
                        raise ValueError(
                            f"The regularizer of weight {w.path!r} ({w.regularizer!r}) has no add_gradient(x, grad, "
                            "scratch) method: convx (no autograd) trains only with regularizers that define it, "
                            "such as those of convx.regularizers"
                        )
                    self.weights.append((w, w.regularizer, id(w) in trainable, np.empty_like(w.value)))
                if w.constraint is not None and id(w) in trainable:
                    self.constraints.append((w, w.constraint, np.empty_like(w.value)))
        # layers with call() may add_loss; their values are collected like activity penalties
        self.activity_layers = [layer for layer in layers if layer.activity_regularizer is not None or layer._has_call]
        self.active = bool(self.weights or self.activity_layers)

    def clear_activity(self):
        for layer in self.activity_layers:
            layer._activity_losses.clear()

    def value(self):
        """Sum of the penalties (float32), or None when the model has none."""
        if not self.active:
            return None
        total = np.float32(0.0)
        for w, regularizer, _, scratch in self.weights:
            penalty = getattr(regularizer, "penalty", None)
            total = total + np.float32(penalty(w.value, scratch) if penalty else regularizer(w.value))
        for layer in self.activity_layers:
            for loss in layer._activity_losses:
                total = total + np.float32(loss)
        return np.float32(total)

    def value_and_add_grads(self):
        """The penalty (before the update), its gradients added to the trainable weights' ``grad``."""
        total = self.value()
        for w, regularizer, trains, scratch in self.weights:
            if trains:
                regularizer.add_gradient(w.value, w.grad, scratch)
        return total

    def constrain(self):
        for w, constraint, scratch in self.constraints:
            apply = getattr(constraint, "apply", None)
            if apply is not None:
                apply(w.value, scratch)
            else:
                np.copyto(w.value, constraint(w.value), casting="unsafe")


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


def _text_batch(array):
    """``array`` as a NumPy array when it holds strings (for a TextVectorization first layer), else None."""
    if isinstance(array, (list, tuple)):
        array = np.asarray(array, dtype=object)
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "USO":
        return None
    if array.dtype.kind == "O" and not (array.size and isinstance(array.flat[0], (str, bytes))):
        return None
    return array
