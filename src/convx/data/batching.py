"""Batching: batch, padded_batch, unbatch, rebatch (tf.data's shapes and cardinalities)."""

import numpy as np

from convx.data import structure as _structure
from convx.data.dataset import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from convx.data.sources import TensorSlices
from convx.data.structure import TensorSpec
from convx.data.transforms import Shuffle, _check_count, _Unary, close_iterator


def _check_batch_size(batch_size):
    batch_size = _check_count(batch_size, "batch_size")
    if batch_size < 1:
        raise ValueError(f"batch_size must be greater than zero, received batch_size={batch_size}")
    return batch_size


def _batched_cardinality(n, batch_size, drop_remainder):
    if n in (INFINITE_CARDINALITY, UNKNOWN_CARDINALITY):
        return n
    return n // batch_size if drop_remainder else -(-n // batch_size)


def stack_elements(elements):
    """Stack same-structure elements component by component into one batch element."""
    first = elements[0]
    if type(first) is tuple and not any(_structure.is_structure(leaf) for leaf in first):
        columns = list(zip(*elements))
    elif _structure.is_structure(first):
        columns = list(zip(*(_structure.flatten(e) for e in elements)))
    else:
        columns = [elements]
    stacked = []
    for k, column in enumerate(columns):
        try:
            stacked.append(_stack(column))
        except ValueError:
            shape0 = np.shape(column[0])
            bad = next(i for i, v in enumerate(column) if np.shape(v) != shape0)
            raise ValueError(
                f"Cannot batch tensors with different shapes in component {k}. First element had shape "
                f"{list(shape0)} and element {bad} had shape {list(np.shape(column[bad]))}.") from None
    return _structure.pack_as(first, stacked) if _structure.is_structure(first) else stacked[0]


def _stack(column):
    # rows copied into one preallocated array: faster than np.stack for many small rows
    first = column[0]
    if isinstance(first, (np.ndarray, np.generic)) and first.dtype.kind not in "USO":
        shape, dtype = first.shape, first.dtype
        if all(type(v) is type(first) and v.shape == shape and v.dtype == dtype for v in column):
            out = np.empty((len(column),) + shape, dtype=dtype)
            for i, value in enumerate(column):
                out[i] = value
            return out
    return np.stack(column)


def _shuffled_numeric_slices(dataset):
    # strings and objects keep the element path: stacking string scalars sizes the batch's dtype to them
    return (isinstance(dataset, Shuffle) and isinstance(dataset._input, TensorSlices)
            and all(leaf.dtype.kind not in "USO" for leaf in dataset._input._leaves))


class Batch(_Unary):
    def __init__(self, input_dataset, batch_size, drop_remainder):
        super().__init__(input_dataset)
        self._size, self._drop = _check_batch_size(batch_size), bool(drop_remainder)

    def _iterate(self):
        if isinstance(self._input, TensorSlices):  # rows sliced at once, not stacked one by one
            return self._sliced()
        if _shuffled_numeric_slices(self._input):
            return self._gathered()
        return self._stacked()

    def _gathered(self):
        # shuffled arrays: each batch's rows gathered by one fancy index per array, in the shuffle's order
        rows, size, pending = self._input._input, self._size, []
        order = self._input.shuffled_rows()
        try:
            for i in order:
                pending.append(i)
                if len(pending) == size:
                    yield rows.slice_rows(None, None, np.array(pending))
                    pending = []
        finally:
            close_iterator(order)
        if pending and not self._drop:
            yield rows.slice_rows(None, None, np.array(pending))

    def _sliced(self):
        n, size = self._input.cardinality(), self._size
        stop_at = n - n % size if self._drop else n
        for start in range(0, stop_at, size):
            yield self._input.slice_rows(start, min(start + size, n))

    def _stacked(self):
        iterator = iter(self._input)
        pending = []
        try:
            for element in iterator:
                pending.append(element)
                if len(pending) == self._size:
                    yield stack_elements(pending)
                    pending = []
        finally:
            close_iterator(iterator)
        if pending and not self._drop:
            yield stack_elements(pending)

    def _cardinality(self):
        return _batched_cardinality(self._input.cardinality(), self._size, self._drop)

    def _element_spec(self):
        return _structure.batched_spec(self._input.element_spec, self._size if self._drop else None)

    def _probe(self):
        return stack_elements([self._input._probe()])


