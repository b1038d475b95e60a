"""Argument checks shared by the model loops (fit, evaluate, predict and the *_on_batch calls)."""

import functools

import numpy as np


def _callback_list(callbacks, **kwargs):
    from convx.callbacks import CallbackList

    if isinstance(callbacks, CallbackList):
        return callbacks
    return CallbackList(callbacks, **kwargs)


def _verbosity(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, received verbose={verbose!r}")
    return verbose


def _batch_size(batch_size, name="batch_size"):
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{name} must be a positive integer or None, received {name}={batch_size!r}")
    return int(batch_size)


def _unsupported(**kwargs):
    for name, value in kwargs.items():
        if value is not None:
            raise ValueError(f"Argument `{name}` is not supported by convx; received {name}={value!r}")


def _one_at_a_time(method):
    """Calls of ``method`` on one model take turns: they run through the same plan's reused buffers.

    A thread pool serving one model is correct; to run calls in parallel, give each thread its own
    model (``clone_model`` + ``set_weights``); each call's kernels use all threads anyway.
    """
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._run_lock:
            return method(self, *args, **kwargs)

    return run
