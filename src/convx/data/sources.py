"""Datasets that create elements: slices of arrays, a generator, a range, files, zips."""

import glob
import os

import numpy as np

from convx import random as _random
from convx.data import structure as _structure
from convx.data.dataset import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Dataset
from convx.data.structure import TensorSpec


def _as_values(tensors):
    """Leaves as NumPy arrays (tf.data's conversions); lists are values, tuples/dicts structures."""
    if isinstance(tensors, (tuple, dict)):
        return _structure.map_structure(_structure.to_numpy, tensors)
    return _structure.to_numpy(tensors)


class TensorSlices(Dataset):
    def __init__(self, tensors):
        self._tensors = _as_values(tensors)
        self._leaves = [np.asarray(leaf) for leaf in _structure.flatten(self._tensors)]
        if not self._leaves:
            raise ValueError("from_tensor_slices needs at least one array, received an empty structure")
        for leaf in self._leaves:
            if leaf.ndim == 0:
                raise ValueError(
                    f"Unbatching a tensor is only supported for rank >= 1: from_tensor_slices received a scalar "
                    f"{leaf!r}; give arrays with a first dimension to slice")
        lengths = {len(leaf) for leaf in self._leaves}
        if len(lengths) > 1:
            shapes = ", ".join(str(leaf.shape) for leaf in self._leaves)
            raise ValueError(f"from_tensor_slices needs arrays with the same first dimension, received shapes {shapes}")
        self._n = lengths.pop()
        tensors = self._tensors
        self._flat_tuple = type(tensors) is tuple and not any(_structure.is_structure(t) for t in tensors)

    def _iterate(self):
        leaves, structure = self._leaves, self._tensors
        if len(leaves) == 1 and not _structure.is_structure(structure):
            array = leaves[0]
            for i in range(self._n):
                yield array[i]
            return
        for i in range(self._n):
            yield self.element(i)

    def element(self, i):
        """Element ``i`` (row ``i`` of every leaf, in the tensors' structure)."""
        if self._flat_tuple:
            return tuple([leaf[i] for leaf in self._leaves])
        if len(self._leaves) == 1 and not _structure.is_structure(self._tensors):
            return self._leaves[0][i]
        return _structure.pack_as(self._tensors, [leaf[i] for leaf in self._leaves])

    def slice_rows(self, start, stop, index=None):
        """Rows ``start:stop`` (or the rows ``index``) of every leaf as one batch element (copies)."""
        rows = [leaf[start:stop].copy() if index is None else leaf[index] for leaf in self._leaves]
        return _structure.pack_as(self._tensors, rows)

    def _cardinality(self):
        return self._n

    def _element_spec(self):
        return _structure.map_structure(lambda a: TensorSpec(np.shape(a)[1:], np.asarray(a).dtype), self._tensors)


class Tensors(Dataset):
    def __init__(self, tensors):
        self._tensors = _as_values(tensors)

    def _iterate(self):
        yield self._tensors

    def _cardinality(self):
        return 1

    def _element_spec(self):
        return _structure.spec_of(self._tensors)


class Range(Dataset):
    def __init__(self, args, dtype):
        if not 1 <= len(args) <= 3:
            raise ValueError(f"Dataset.range takes 1 to 3 arguments (start, stop, step), received {len(args)}")
        start, stop, step = (0, args[0], 1) if len(args) == 1 else (tuple(args) + (1,))[:3]
        for arg in (start, stop, step):
            if isinstance(arg, bool) or not isinstance(arg, (int, np.integer)):
                raise TypeError(f"Dataset.range takes integers, received {arg!r}")
        if step == 0:
            raise ValueError("step must not be 0 in Dataset.range")
        self._range = range(int(start), int(stop), int(step))
        self._dtype = np.dtype(dtype)

    def _iterate(self):
        scalar = self._dtype.type
        for value in self._range:
            yield scalar(value)

    def _cardinality(self):
        return len(self._range)

    def _element_spec(self):
        return TensorSpec((), self._dtype)


def _signature(output_types, output_shapes, output_signature):
    if output_signature is not None:
        if output_types is not None or output_shapes is not None:
            raise TypeError("`output_types` and `output_shapes` cannot be used together with `output_signature`")
        for spec in _structure.flatten(output_signature):
            if not isinstance(spec, TensorSpec):
                raise TypeError(f"output_signature must hold convx.data.TensorSpec objects, received {spec!r}")
        return output_signature
    if output_types is None:
        raise TypeError("from_generator needs `output_signature` (or the deprecated `output_types`)")
    if output_shapes is None:
        return _structure.map_structure(lambda t: TensorSpec(None, t), output_types)
    return _structure.map_structure(lambda t, s: TensorSpec(s, t), output_types,
                                    _structure.map_structure(lambda s: s, output_shapes)
                                    if isinstance(output_types, (tuple, dict)) else output_shapes)


