"""Ops between layers of a functional model as Keras 3 saves them: one ``Operation`` entry per op call.

Keras 3 writes ``y = ops.relu(x) + x`` in ``config.json`` as layers of their
own: ``{"module": "keras.src.ops.nn", "class_name": "Relu", "config":
{"name": "relu"}, "inbound_nodes": [{"args": [<tensor>], "kwargs": {}}]}``,
the op's attributes (``axis``, ``keepdims``, ...) in ``config``, its tensor
arguments and constants in the node's ``args``. Each public op listed in
``KERAS_OPS`` records, when it makes a graph node, which Keras class it is
and how it was called (:class:`KerasOp`), so a model saves in that format;
loading a config calls the same convx op on the node's arguments
(:class:`OpCall`), so a file written by Keras loads where its ops are
supported, and the other way round.
"""

import functools
import inspect

import numpy as np

from convx.layers.node import KerasTensor

# convx op -> (Keras module, Keras class, the parameters that are call arguments; the rest is the config)
_NUMPY, _NN, _CORE = "keras.src.ops.numpy", "keras.src.ops.nn", "keras.src.ops.core"
_BINARY = ("x1", "x2")
KERAS_OPS = {
    "add": (_NUMPY, "Add", _BINARY), "subtract": (_NUMPY, "Subtract", _BINARY),
    "multiply": (_NUMPY, "Multiply", _BINARY), "divide": (_NUMPY, "Divide", _BINARY),
    "true_divide": (_NUMPY, "TrueDivide", _BINARY), "maximum": (_NUMPY, "Maximum", _BINARY),
    "minimum": (_NUMPY, "Minimum", _BINARY), "power": (_NUMPY, "Power", _BINARY),
    "matmul": (_NUMPY, "Matmul", _BINARY), "dot": (_NUMPY, "Dot", _BINARY),
    "equal": (_NUMPY, "Equal", _BINARY), "not_equal": (_NUMPY, "NotEqual", _BINARY),
    "less": (_NUMPY, "Less", _BINARY), "less_equal": (_NUMPY, "LessEqual", _BINARY),
    "greater": (_NUMPY, "Greater", _BINARY), "greater_equal": (_NUMPY, "GreaterEqual", _BINARY),
    "negative": (_NUMPY, "Negative", ("x",)), "abs": (_NUMPY, "Absolute", ("x",)),
    "exp": (_NUMPY, "Exp", ("x",)), "log": (_NUMPY, "Log", ("x",)), "sqrt": (_NUMPY, "Sqrt", ("x",)),
    "square": (_NUMPY, "Square", ("x",)), "tanh": (_NUMPY, "Tanh", ("x",)),
    "sum": (_NUMPY, "Sum", ("x",)), "mean": (_NUMPY, "Mean", ("x",)), "max": (_NUMPY, "Max", ("x",)),
    "min": (_NUMPY, "Min", ("x",)), "prod": (_NUMPY, "Prod", ("x",)), "var": (_NUMPY, "Var", ("x",)),
    "std": (_NUMPY, "Std", ("x",)), "reshape": (_NUMPY, "Reshape", ("x",)),
    "transpose": (_NUMPY, "Transpose", ("x",)), "expand_dims": (_NUMPY, "ExpandDims", ("x",)),
    "squeeze": (_NUMPY, "Squeeze", ("x",)), "concatenate": (_NUMPY, "Concatenate", ("xs",)),
    "stack": (_NUMPY, "Stack", ("x",)), "clip": (_NUMPY, "Clip", ("x",)),
    "where": (_NUMPY, "Where", ("condition", "x1", "x2")), "einsum": (_NUMPY, "Einsum", ("*operands",)),
    "relu": (_NN, "Relu", ("x",)), "relu6": (_NN, "Relu6", ("x",)), "sigmoid": (_NN, "Sigmoid", ("x",)),
    "silu": (_NN, "Silu", ("x",)), "softplus": (_NN, "Softplus", ("x",)), "gelu": (_NN, "Gelu", ("x",)),
    "elu": (_NN, "Elu", ("x",)), "leaky_relu": (_NN, "LeakyRelu", ("x",)), "softmax": (_NN, "Softmax", ("x",)),
    "log_softmax": (_NN, "LogSoftmax", ("x",)), "cast": (_CORE, "Cast", ("x",)),
}
_BY_CLASS = {(module, cls): name for name, (module, cls, _) in KERAS_OPS.items()}
_FUNCTIONS = {}  # convx op name -> the recording function


class KerasOp:
    """How one symbolic op call appears in Keras' config: ``module``, ``class_name``, ``config`` (the op's
    attributes), ``args`` (the call's tensor arguments and constants, in order)."""

    def __init__(self, module, class_name, config, args):
        self.module, self.class_name, self.config, self.args = module, class_name, config, args


def _symbolic(value):
    if isinstance(value, (list, tuple)):
        return any(_symbolic(v) for v in value)
    return isinstance(value, KerasTensor)


