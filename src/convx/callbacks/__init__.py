"""Training callbacks and progress output, following Keras 3's names and behaviour.

A training loop drives a :class:`CallbackList` built as
``CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=model,
verbose=verbose, epochs=epochs, steps=steps_per_epoch)``, then calls its hooks
(``callback.HOOKS``): ``on_train_begin``, per epoch ``on_epoch_begin`` /
``on_train_batch_begin`` / ``on_train_batch_end`` / ``on_epoch_end``,
``on_train_end``; and likewise the ``on_test_*`` and ``on_predict_*`` hooks for
evaluation and prediction. Batch-end ``logs`` hold the running value of each
metric over the epoch so far (Keras 3's convention); epoch-end ``logs`` hold the
epoch's values, validation ones prefixed with ``val_``. One module per callback,
as Keras arranges them.
"""

from convx.callbacks.backup_and_restore import BackupAndRestore
from convx.callbacks.callback import Callback
from convx.callbacks.callback_list import CallbackList
from convx.callbacks.csv_logger import CSVLogger
from convx.callbacks.early_stopping import EarlyStopping
from convx.callbacks.history import History
from convx.callbacks.lambda_callback import LambdaCallback
from convx.callbacks.learning_rate_scheduler import LearningRateScheduler
from convx.callbacks.model_checkpoint import ModelCheckpoint
from convx.callbacks.monitor_callback import MonitorCallback
from convx.callbacks.progbar import Progbar
from convx.callbacks.progbar_logger import ProgbarLogger
from convx.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from convx.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = ["BackupAndRestore", "Callback", "CallbackList", "CSVLogger", "EarlyStopping", "History", "LambdaCallback",
           "LearningRateScheduler", "ModelCheckpoint", "MonitorCallback", "Progbar", "ProgbarLogger",
           "ReduceLROnPlateau", "TerminateOnNaN"]
