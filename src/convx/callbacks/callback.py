"""The Callback base class and the hooks a loop calls, listed once in ``HOOKS``."""

import weakref

# hook -> (its index argument, or None for begin/end hooks; what calls it)
HOOKS = {
    "on_batch_begin": ("batch", "Backwards-compatible alias called by :meth:`on_train_batch_begin`."),
    "on_batch_end": ("batch", "Backwards-compatible alias called by :meth:`on_train_batch_end`."),
    "on_epoch_begin": ("epoch", "Called at the start of epoch ``epoch`` (0-based) of training."),
    "on_epoch_end": ("epoch", "Called at the end of an epoch; ``logs`` holds its metrics (``val_`` ones too)."),
    "on_train_batch_begin": ("batch", "Called before training batch ``batch`` (0-based index within the epoch)."),
    "on_train_batch_end": ("batch", "Called after a training batch; ``logs`` holds the epoch's running metrics."),
    "on_test_batch_begin": ("batch", "Called before a batch of evaluation (or of validation inside fit)."),
    "on_test_batch_end": ("batch", "Called after an evaluation batch; ``logs`` holds the running metrics."),
    "on_predict_batch_begin": ("batch", "Called before a prediction batch."),
    "on_predict_batch_end": ("batch", "Called after a prediction batch."),
    "on_train_begin": (None, "Called at the start of training."),
    "on_train_end": (None, "Called at the end of training; ``logs`` are the last epoch's."),
    "on_test_begin": (None, "Called at the start of evaluation or validation."),
    "on_test_end": (None, "Called at the end of evaluation or validation with its final metrics."),
    "on_predict_begin": (None, "Called at the start of prediction."),
    "on_predict_end": (None, "Called at the end of prediction."),
}


class Callback:
    """Base class of callbacks: override the hooks of the stages of interest (see ``HOOKS``).

    Attributes
    ----------
    model : object or None
        The model being trained, evaluated or predicted with (set by
        :meth:`set_model`).
    params : dict or None
        Loop parameters, e.g. ``{"verbose": 1, "epochs": 10, "steps": 1875}``
        (set by :meth:`set_params`).
    """

    def __init__(self):
        self.params = None
        self._model = None

    def set_params(self, params):
        """Store the loop parameters ``params`` (dict)."""
        self.params = params

    def set_model(self, model):
        """Store the model the callback is used with.

        Only a weak reference is kept: ``model.history`` is a callback, and a strong
        reference back would keep every trained model alive until the cyclic
        garbage collector runs.
        """
        self._model = None if model is None else weakref.ref(model)

    @property
    def model(self):
        """The model set by :meth:`set_model` (None when none was set or it no longer exists)."""
        return None if self._model is None else self._model()

    def on_train_batch_begin(self, batch, logs=None):
        """Called before training batch ``batch`` (0-based index within the epoch)."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called after a training batch; ``logs`` holds the epoch's running metrics."""
        self.on_batch_end(batch, logs=logs)


def _no_op(hook, index, doc):
    """The base class's hook: does nothing. ``index`` is the batch or epoch number, when the hook has one."""
    if index is None:
        def method(self, logs=None):
            pass
    else:
        def method(self, index, logs=None):
            pass
    method.__name__ = method.__qualname__ = hook
    method.__doc__ = doc
    return method


for _hook, (_index, _doc) in HOOKS.items():
    if _hook not in Callback.__dict__:
        setattr(Callback, _hook, _no_op(_hook, _index, _doc))
