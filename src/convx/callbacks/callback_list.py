"""CallbackList: drives a list of callbacks through the hooks of a loop."""

from convx.callbacks.callback import HOOKS, Callback
from convx.callbacks.history import History
from convx.callbacks.progbar_logger import ProgbarLogger


def _flatten(callbacks):
    for item in callbacks:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        else:
            yield item


def _pythonify_logs(logs):
    """Flatten nested dicts, sort by key and turn scalars into Python floats (as Keras does)."""
    result = {}
    for key, value in sorted(logs.items()):
        if isinstance(value, dict):
            result.update(_pythonify_logs(value))
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            pass  # non-scalar values are passed on unchanged
        result[key] = value
    return result


class CallbackList(Callback):
    """Dispatches every hook to each callback of a list, in order.

    Parameters
    ----------
    callbacks : list of Callback, optional
        Callbacks to drive; nested lists are flattened. Default: none.
    add_history : bool, default False
        Append a :class:`History` unless the list already has one.
    add_progbar : bool, default False
        Append a :class:`ProgbarLogger` unless the list already has one.
    model : object, optional
        Model given to every callback (:meth:`Callback.set_model`); the
        history callback is also stored as ``model.history``.
    **params
        Loop parameters given to every callback (:meth:`Callback.set_params`),
        e.g. ``verbose``, ``epochs``, ``steps``.

    Notes
    -----
    Like Keras, train and test batch-end logs are passed on with their keys
    sorted and scalar values converted to Python floats.
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        super().__init__()
        self.callbacks = list(_flatten(callbacks)) if callbacks else []
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"callbacks: expected Callback instances, received {type(callback).__name__}"
                )
        self._history = next((c for c in self.callbacks if isinstance(c, History)), None)
        self._progbar = next((c for c in self.callbacks if isinstance(c, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    def append(self, callback):
        """Add ``callback`` at the end of the list."""
        self.callbacks.append(callback)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def set_params(self, params):
        """Store ``params`` and, when not empty, give them to every callback."""
        self.params = params
        if params:
            for callback in self.callbacks:
                callback.set_params(params)

    def set_model(self, model):
        """Give ``model`` to every callback (None is ignored) and set ``model.history``."""
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for callback in self.callbacks:
            callback.set_model(model)

    def _dispatch(self, hook, *args, logs=None):
        logs = logs or {}
        for callback in self.callbacks:
            getattr(callback, hook)(*args, logs)


# train and test batch-end logs reach callbacks sorted, with Python floats (as in Keras)
_PYTHONIFIED = ("on_batch_end", "on_train_batch_end", "on_test_batch_end")


def _dispatcher(hook, index, doc):
    clean = _pythonify_logs if hook in _PYTHONIFIED else (lambda logs: logs)
    if index is None:
        def method(self, logs=None):
            self._dispatch(hook, logs=logs)
    else:
        def method(self, index, logs=None):
            self._dispatch(hook, index, logs=clean(logs or {}))
    method.__name__ = method.__qualname__ = hook
    method.__doc__ = doc
    return method


for _hook, (_index, _doc) in HOOKS.items():
    setattr(CallbackList, _hook, _dispatcher(_hook, _index, _doc))
