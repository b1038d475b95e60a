"""MonitorCallback: the shared "is this value an improvement" logic of the monitoring callbacks."""

import operator
import warnings

from convx.callbacks.callback import Callback

_HIGHER_IS_BETTER = ("accuracy", "acc", "auc", "precision", "recall")
_LOWER_IS_BETTER = ("loss", "error", "crossentropy")


class MonitorCallback(Callback):
    """Base of the callbacks that watch one log value (Keras 3's ``MonitorCallback``).

    Parameters
    ----------
    monitor : str, default "val_loss"
    mode : {"auto", "min", "max"}, default "auto"
        ``"auto"`` decides from the name: ``loss``, ``*error``, ``*crossentropy``
        decrease; ``*accuracy``, ``*acc``, ``*auc``, ``*precision``, ``*recall``
        increase.
    baseline : float or None
        Initial value of ``best``.
    min_delta : float, default 0
        Smallest change counted as an improvement.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.", stacklevel=2)
            mode = "auto"
        self.monitor, self.mode, self.best = monitor, mode, baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self):
        mode = self.mode
        if mode == "auto":
            name = self.monitor.removeprefix("val_")
            if name == "loss" or name.endswith(_LOWER_IS_BETTER):
                mode = "min"
            elif name.endswith(_HIGHER_IS_BETTER):
                mode = "max"
            else:
                raise ValueError(
                    f"{type(self).__name__} callback received monitor={self.monitor}, but convx isn't able to "
                    "automatically determine whether that metric should be maximized or minimized. Pass "
                    "`mode='max'` in order to monitor based on the highest metric value, or pass `mode='min'` in "
                    "order to use the lowest value.")
        self.monitor_op = operator.lt if mode == "min" else operator.gt
        if mode == "min":
            self.min_delta *= -1

    def _is_improvement(self, monitor_value, reference_value):
        if reference_value is None:
            return True
        return self.monitor_op(monitor_value - self.min_delta, reference_value)
