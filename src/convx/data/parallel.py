"""Background threads: parallel ``map`` and ``prefetch``.

Both hold a bounded number of elements (memory stays bounded by the buffer
sizes), run their threads only while their iterator is alive (closing or
dropping the iterator stops and joins them), and raise a worker's exception in
the consumer, where its traceback still shows the worker's frames. Threads pay
off because the kernels and most NumPy operations release the GIL.
"""

import collections
import concurrent.futures
import os
import queue
import threading
import time

import numpy as np

from convx.data import structure as _structure
from convx.data.dataset import AUTOTUNE
from convx.data.transforms import Map, _check_count, _Unary, close_iterator, call_unpacked

# elements per task handed to a map worker: amortises the pool's per-task cost over cheap functions
_CHUNK = 8
_AUTOTUNE_PREFETCH = 4
# AUTOTUNE maps elements in the consumer's thread while they cost less than this each: handing a cheaper
# function to a pool costs more (locks, wakeups, and threads preempting the kernels' OpenMP team) than it saves
_INLINE_SECONDS = 50e-6


def _threads(value, name):
    if value == AUTOTUNE:
        return max(2, os.cpu_count() or 1)
    value = _check_count(value, name)
    if value < 1:
        raise ValueError(f"`{name}` must be a positive integer or AUTOTUNE (-1), received {name}={value}")
    return value


def _map_chunk(fn, elements):
    """``fn`` over a chunk: (results, exception or None); results stop at the failing element."""
    results = []
    normalize, arrays = _structure.normalize, (np.ndarray, np.generic)
    try:
        for element in elements:
            value = call_unpacked(fn, element)
            if type(value) is tuple and all(isinstance(v, arrays) for v in value):
                results.append(value)  # already NumPy leaves: the common case, checked cheaply
            else:
                results.append(normalize(value))
    except Exception as exc:  # noqa: BLE001 - re-raised in the consumer at this element's position
        return results, exc
    return results, None


class ParallelMap(Map):
    def __init__(self, input_dataset, map_func, num_parallel_calls, deterministic):
        super().__init__(input_dataset, map_func)
        self._workers = _threads(num_parallel_calls, "num_parallel_calls")
        self._autotune = num_parallel_calls == AUTOTUNE
        self._deterministic = deterministic is not False

    def _iterate(self):
        return self._mapped()

    def _chunks(self, iterator):
        while True:
            chunk = []
            for element in iterator:
                chunk.append(element)
                if len(chunk) == _CHUNK:
                    break
            if not chunk:
                return
            yield chunk

    def _inline(self, chunks):
        """Map chunks in this thread while each element costs less than ``_INLINE_SECONDS``; True if all done."""
        for chunk in chunks:
            start = time.perf_counter()
            results, exc = _map_chunk(self._fn, chunk)
            cheap = time.perf_counter() - start < _INLINE_SECONDS * len(chunk)
            yield from results
            if exc is not None:
                raise exc
            if not cheap:
                return False
        return True

    def _mapped(self):
        iterator = iter(self._input)
        chunks = self._chunks(iterator)
        if self._autotune:
            try:
                if (yield from self._inline(chunks)):
                    return
            except BaseException:
                close_iterator(chunks)
                close_iterator(iterator)
                raise
        pool = concurrent.futures.ThreadPoolExecutor(self._workers, thread_name_prefix="convx-data-map")
        pending = collections.deque()
        try:
            for chunk in chunks:
                pending.append(pool.submit(_map_chunk, self._fn, chunk))
                if len(pending) >= 2 * self._workers:
                    yield from self._collect(pending)
            while pending:
                yield from self._collect(pending)
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            close_iterator(chunks)
            close_iterator(iterator)

    def _collect(self, pending):
        if self._deterministic:
            future = pending.popleft()
        else:
            done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            future = next(f for f in pending if f in done)
            pending.remove(future)
        results, exc = future.result()
        yield from results
        if exc is not None:
            raise exc


class _Failure:
    def __init__(self, exc):
        self.exc = exc


_END = object()


def _put(q, item, stop):
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _produce(dataset, q, stop):
    iterator = None
    try:
        iterator = iter(dataset)
        for element in iterator:
            if not _put(q, element, stop):
                return
        _put(q, _END, stop)
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
        _put(q, _Failure(exc), stop)
    finally:
        close_iterator(iterator)


class Prefetch(_Unary):
    def __init__(self, input_dataset, buffer_size):
        super().__init__(input_dataset)
        if buffer_size == AUTOTUNE:
            buffer_size = _AUTOTUNE_PREFETCH
        buffer_size = _check_count(buffer_size, "buffer_size")
        if buffer_size < 0:
            raise ValueError(f"buffer_size must be AUTOTUNE (-1) or non-negative, received {buffer_size}")
        self._size = buffer_size

    def _iterate(self):
        if self._size == 0:
            return iter(self._input)
        return self._prefetched()

    def _prefetched(self):
        q = queue.Queue(maxsize=self._size)
        stop = threading.Event()
        thread = threading.Thread(target=_produce, args=(self._input, q, stop), name="convx-data-prefetch",
                                  daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
        finally:
            stop.set()
            while True:  # free the buffered elements now and unblock a producer waiting to put
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
            thread.join()
