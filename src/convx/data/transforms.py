"""Element-wise and order transformations: map, filter, shuffle, repeat, take, skip, shard,
cache, concatenate, interleave (tf.data's semantics and cardinalities)."""

import os

import numpy as np

from convx import random as _random
from convx.data import structure as _structure
from convx.data.dataset import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Dataset


def close_iterator(iterator):
    """Close a generator early, so that its ``finally`` blocks (threads, files) run now."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def call_unpacked(fn, element):
    """``fn(*element)`` for a tuple element (tf.data unpacks tuples), else ``fn(element)``."""
    return fn(*element) if isinstance(element, tuple) else fn(element)


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer, received {value!r}")
    return int(value)


class _Unary(Dataset):
    """A transformation of one input dataset; by default it keeps the input's cardinality and spec."""

    def __init__(self, input_dataset):
        if not isinstance(input_dataset, Dataset):
            raise TypeError(f"expected a Dataset, received {type(input_dataset).__name__}")
        self._input = input_dataset

    def _cardinality(self):
        return self._input.cardinality()

    def _element_spec(self):
        return self._input.element_spec

    def _probe(self):
        return self._input._probe()


class Map(_Unary):
    def __init__(self, input_dataset, map_func):
        super().__init__(input_dataset)
        if not callable(map_func):
            raise TypeError(f"`map_func` must be callable, received {map_func!r}")
        self._fn = map_func

    def _iterate(self):
        fn, normalize = self._fn, _structure.normalize
        iterator = iter(self._input)
        try:
            for element in iterator:
                yield normalize(call_unpacked(fn, element))
        finally:
            close_iterator(iterator)

    def _element_spec(self):
        return _structure.spec_of(self._probe())

    def _probe(self):
        return _structure.normalize(call_unpacked(self._fn, self._input._probe()))


class Filter(_Unary):
    def __init__(self, input_dataset, predicate):
        super().__init__(input_dataset)
        self._predicate = predicate

    def _iterate(self):
        iterator = iter(self._input)
        try:
            for element in iterator:
                keep = call_unpacked(self._predicate, element)
                if np.ndim(keep) != 0 or np.asarray(keep).dtype != np.bool_:
                    raise ValueError(f"Invalid `predicate`: it must return a scalar boolean, returned {keep!r}")
                if keep:
                    yield element
        finally:
            close_iterator(iterator)

    def _cardinality(self):
        return UNKNOWN_CARDINALITY


class TakeWhile(Filter):
    def _iterate(self):
        iterator = iter(self._input)
        try:
            for element in iterator:
                if not call_unpacked(self._predicate, element):
                    return
                yield element
        finally:
            close_iterator(iterator)


class Shuffle(_Unary):
    def __init__(self, input_dataset, buffer_size, seed, reshuffle_each_iteration):
        super().__init__(input_dataset)
        buffer_size = _check_count(buffer_size, "buffer_size")
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be greater than zero, received buffer_size={buffer_size}")
        self._size = buffer_size
        # without a seed, draw one now from convx's generator: set_random_seed makes it reproducible
        self._seed = int(_random.generator().integers(2**63)) if seed is None else _check_count(seed, "seed")
        self._reshuffle = bool(reshuffle_each_iteration)
        self._passes = 0

    def _next_pass_rng(self):
        rng = np.random.default_rng([self._seed, self._passes])
        if self._reshuffle:
            self._passes += 1
        return rng

    def _iterate(self):
        return self._shuffled(self._next_pass_rng())

    def shuffled_rows(self):
        """One pass of this shuffle as row indices of its input, a ``TensorSlices``: the order iteration gives."""
        return self._buffer_order(iter(range(self._input.cardinality())), self._next_pass_rng())

    def _shuffled(self, rng):
        # tf.data's algorithm: fill a buffer of buffer_size elements, then output a uniformly chosen
        # buffered element and put the next input element in its place. Rows of arrays are shuffled
        # as row indices (the same law), then fetched.
        from convx.data.sources import TensorSlices

        if isinstance(self._input, TensorSlices):
            element = self._input.element
            for i in self._buffer_order(iter(range(self._input.cardinality())), rng):
                yield element(i)
            return
        yield from self._buffer_order(iter(self._input), rng)

    def _buffer_order(self, iterator, rng):
        size, buffer = self._size, []
        uniforms, k = rng.random(1024), 0
        try:
            for element in iterator:
                if len(buffer) < size:
                    buffer.append(element)
                    continue
                if k == len(uniforms):
                    uniforms, k = rng.random(1024), 0
                index = int(uniforms[k] * size)
                k += 1
                out, buffer[index] = buffer[index], element
                yield out
            while buffer:
                if k == len(uniforms):
                    uniforms, k = rng.random(1024), 0
                index = int(uniforms[k] * len(buffer))
                k += 1
                out, buffer[index] = buffer[index], buffer[-1]
                buffer.pop()
                yield out
        finally:
            close_iterator(iterator)