class FromGenerator(Dataset):
    def __init__(self, generator, output_types, output_shapes, args, output_signature):
        if not callable(generator):
            raise TypeError(f"`generator` must be a callable (returning an iterator), received {generator!r}")
        self._generator, self._args = generator, tuple(args or ())
        self._signature = _signature(output_types, output_shapes, output_signature)

    def _iterate(self):
        signature = self._signature
        iterator = iter(self._generator(*self._args))
        try:
            for value in iterator:
                yield self._check(value, signature)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    @staticmethod
    def _check(value, signature):
        if isinstance(value, list) and isinstance(signature, tuple):
            value = tuple(value)
        if not _structure.same_structure(signature, value if _structure.is_structure(value) else 0) \
                and _structure.is_structure(signature) != _structure.is_structure(value):
            raise TypeError(f"`generator` yielded an element that did not match the expected structure. "
                            f"The expected structure was {signature}, but the yielded element was {value!r}.")

        def convert(spec, leaf):
            try:
                array = np.asarray(leaf, dtype=spec.dtype if spec.dtype.kind not in "US" else None)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"`generator` yielded an element that could not be converted to the expected "
                                f"type. The expected type was {spec.dtype.name}, but the yielded element was "
                                f"{leaf!r}.") from exc
            if not _structure.shapes_compatible(spec.shape, array.shape):
                raise ValueError(f"`generator` yielded an element of shape {array.shape} where an element of "
                                 f"shape {spec.shape} was expected.")
            return array[()] if array.ndim == 0 else array

        try:
            return _structure.map_structure(convert, signature, value)
        except ValueError as exc:
            if "same nested structure" in str(exc):
                raise TypeError(f"`generator` yielded an element that did not match the expected structure. The "
                                f"expected structure was {signature}, but the yielded element was {value!r}.") from None
            raise

    def _element_spec(self):
        return self._signature


class Zip(Dataset):
    def __init__(self, datasets):
        for ds in _structure.flatten(datasets):
            if not isinstance(ds, Dataset):
                raise TypeError(f"Dataset.zip takes datasets (or a tuple/dict of them), received {ds!r}")
        self._datasets = datasets

    def _iterate(self):
        flat = _structure.flatten(self._datasets)
        iterators = [iter(ds) for ds in flat]
        try:
            while True:
                values = []
                for iterator in iterators:
                    try:
                        values.append(next(iterator))
                    except StopIteration:
                        return
                yield _structure.pack_as(self._datasets, values)
        finally:
            for iterator in iterators:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()

    def _cardinality(self):
        result = INFINITE_CARDINALITY  # tf.data's rule: unknown if any is unknown, else the smallest finite one
        for ds in _structure.flatten(self._datasets):
            n = ds.cardinality()
            if n == UNKNOWN_CARDINALITY:
                return UNKNOWN_CARDINALITY
            if n != INFINITE_CARDINALITY and (result == INFINITE_CARDINALITY or n < result):
                result = n
        return result

    def _element_spec(self):
        return _structure.map_structure(lambda ds: ds.element_spec, self._datasets)


def list_files(file_pattern, shuffle, seed):
    patterns = [file_pattern] if isinstance(file_pattern, (str, os.PathLike)) else list(file_pattern)
    matches = sorted({path for pattern in patterns for path in glob.glob(os.fspath(pattern))})
    if not matches:
        raise FileNotFoundError(f"No files matched pattern: {', '.join(map(os.fspath, patterns))}")
    dataset = TensorSlices(np.array(matches))
    if shuffle is None or shuffle:
        dataset = dataset.shuffle(len(matches), seed=seed)
    return dataset


class SampleFromDatasets(Dataset):
    def __init__(self, datasets, weights, seed, stop_on_empty_dataset):
        self._datasets = list(datasets)
        if not self._datasets:
            raise ValueError("sample_from_datasets needs at least one dataset")
        n = len(self._datasets)
        weights = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
        if weights.shape != (n,) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"weights must be {n} non-negative numbers with a positive sum, received {weights}")
        self._weights = weights / weights.sum()
        self._seed = int(_random.generator().integers(2**63)) if seed is None else int(seed)
        self._stop = stop_on_empty_dataset
        self._passes = 0

    def _iterate(self):
        rng = np.random.default_rng([self._seed, self._passes])
        self._passes += 1
        iterators = [iter(ds) for ds in self._datasets]
        weights = self._weights.copy()
        while weights.sum() > 0:
            k = int(rng.choice(len(weights), p=weights / weights.sum()))
            try:
                yield next(iterators[k])
            except StopIteration:
                if self._stop:
                    return
                weights[k] = 0.0

    def _element_spec(self):
        return self._datasets[0].element_spec
