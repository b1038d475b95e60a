"""``Dataset``: the ``tf.data.Dataset`` API over NumPy elements.

A dataset is a recipe; iterating it (``iter(ds)``, ``for x in ds``,
``ds.as_numpy_iterator()``) starts a fresh pass. Transformations return new
datasets and never touch their input. The classes implementing each
transformation live in :mod:`convx.data.sources`, :mod:`convx.data.transforms`,
:mod:`convx.data.batching` and :mod:`convx.data.parallel`.
"""

from convx.data import structure as _structure

AUTOTUNE = -1
INFINITE_CARDINALITY = -1
UNKNOWN_CARDINALITY = -2


class Dataset:
    """A sequence of elements, built and transformed as with ``tf.data.Dataset``.

    Elements are NumPy arrays or NumPy scalars, or tuples/dicts of them.
    Subclasses implement ``_iterate()`` (a fresh iterator over the elements),
    ``_cardinality()`` and ``_element_spec()`` (or ``_probe()``, one element).
    """

    _spec_cache = None

    # ----- subclass hooks -----------------------------------------------------------------------------------

    def _iterate(self):
        raise NotImplementedError

    def _cardinality(self):
        return UNKNOWN_CARDINALITY

    def _element_spec(self):
        return _structure.spec_of(self._probe())

    def _probe(self):
        """One element (any), used to infer ``element_spec``; an empty dataset has none."""
        iterator = self._iterate()
        try:
            return next(iterator)
        except StopIteration:
            raise ValueError("The element_spec of an empty dataset whose spec is not declared cannot be inferred") \
                from None
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    # ----- iteration --------------------------------------------------------------------------------------

    def __iter__(self):
        return self._iterate()

    def as_numpy_iterator(self):
        """An iterator over the elements as NumPy values (the elements already are)."""
        return self._iterate()

    def cardinality(self):
        """The number of elements, or ``INFINITE_CARDINALITY`` (-1) / ``UNKNOWN_CARDINALITY`` (-2)."""
        return int(self._cardinality())

    def __len__(self):
        n = self.cardinality()
        if n == INFINITE_CARDINALITY:
            raise TypeError("The dataset is infinite.")
        if n == UNKNOWN_CARDINALITY:
            raise TypeError("The dataset length is unknown.")
        return n

    def __bool__(self):
        return True

    @property
    def element_spec(self):
        """The ``TensorSpec`` structure of an element (tuple/dict like the elements)."""
        if self._spec_cache is None:
            self._spec_cache = self._element_spec()
        return self._spec_cache

    def __repr__(self):
        return f"<{type(self).__name__}Dataset element_spec={self.element_spec}>"

    # ----- sources ----------------------------------------------------------------------------------------

    @staticmethod
    def from_tensor_slices(tensors, name=None):
        """One element per row of ``tensors`` (an array, or a tuple/dict of arrays with equal first dimension)."""
        from convx.data.sources import TensorSlices

        return TensorSlices(tensors)

    @staticmethod
    def from_tensors(tensors, name=None):
        """A dataset of the single element ``tensors``."""
        from convx.data.sources import Tensors

        return Tensors(tensors)

    @staticmethod
    def from_generator(generator, output_types=None, output_shapes=None, args=None, output_signature=None,
                       name=None):
        """Elements yielded by ``generator(*args)`` (called anew for each pass), checked against
        ``output_signature`` (a ``TensorSpec`` structure) and converted to its dtypes."""
        from convx.data.sources import FromGenerator

        return FromGenerator(generator, output_types, output_shapes, args, output_signature)

    @staticmethod
    def range(*args, dtype="int64", name=None):
        """``range(stop)``, ``range(start, stop[, step])`` as NumPy scalars of ``dtype`` (int64)."""
        from convx.data.sources import Range

        return Range(args, dtype)

    @staticmethod
    def zip(*args, datasets=None, name=None):
        """Elements of several datasets side by side (a tuple, or the structure of ``datasets``),
        stopping at the shortest."""
        from convx.data.sources import Zip

        if datasets is not None and args:
            raise TypeError("Both `*args` and `datasets` cannot be set.")
        if datasets is None:
            if not args:
                raise TypeError("Must pass at least one dataset to `zip`.")
            datasets = args[0] if len(args) == 1 else tuple(args)
        return Zip(datasets)

    @staticmethod
    def list_files(file_pattern, shuffle=None, seed=None, name=None):
        """File names matching a glob pattern (or list of patterns), sorted, then shuffled unless
        ``shuffle=False`` (the default shuffles, as in ``tf.data``)."""
        from convx.data.sources import list_files

        return list_files(file_pattern, shuffle, seed)

    @staticmethod
    def sample_from_datasets(datasets, weights=None, seed=None, stop_on_empty_dataset=False):
        """Elements drawn at random from ``datasets`` with probabilities ``weights``."""
        from convx.data.sources import SampleFromDatasets

        return SampleFromDatasets(datasets, weights, seed, stop_on_empty_dataset)

    # ----- transformations --------------------------------------------------------------------------------

    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None):
        """``map_func`` applied to each element (a tuple element is unpacked into arguments).

        ``num_parallel_calls`` (an int or ``AUTOTUNE``) runs the calls on a bounded pool of
        background threads; results keep the input order unless ``deterministic=False``.
        ``AUTOTUNE`` calls functions that take under 50 us per element in the calling thread
        (for them the pool's hand-offs cost more than they save) and switches to the pool, for
        good, at the first chunk of elements that is slower.
        """
        from convx.data.parallel import ParallelMap
        from convx.data.transforms import Map

        if num_parallel_calls is None or num_parallel_calls == 1:
            return Map(self, map_func)
        return ParallelMap(self, map_func, num_parallel_calls, deterministic)

    def filter(self, predicate, name=None):
        """The elements for which ``predicate`` (unpacked like ``map``) returns True."""
        from convx.data.transforms import Filter

        return Filter(self, predicate)

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True, name=None):
        """Elements drawn at random from a buffer of ``buffer_size`` elements (tf.data's algorithm).

        The seed is ``seed``, or else drawn here from convx's generator, so that
        ``convx.utils.set_random_seed`` makes the orders reproducible. Each pass
        reshuffles unless ``reshuffle_each_iteration=False``.
        """
        from convx.data.transforms import Shuffle

        return Shuffle(self, buffer_size, seed, reshuffle_each_iteration)

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None, deterministic=None, name=None):
        """Consecutive elements stacked into batches of ``batch_size`` (the last may be smaller)."""
        from convx.data.batching import Batch

        return Batch(self, batch_size, drop_remainder)

    def padded_batch(self, batch_size, padded_shapes=None, padding_values=None, drop_remainder=False, name=None):
        """Batches whose components are padded (with ``padding_values``, default 0 or '') to
        ``padded_shapes`` (None dimensions: the longest in the batch)."""
        from convx.data.batching import PaddedBatch

        return PaddedBatch(self, batch_size, padded_shapes, padding_values, drop_remainder)

    def unbatch(self, name=None):
        """Each batch split back into its rows."""
        from convx.data.batching import Unbatch

        return Unbatch(self)

    def rebatch(self, batch_size, drop_remainder=False, name=None):
        """The rows of a batched dataset regrouped into batches of ``batch_size`` (an int or a
        list of sizes used in turn)."""
        from convx.data.batching import Rebatch

        return Rebatch(self, batch_size, drop_remainder)

    def repeat(self, count=None, name=None):
        """The dataset ``count`` times (``None`` or -1: forever)."""
        from convx.data.transforms import Repeat

        return Repeat(self, count)

    def take(self, count, name=None):
        """The first ``count`` elements (-1: all)."""
        from convx.data.transforms import Take

        return Take(self, count)

    def skip(self, count, name=None):
        """All but the first ``count`` elements (-1: none)."""
        from convx.data.transforms import Skip

        return Skip(self, count)

    def take_while(self, predicate, name=None):
        """Elements up to (not including) the first for which ``predicate`` is False."""
        from convx.data.transforms import TakeWhile

        return TakeWhile(self, predicate)

    def shard(self, num_shards, index, name=None):
        """Every ``num_shards``-th element, starting at ``index``."""
        from convx.data.transforms import Shard

        return Shard(self, num_shards, index)

    def cache(self, filename="", name=None):
        """Elements recorded by the first complete pass and replayed afterwards, in memory
        (``filename=""``) or in files ``filename.index`` / ``filename.data-00000-of-00001``."""
        from convx.data.transforms import Cache

        return Cache(self, filename)

    def prefetch(self, buffer_size, name=None):
        """Elements produced ahead by a background thread, up to ``buffer_size`` (or ``AUTOTUNE``)."""
        from convx.data.parallel import Prefetch

        return Prefetch(self, buffer_size)

    def concatenate(self, dataset, name=None):
        """This dataset's elements followed by ``dataset``'s (same structure and dtypes)."""
        from convx.data.transforms import Concatenate

        return Concatenate(self, dataset)

    def enumerate(self, start=0, name=None):
        """``(index, element)`` pairs, the index an int64 scalar counting from ``start``."""
        from convx.data.sources import Range

        return Dataset.zip((Range((start, 2**63 - 1), "int64"), self))

    def interleave(self, map_func, cycle_length=None, block_length=1, num_parallel_calls=None, deterministic=None,
                   name=None):
        """Elements of the datasets ``map_func`` returns, ``block_length`` at a time from
        ``cycle_length`` of them in turn (tf.data's order)."""
        from convx.data.transforms import Interleave

        return Interleave(self, map_func, cycle_length, block_length)

    def flat_map(self, map_func, name=None):
        """The elements of the datasets ``map_func`` returns, one dataset after the other."""
        return self.interleave(map_func, cycle_length=1, block_length=1)

    def apply(self, transformation_func):
        """``transformation_func(self)``, which must return a Dataset."""
        result = transformation_func(self)
        if not isinstance(result, Dataset):
            raise TypeError(f"`transformation_func` must return a Dataset, received {type(result).__name__}")
        return result

    def reduce(self, initial_state, reduce_func, name=None):
        """``reduce_func(state, element)`` folded over the elements, from ``initial_state``."""
        state = _structure.normalize(initial_state)
        for element in self:
            state = _structure.normalize(reduce_func(state, element))
        return state