def _default_padding(dtype):
    return "" if dtype.kind == "U" else (b"" if dtype.kind == "S" else 0)


class PaddedBatch(Batch):
    def __init__(self, input_dataset, batch_size, padded_shapes, padding_values, drop_remainder):
        super().__init__(input_dataset, batch_size, drop_remainder)
        spec = input_dataset.element_spec
        flat_spec = _structure.flatten(spec)
        if padded_shapes is None:
            if any(s.shape is None for s in flat_spec):
                raise ValueError("padded_batch needs `padded_shapes` for components of unknown rank")
            # every dimension padded to the longest in the batch (a spec inferred from one element
            # cannot tell fixed dimensions from variable ones; fixed ones pad to themselves)
            shapes = [(None,) * len(s.shape) for s in flat_spec]
        else:
            shapes = _flatten_like(spec, padded_shapes, "padded_shapes", is_leaf=_is_shape)
            shapes = [tuple(None if d is None or d == -1 else int(d) for d in (s if s is not None else ())) for s in shapes]
        if padding_values is None:
            values = [_default_padding(s.dtype) for s in flat_spec]
        elif _structure.is_structure(padding_values):
            values = _flatten_like(spec, padding_values, "padding_values")
        else:
            values = [padding_values] * len(flat_spec)
        for k, (s, shape) in enumerate(zip(flat_spec, shapes)):
            if s.shape is not None and len(s.shape) != len(shape):
                raise ValueError(f"The padded shape {shape} of component {k} is not compatible with the rank "
                                 f"{len(s.shape)} of the component's shape {s.shape}.")
        self._spec_in, self._shapes, self._values = spec, shapes, values

    def _iterate(self):
        return self._stacked_padded()

    def _stacked_padded(self):
        iterator = iter(self._input)
        pending = []
        try:
            for element in iterator:
                pending.append(element)
                if len(pending) == self._size:
                    yield self._pad(pending)
                    pending = []
        finally:
            close_iterator(iterator)
        if pending and not self._drop:
            yield self._pad(pending)

    def _pad(self, elements):
        columns = list(zip(*(_structure.flatten(e) for e in elements)))
        out = []
        for k, (column, shape, value) in enumerate(zip(columns, self._shapes, self._values)):
            arrays = [np.asarray(v) for v in column]
            longest = [max(a.shape[d] for a in arrays) for d in range(len(shape))]
            target = tuple(longest[d] if dim is None else dim for d, dim in enumerate(shape))
            for a in arrays:
                if a.ndim != len(shape):
                    raise ValueError(f"Component {k} has rank {a.ndim}, but its padded shape {shape} has rank {len(shape)}")
                if any(n > t for n, t in zip(a.shape, target)):
                    raise ValueError(f"Attempted to pad to a smaller size than the input element: component {k} "
                                     f"has shape {a.shape}, padded shape {target}.")
            dtype = np.result_type(*arrays) if arrays[0].dtype.kind in "US" else arrays[0].dtype
            batch = np.full((len(arrays),) + target, value, dtype=dtype)
            for i, a in enumerate(arrays):
                batch[(i,) + tuple(slice(0, n) for n in a.shape)] = a
            out.append(batch)
        return _structure.pack_as(elements[0], out)

    def _element_spec(self):
        flat = [TensorSpec((self._size if self._drop else None,) + shape, s.dtype)
                for s, shape in zip(_structure.flatten(self._spec_in), self._shapes)]
        return _structure.pack_as(self._spec_in, flat)

    def _probe(self):
        return self._pad([self._input._probe()])


