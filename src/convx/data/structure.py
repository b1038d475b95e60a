"""Nested element structures (tuples, dicts, single arrays) and ``TensorSpec``.

An element of a :class:`~convx.data.Dataset` is a NumPy array (or NumPy
scalar), or a tuple or dict of elements, as in ``tf.data``. A Python list is a
value (converted to one array), not a structure, as ``tf.data`` treats it.
"""

import numpy as np


def is_structure(value):
    return isinstance(value, (tuple, dict))


def flatten(value):
    """The leaves of ``value`` in a fixed order (dict keys in insertion order)."""
    if isinstance(value, tuple):
        return [leaf for item in value for leaf in flatten(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in flatten(item)]
    return [value]


def pack_as(structure, leaves):
    """Rebuild ``structure``'s shape from the flat ``leaves`` (inverse of :func:`flatten`)."""
    leaves = iter(leaves)
    packed = _pack(structure, leaves)
    return packed


def _pack(structure, leaves):
    if isinstance(structure, tuple):
        items = [_pack(item, leaves) for item in structure]
        return type(structure)(*items) if hasattr(structure, "_fields") else tuple(items)
    if isinstance(structure, dict):
        return {key: _pack(item, leaves) for key, item in structure.items()}
    return next(leaves)


def map_structure(fn, *values):
    """``fn`` applied leaf by leaf over structures of the same shape."""
    first = values[0]
    if isinstance(first, tuple):
        _check_same(first, values, len)
        items = [map_structure(fn, *parts) for parts in zip(*values)]
        return type(first)(*items) if hasattr(first, "_fields") else tuple(items)
    if isinstance(first, dict):
        _check_same(first, values, lambda d: list(d))
        return {key: map_structure(fn, *(v[key] for v in values)) for key in first}
    return fn(*values)


def _check_same(first, values, key):
    for other in values[1:]:
        if type(other) is not type(first) or key(other) != key(first):
            raise ValueError(f"The two structures don't have the same nested structure: {first!r} and {other!r}")


def same_structure(a, b):
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(same_structure(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same_structure(a[k], b[k]) for k in a)
    return not is_structure(b)


def to_numpy(value):
    """A leaf as NumPy, with tf.data's conversions of Python values.

    NumPy arrays and scalars pass unchanged. Python (or list) ints become int32
    (int64 when too large), floats float32, bools bool, strings NumPy strings;
    a 0-d result becomes a NumPy scalar, as ``tf.data`` yields for scalars.
    """
    if isinstance(value, (np.ndarray, np.generic)):
        return value
    if hasattr(value, "__array__") and not isinstance(value, (list, tuple)):
        return np.asarray(value)
    array = np.asarray(value)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    elif array.dtype == np.int64:
        if array.size == 0 or (array.min() >= -2**31 and array.max() < 2**31):
            array = array.astype(np.int32)
    elif array.dtype == object:
        raise TypeError(f"Cannot convert {value!r} to a NumPy array of numbers or strings "
                        "(ragged lists are not supported: pad them first)")
    return array[()] if array.ndim == 0 else array


def normalize(value):
    """A whole element as NumPy leaves. A list at the top becomes a tuple (as ``tf.data.map`` treats
    a returned list); lists inside tuples or dicts are values."""
    if isinstance(value, list):
        value = tuple(value)
    return _normalize(value)


def _normalize(value):
    if isinstance(value, tuple):
        items = [_normalize(item) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        return {key: _normalize(item) for key, item in value.items()}
    if value is None:
        raise TypeError("A dataset element cannot be None")
    return to_numpy(value)


class TensorSpec:
    """The type of one leaf of a dataset element: its shape and dtype.

    Parameters
    ----------
    shape : tuple of int or None
        Shape of the leaf; ``None`` marks a dimension of unknown length (a
        shape of ``None`` means an unknown number of dimensions).
    dtype : numpy dtype-like, default float32
    name : str, optional
    """

    def __init__(self, shape, dtype=np.float32, name=None):
        self.shape = None if shape is None else tuple(None if d is None else int(d) for d in shape)
        self.dtype = _spec_dtype(dtype)
        self.name = name

    @classmethod
    def from_value(cls, value):
        array = np.asarray(value)
        return cls(array.shape, array.dtype)

    def is_compatible_with(self, value):
        """True when ``value`` (an array or a spec) fits this spec's dtype and shape."""
        other = value if isinstance(value, TensorSpec) else TensorSpec.from_value(value)
        if not _dtypes_compatible(self.dtype, other.dtype):
            return False
        return shapes_compatible(self.shape, other.shape)

    def most_specific_common(self, other):
        if self.shape is None or other.shape is None or len(self.shape) != len(other.shape):
            return TensorSpec(None, self.dtype)
        return TensorSpec(tuple(a if a == b else None for a, b in zip(self.shape, other.shape)), self.dtype)

    def __eq__(self, other):
        return (isinstance(other, TensorSpec) and self.shape == other.shape
                and _dtypes_compatible(self.dtype, other.dtype) and self.name == other.name)

    def __hash__(self):
        return hash((self.shape, self.dtype.kind))

    def __repr__(self):
        shape = "<unknown>" if self.shape is None else "(" + ", ".join(map(str, self.shape)) + ("," if len(self.shape) == 1 else "") + ")"
        name = "string" if self.dtype.kind in "US" else self.dtype.name
        return f"TensorSpec(shape={shape}, dtype={name}, name={self.name!r})"


def _spec_dtype(dtype):
    if dtype in (str, "string") or dtype is np.str_:
        return np.dtype(np.str_)
    if dtype is bytes:
        return np.dtype(np.bytes_)
    return np.dtype(dtype)


def _dtypes_compatible(a, b):
    if a.kind in "US" and b.kind in "US":  # string lengths are part of NumPy's dtype, not of a string spec
        return True
    return a == b


def shapes_compatible(a, b):
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def spec_of(element):
    """The ``TensorSpec`` structure of one concrete element."""
    return map_structure(TensorSpec.from_value, element)


def batched_spec(spec, batch_size):
    return map_structure(lambda s: TensorSpec(None if s.shape is None else (batch_size,) + s.shape, s.dtype), spec)


def unbatched_spec(spec):
    def one(s):
        if s.shape is not None and len(s.shape) == 0:
            raise ValueError("Cannot unbatch an input with scalar components (they have no batch dimension)")
        return TensorSpec(None if s.shape is None else s.shape[1:], s.dtype)
    return map_structure(one, spec)
