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
    "tensors only go through convx layers (merges included: convx.layers.Add, Concatenate, ...). "
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

    # A symbolic tensor has no values: NumPy and Python arithmetic on it would
    # silently build object arrays or fail deep inside; say what went wrong instead.
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_SYMBOLIC_ONLY.format(what="Converting to a NumPy array", tensor=self))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise TypeError(_SYMBOLIC_ONLY.format(what=f"NumPy's {ufunc.__name__}", tensor=self))

    def __bool__(self):
        raise TypeError(_SYMBOLIC_ONLY.format(what="Using a symbolic tensor as a Python bool", tensor=self))

    def __iter__(self):
        raise TypeError(_SYMBOLIC_ONLY.format(what="Iterating over a symbolic tensor", tensor=self))

    def __len__(self):
        raise TypeError(_SYMBOLIC_ONLY.format(what="len()", tensor=self))

    def __getitem__(self, key):
        raise TypeError(_SYMBOLIC_ONLY.format(what="Indexing", tensor=self))


def _operator(symbol):
    def method(self, *args):
        raise TypeError(_SYMBOLIC_ONLY.format(what=f"The operator {symbol}", tensor=self))

    return method


for _name, _symbol in [("add", "+"), ("radd", "+"), ("sub", "-"), ("rsub", "-"), ("mul", "*"), ("rmul", "*"),
                       ("truediv", "/"), ("rtruediv", "/"), ("matmul", "@"), ("rmatmul", "@"), ("pow", "**"),
                       ("neg", "unary -"), ("abs", "abs()"), ("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">=")]:
    setattr(KerasTensor, f"__{_name}__", _operator(_symbol))


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
