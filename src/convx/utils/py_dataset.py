"""``PyDataset`` (alias ``Sequence``): Keras 3's base class for batch-indexed Python data.

Subclasses define ``__getitem__(index)`` returning one batch (``x``, ``(x,)``,
``(x, y)`` or ``(x, y, sample_weight)``) and ``__len__`` (or the
``num_batches`` property; None for an endless dataset). ``fit`` /
``evaluate`` / ``predict`` read the batches ``workers`` at a time, in index
order (shuffled by ``fit(shuffle=True)``), with up to ``max_queue_size``
batches read ahead: in threads, or in forked processes when
``use_multiprocessing=True`` (batches then travel back pickled between
convx's own processes).
"""

import collections
import concurrent.futures
import itertools
import multiprocessing
import warnings


class PyDataset:
    """Base class for datasets of batches read by index.

    Parameters
    ----------
    workers : int, default 1
        Number of threads (or processes) reading batches concurrently; 1 reads
        them in the training thread.
    use_multiprocessing : bool, default False
        Read in forked processes instead of threads (for Python-heavy
        ``__getitem__`` that holds the GIL).
    max_queue_size : int, default 10
        Batches read ahead at most.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self):
        missing = [name for name in ("_workers", "_use_multiprocessing", "_max_queue_size") if not hasattr(self, name)]
        if missing:
            self._workers = getattr(self, "_workers", 1)
            self._use_multiprocessing = getattr(self, "_use_multiprocessing", False)
            self._max_queue_size = getattr(self, "_max_queue_size", 10)
            warnings.warn("Your `PyDataset` class should call `super().__init__(**kwargs)` in its constructor. "
                          "`**kwargs` can include `workers`, `use_multiprocessing`, `max_queue_size`. Do not pass "
                          "these arguments to `fit()`, as they will be ignored.", stacklevel=3)

    @property
    def workers(self):
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __getitem__(self, index):
        """The batch at position ``index``."""
        raise NotImplementedError

    @property
    def num_batches(self):
        """Number of batches (``len(self)``), or None for an endless dataset."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError("You need to implement the `num_batches` property:\n\n"
                                  "@property\ndef num_batches(self):\n  return ...")

    def __iter__(self):
        try:
            count = self.num_batches
        except NotImplementedError:
            count = None
        for index in range(count) if count is not None else itertools.count():
            yield self[index]

    def on_epoch_begin(self):
        """Called at the beginning of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""


Sequence = PyDataset

_forked = {}


def _init_forked(dataset):
    _forked["dataset"] = dataset


def _get_forked(index):
    return _forked["dataset"][index]


def read_batches(dataset, indices):
    """The batches ``dataset[i]`` for ``i`` in ``indices``, in order, read ahead per the dataset's settings.

    The pool lives only while the returned generator runs (closing it joins the workers); an exception
    from ``__getitem__`` is raised here, at its batch's position.
    """
    workers, queue_size = int(dataset.workers or 1), max(1, int(dataset.max_queue_size or 1))
    if workers <= 1 and not dataset.use_multiprocessing:
        for index in indices:
            yield dataset[index]
        return
    if dataset.use_multiprocessing:
        pool = concurrent.futures.ProcessPoolExecutor(max(1, workers), mp_context=multiprocessing.get_context("fork"),
                                                      initializer=_init_forked, initargs=(dataset,))
        get = _get_forked
    else:
        pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="convx-pydataset")
        get = dataset.__getitem__
    pending = collections.deque()
    indices = iter(indices)
    try:
        for index in indices:
            pending.append(pool.submit(get, index))
            if len(pending) >= queue_size:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
