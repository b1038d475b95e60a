"""Symbolic tensors and the nodes that record layer calls (Keras 3's functional API).

``convx.Input(shape)`` returns a :class:`KerasTensor`: a shape and a dtype, no
values. Calling a layer on KerasTensors builds the layer, computes its output
shape and records the call as a :class:`Node` (the layer, the tensors it read,
the tensors it produced); ``convx.Model(inputs, outputs)`` walks those nodes
back from its outputs to find its graph.
"""

import collections

import numpy as np

KerasHistory = collections.namedtuple("KerasHistory", ["operation", "node_index", "tensor_index"])

_SYMBOLIC_ONLY = (
    "{what} is not supported on a symbolic KerasTensor: in a functional model or a subclassed model's call(), "
    "tensors go through convx layers and convx.ops functions (Python's arithmetic operators included). "
    "Received {tensor!r}"
)


class KerasTensor:
    """A symbolic tensor: the output of ``convx.Input`` or of a layer called on symbolic tensors.

    Attributes
    ----------
    shape : tuple
        Batch axis first, ``None`` where unknown (``(None, 28, 28, 1)``).
    dtype : str
        ``'float32'`` (or ``'string'`` / integer dtypes for inputs that layers convert).
    name : str
        The ``name`` given to ``convx.Input``; otherwise ``keras_tensor``,
        ``keras_tensor_1``, ... as Keras 3 numbers them.
    """

    def __init__(self, shape, dtype="float32", name=None, history=None):
        from convx.layers.base import unique_name

        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = np.dtype(dtype).name if dtype not in ("string", str) else "string"
        self.name = name if name is not None else unique_name("keras_tensor")
        self._keras_history = history

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def node(self):
        """The Node that produced this tensor."""
        operation, node_index, _ = self._keras_history
        return operation._inbound_nodes[node_index]

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    # A symbolic tensor has no values: converting it, or using it as a bool, would silently build object
    # arrays or fail deep inside; say what went wrong instead. Arithmetic records convx.ops nodes.
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_SYMBOLIC_ONLY.format(what="Converting to a NumPy array", tensor=self))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        def refuse(*args, **kw):
            raise TypeError(_SYMBOLIC_ONLY.format(what=f"NumPy's {ufunc.__name__}", tensor=self))

        return dispatch_ufunc(ufunc, method, inputs, kwargs, refuse)

    def __bool__(self):
        raise TypeError(_SYMBOLIC_ONLY.format(what="Using a symbolic tensor as a Python bool", tensor=self))

    def __iter__(self):
        raise TypeError(_SYMBOLIC_ONLY.format(what="Iterating over a symbolic tensor", tensor=self))

    def __len__(self):
        raise TypeError(_SYMBOLIC_ONLY.format(what="len()", tensor=self))


# NumPy ufuncs that are convx ops: np.exp(t) on a symbolic or taped tensor records the op
_UFUNC_OPS = {
    "add": "add", "subtract": "subtract", "multiply": "multiply", "true_divide": "divide", "divide": "divide",
    "power": "power", "negative": "negative", "absolute": "abs", "exp": "exp", "log": "log", "sqrt": "sqrt",
    "square": "square", "maximum": "maximum", "minimum": "minimum", "matmul": "matmul", "tanh": "tanh",
    "less": "less", "less_equal": "less_equal", "greater": "greater", "greater_equal": "greater_equal",
    "equal": "equal", "not_equal": "not_equal", "floor_divide": "floor_divide", "remainder": "mod", "sign": "sign",
}


def dispatch_ufunc(ufunc, method, inputs, kwargs, fallback):
    """``ufunc(*inputs)`` as the convx op of the same name when there is one, else ``fallback``."""
    name = _UFUNC_OPS.get(ufunc.__name__)
    if method != "__call__" or name is None or kwargs:
        return fallback(*inputs, **kwargs)
    from convx import ops

    return getattr(ops, name)(*inputs)


def _binary_operator(op_name, reflected):
    def method(self, other):
        from convx.ops import numpy as ops_numpy

        op = getattr(ops_numpy, op_name)
        return op(other, self) if reflected else op(self, other)

    return method


def _unary_operator(op_name):
    def method(self):
        from convx.ops import numpy as ops_numpy

        return getattr(ops_numpy, op_name)(self)

    return method


def _get_item(self, key):
    from convx.ops import numpy as ops_numpy

    return ops_numpy.get_item(self, key)


def install_operators(cls):
    """Python's arithmetic, comparison and indexing operators on ``cls`` as convx ops (KerasTensor,
    the taped tensors of custom layers' calls, Variables)."""
    for name, op_name in [("add", "add"), ("sub", "subtract"), ("mul", "multiply"), ("truediv", "divide"),
                          ("floordiv", "floor_divide"), ("mod", "mod"), ("matmul", "matmul"), ("pow", "power")]:
        setattr(cls, f"__{name}__", _binary_operator(op_name, False))
        setattr(cls, f"__r{name}__", _binary_operator(op_name, True))
    for name, op_name in [("lt", "less"), ("le", "less_equal"), ("gt", "greater"), ("ge", "greater_equal")]:
        setattr(cls, f"__{name}__", _binary_operator(op_name, False))
    setattr(cls, "__neg__", _unary_operator("negative"))
    setattr(cls, "__abs__", _unary_operator("abs"))
    setattr(cls, "__pos__", lambda self: self)
    setattr(cls, "__getitem__", _get_item)


install_operators(KerasTensor)


class Node:
    """One call of a layer on symbolic tensors.

    Attributes
    ----------
    operation : Layer
        The layer called (a model called as a layer too).
    input_tensors : list of KerasTensor
        Flat, in the order the call received them.
    output_tensors : list of KerasTensor
    call_structure : {'single', 'list'}
        Whether the layer was called on one tensor or on a list of tensors.
    """

    def __init__(self, operation, input_tensors, output_tensors, call_structure="single"):
        self.operation = operation
        self.input_tensors = list(input_tensors)
        self.output_tensors = list(output_tensors)
        self.call_structure = call_structure

    @property
    def is_input(self):
        return not self.input_tensors

    @property
    def parent_nodes(self):
        return [t.node for t in self.input_tensors]

    def __repr__(self):
        return f"<Node {self.operation.name}: {[t.name for t in self.input_tensors]} -> {len(self.output_tensors)}>"


def is_symbolic(value):
    """True for a KerasTensor or a list/tuple holding one."""
    if isinstance(value, KerasTensor):
        return True
    return isinstance(value, (list, tuple)) and any(isinstance(v, KerasTensor) for v in value)


def flatten(structure):
    """Tensors of a tensor, list, tuple or dict (dicts in their own order), as a flat list."""
    if isinstance(structure, dict):
        return [t for value in structure.values() for t in flatten(value)]
    if isinstance(structure, (list, tuple)):
        return [t for value in structure for t in flatten(value)]
    return [structure]
