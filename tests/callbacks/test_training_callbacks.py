"""ModelCheckpoint, ReduceLROnPlateau, LearningRateScheduler, CSVLogger, TerminateOnNaN: Keras 3's arguments and
behaviour (files written, learning-rate changes, stop epochs), driven by real fits and by scripted logs."""

import csv
import math

import numpy as np
import pytest

import convx
from convx import callbacks, optimizers


def _model(optimizer="sgd"):
    model = convx.Sequential([convx.Input((4,)), convx.layers.Dense(3)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _data(rng, n=16):
    return rng.random((n, 4)).astype(np.float32), rng.random((n, 3)).astype(np.float32)


class _Holder:
    """A stand-in model for scripted logs: an optimizer and a stop flag."""

    def __init__(self, lr=0.1):
        self.optimizer = optimizers.SGD(learning_rate=lr)
        self.stop_training = False


def _drive(callback, values, monitor="val_loss", holder=None):
    holder = holder or _Holder()
    callback.set_model(holder)
    callback.on_train_begin()
    rates = []
    for epoch, value in enumerate(values):
        callback.on_epoch_begin(epoch)
        logs = {monitor: value}
        callback.on_epoch_end(epoch, logs)
        rates.append(float(holder.optimizer.learning_rate))
    return rates, holder


# ----- ModelCheckpoint -----

def test_checkpoint_template_per_epoch(tmp_path, rng):
    x, y = _data(rng)
    path = str(tmp_path / "ck-{epoch:02d}-{val_loss:.2f}.keras")
    history = _model().fit(x, y, epochs=3, verbose=0, validation_split=0.25,
                           callbacks=[callbacks.ModelCheckpoint(path)])
    names = sorted(p.name for p in tmp_path.iterdir())
    want = sorted(f"ck-{e + 1:02d}-{v:.2f}.keras" for e, v in enumerate(history.history["val_loss"]))
    assert names == want
    restored = convx.models.load_model(tmp_path / names[-1])
    assert restored.count_params() == 15


def test_checkpoint_save_best_only_and_threshold(tmp_path):
    path = tmp_path / "best.keras"
    saved = []
    holder = _Holder()
    holder.save = lambda filepath, overwrite=True: saved.append(filepath)
    check = callbacks.ModelCheckpoint(path, save_best_only=True, initial_value_threshold=0.8)
    _drive(check, [0.9, 0.7, 0.75, 0.5, 0.6], holder=holder)
    assert saved == [str(path)] * 2 and check.best == 0.5
    maximise = callbacks.ModelCheckpoint(path, monitor="val_accuracy", save_best_only=True)
    saved.clear()
    _drive(maximise, [0.5, 0.4, 0.6], monitor="val_accuracy", holder=holder)
    assert len(saved) == 2


def test_checkpoint_weights_only_every_n_batches(tmp_path, rng):
    x, y = _data(rng, n=20)
    path = str(tmp_path / "w-{epoch}-{batch}.weights.h5")
    _model().fit(x, y, batch_size=4, epochs=2, verbose=0,
                 callbacks=[callbacks.ModelCheckpoint(path, save_weights_only=True, save_freq=3)])
    # 5 batches per epoch, a save every 3 batches across epochs: batches 3 and 6 (= epoch 2 batch 1) and 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w-1-3.weights.h5", "w-2-1.weights.h5",
                                                          "w-2-4.weights.h5"]
    model = _model()
    model.load_weights(tmp_path / "w-2-4.weights.h5")


def test_checkpoint_bad_arguments(tmp_path, rng):
    with pytest.raises(ValueError, match="Unrecognized save_freq: batch"):
        callbacks.ModelCheckpoint("x.keras", save_freq="batch")
    with pytest.raises(ValueError, match="the filepath provided must end in `.weights.h5`"):
        callbacks.ModelCheckpoint("x.keras", save_weights_only=True)
    with pytest.raises(ValueError, match="The filepath provided must end in `.keras`"):
        callbacks.ModelCheckpoint("x.weights.npz")
    x, y = _data(rng)
    with pytest.raises(KeyError, match='Failed to format this callback filepath: ".*{nope}.keras"'):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "{nope}.keras"))])


# ----- ReduceLROnPlateau -----

def test_reduce_lr_on_plateau_patience_cooldown_min_lr():
    callback = callbacks.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.02)
    rates, _ = _drive(callback, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    # Keras' counting: the cooldown epoch resets `wait` and then counts it, so after the first reduction
    # (epoch 3) the next come every second epoch, down to the floor min_lr
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02], rtol=1e-6)