def _is_shape(value):
    return value is None or (isinstance(value, (list, tuple)) and all(
        d is None or isinstance(d, (int, np.integer)) for d in value)) or isinstance(value, TensorSpec)


def _flatten_like(spec, values, name, is_leaf=lambda v: False):
    """``values`` (same structure as ``spec``, leaves decided by ``is_leaf``) as a flat list."""
    if isinstance(spec, tuple):
        if not isinstance(values, (tuple, list)) or len(values) != len(spec):
            raise ValueError(f"`{name}` must have the structure of the elements {spec}, received {values!r}")
        return [leaf for s, v in zip(spec, values) for leaf in _flatten_like(s, v, name, is_leaf)]
    if isinstance(spec, dict):
        if not isinstance(values, dict) or set(values) != set(spec):
            raise ValueError(f"`{name}` must have the structure of the elements {spec}, received {values!r}")
        return [leaf for key in spec for leaf in _flatten_like(spec[key], values[key], name, is_leaf)]
    if isinstance(values, TensorSpec):
        return [values.shape]
    return [values]


class Unbatch(_Unary):
    def _iterate(self):
        iterator = iter(self._input)
        pack, flatten = _structure.pack_as, _structure.flatten
        try:
            for element in iterator:
                leaves = [np.asarray(leaf) for leaf in flatten(element)]
                if any(leaf.ndim == 0 for leaf in leaves):
                    raise ValueError("Cannot unbatch an element with a scalar component: it has no batch dimension")
                n = len(leaves[0])
                if any(len(leaf) != n for leaf in leaves):
                    raise ValueError(f"Cannot unbatch an element whose components have different batch sizes: "
                                     f"{[len(leaf) for leaf in leaves]}")
                if not _structure.is_structure(element):
                    yield from leaves[0]
                    continue
                for i in range(n):
                    yield pack(element, [leaf[i] for leaf in leaves])
        finally:
            close_iterator(iterator)

    def _batch_dim(self):
        dims = {s.shape[0] if s.shape else None for s in _structure.flatten(self._input.element_spec)}
        return dims.pop() if len(dims) == 1 else None

    def _cardinality(self):
        n = self._input.cardinality()
        if n in (INFINITE_CARDINALITY, 0):
            return n
        if n == UNKNOWN_CARDINALITY:
            return n
        dim = self._batch_dim()
        return UNKNOWN_CARDINALITY if dim is None else n * dim

    def _element_spec(self):
        return _structure.unbatched_spec(self._input.element_spec)

    def _probe(self):
        element = self._input._probe()
        return _structure.map_structure(lambda leaf: np.asarray(leaf)[0], element)


class Rebatch(_Unary):
    def __init__(self, input_dataset, batch_size, drop_remainder):
        super().__init__(input_dataset)
        sizes = list(batch_size) if isinstance(batch_size, (list, tuple, np.ndarray)) else [batch_size]
        if not sizes:
            raise ValueError("batch_size must not be an empty list")
        self._sizes = [_check_batch_size(s) for s in sizes]
        self._drop = bool(drop_remainder)

    def _iterate(self):
        rows = Unbatch(self._input)._iterate()
        k = 0
        pending = []
        try:
            for row in rows:
                pending.append(row)
                if len(pending) == self._sizes[k % len(self._sizes)]:
                    yield stack_elements(pending)
                    pending, k = [], k + 1
        finally:
            close_iterator(rows)
        if pending and not self._drop:
            yield stack_elements(pending)

    def _cardinality(self):
        n = self._input.cardinality()
        return n if n == INFINITE_CARDINALITY else UNKNOWN_CARDINALITY

    def _element_spec(self):
        size = self._sizes[0] if self._drop and len(set(self._sizes)) == 1 else None
        return _structure.batched_spec(_structure.unbatched_spec(self._input.element_spec), size)
