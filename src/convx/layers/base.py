"""The Layer base class, weight variables and Keras-style automatic names.

A layer knows its config, builds its weights lazily from the input shape, runs
``forward(x, training)`` keeping what ``backward`` needs, and ``backward(dy)``
returns dx and writes its weight gradients into ``variable.grad``. Layers do no
arithmetic on tensors themselves: the maths is in ``convx._kernels``.

What one call of a layer keeps between its forward and backward passes (its
input, output, masks, output buffers, whether dx is needed) lives in a
:class:`CallState`, ``layer._state``. A layer used once has one; a model's
execution plan owns one per call of a layer (a layer shared by two branches
has two) and points ``layer._state`` at the right one before each pass.

Outputs and gradients are written into buffers kept from step to step
(``Layer._buffer``): fresh multi-megabyte arrays every step would be
returned to the OS by malloc and page-faulted in again on the next step. So
``forward``/``backward`` results are only valid until the layer's next call;
``Layer.__call__`` and the model's public methods return copies.

Called on symbolic tensors (``convx.Input``), a layer builds itself, records
the call as a :class:`~convx.layers.node.Node` and returns symbolic outputs.
"""

import collections
import math
import re

import numpy as np

from convx import constraints, initializers, regularizers
from convx.layers import custom as _custom
from convx.layers.activation_output import ActivationOutput  # noqa: F401  (convx.layers.base.ActivationOutput)
from convx.layers.node import KerasHistory, KerasTensor, Node, is_symbolic
from convx.layers.arguments import (_is_dtype, check_data_format, check_output_size,  # noqa: F401
                                    normalize_padding, normalize_shape, normalize_tuple)
from convx.layers.variables import Variable  # noqa: F401  (convx.layers.base.Variable)
from convx.ops.core import TapeTensor, current_tape, current_training, untraceable

_name_counts = collections.defaultdict(int)
_BUFFERS_PER_SLOT = 2


def reset_name_counters():
    """Forget the names handed out so far (``convx.utils.clear_session``)."""
    _name_counts.clear()