class Repeat(_Unary):
    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        self._count = -1 if count is None else _check_count(count, "count")

    def _iterate(self):
        done = 0
        while self._count < 0 or done < self._count:
            produced = False
            iterator = iter(self._input)
            try:
                for element in iterator:
                    produced = True
                    yield element
            finally:
                close_iterator(iterator)
            if not produced:  # an empty input repeated forever is empty, not an endless loop
                return
            done += 1

    def _cardinality(self):
        n = self._input.cardinality()
        if self._count < 0:
            return 0 if n == 0 else INFINITE_CARDINALITY
        if self._count == 0:
            return 0
        if n in (INFINITE_CARDINALITY, UNKNOWN_CARDINALITY):
            return n
        return self._count * n


class Take(_Unary):
    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        self._count = _check_count(count, "count")

    def _iterate(self):
        if self._count == 0:
            return
        iterator = iter(self._input)
        try:
            for i, element in enumerate(iterator, 1):
                yield element
                if i == self._count:
                    return
        finally:
            close_iterator(iterator)

    def _cardinality(self):
        n = self._input.cardinality()
        if n == UNKNOWN_CARDINALITY:
            return n
        if self._count < 0:
            return n
        if n == INFINITE_CARDINALITY:
            return self._count
        return min(n, self._count)


class Skip(_Unary):
    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        self._count = _check_count(count, "count")

    def _iterate(self):
        iterator = iter(self._input)
        try:
            if self._count < 0:
                for _ in iterator:
                    pass
                return
            for i, element in enumerate(iterator):
                if i >= self._count:
                    yield element
        finally:
            close_iterator(iterator)

    def _cardinality(self):
        n = self._input.cardinality()
        if n in (INFINITE_CARDINALITY, UNKNOWN_CARDINALITY):
            return n
        return 0 if self._count < 0 else max(0, n - self._count)


class Shard(_Unary):
    def __init__(self, input_dataset, num_shards, index):
        super().__init__(input_dataset)
        self._num, self._index = _check_count(num_shards, "num_shards"), _check_count(index, "index")
        if self._num < 1:
            raise ValueError(f"Number of shards must be greater than zero, received num_shards={self._num}")
        if not 0 <= self._index < self._num:
            raise ValueError(f"Index must be between 0 and {self._num - 1} (num_shards - 1), received index={self._index}")

    def _iterate(self):
        iterator = iter(self._input)
        try:
            for i, element in enumerate(iterator):
                if i % self._num == self._index:
                    yield element
        finally:
            close_iterator(iterator)

    def _cardinality(self):
        n = self._input.cardinality()
        if n in (INFINITE_CARDINALITY, UNKNOWN_CARDINALITY):
            return n
        return n // self._num + (1 if self._index < n % self._num else 0)