def recorded(name, function):
    """``function`` (the op ``name`` of ``KERAS_OPS``), recording its :class:`KerasOp` on the graph node its
    symbolic calls make (the outermost op of a call that makes a single node)."""
    module, class_name, call_params = KERAS_OPS[name]
    signature = inspect.signature(function)

    @functools.wraps(function)
    def op(*args, **kwargs):
        out = function(*args, **kwargs)
        if not (isinstance(out, KerasTensor) and (_symbolic(args) or _symbolic(list(kwargs.values())))):
            return out
        layer = out._keras_history.operation
        if getattr(layer, "_is_op", False) and getattr(layer, "keras_op", None) is None:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            call_args = []
            for param in call_params:
                value = bound.arguments[param.lstrip("*")]
                call_args.extend(value) if param.startswith("*") else call_args.append(value)
            config = {k: v for k, v in bound.arguments.items() if k not in {p.lstrip("*") for p in call_params}}
            layer.keras_op = KerasOp(module, class_name, config, call_args)
        return out

    _FUNCTIONS[name] = op
    return op


def record_all(namespace):
    """Replace the ops of ``namespace`` (a module's globals) listed in ``KERAS_OPS`` by recording ones, and
    their aliases (``absolute = abs``) by the same."""
    replaced = {}
    for name in KERAS_OPS:
        if name in namespace and name not in _FUNCTIONS:
            original = namespace[name]
            namespace[name] = recorded(name, original)
            replaced.setdefault(id(original), namespace[name])
    for alias, value in list(namespace.items()):
        if alias not in KERAS_OPS and id(value) in replaced:
            namespace[alias] = replaced[id(value)]


# ----- config.json ----------------------------------------------------------------------------------------------------

def _json_value(value):
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_json_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def serialize_op(layer, tensor_config):
    """Keras' entry for the op layer ``layer`` (without ``inbound_nodes``) and its node's ``args``,
    ``tensor_config(t)`` writing each tensor argument."""
    record = getattr(layer, "keras_op", None)
    if record is None:
        raise NotImplementedError(
            f"The op {layer.op_name!r} of a functional model has no Keras 3 config in convx; the ops that save are "
            f"{sorted(KERAS_OPS)}. Wrap it in a custom layer (with get_config) to save the model"
        )

    def arg(value):
        if isinstance(value, KerasTensor):
            return tensor_config(value)
        if isinstance(value, (list, tuple)) and _symbolic(value):
            return [arg(v) for v in value]
        if isinstance(value, np.ndarray) or getattr(type(value), "_convx_variable", False):
            value = np.asarray(value)
            return {"class_name": "__numpy__", "config": {"value": value.tolist(), "dtype": value.dtype.name}}
        if value is None or isinstance(value, (bool, int, float, str, np.generic)):
            return _json_value(value)
        raise NotImplementedError(f"The op {layer.op_name!r} has an argument {value!r} convx cannot save")

    entry = {"module": record.module, "class_name": record.class_name,
             "config": {"name": layer.name, **{k: _json_value(v) for k, v in record.config.items()}},
             "registered_name": record.class_name}
    return entry, [arg(a) for a in record.args]


def is_op_entry(entry):
    """Whether a ``config.json`` layer entry is a Keras op (``keras.src.ops.*`` module)."""
    module = entry.get("module") or ""
    return module.startswith("keras.src.ops.") or module.startswith("keras.ops")


def _constant(value):
    if isinstance(value, dict) and value.get("class_name") == "__numpy__":
        return np.asarray(value["config"]["value"], dtype=value["config"].get("dtype", "float32"))
    if isinstance(value, list):
        return [_constant(v) for v in value]
    return value


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class OpCall:
    """A Keras op entry of a config being loaded: called on the node's arguments like a layer, it applies the
    convx op and keeps the node it made (``_inbound_nodes``), its op layer named as in the file."""

    def __init__(self, entry):
        module = entry.get("module", "").replace("keras.ops", "keras.src.ops")
        name = _BY_CLASS.get((module, entry.get("class_name")))
        if name is None:
            raise ValueError(f"The Keras op {entry.get('module')}.{entry.get('class_name')} (layer "
                             f"{entry.get('name')!r}) is not supported by convx; supported: "
                             f"{sorted(cls for _, cls in _BY_CLASS)}")
        self.name = entry.get("name") or entry["config"].get("name")
        self.function = _FUNCTIONS[name]
        self.call_params = KERAS_OPS[name][2]
        self.config = {k: _tuples(v) for k, v in entry.get("config", {}).items() if k != "name"}
        self._inbound_nodes = []

    def __call__(self, *args, **kwargs):
        signature = inspect.signature(self.function)
        values = dict(self.config, **kwargs)
        for key in [k for k in values if k not in signature.parameters]:
            if values.pop(key) is not None:  # Keras' `initial`, `dtype` of a reduction: only their defaults run here
                raise ValueError(f"The Keras op {self.name!r} uses {key}={self.config[key]!r}, which convx does not "
                                 "support")
        args, varargs = [_constant(a) for a in args], []
        for i, param in enumerate(self.call_params):
            if param.startswith("*"):
                varargs = args[i:]
            elif i < len(args):
                values[param] = args[i]
        positional = []
        for param in signature.parameters.values():
            if param.kind is param.VAR_POSITIONAL:
                positional.extend(varargs)
            elif param.kind is param.POSITIONAL_OR_KEYWORD and param.name in values and varargs:
                positional.append(values.pop(param.name))
        out = self.function(*positional, **values)
        layer = out._keras_history.operation
        layer.name = self.name
        self._inbound_nodes.append(layer._inbound_nodes[out._keras_history.node_index])
        return out
