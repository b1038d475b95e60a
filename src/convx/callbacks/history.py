"""History: the epoch-end logs of training, returned by fit."""

from convx.callbacks.callback import Callback


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