class Concatenate(Dataset):
    def __init__(self, first, second):
        if not isinstance(second, Dataset):
            raise TypeError(f"concatenate takes a Dataset, received {type(second).__name__}")
        self._first, self._second = first, second
        try:
            a, b = first.element_spec, second.element_spec
        except ValueError:  # an empty dataset without a declared spec: nothing to compare
            return
        ok = _structure.same_structure(a, b) and all(
            x.is_compatible_with(y) or x.dtype == y.dtype for x, y in zip(_structure.flatten(a), _structure.flatten(b)))
        if not ok:
            raise TypeError(f"Incompatible dataset elements:\n  {a} vs.   {b}")

    def _iterate(self):
        for ds in (self._first, self._second):
            iterator = iter(ds)
            try:
                yield from iterator
            finally:
                close_iterator(iterator)

    def _cardinality(self):
        n1, n2 = self._first.cardinality(), self._second.cardinality()
        if INFINITE_CARDINALITY in (n1, n2):
            return INFINITE_CARDINALITY
        if UNKNOWN_CARDINALITY in (n1, n2):
            return UNKNOWN_CARDINALITY
        return n1 + n2

    def _element_spec(self):
        a, b = self._first.element_spec, self._second.element_spec
        return _structure.map_structure(lambda x, y: x.most_specific_common(y), a, b)

    def _probe(self):
        return self._first._probe()


class Interleave(_Unary):
    def __init__(self, input_dataset, map_func, cycle_length, block_length):
        super().__init__(input_dataset)
        if cycle_length is None or cycle_length == AUTOTUNE:
            cycle_length = os.cpu_count() or 1
        self._fn, self._cycle, self._block = map_func, _check_count(cycle_length, "cycle_length"), \
            _check_count(block_length, "block_length")
        if self._cycle < 1 or self._block < 1:
            raise ValueError(f"cycle_length and block_length must be positive, received {self._cycle}, {self._block}")

    def _open(self, element):
        ds = call_unpacked(self._fn, element)
        if not isinstance(ds, Dataset):
            raise TypeError(f"`map_func` must return a Dataset, returned {type(ds).__name__}")
        return iter(ds)

    def _iterate(self):
        # tf.data's order: a cycle of iterators, block_length elements from each in turn; an exhausted
        # slot is refilled from the next input element when the cycle comes back to it
        inputs = iter(self._input)
        slots, cycle, block = [None] * self._cycle, 0, 0
        open_count, end_of_input = 0, False
        try:
            while not end_of_input or open_count:
                current = slots[cycle]
                if current is not None:
                    try:
                        element = next(current)
                    except StopIteration:
                        slots[cycle], open_count, block = None, open_count - 1, 0
                        cycle = (cycle + 1) % self._cycle
                        continue
                    block += 1
                    if block == self._block:
                        block, cycle = 0, (cycle + 1) % self._cycle
                    yield element
                elif not end_of_input:
                    try:
                        slots[cycle] = self._open(next(inputs))
                        open_count += 1
                    except StopIteration:
                        end_of_input = True
                else:
                    block, cycle = 0, (cycle + 1) % self._cycle
        finally:
            for slot in slots:
                close_iterator(slot)
            close_iterator(inputs)

    def _cardinality(self):
        return UNKNOWN_CARDINALITY

    def _probe(self):
        iterator = self._open(self._input._probe())
        try:
            return next(iterator)
        finally:
            close_iterator(iterator)


class Cache(_Unary):
    def __init__(self, input_dataset, filename):
        super().__init__(input_dataset)
        self._filename = os.fspath(filename)
        self._memory = None

    def _iterate(self):
        if not self._filename:
            return self._memory_pass()
        from convx.data import cache_file

        return cache_file.cached_pass(self._input, self._filename)

    def _memory_pass(self):
        if self._memory is not None:
            yield from self._memory
            return
        recorded = []
        iterator = iter(self._input)
        try:
            for element in iterator:
                recorded.append(element)
                yield element
        finally:
            close_iterator(iterator)
        self._memory = recorded  # only a complete pass is kept, as tf.data does
