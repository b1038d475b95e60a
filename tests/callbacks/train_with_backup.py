"""A training run for test_backup_and_restore.py: python train_with_backup.py BACKUP_DIR OUT.npy [KILL_EPOCH KILL_BATCH]

Trains a small model with dropout, shuffling and Adam under BackupAndRestore; with a kill point, the process
SIGKILLs itself after that training batch (0-based epoch and batch), as a crash would end it."""

import os
import signal
import sys

import numpy as np

import convx
from convx import callbacks, layers


class Kill(callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


def main(backup_dir, out, kill=None):
    convx.utils.set_random_seed(7)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((96, 8)).astype(np.float32), rng.integers(0, 3, 96)
    model = convx.Sequential([convx.Input((8,)), layers.Dense(16, activation="relu"), layers.Dropout(0.3),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer=convx.optimizers.Adam(learning_rate=0.01, use_ema=True), loss="sparse_categorical_crossentropy")
    extra = [Kill(*kill)] if kill else []
    model.fit(x, y, batch_size=16, epochs=6, verbose=0, validation_split=0.2,
              callbacks=[callbacks.BackupAndRestore(backup_dir)] + extra)
    np.save(out, np.concatenate([w.ravel() for w in model.get_weights()]))


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], (int(args[2]), int(args[3])) if len(args) > 2 else None)
