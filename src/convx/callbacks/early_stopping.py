"""EarlyStopping: stop training when a monitored quantity stops improving."""

import operator
import warnings

from convx.callbacks.callback import Callback

_HIGHER_IS_BETTER = ("accuracy", "acc", "auc", "precision", "recall")
_LOWER_IS_BETTER = ("loss", "error", "crossentropy")


class EarlyStopping(Callback):
    """Stop training when a monitored quantity has stopped improving.

    At each epoch end, the monitored value improves when it beats the best so
    far by more than ``min_delta``; after ``patience`` epochs without
    improvement, ``model.stop_training`` is set to True.

    Parameters
    ----------
    monitor : str, default "val_loss"
        Key of the epoch-end logs to watch.
    min_delta : float, default 0
        Smallest absolute change counted as an improvement.
    patience : int, default 0
        Epochs without improvement before stopping.
    verbose : {0, 1}, default 0
        1 prints a message when stopping and when restoring weights.
    mode : {"auto", "min", "max"}, default "auto"
        Whether the quantity should decrease or increase. ``"auto"`` infers it
        from the name: ``loss``, ``*loss``, ``*error`` and ``*crossentropy``
        decrease; ``*accuracy``, ``*acc``, ``*auc``, ``*precision`` and
        ``*recall`` increase. An unknown mode warns and falls back to
        ``"auto"``.
    baseline : float, optional
        Training stops unless the quantity beats this value within
        ``patience`` epochs.
    restore_best_weights : bool, default False
        At the end of training, restore the weights of the best epoch
        (``model.get_weights()`` / ``model.set_weights()``).
    start_from_epoch : int, default 0
        Epochs of warm-up before monitoring starts.

    Attributes
    ----------
    stopped_epoch : int
        Epoch (0-based) at which training was stopped, 0 if it was not.
    best, best_epoch : float, int
        Best value seen and its epoch.
    """

    def __init__(
        self,
        monitor="val_loss",
        min_delta=0,
        patience=0,
        verbose=0,
        mode="auto",
        baseline=None,
        restore_best_weights=False,
        start_from_epoch=0,
    ):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"EarlyStopping mode {mode} is unknown, fallback to auto mode.", stacklevel=2)
            mode = "auto"
        self.monitor = monitor
        self.min_delta = abs(min_delta)
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.monitor_op = None
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_epoch = 0
        self.best_weights = None

    def _infer_mode(self):
        name = self.monitor.removeprefix("val_")
        if name == "loss":
            return "min"
        if name.endswith(_HIGHER_IS_BETTER):
            return "max"
        if name.endswith(_LOWER_IS_BETTER):
            return "min"
        raise ValueError(
            f"EarlyStopping callback received monitor={self.monitor} but cannot tell whether "
            "that quantity should be maximized or minimized. Pass mode='max' to stop on the "
            "highest value, or mode='min' to stop on the lowest."
        )

    def _set_monitor_op(self):
        mode = self.mode if self.mode != "auto" else self._infer_mode()
        self.monitor_op = operator.lt if mode == "min" else operator.gt
        if self.monitor_op is operator.lt:
            # Improving means going below the reference by more than min_delta.
            self.min_delta *= -1

    def on_train_begin(self, logs=None):
        # Allow the instance to be reused.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Until something improves, the current weights are the best known.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Patience restarts only when the baseline is beaten too.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        """Return ``logs[monitor]``, or None with a warning naming the available keys."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs)}",
                stacklevel=2,
            )
        return value

    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        return self.monitor_op(value - self.min_delta, reference)