def to_snake_case(name):
    """Keras' class-name to layer-name rule: ``MaxPooling2D`` -> ``max_pooling2d``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(base):
    """``base`` the first time, then ``base_1``, ``base_2``, ... (Keras 3's uniquify)."""
    count = _name_counts[base]
    _name_counts[base] += 1
    return base if count == 0 else f"{base}_{count}"


def format_shape(shape):
    """A shape as Keras prints it: ``(None, 26, 26, 32)``."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"




def _weight_penalties(variables):
    """The regularizer penalties of ``variables`` that have one (float32 scalars)."""
    return [np.float32(w.regularizer(w.value)) for w in variables if w.regularizer is not None]


# Keras 3 serializes a layer's dtype as its dtype policy
FLOAT32_POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}


def _dtype_name(dtype):
    """The dtype's name: a str, a NumPy dtype, or a Keras DTypePolicy config dict; None means float32."""
    if dtype is None:
        return "float32"
    if isinstance(dtype, dict):
        return (dtype.get("config") or {}).get("name")
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


class CallState:
    """What one call of a layer keeps: its reusable buffers and what backward needs.

    Attributes
    ----------
    buffers : dict
        Slot name -> the most recently used arrays of that slot (see ``Layer._buffer``).
    need_dx : bool
        Whether backward must compute the input gradient (False for a call whose
        inputs need no gradient, e.g. the first layer with weights).
    expose_logits : bool
        Set by the plan when the loss takes over this call's final activation.
    output_arena : Arena or None
        Where the output (slot ``'y'``) goes at inference when the plan shares
        memory between tensors whose lifetimes do not overlap.

    Layers store their own saved tensors on it as attributes (``state.x``, ...).
    """

    def __init__(self):
        self.buffers = {}
        self.need_dx = True
        self.expose_logits = False
        self.output_arena = None


class Layer:
    """Base class of convx layers (Keras 3 semantics).

    Parameters
    ----------
    name : str, optional
        Defaults to the snake-cased class name, numbered when taken (``dense_1``).
    trainable : bool, default True
    dtype : None or 'float32'
        Only float32 is supported.
    input_shape : tuple of int, optional
        Shape of one sample; lets a Sequential model build before seeing data.
    input_dim : int, optional
        Shorthand for ``input_shape=(input_dim,)``.
    """

    # layers whose forward/backward apply ``activity_regularizer`` (``_activity_forward`` / ``_activity_grad``)
    _supports_activity_regularizer = False
    # int8 form of a Conv2D / Dense (convx.quantization.layers.Int8State), None when float
    _int8 = None
    # a subclass defining call() (Keras' way) runs it through convx.layers.custom instead of forward/backward
    _has_call = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._has_call = cls.call is not Layer.call and not getattr(cls, "_is_model", False)

    def __init__(self, *, name=None, trainable=True, dtype=None, activity_regularizer=None, **kwargs):
        input_dim = kwargs.pop("input_dim", None)
        input_shape = kwargs.pop("input_shape", None)
        batch_input_shape = kwargs.pop("batch_input_shape", None)
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        if _dtype_name(dtype) != "float32":
            raise ValueError(f"{type(self).__name__} supports only dtype 'float32', got dtype={dtype!r}")
        if input_dim is not None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        self._input_shape_arg = None if input_shape is None else tuple(input_shape)
        self.name = name if name is not None else unique_name(to_snake_case(type(self).__name__))
        self.trainable = trainable
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self._weights = []
        self._own_state = self._state = CallState()
        self._inbound_nodes = []
        self._shape_memo = (None, None)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        if self.activity_regularizer is not None and not self._supports_activity_regularizer:
            raise ValueError(
                f"{type(self).__name__} does not apply an activity regularizer in convx yet (the dense, "
                "convolution and normalization layers and ActivityRegularization do); received "
                f"activity_regularizer={activity_regularizer!r}"
            )
        self._activity_losses = []

    # Plans depend on which layers train: every change of a trainable flag bumps this counter
    trainable_generation = 0

    @property
    def trainable(self):
        """Whether the layer's weights train (Keras' ``layer.trainable``)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        Layer.trainable_generation += 1

    def _buffer(self, slot, shape, dtype=np.float32):
        """A reusable, uninitialised array for ``slot`` of the current call (e.g. ``'y'``, ``'dx'``).

        Slot ``'y'`` is the layer's output. Each slot keeps the 2 most recently
        used shapes, so alternating full and partial batches (or training and
        validation batch sizes) do not reallocate at every switch; at inference
        a plan may lend the output from its arena instead.
        """
        state = self._state
        if slot == "y" and state.output_arena is not None:
            return state.output_arena.array(shape, dtype)
        cache = state.buffers.setdefault(slot, [])
        for i, array in enumerate(cache):
            if array.shape == shape and array.dtype == dtype:
                if i:
                    cache.insert(0, cache.pop(i))
                return array
        array = np.empty(shape, dtype=dtype)
        cache.insert(0, array)
        del cache[_BUFFERS_PER_SLOT:]
        return array

    # ----- weights -------------------------------------------------------------

    def add_weight(self, *args, shape=None, initializer=None, dtype=None, trainable=True, autocast=True,
                   regularizer=None, constraint=None, aggregation="none", overwrite_with_gradient=False, name=None):
        """Create a float32 Variable of ``shape`` filled by ``initializer`` (Keras 3's signature).

        Parameters
        ----------
        shape : tuple of int, default ()
        initializer : str, Initializer, class or callable, default 'glorot_uniform'
            A callable is called as ``f(shape, dtype)``.
        dtype : None or 'float32'
        trainable : bool, default True
        regularizer : str, Regularizer or callable, optional
            Its penalty of the variable enters ``layer.losses`` and the training loss.
        constraint : str, Constraint or callable, optional
            Applied to the variable after each optimizer update.
        name : str
            The variable's name (``'kernel'``); its path is ``'<layer name>/<name>'``.

        Notes
        -----
        Positional ``(shape, initializer, dtype)`` as in Keras; a third positional
        argument that is not a dtype is taken as the name, for the older
        ``add_weight(shape, initializer, "name")`` calls.
        """
        if len(args) > 3:
            raise TypeError(f"add_weight() takes at most 3 positional arguments but {len(args)} were given.")
        if args and isinstance(args[0], str):
            raise ValueError(f"`name` must be passed as a keyword argument. Received: add_weight('{args[0]}', ...). "
                             f"Use: add_weight(shape=..., name='{args[0]}').")
        for position, (arg_name, current) in enumerate((("shape", shape), ("initializer", initializer))):
            if len(args) > position:
                if current is not None:
                    raise ValueError(f"`{arg_name}` was passed both positionally and as a keyword argument.")
                if arg_name == "shape":
                    shape = args[0]
                else:
                    initializer = args[1]
        if len(args) > 2:
            if _is_dtype(args[2]):
                if dtype is not None:
                    raise ValueError("`dtype` was passed both positionally and as a keyword argument.")
                dtype = args[2]
            elif name is None:
                name = args[2]  # add_weight(shape, initializer, "name"): convx's former positional form
            else:
                raise ValueError(f"add_weight() received an invalid dtype: {args[2]!r}")
        if dtype is not None and not (_is_dtype(dtype) and dtype != "bfloat16" and np.dtype(dtype) == np.float32):
            raise ValueError(f"convx weights are float32; add_weight() received dtype={dtype!r}")
        if name is None:
            name = "variable"
        if not isinstance(name, str):
            raise ValueError(f"add_weight() `name` must be a str, received name={name!r}")
        shape = () if shape is None else tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"add_weight() `shape` must hold non-negative ints, received shape={shape!r}")
        from convx.saving.limits import charge_weight  # here: convx.saving imports the layers

        charge_weight(shape, 4, f"{self.name}/{name}")  # a file being loaded must hold what its config creates
        init = initializers.get("glorot_uniform" if initializer is None else initializer)
        value = np.array(init(shape, dtype="float32"), dtype=np.float32, order="C")  # (ascontiguousarray makes 0-d 1-d)
        if value.shape != shape:
            raise ValueError(f"The initializer of weight {name!r} returned shape {value.shape}, expected {shape}")
        var = Variable(value, name, f"{self.name}/{name}", trainable=trainable,
                       regularizer=regularizers.get(regularizer), constraint=constraints.get(constraint),
                       aggregation=aggregation, overwrite_with_gradient=overwrite_with_gradient, autocast=autocast)
        self._weights.append(var)
        return var

    @property
    def losses(self):
        """The layer's penalties (float32 scalars), in Keras' order: the activity regularization and
        ``add_loss`` values of its last call (then its sublayers'), then its weights' regularizers
        (Keras' ``layer.losses``)."""
        layers = [self] + (_custom.flatten_layers(self) if self._has_call else [])
        return [loss for layer in layers for loss in layer._activity_losses] + _weight_penalties(self.weights)

    def add_loss(self, loss):
        """Add a scalar to the training loss, from ``call()`` (Keras' ``add_loss``): in training its gradient
        flows back through the ops that computed it."""
        if isinstance(loss, KerasTensor):
            untraceable("add_loss()")  # a plan runs such a call on a tape, which collects the loss
            return  # the symbolic call that finds the output shape
        tape = current_tape()
        if tape is not None:
            tape.add_loss(loss)
        self._activity_losses.append(np.float32(np.sum(loss.value if isinstance(loss, TapeTensor) else loss)))

    # ----- activity regularization (Keras: the regularizer of the output, divided by the batch size)

    def _activity_forward(self, y):
        """Record the activity penalty of output ``y`` (a call of a layer with an activity regularizer)."""
        n = y.shape[0] if y.ndim else 1
        regularizer = self.activity_regularizer
        if hasattr(regularizer, "penalty"):  # the built-in ones: no temporary the size of y
            penalty = regularizer.penalty(y, self._buffer("activity_scratch", y.shape, y.dtype))
        else:
            penalty = np.float32(regularizer(y))
        self._activity_losses.append(penalty / np.float32(n) if n else np.float32(0.0))

    def _activity_grad(self, y):
        """The gradient of the activity penalty w.r.t. output ``y`` (reused buffer ``'activity_grad'``)."""
        grad = self._buffer("activity_grad", y.shape, y.dtype)
        grad.fill(0)
        self.activity_regularizer.add_gradient(y, grad, self._buffer("activity_scratch", y.shape, y.dtype))
        if y.ndim and y.shape[0]:
            np.multiply(grad, y.dtype.type(1.0 / y.shape[0]), out=grad)
        return grad

    @property
    def weights(self):
        """Variables in Keras order (e.g. kernel then bias; a layer with ``call()``: its trainable ones, its
        non-trainable ones, then its sublayers')."""
        return _custom.weights(self) if self._has_call else list(self._weights)

    @property
    def trainable_weights(self):
        if self._has_call:
            return _custom.trainable_weights(self)
        return [w for w in self._weights if self.trainable and w.trainable]

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    @property
    def trainable_variables(self):
        """Keras 3's alias of ``trainable_weights``."""
        return self.trainable_weights

    @property
    def non_trainable_variables(self):
        return self.non_trainable_weights

    def get_weights(self):
        """Copies of the weights as NumPy arrays, in Keras order."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        """Assign arrays (Keras order and shapes) to the layer's weights."""
        weights, variables = list(weights), self.weights
        if len(weights) != len(variables):
            raise ValueError(
                f"Layer {self.name!r} expects {len(variables)} weights "
                f"{[w.shape for w in variables]}, but received {len(weights)}"
            )
        for var, value in zip(variables, weights):
            if np.shape(value) != var.shape:
                raise ValueError(
                    f"Layer {self.name!r} weight {var.name!r} has shape {var.shape}, received value of shape {np.shape(value)}"
                )
        for var, value in zip(variables, weights):
            var.assign(value)

    # ----- saving: Keras 3's protocol, called by convx.saving on every layer of a model

    def _saved_variables(self):
        # Keras stores a layer's trainable variables first, then the others, each in creation order
        return [w for w in self._weights if w.trainable] + [w for w in self._weights if not w.trainable]

    def save_own_variables(self, store):
        """Write this layer's variables into ``store`` (a dict-like): ``store['0']``, ``store['1']``, ...

        Overridden by layers whose saved form differs from their variables (as in Keras 3).
        """
        for i, var in enumerate(self._saved_variables()):
            store[str(i)] = var.value

    def load_own_variables(self, store):
        """Assign the arrays :meth:`save_own_variables` wrote (``store`` holds ``'0'``, ``'1'``, ...)."""
        variables = self._saved_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"Layer '{self.name}' expected {len(variables)} variables, but received {len(store.keys())} "
                f"variables during loading. Expected: {[v.name for v in variables]}")
        for i, var in enumerate(variables):
            var.assign(store[str(i)])

    def save_assets(self, dir_path):
        """Write files this layer needs besides its variables (a vocabulary, ...) into the folder ``dir_path``."""

    def load_assets(self, dir_path):
        """Read back what :meth:`save_assets` wrote into ``dir_path``."""

    def count_params(self):
        """Number of scalars in the weights (the layer must be built)."""
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but the layer isn't built. "
                "You can build it manually via: `layer.build(input_shape)`."
            )
        return int(sum(math.prod(w.shape) for w in self.weights))

    # ----- shapes and building -------------------------------------------------

    def _incompatible(self, message, input_shape):
        raise ValueError(
            f'Input 0 of layer "{self.name}" is incompatible with the layer: {message}. '
            f"Full shape received: {format_shape(input_shape)}"
        )

    def _require_ndim(self, input_shape, ndim):
        if len(input_shape) != ndim:
            self._incompatible(f"expected ndim={ndim}, found ndim={len(input_shape)}", input_shape)

    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        self.built = True

    def compute_output_shape(self, input_shape):
        """Output shape for ``input_shape``; the default keeps the shape (a layer with ``call()``: the shape
        ``call()`` gives on symbolic inputs)."""
        if self._has_call:
            return _custom.traced_output_shape(self, input_shape)
        return tuple(input_shape)

    def build_for(self, input_shape):
        """Build if needed, check the shape against the built one, return the output shape.

        ``input_shape`` is one shape, or a list of shapes for layers called on a list.
        """
        input_shape = normalize_shape(input_shape)
        if not self.built and self._has_call:  # Keras: build, then the output shape (call() needs the weights)
            self.build(input_shape)
            self.built = True
            self.input_shape, self.output_shape = input_shape, self.compute_output_shape(input_shape)
        elif not self.built:
            output_shape = self.compute_output_shape(input_shape)
            check_output_size(self.name, output_shape)
            self.build(input_shape)
            self.built = True
            self.input_shape, self.output_shape = input_shape, output_shape
        else:
            self.check_input_shape(input_shape)
        return self.output_shape

    def _output_shape_for(self, x_shape):
        """``compute_output_shape`` for a concrete batch shape, memoised for the last sample shape."""
        sample = tuple(x_shape[1:])
        if sample != self._shape_memo[0]:
            self._shape_memo = (sample, tuple(self.compute_output_shape((None,) + sample)[1:]))
        return (x_shape[0],) + self._shape_memo[1]

    def check_input_shape(self, input_shape):
        """Raise ValueError unless ``input_shape`` matches the shape the layer was built for."""
        expected = self.input_shape
        if isinstance(expected, list):
            if not isinstance(input_shape, list) or len(input_shape) != len(expected):
                raise ValueError(f'Layer "{self.name}" expects {len(expected)} inputs, received {input_shape}')
            for i, (e, r) in enumerate(zip(expected, input_shape)):
                if len(e) != len(r) or any(a is not None and b is not None and a != b for a, b in zip(e[1:], r[1:])):
                    raise ValueError(
                        f'Input {i} of layer "{self.name}" is incompatible with the layer: '
                        f"expected shape={format_shape(e)}, found shape={format_shape(r)}"
                    )
            return
        if isinstance(input_shape, list) or len(input_shape) != len(expected) or any(
            e is not None and r is not None and e != r for e, r in zip(expected[1:], input_shape[1:])
        ):
            raise ValueError(
                f'Input 0 of layer "{self.name}" is incompatible with the layer: '
                f"expected shape={format_shape(expected)}, found shape={format_shape(input_shape)}"
            )

    # ----- computation ---------------------------------------------------------

    def call(self, inputs, training=None):
        """What a subclass computes, with ``convx.ops`` and other layers (Keras' ``Layer.call``)."""
        raise NotImplementedError(f"Layer {type(self).__name__} does not define call()")

    def forward(self, x, training=False):
        """Output for a float32 batch ``x``; when ``training``, keep what backward needs.

        The result may be the layer's reused buffer: valid until the next call.
        """
        if self._has_call:
            return _custom.forward(self, x, training)
        raise NotImplementedError

    def backward(self, dy, needed=None):
        """Gradient w.r.t. the input (None when not needed); fills ``variable.grad``."""
        if self._has_call:
            return _custom.backward(self, dy, needed)
        raise NotImplementedError

    def __call__(self, x, training=None, **kwargs):
        """On arrays: the output for ``x`` (a new float32 array). On symbolic
        tensors (``convx.Input`` and what layers made of it): the symbolic
        output, the call recorded for a functional model. Inside a custom
        layer's call in training: recorded on its tape."""
        if is_symbolic(x):
            _custom.check_traced_arguments(self, training, kwargs)
            return self._call_symbolic(x)
        if current_tape() is not None and _custom.on_tape(x):
            return _custom.call_on_tape(self, x, training, kwargs)
        if training is None:
            training = bool(current_training())
        if kwargs and not self._has_call:
            raise TypeError(f"{type(self).__name__}.__call__() got unexpected keyword arguments {sorted(kwargs)}")
        self._state = self._own_state
        if current_training() is None:  # a top-level call: Keras forgets the losses of earlier calls
            for layer in [self] + (_custom.flatten_layers(self) if self._has_call else []):
                layer._activity_losses.clear()
        if isinstance(x, (list, tuple)):
            x = [np.asarray(v, dtype=np.float32) for v in x]
            self.build_for([(None,) + v.shape[1:] for v in x])
        else:
            x = np.asarray(x)
            if x.dtype != np.float32:
                x = x.astype(np.float32)
            self.build_for((None,) + x.shape[1:])
        if self._has_call:
            return np.array(_custom.output_array(self, _custom.invoke(self, x, training, kwargs)))
        # forward may return the layer's reused buffer (or a view of x): the caller gets its own array
        return np.array(self.forward(x, training=training))

    def _call_symbolic(self, inputs):
        structure = "list" if isinstance(inputs, (list, tuple)) else "single"
        tensors = list(inputs) if structure == "list" else [inputs]
        for tensor in tensors:
            if not isinstance(tensor, KerasTensor):
                raise ValueError(
                    f'Layer "{self.name}" was called on a mix of symbolic tensors and other values ({tensor!r}); '
                    "in a functional model every input of a layer must come from convx.Input or another layer"
                )
        shapes = [t.shape for t in tensors]
        output_shape = self.build_for(shapes if structure == "list" else shapes[0])
        node_index = len(self._inbound_nodes)
        output = KerasTensor(output_shape, "float32", history=KerasHistory(self, node_index, 0))
        self._inbound_nodes.append(Node(self, tensors, [output], structure))
        return output

    @property
    def input(self):
        """The symbolic input of the layer's first call (Keras' ``layer.input``)."""
        node = self._node_at(0, "input")
        return node.input_tensors[0] if node.call_structure == "single" else list(node.input_tensors)

    @property
    def output(self):
        """The symbolic output of the layer's first call (Keras' ``layer.output``)."""
        outputs = self._node_at(0, "output").output_tensors
        return outputs[0] if len(outputs) == 1 else list(outputs)

    def _node_at(self, index, attribute):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name} has never been called and thus has no defined {attribute}.")
        if index >= len(self._inbound_nodes):
            raise ValueError(f"Asked to get {attribute} at node {index}, but layer {self.name} has only "
                             f"{len(self._inbound_nodes)} inbound nodes.")
        return self._inbound_nodes[index]

    def output_may_alias_input(self):
        """Whether ``forward`` may return (a view of) its input rather than a new buffer;
        the plan keeps such an input's memory alive as long as the output's."""
        return False

    # ----- config --------------------------------------------------------------

    def get_config(self):
        """Constructor arguments; ``type(layer).from_config(layer.get_config())`` rebuilds it."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": dict(FLOAT32_POLICY)}
        if self._input_shape_arg is not None:
            config["input_shape"] = self._input_shape_arg
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config):
        if "pruning_schedule" in config:  # a layer wrapped by convx.pruning.prune_low_magnitude
            from convx.pruning import magnitude

            return magnitude.from_config(cls, config)
        dtype = config.get("dtype")
        if _dtype_name(dtype) == "int8_from_float32" or (isinstance(dtype, dict)
                                                         and (dtype.get("config") or {}).get("mode") == "int8"):
            from convx.quantization import layers as int8_layers

            return int8_layers.from_config(cls, config)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"

