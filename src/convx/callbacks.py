"""Training callbacks and progress output, following Keras 3's names and behaviour.

A training loop drives a :class:`CallbackList` built as
``CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=model,
verbose=verbose, epochs=epochs, steps=steps_per_epoch)``, then calls its hooks:
``on_train_begin``, per epoch ``on_epoch_begin`` / ``on_train_batch_begin`` /
``on_train_batch_end`` / ``on_epoch_end``, ``on_train_end``; and likewise the
``on_test_*`` and ``on_predict_*`` hooks for evaluation and prediction.
Batch-end ``logs`` hold the running value of each metric over the epoch so far
(Keras 3's convention); epoch-end ``logs`` hold the epoch's values, validation
ones prefixed with ``val_``.
"""

import math
import operator
import re
import sys
import time
import warnings

import numpy as np

__all__ = [
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "Progbar",
    "ProgbarLogger",
]

_HOOKS = (
    "on_batch_begin",
    "on_batch_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
    "on_train_begin",
    "on_train_end",
    "on_test_begin",
    "on_test_end",
    "on_predict_begin",
    "on_predict_end",
)


class Callback:
    """Base class of callbacks: override the hooks of the stages of interest.

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
        """Store the model the callback is used with."""
        self._model = model

    @property
    def model(self):
        """The model set by :meth:`set_model`, or None."""
        return self._model

    def on_batch_begin(self, batch, logs=None):
        """Backwards-compatible alias called by :meth:`on_train_batch_begin`."""

    def on_batch_end(self, batch, logs=None):
        """Backwards-compatible alias called by :meth:`on_train_batch_end`."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of epoch ``epoch`` (0-based) of training."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of an epoch; ``logs`` holds its metrics (``val_`` ones too)."""

    def on_train_batch_begin(self, batch, logs=None):
        """Called before training batch ``batch`` (0-based index within the epoch)."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called after a training batch; ``logs`` holds the epoch's running metrics."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Called before a batch of evaluation (or of validation inside fit)."""

    def on_test_batch_end(self, batch, logs=None):
        """Called after an evaluation batch; ``logs`` holds the running metrics."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before a prediction batch."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called after a prediction batch."""

    def on_train_begin(self, logs=None):
        """Called at the start of training."""

    def on_train_end(self, logs=None):
        """Called at the end of training; ``logs`` are the last epoch's."""

    def on_test_begin(self, logs=None):
        """Called at the start of evaluation or validation."""

    def on_test_end(self, logs=None):
        """Called at the end of evaluation or validation with its final metrics."""

    def on_predict_begin(self, logs=None):
        """Called at the start of prediction."""

    def on_predict_end(self, logs=None):
        """Called at the end of prediction."""


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

    def on_batch_begin(self, batch, logs=None):
        self._dispatch("on_batch_begin", batch, logs=logs)

    def on_batch_end(self, batch, logs=None):
        self._dispatch("on_batch_end", batch, logs=_pythonify_logs(logs or {}))

    def on_epoch_begin(self, epoch, logs=None):
        self._dispatch("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        self._dispatch("on_epoch_end", epoch, logs=logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._dispatch("on_train_batch_begin", batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self._dispatch("on_train_batch_end", batch, logs=_pythonify_logs(logs or {}))

    def on_test_batch_begin(self, batch, logs=None):
        self._dispatch("on_test_batch_begin", batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        self._dispatch("on_test_batch_end", batch, logs=_pythonify_logs(logs or {}))

    def on_predict_batch_begin(self, batch, logs=None):
        self._dispatch("on_predict_batch_begin", batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._dispatch("on_predict_batch_end", batch, logs=logs)

    def on_train_begin(self, logs=None):
        self._dispatch("on_train_begin", logs=logs)

    def on_train_end(self, logs=None):
        self._dispatch("on_train_end", logs=logs)

    def on_test_begin(self, logs=None):
        self._dispatch("on_test_begin", logs=logs)

    def on_test_end(self, logs=None):
        self._dispatch("on_test_end", logs=logs)

    def on_predict_begin(self, logs=None):
        self._dispatch("on_predict_begin", logs=logs)

    def on_predict_end(self, logs=None):
        self._dispatch("on_predict_end", logs=logs)


class History(Callback):
    """Records the epoch-end logs of training; ``fit`` returns it.

    Attributes
    ----------
    history : dict of str to list
        Each logged quantity (``"loss"``, ``"val_accuracy"``, ...) mapped to
        its value at the end of every epoch.
    epoch : list of int
        Indices of the epochs recorded during the last training.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        # Keras re-sets this every epoch so that the model holds the latest state.
        if self.model is not None:
            self.model.history = self


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BOLD, _GREEN, _WHITE = "\x1b[1m", "\x1b[32m", "\x1b[37m"
_RESET = "\x1b[0m"
_FULL, _EMPTY_PLAIN = "\u2501", "\u2500"  # ━ (done, and to-do when coloured), ─ (to-do, plain)


def _format_value(value):
    """Keras's metric format: 4 decimals, scientific notation for tiny magnitudes."""
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def _format_time(time_per_unit, unit_name):
    """Per-unit duration in the unit Keras picks: `` 12s/step``, `` 6ms/step``, `` 350us/step``."""
    if time_per_unit >= 1 or time_per_unit == 0:
        return f" {time_per_unit:.0f}s/{unit_name}"
    if time_per_unit >= 1e-3:
        return f" {time_per_unit * 1e3:.0f}ms/{unit_name}"
    return f" {time_per_unit * 1e6:.0f}us/{unit_name}"


def _format_eta(eta):
    if eta > 3600:
        return "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
    if eta > 60:
        return "%d:%02d" % (eta // 60, eta % 60)
    return "%ds" % eta


def _is_terminal(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progbar:
    """A text progress bar with Keras 3's look.

    ``verbose=1`` on a terminal redraws one line in place (``\\r``), at most
    once per ``interval`` seconds, with Keras's colours, e.g.
    ``1875/1875 ━━━━━━━━━━━━━━━━━━━━ 12s 6ms/step - accuracy: 0.9512 - loss: 0.1623``
    (while running, the elapsed time is replaced by the estimated time left).
    On any other stream ``verbose=1`` writes only the final line, without
    colour codes, so that logs stay readable. ``verbose=2`` writes only the
    final line, as ``1875/1875 - 12s - 6ms/step - accuracy: 0.9512``.
    ``verbose=0`` writes nothing.

    Parameters
    ----------
    target : int or None
        Total number of steps, None if unknown.
    width : int, default 20
        Bar width in characters.
    verbose : {0, 1, 2}, default 1
        Display mode, see above.
    interval : float, default 0.05
        Minimum time in seconds between two redraws of the in-place bar.
    stateful_metrics : iterable of str, optional
        Names of values shown as given. By default every value is averaged
        over the steps since the start, weighted by steps (Keras's default);
        the final update shows the values it is given.
    stateless_metrics : iterable of str, optional
        Alternatively, names of the only values to average. At most one of
        ``stateful_metrics`` and ``stateless_metrics`` may be given.
    unit_name : str, default "step"
        Name of a step in the time-per-step display.
    stream : file-like, optional
        Where to write; ``sys.stdout`` (looked up at each write) by default.
        The in-place display is used when ``stream.isatty()`` is true, or in
        a Jupyter kernel when writing to ``sys.stdout``.
    clock : callable, optional
        Returns the current time in seconds; ``time.monotonic`` by default.
    """

    def __init__(
        self,
        target,
        width=20,
        verbose=1,
        interval=0.05,
        stateful_metrics=None,
        stateless_metrics=None,
        unit_name="step",
        *,
        stream=None,
        clock=None,
    ):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError(
                "Progbar: give at most one of stateful_metrics and stateless_metrics, received both"
            )
        if verbose not in (0, 1, 2):
            raise ValueError(f"Progbar: verbose must be 0, 1 or 2, received {verbose!r}")
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.stateful_metrics = None if stateless_metrics is not None else set(stateful_metrics or ())
        self.stateless_metrics = None if stateless_metrics is None else set(stateless_metrics)
        self._stream = stream
        self._clock = clock or time.monotonic
        self._dynamic_display = _is_terminal(self.stream) or (
            stream is None and "ipykernel" in sys.modules
        )
        self._seen_so_far = 0
        self._values = {}  # name -> [weighted sum, weight]
        self._values_order = []
        self._start = self._clock()
        self._last_update = -math.inf
        self._time_after_first_step = None
        self._prev_total_width = 0

    @property
    def stream(self):
        """The output stream."""
        return self._stream if self._stream is not None else sys.stdout

    def update(self, current, values=None, finalize=None):
        """Record progress and redraw the bar when due.

        Parameters
        ----------
        current : int
            Number of steps done (1-based index of the current step).
        values : list of (str, float), optional
            ``(name, value)`` pairs for this step, shown in the order first seen.
        finalize : bool, optional
            Whether this is the last update; defaults to ``current >= target``
            (False when the target is unknown).
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self._record(current, values or [], finalize)
        now = self._clock()
        time_per_unit = self._estimate_step_duration(current, now)
        if self.verbose == 1 and self._dynamic_display:
            if now - self._last_update < self.interval and not finalize:
                return
            self._redraw(current, finalize, now, time_per_unit)
        elif self.verbose == 1 and finalize:
            self._write(self._line(current, finalize, now, time_per_unit, color=False) + "\n")
        elif self.verbose == 2 and finalize and self.target is not None and self.target > 0:
            self._write(self._summary_line(current, now, time_per_unit) + "\n")
        self._last_update = now

    def add(self, n, values=None):
        """Advance by ``n`` steps; see :meth:`update` for ``values``."""
        self.update(self._seen_so_far + n, values)

    def _record(self, current, values, finalize):
        for name, value in values:
            if name not in self._values_order:
                self._values_order.append(name)
            value = float(np.mean(value))
            if self.stateful_metrics is not None:
                averaged = name not in self.stateful_metrics
            else:
                averaged = name in self.stateless_metrics
            if not averaged or finalize:
                self._values[name] = [value, 1]
                continue
            # At least 1 so that a repeated step still counts.
            weight = max(current - self._seen_so_far, 1)
            total = self._values.setdefault(name, [0.0, 0])
            total[0] += value * weight
            total[1] += weight
        self._seen_so_far = current

    def _average(self, name):
        total, weight = self._values[name]
        return total / max(1, weight)

    def _metrics_text(self):
        return "".join(f" - {name}: {_format_value(self._average(name))}" for name in self._values_order)

    def _count_text(self, current):
        digits = int(math.log10(self.target)) + 1
        return f"{current:{digits}d}/{self.target}"

    def _line(self, current, finalize, now, time_per_unit, color):
        def style(text, code):
            return f"{code}{text}{_RESET}" if color else text

        known = self.target is not None and self.target > 0
        if known:
            done = int(self.width * current / self.target)
            bar = style(self._count_text(current), _BOLD) + " "
            if color:
                if done > 0:
                    bar += style(_FULL * done, _GREEN)
                bar += style(_FULL * (self.width - done), _WHITE)
            else:
                bar += _FULL * done + _EMPTY_PLAIN * (self.width - done)
        else:
            bar = "%7d/Unknown" % current
        if known and not finalize:
            clock_text = _format_eta(time_per_unit * (self.target - current))
        else:
            clock_text = f"{now - self._start:.0f}s"
        info = " " + style(clock_text, _BOLD) + _format_time(time_per_unit, self.unit_name)
        return bar + info + self._metrics_text()

    def _redraw(self, current, finalize, now, time_per_unit):
        line = self._line(current, finalize, now, time_per_unit, color=True)
        width = len(_ANSI.sub("", line))
        # Blank out what remains of a longer previous line.
        padding = " " * max(self._prev_total_width - width, 0)
        self._write("\r" + line + padding + ("\n" if finalize else ""))
        self._prev_total_width = width

    def _summary_line(self, current, now, time_per_unit):
        return (
            f"{self._count_text(current)} - {now - self._start:.0f}s -"
            f"{_format_time(time_per_unit, self.unit_name)}{self._metrics_text()}"
        )

    def _write(self, text):
        stream = self.stream
        stream.write(text)
        flush = getattr(stream, "flush", None)
        if flush is not None:
            flush()

    def _estimate_step_duration(self, current, now):
        """Seconds per step, leaving out the (usually slower) first step when possible."""
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            time_per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            time_per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return time_per_unit


class ProgbarLogger(Callback):
    """Prints ``Epoch i/n`` and a :class:`Progbar` per epoch, evaluation or prediction.

    Takes ``verbose`` (0, 1, 2 or ``"auto"`` = 1), ``epochs`` and ``steps``
    (steps per epoch, None if unknown) from the loop parameters. Validation
    inside ``fit`` is silent; its ``val_`` metrics appear on the epoch's
    final line.

    Parameters
    ----------
    stream : file-like, optional
        Where to write; ``sys.stdout`` by default.
    clock : callable, optional
        Time source in seconds; ``time.monotonic`` by default.
    """

    def __init__(self, *, stream=None, clock=None):
        super().__init__()
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False
        self._stream = stream
        self._clock = clock

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def on_train_begin(self, logs=None):
        # Inside fit, validation runs silently.
        self._called_in_fit = True

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset_progbar()
            self._maybe_init_progbar()

    def on_predict_begin(self, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose and self.epochs > 1:
            self.progbar._write(f"Epoch {epoch + 1}/{self.epochs}\n")

    def on_train_batch_end(self, batch, logs=None):
        self._update_progbar(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        # Predictions are not metrics: show progress only.
        self._update_progbar(batch, None)

    def on_epoch_end(self, epoch, logs=None):
        self._finalize_progbar(logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    def on_predict_end(self, logs=None):
        self._finalize_progbar(logs)

    def _reset_progbar(self):
        self.seen = 0
        self.progbar = None

    def _maybe_init_progbar(self):
        if self.progbar is None:
            self.progbar = Progbar(
                target=self.target, verbose=self.verbose, unit_name="step",
                stream=self._stream, clock=self._clock,
            )

    def _update_progbar(self, batch, logs):
        self._maybe_init_progbar()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=False)

    def _finalize_progbar(self, logs):
        self._maybe_init_progbar()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.target
        self.progbar.update(self.target, list((logs or {}).items()), finalize=True)


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
        Whether the quantity should decrease or increase. ``"auto"`` infers it:
        ``loss`` decreases; otherwise a matching model metric's ``_direction``
        (``"up"``/``"down"``) decides, else the name (``accuracy``, ``auc``,
        ``precision``, ``recall`` increase; ``*loss``, ``*error``,
        ``*crossentropy`` decrease). An unknown mode warns and falls back to
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
        for metric in getattr(self.model, "metrics", None) or ():
            direction = getattr(metric, "_direction", None)
            if getattr(metric, "name", None) == name and direction in ("up", "down"):
                return "max" if direction == "up" else "min"
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


class LambdaCallback(Callback):
    """A callback made of plain functions, one per hook.

    Parameters
    ----------
    on_epoch_begin, on_epoch_end : callable, optional
        Called as ``f(epoch, logs)``.
    on_train_begin, on_train_end : callable, optional
        Called as ``f(logs)``.
    on_train_batch_begin, on_train_batch_end : callable, optional
        Called as ``f(batch, logs)``.
    **kwargs : callable
        Any other hook of :class:`Callback` by name, e.g. ``on_test_end=f``.

    Raises
    ------
    TypeError
        If a keyword is not a hook name or its value is not callable.
    """

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        super().__init__()
        hooks = dict(
            on_epoch_begin=on_epoch_begin,
            on_epoch_end=on_epoch_end,
            on_train_begin=on_train_begin,
            on_train_end=on_train_end,
            on_train_batch_begin=on_train_batch_begin,
            on_train_batch_end=on_train_batch_end,
            **kwargs,
        )
        for name, function in hooks.items():
            if name not in _HOOKS:
                raise TypeError(f"LambdaCallback: unknown hook {name!r}; expected one of {', '.join(_HOOKS)}")
            if function is None:
                continue
            if not callable(function):
                raise TypeError(f"LambdaCallback: {name} must be callable, received {type(function).__name__}")
            setattr(self, name, function)
