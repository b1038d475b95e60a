"""Callbacks: hook dispatch, History, EarlyStopping, LambdaCallback and Keras-format progress output."""

import io
import re

import numpy as np
import pytest

from convx.callbacks import (
    Callback,
    CallbackList,
    EarlyStopping,
    History,
    LambdaCallback,
    Progbar,
    ProgbarLogger,
)

BOLD, GREEN, WHITE, RESET = "\x1b[1m", "\x1b[32m", "\x1b[37m", "\x1b[0m"
BAR = "\u2501"


class FakeClock:
    """Time source advanced by hand."""

    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


class FakeTTY(io.StringIO):
    """A captured stream that claims to be a terminal, recording each write."""

    def __init__(self):
        super().__init__()
        self.writes = []

    def isatty(self):
        return True

    def write(self, text):
        self.writes.append(text)
        return super().write(text)


class FakeModel:
    """Weights are one array whose value the test sets per epoch."""

    def __init__(self):
        self.stop_training = False
        self.weights = [np.zeros(2)]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [w.copy() for w in weights]


def visible(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def run_epoch(callbacks, clock, times, batch_logs, epoch_logs, epoch=0):
    """Drive one epoch: batch i ends at times[i] with batch_logs[i]; the epoch ends at times[-1]."""
    callbacks.on_epoch_begin(epoch)
    for i, (t, logs) in enumerate(zip(times, batch_logs)):
        clock.t = t
        callbacks.on_train_batch_begin(i)
        callbacks.on_train_batch_end(i, logs)
    callbacks.on_epoch_end(epoch, epoch_logs)


def mnist_like_epoch(verbose, stream):
    """1875 steps: a slow first step (0.75 s) then 6 ms per step, as in Keras's typical output."""
    clock = FakeClock()
    logger = ProgbarLogger(stream=stream, clock=clock)
    callbacks = CallbackList([logger], verbose=verbose, epochs=10, steps=1875)
    callbacks.on_train_begin()
    times = [0.75 + 0.006 * i for i in range(1875)]
    # Unsorted keys and NumPy scalars, as a training loop may produce them.
    batch_logs = [{"loss": np.float32(0.2), "accuracy": np.float64(0.95)}] * 1875
    epoch_logs = {"accuracy": 0.95123, "loss": 0.16234, "val_accuracy": 0.98, "val_loss": 0.06}
    run_epoch(callbacks, clock, times, batch_logs, epoch_logs)


# ---------------------------------------------------------------- ProgbarLogger output


def test_verbose_2_line_is_keras_format():
    stream = io.StringIO()
    mnist_like_epoch(2, stream)
    assert stream.getvalue() == (
        "Epoch 1/10\n"
        "1875/1875 - 12s - 6ms/step - accuracy: 0.9512 - loss: 0.1623 - val_accuracy: 0.9800 - val_loss: 0.0600\n"
    )


def test_verbose_1_on_a_plain_stream_prints_one_line_per_epoch():
    stream = io.StringIO()
    mnist_like_epoch(1, stream)
    assert stream.getvalue() == (
        "Epoch 1/10\n"
        f"1875/1875 {BAR * 20} 12s 6ms/step - accuracy: 0.9512 - loss: 0.1623 - val_accuracy: 0.9800 - val_loss: 0.0600\n"
    )


def test_verbose_1_on_a_terminal_redraws_in_place():
    stream = FakeTTY()
    mnist_like_epoch(1, stream)
    writes = stream.writes
    assert writes[0] == "Epoch 1/10\n"
    assert all(w.startswith("\r") for w in writes[1:])
    # Step 1 ends at 0.75 s: 1 step/0.75 s, 1874 steps to go.
    assert writes[1] == (
        f"\r{BOLD}   1/1875{RESET} {WHITE}{BAR * 20}{RESET} {BOLD}23:25{RESET} 750ms/step"
        " - accuracy: 0.9500 - loss: 0.2000"
    )
    assert writes[-1] == (
        f"\r{BOLD}1875/1875{RESET} {GREEN}{BAR * 20}{RESET}{WHITE}{RESET} {BOLD}12s{RESET} 6ms/step"
        " - accuracy: 0.9512 - loss: 0.1623 - val_accuracy: 0.9800 - val_loss: 0.0600\n"
    )
    # 11.244 s of steps at most 20 redraws per second, plus the first and final lines.
    assert 200 <= len(writes) - 1 <= 228


def test_verbose_1_terminal_partial_bar_eta_and_running_average():
    stream = FakeTTY()
    clock = FakeClock()
    callbacks = CallbackList([ProgbarLogger(stream=stream, clock=clock)], verbose=1, epochs=1, steps=4)
    batch_logs = [{"loss": 0.5}, {"loss": 0.4}, {"loss": 0.3}, {"loss": 0.2}]
    run_epoch(callbacks, clock, [1.0, 1.01, 1.5, 2.0], batch_logs, {"loss": 0.25})
    assert stream.writes == [
        # epochs == 1: no "Epoch" line.
        f"\r{BOLD}1/4{RESET} {GREEN}{BAR * 5}{RESET}{WHITE}{BAR * 15}{RESET} {BOLD}3s{RESET} 1s/step - loss: 0.5000",
        # Step 2 comes 10 ms after step 1 and is not drawn; its value still counts in the average.
        f"\r{BOLD}3/4{RESET} {GREEN}{BAR * 15}{RESET}{WHITE}{BAR * 5}{RESET} {BOLD}0s{RESET} 250ms/step - loss: 0.4000",
        f"\r{BOLD}4/4{RESET} {GREEN}{BAR * 20}{RESET}{WHITE}{RESET} {BOLD}0s{RESET} 333ms/step - loss: 0.3500",
        # The final line shows the epoch's logs as given.
        f"\r{BOLD}4/4{RESET} {GREEN}{BAR * 20}{RESET}{WHITE}{RESET} {BOLD}2s{RESET} 333ms/step - loss: 0.2500\n",
    ]


def test_shorter_redraw_blanks_the_rest_of_the_previous_line():
    stream = FakeTTY()
    clock = FakeClock()
    bar = Progbar(10, stream=stream, clock=clock)
    clock.t = 100.0
    bar.update(1, [("loss", 123.0)])  # ETA 15:00, 100s/step
    clock.t = 101.0
    bar.update(9, [("loss", 1.0)])  # ETA 0s, 125ms/step
    first, second = (visible(w) for w in stream.writes)
    assert first == f"\r 1/10 {BAR * 20} 15:00 100s/step - loss: 123.0000"
    # (123 * 1 + 1.0 * 8) / 9: each value weighted by the steps it covers.
    line = f"\r 9/10 {BAR * 20} 0s 125ms/step - loss: 14.5556"
    assert second == line + " " * (len(first) - len(line))


def test_throttling_with_injected_time():
    stream = FakeTTY()
    clock = FakeClock()
    bar = Progbar(20, interval=1.0, stream=stream, clock=clock)
    drawn = []
    for step in range(1, 21):
        clock.t = 0.25 * step
        before = len(stream.writes)
        bar.update(step, [("loss", 1.0)])
        if len(stream.writes) > before:
            drawn.append(step)
    # At most one redraw per second, and always the final one.
    assert drawn == [1, 5, 9, 13, 17, 20]


def test_verbose_0_prints_nothing():
    stream = FakeTTY()
    clock = FakeClock()
    callbacks = CallbackList([ProgbarLogger(stream=stream, clock=clock)], verbose=0, epochs=3, steps=2)
    callbacks.on_train_begin()
    run_epoch(callbacks, clock, [1.0, 2.0], [{"loss": 1.0}] * 2, {"loss": 1.0})
    callbacks.on_train_end()
    assert stream.getvalue() == ""


def test_unknown_steps_take_the_count_seen():
    stream = io.StringIO()
    clock = FakeClock()
    callbacks = CallbackList([ProgbarLogger(stream=stream, clock=clock)], verbose=2, epochs=1, steps=None)
    run_epoch(callbacks, clock, [1.0, 2.0, 3.0], [{"loss": 1.0}] * 3, {"loss": 0.5})
    assert stream.getvalue() == "3/3 - 3s - 1s/step - loss: 0.5000\n"


def test_unknown_target_on_a_terminal():
    stream = FakeTTY()
    clock = FakeClock(5.0)
    bar = Progbar(None, stream=stream, clock=clock)
    clock.t = 7.0
    bar.update(4, [("loss", 0.25)])
    assert stream.writes == [f"\r      4/Unknown {BOLD}2s{RESET} 500ms/step - loss: 0.2500"]


@pytest.mark.parametrize(
    "value, text",
    [(0.16234, "0.1623"), (-0.5, "-0.5000"), (1234.5, "1234.5000"), (1e-5, "1.0000e-05"),
     (-2e-4, "-2.0000e-04"), (0.0, "0.0000e+00")],
)
def test_metric_format(value, text):
    stream = io.StringIO()
    bar = Progbar(1, verbose=2, stream=stream, clock=FakeClock())
    bar.update(1, [("m", value)])
    assert stream.getvalue() == f"1/1 - 0s - 0s/step - m: {text}\n"


@pytest.mark.parametrize(
    "seconds, text",
    [(2.4, " 2s/step"), (1.0, " 1s/step"), (0.0061, " 6ms/step"), (0.001, " 1ms/step"),
     (0.00035, " 350us/step")],
)
def test_time_per_step_units(seconds, text):
    stream = io.StringIO()
    clock = FakeClock()
    bar = Progbar(2, verbose=2, stream=stream, clock=clock)
    clock.t = 2 * seconds
    bar.update(2)
    assert stream.getvalue().rstrip("\n").split(" - ")[2] == text.strip()


def test_evaluate_and_predict_print_but_validation_inside_fit_is_silent():
    stream = io.StringIO()
    clock = FakeClock()
    logger = ProgbarLogger(stream=stream, clock=clock)
    callbacks = CallbackList([logger], verbose=1, epochs=1, steps=2)
    callbacks.on_test_begin()
    callbacks.on_test_batch_end(0, {"loss": 1.0})
    clock.t = 1.0
    callbacks.on_test_batch_end(1, {"loss": 1.0})
    callbacks.on_test_end({"loss": 0.75})
    callbacks.on_predict_begin()
    callbacks.on_predict_batch_end(0, {"outputs": np.ones(3)})
    callbacks.on_predict_end()
    assert stream.getvalue() == (
        f"2/2 {BAR * 20} 1s 1s/step - loss: 0.7500\n"
        f"2/2 {BAR * 20} 0s 0s/step\n"
    )
    stream.seek(0)
    stream.truncate()
    callbacks.on_train_begin()
    callbacks.on_test_begin()
    callbacks.on_test_batch_end(0, {"loss": 1.0})
    callbacks.on_test_end({"loss": 0.5})
    assert stream.getvalue() == ""


def test_progbar_argument_errors():
    with pytest.raises(ValueError, match="at most one of stateful_metrics and stateless_metrics"):
        Progbar(3, stateful_metrics=["a"], stateless_metrics=["b"])
    with pytest.raises(ValueError, match="verbose must be 0, 1 or 2, received 3"):
        Progbar(3, verbose=3)


def test_stateful_metrics_are_shown_as_given():
    stream = FakeTTY()
    clock = FakeClock()
    bar = Progbar(10, interval=0, stateful_metrics=["acc"], stream=stream, clock=clock)
    for step, value in [(1, 0.2), (2, 0.6)]:
        clock.t = float(step)
        bar.update(step, [("acc", value), ("loss", value)])
    assert visible(stream.writes[-1]).endswith("- acc: 0.6000 - loss: 0.4000")


def test_default_stream_is_stdout(capsys):
    bar = Progbar(1, verbose=2, clock=FakeClock())
    bar.update(1, [("loss", 0.5)])
    assert capsys.readouterr().out == "1/1 - 0s - 0s/step - loss: 0.5000\n"


# ---------------------------------------------------------------- CallbackList and History


class Recorder(Callback):
    """Records every hook call with its arguments (the legacy aliases excepted)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_") and name not in ("on_batch_begin", "on_batch_end"):
            calls = object.__getattribute__(self, "calls")
            return lambda *args: calls.append((name, *args))
        return object.__getattribute__(self, name)


def test_every_hook_is_dispatched_to_every_callback_in_order():
    first, second = Recorder(), Recorder()
    callbacks = CallbackList([first, [second]])
    logs = {"loss": 1.0}
    expected = []
    for hook in ("on_train_begin", "on_train_end", "on_test_begin", "on_test_end", "on_predict_begin",
                 "on_predict_end"):
        getattr(callbacks, hook)(logs)
        expected.append((hook, logs))
    for hook in ("on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
                 "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin",
                 "on_predict_batch_end"):
        getattr(callbacks, hook)(3, logs)
        expected.append((hook, 3, logs))
    callbacks.on_epoch_begin(4)
    expected.append(("on_epoch_begin", 4, {}))
    assert first.calls == expected
    assert second.calls == expected
    assert len(callbacks) == 2 and list(callbacks) == [first, second]


def test_batch_end_logs_are_sorted_python_floats():
    seen = []
    callbacks = CallbackList([LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(logs))])
    callbacks.on_train_batch_end(0, {"loss": np.float32(0.5), "accuracy": np.array(0.25), "extra": {"b": 1}})
    assert seen == [{"accuracy": 0.25, "b": 1.0, "loss": 0.5}]
    assert [type(v) for v in seen[0].values()] == [float, float, float]
    assert list(seen[0]) == ["accuracy", "b", "loss"]


def test_train_batch_hooks_call_the_legacy_aliases():
    calls = []

    class Legacy(Callback):
        def on_batch_begin(self, batch, logs=None):
            calls.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            calls.append(("end", batch, logs))

    callbacks = CallbackList([Legacy()])
    callbacks.on_train_batch_begin(0)
    callbacks.on_train_batch_end(0, {"loss": 1})
    assert calls == [("begin", 0), ("end", 0, {"loss": 1.0})]


def test_model_and_params_reach_every_callback():
    model = FakeModel()
    recorder = Recorder()
    callbacks = CallbackList([recorder], add_history=True, add_progbar=True, model=model, verbose=2,
                             epochs=5, steps=7)
    history, progbar = callbacks.callbacks[1:]
    assert isinstance(history, History) and isinstance(progbar, ProgbarLogger)
    for callback in callbacks:
        assert callback.model is model
        assert callback.params == {"verbose": 2, "epochs": 5, "steps": 7}
    assert model.history is history
    assert (progbar.verbose, progbar.epochs, progbar.target) == (2, 5, 7)
    callbacks.set_model(None)
    assert recorder.model is model


def test_existing_history_and_progbar_are_not_duplicated():
    history, progbar = History(), ProgbarLogger()
    callbacks = CallbackList([progbar, history], add_history=True, add_progbar=True)
    assert callbacks.callbacks == [progbar, history]


def test_callback_list_rejects_non_callbacks():
    with pytest.raises(TypeError, match="expected Callback instances, received function"):
        CallbackList([lambda: None])


def test_history_accumulates_epoch_logs():
    model = FakeModel()
    callbacks = CallbackList(add_history=True, model=model, verbose=0, epochs=3, steps=1)
    history = model.history
    callbacks.on_train_begin()
    for epoch in range(3):
        callbacks.on_epoch_begin(epoch)
        callbacks.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "val_loss": 2.0 - epoch})
    callbacks.on_train_end()
    assert history.epoch == [0, 1, 2]
    assert history.history == {"loss": [1.0, 0.5, 1.0 / 3], "val_loss": [2.0, 1.0, 0.0]}
    assert model.history is history
    history.on_train_begin()
    assert history.epoch == []


# ---------------------------------------------------------------- EarlyStopping


def run_early_stopping(callback, values, key="val_loss", model=None):
    """Feed ``values`` as successive epochs until the model is stopped; returns the model."""
    model = model or FakeModel()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        model.weights = [np.full(2, float(epoch))]
        callback.on_epoch_end(epoch, {key: value})
        if model.stop_training:
            break
    callback.on_train_end()
    return model


def test_early_stopping_patience():
    callback = EarlyStopping(patience=2)
    model = run_early_stopping(callback, [1.0, 0.9, 0.95, 0.97, 0.8])
    assert model.stop_training and callback.stopped_epoch == 3
    assert callback.best == 0.9 and callback.best_epoch == 1


def test_early_stopping_patience_0_stops_at_the_first_regression():
    callback = EarlyStopping(monitor="loss")
    model = run_early_stopping(callback, [1.0, 0.5, 0.6, 0.1], key="loss")
    assert callback.stopped_epoch == 2 and model.weights[0][0] == 2.0


def test_early_stopping_keeps_going_while_improving():
    callback = EarlyStopping(patience=0)
    model = run_early_stopping(callback, [5.0, 4.0, 3.0, 2.0])
    assert not model.stop_training and callback.stopped_epoch == 0


def test_early_stopping_min_delta():
    callback = EarlyStopping(min_delta=0.1, patience=2)
    model = run_early_stopping(callback, [1.0, 0.95, 0.92, 0.5])
    assert model.stop_training and callback.stopped_epoch == 2 and callback.best == 1.0


def test_early_stopping_restores_best_weights(capsys):
    callback = EarlyStopping(patience=2, restore_best_weights=True, verbose=1)
    model = run_early_stopping(callback, [1.0, 0.5, 0.7, 0.8, 0.1])
    assert model.weights[0].tolist() == [1.0, 1.0]
    assert capsys.readouterr().out == (
        "Epoch 4: early stopping\nRestoring model weights from the end of the best epoch: 2.\n"
    )


def test_early_stopping_without_restore_keeps_last_weights():
    model = run_early_stopping(EarlyStopping(patience=1), [1.0, 0.5, 0.7, 0.8])
    assert model.weights[0].tolist() == [2.0, 2.0]


def test_early_stopping_auto_mode_maximizes_accuracy():
    callback = EarlyStopping(monitor="val_accuracy", patience=1)
    model = run_early_stopping(callback, [0.5, 0.6, 0.55, 0.58], key="val_accuracy")
    assert model.stop_training and callback.stopped_epoch == 2 and callback.best == 0.6


def test_early_stopping_explicit_mode_overrides_name():
    callback = EarlyStopping(monitor="loss", mode="max")
    run_early_stopping(callback, [1.0, 2.0, 1.5], key="loss")
    assert callback.stopped_epoch == 2 and callback.best == 2.0


def test_early_stopping_unknown_direction_and_mode():
    with pytest.raises(ValueError, match="monitor=val_dice but cannot tell whether"):
        run_early_stopping(EarlyStopping(monitor="val_dice"), [1.0], key="val_dice")
    with pytest.warns(UserWarning, match="mode sideways is unknown, fallback to auto mode"):
        callback = EarlyStopping(mode="sideways")
    assert callback.mode == "auto"


def test_early_stopping_baseline():
    # Improvements that do not beat the baseline do not reset patience (Keras's rule):
    # the first regression after `patience` epochs stops training.
    values = [0.9, 0.8, 0.7, 0.75]
    assert not run_early_stopping(EarlyStopping(patience=2), values).stop_training
    callback = EarlyStopping(baseline=0.5, patience=2)
    model = run_early_stopping(callback, values)
    assert model.stop_training and callback.stopped_epoch == 3
    # Beating the baseline resets patience.
    callback = EarlyStopping(baseline=0.5, patience=2)
    model = run_early_stopping(callback, [0.9, 0.4, 0.45, 0.45, 0.45])
    assert callback.stopped_epoch == 3


def test_early_stopping_start_from_epoch():
    callback = EarlyStopping(monitor="loss", start_from_epoch=2)
    model = run_early_stopping(callback, [1.0, 2.0, 3.0, 4.0], key="loss")
    assert model.stop_training and callback.stopped_epoch == 3 and callback.best == 3.0


def test_early_stopping_missing_monitor_warns_and_continues():
    callback = EarlyStopping(monitor="val_loss")
    with pytest.warns(UserWarning, match="`val_loss` which is not available. Available metrics are: loss"):
        model = run_early_stopping(callback, [1.0, 2.0], key="loss")
    assert not model.stop_training


def test_early_stopping_is_reusable():
    callback = EarlyStopping(patience=0)
    run_early_stopping(callback, [1.0, 2.0])
    assert callback.stopped_epoch == 1
    model = run_early_stopping(callback, [3.0, 2.5, 2.0])
    assert not model.stop_training and callback.stopped_epoch == 0 and callback.best == 2.0


# ---------------------------------------------------------------- LambdaCallback


def test_lambda_callback_calls_its_functions():
    calls = []
    callback = LambdaCallback(
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, logs)),
        on_train_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch)),
        on_test_end=lambda logs: calls.append(("test_end", logs)),
    )
    callbacks = CallbackList([callback])
    callbacks.on_train_batch_begin(7)
    callbacks.on_epoch_end(1, {"loss": 0.5})
    callbacks.on_test_end({"loss": 0.25})
    callbacks.on_train_end()  # not given: the base class's no-op
    assert calls == [("batch_begin", 7), ("epoch_end", 1, {"loss": 0.5}), ("test_end", {"loss": 0.25})]


def test_lambda_callback_argument_errors():
    with pytest.raises(TypeError, match="unknown hook 'on_epoch_ned'"):
        LambdaCallback(on_epoch_ned=print)
    with pytest.raises(TypeError, match="on_epoch_end must be callable, received int"):
        LambdaCallback(on_epoch_end=3)