def test_reduce_lr_min_delta_and_logs(rng):
    callback = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.1, patience=1, min_delta=0.1)
    rates, _ = _drive(callback, [1.0, 0.95, 0.5, 0.45], monitor="loss")
    np.testing.assert_allclose(rates, [0.1, 0.01, 0.01, 0.001], rtol=1e-6)
    x, y = _data(rng)
    model = _model(optimizers.Adam(learning_rate=0.01))
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[
        callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)])
    # the logged rate is the one the epoch trained with (logged before the reduction, as Keras does)
    np.testing.assert_allclose(history.history["learning_rate"], [0.01, 0.01, 0.005], rtol=1e-6)
    assert model.optimizer.learning_rate == np.float32(0.0025)
    with pytest.raises(ValueError, match="does not support a factor >= 1.0"):
        callbacks.ReduceLROnPlateau(factor=1.0)


# ----- LearningRateScheduler -----

def test_learning_rate_scheduler_sets_the_rate_each_epoch(rng):
    x, y = _data(rng)
    seen = []
    model = _model(optimizers.SGD(learning_rate=0.1))
    history = model.fit(x, y, epochs=4, verbose=0, callbacks=[
        callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch < 2 else lr * math.exp(-1.0)),
        callbacks.LambdaCallback(on_epoch_begin=lambda e, l: seen.append(float(model.optimizer.learning_rate)))])
    np.testing.assert_allclose(seen, [0.1, 0.1, 0.1 * math.exp(-1), 0.1 * math.exp(-2)], rtol=1e-6)
    np.testing.assert_allclose(history.history["learning_rate"], seen, rtol=1e-6)
    one_argument = callbacks.LearningRateScheduler(lambda epoch: 0.5 / (epoch + 1))
    rates, _ = _drive(one_argument, [0, 0, 0])
    np.testing.assert_allclose(rates, [0.5, 0.25, 0.5 / 3], rtol=1e-6)
    with pytest.raises(ValueError, match="should be a float"):
        _drive(callbacks.LearningRateScheduler(lambda epoch: "fast"), [0])


def test_learning_rate_scheduler_changes_the_training(rng):
    x, y = _data(rng)
    convx.utils.set_random_seed(1)
    a = _model()
    convx.utils.set_random_seed(1)
    b = _model()
    a.fit(x, y, epochs=2, verbose=0, shuffle=False)
    b.fit(x, y, epochs=2, verbose=0, shuffle=False, callbacks=[callbacks.LearningRateScheduler(lambda e: 0.0)])
    assert not np.array_equal(a.get_weights()[0], b.get_weights()[0])
    convx.utils.set_random_seed(1)
    assert np.array_equal(_model().get_weights()[0], b.get_weights()[0]), "a zero learning rate leaves the weights"


# ----- CSVLogger -----

def test_csv_logger_rows_append_and_separator(tmp_path, rng):
    x, y = _data(rng)
    path = tmp_path / "log.csv"
    history = _model().fit(x, y, epochs=2, verbose=0, validation_split=0.25, callbacks=[callbacks.CSVLogger(path)])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1]
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], history.history["loss"], rtol=1e-12)
    _model().fit(x, y, epochs=1, verbose=0, validation_split=0.25, callbacks=[callbacks.CSVLogger(path, append=True)])
    assert len(list(csv.reader(path.open()))) == 4
    semi = tmp_path / "semi.csv"
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(semi, separator=";")])
    assert semi.read_text().splitlines()[0] == "epoch;loss;val_loss"
    assert semi.read_text().splitlines()[1].endswith(";NA")


# ----- TerminateOnNaN -----

def test_terminate_on_nan(rng, capsys):
    x, y = _data(rng)
    x[3] = 1e30  # finite inputs whose squared error overflows float32 (NaN targets are refused up front)
    model = _model()
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, shuffle=False, callbacks=[callbacks.TerminateOnNaN()])
    assert model.stop_training and len(history.history["loss"]) == 1
    assert "Batch 0: Invalid loss, terminating training" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 0"):
        _model().fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False,
                     callbacks=[callbacks.TerminateOnNaN(raise_error=True)])


def test_callbacks_read_and_set_the_learning_rate_and_stop(rng):
    x, y = _data(rng)
    model = _model(optimizers.RMSprop(learning_rate=0.01))

    def on_epoch_end(epoch, logs):
        model.optimizer.learning_rate = float(model.optimizer.learning_rate) / 10
        model.stop_training = epoch == 1

    history = model.fit(x, y, epochs=5, verbose=0, callbacks=[callbacks.LambdaCallback(on_epoch_end=on_epoch_end)])
    assert len(history.history["loss"]) == 2
    np.testing.assert_allclose(model.optimizer.learning_rate, 1e-4, rtol=1e-6)
