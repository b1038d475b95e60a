"""LearningRateScheduler: set the learning rate at each epoch from a function of the epoch."""

import numpy as np

from convx.callbacks.callback import Callback


class LearningRateScheduler(Callback):
    """At each epoch start, set ``model.optimizer.learning_rate = schedule(epoch, lr)`` (or
    ``schedule(epoch)`` for a one-argument function).

    Parameters
    ----------
    schedule : callable
        ``(epoch: int (0-based), lr: float) -> float``.
    verbose : {0, 1}, default 0

    Notes
    -----
    Adds ``learning_rate`` to the epoch-end logs, as Keras does.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        try:
            learning_rate = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:  # a one-argument schedule, as Keras accepts
            learning_rate = self.schedule(epoch)
        if not isinstance(learning_rate, (float, np.float32, np.float64)):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {learning_rate}")
        optimizer.learning_rate = learning_rate
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {learning_rate}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)
