"""TerminateOnNaN: stop training when the loss becomes NaN or infinite."""

import numpy as np

from convx.callbacks.callback import Callback


class TerminateOnNaN(Callback):
    """Stop training (or raise, with ``raise_error=True``) at the first batch whose loss is NaN or inf.

    Parameters
    ----------
    raise_error : bool, default False
        Raise a RuntimeError instead of setting ``model.stop_training``.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and (np.isnan(loss) or np.isinf(loss)):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                                   "Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
