"""Interrupted work leaves consistent state: a signal during an optimizer step surfaces after the whole step
(weights, moments and iterations change together) and fit resumes; a save killed with SIGKILL leaves the
previous file valid, and its temporary is removed by the next save of the same path."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import convx
from conftest import optional
from convx import layers as L

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="POSIX signals")


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 5)).astype(np.float32), rng.normal(size=(64, 2)).astype(np.float32)


def _model(weights=None, constraint=None, **optimizer_options):
    convx.utils.clear_session()
    model = convx.Sequential([convx.Input((5,)), L.Dense(8, activation="relu", kernel_constraint=constraint),
                              L.Dense(2)])
    model.compile(optimizer=convx.optimizers.Adam(0.01, **optimizer_options), loss="mse")
    if weights is not None:
        model.set_weights(weights)
    return model


def _state(model):
    """Weights, optimizer slots and step counter, copied."""
    slots = [np.array(s) for s in model.optimizer._slots] if model.optimizer.built else []
    return [np.array(w) for w in model.get_weights()], slots, int(model.optimizer.iterations)


class _Snapshots(convx.callbacks.Callback):
    def __init__(self, states):
        super().__init__()
        self.states = states

    def on_train_batch_end(self, batch, logs=None):
        self.states.append(_state(self.model))


def _reference(initial, steps_epochs, **options):
    """The state after each step of an uninterrupted run (index = iterations)."""
    model = _model(initial, **options)
    states = [_state(model)]
    model.fit(*_data(), batch_size=8, epochs=steps_epochs, shuffle=False, verbose=0, callbacks=[_Snapshots(states)])
    return states


def _assert_consistent(model, states):
    weights, slots, iterations = _state(model)
    assert iterations < len(states)
    expected_weights, expected_slots, expected_iterations = states[iterations]
    assert expected_iterations == iterations
    for got, want in zip(weights, expected_weights):
        np.testing.assert_array_equal(got, want)
    if iterations:
        for got, want in zip(slots, expected_slots):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("options", [{}, {"clipnorm": 1.0}, {"constraint": "non_neg"}],
                         ids=["flat", "per_variable", "constrained"])
def test_an_interrupt_raised_inside_the_update_surfaces_after_the_whole_step(options):
    initial = _model().get_weights()
    states = _reference(initial, 1, **options)
    model = _model(initial, **options)
    optimizer = model.optimizer
    original = optimizer._update_step
    calls = []

    def interrupted(*args):  # Ctrl-C arriving while the kernel runs: the handler is due at the next bytecode
        original(*args)
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)

    optimizer._update_step = interrupted
    with pytest.raises(KeyboardInterrupt):
        model.fit(*_data(), batch_size=8, epochs=1, shuffle=False, verbose=0)
    _assert_consistent(model, states)
    assert 1 <= optimizer.iterations <= 3
    del optimizer._update_step
    model.fit(*_data(), batch_size=8, epochs=1, shuffle=False, verbose=0)  # resumes
    assert np.isfinite(model.evaluate(*_data(), verbose=0))


def test_interrupts_at_random_moments_of_fit_leave_a_state_of_some_whole_step():
    initial = _model().get_weights()
    states = _reference(initial, 4)
    rng = np.random.default_rng(7)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    interrupted = 0
    try:
        for _ in range(25):
            model = _model(initial)
            signal.setitimer(signal.ITIMER_REAL, float(rng.uniform(0.0005, 0.05)))
            try:
                model.fit(*_data(), batch_size=8, epochs=4, shuffle=False, verbose=0)
            except KeyboardInterrupt:
                interrupted += 1
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            _assert_consistent(model, states)
            model.fit(*_data(), batch_size=8, epochs=1, shuffle=False, verbose=0)  # and training resumes
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert interrupted  # the timer did land inside fit


def test_a_save_killed_mid_way_leaves_the_file_and_the_next_save_removes_its_temporary(tmp_path):
    optional("h5py", "keras")
    path = tmp_path / "model.keras"
    child = textwrap.dedent(f"""
        import os, sys, time
        import convx
        from convx import layers as L
        model = convx.Sequential([convx.Input((5,)), L.Dense(3)])
        model.save({str(path)!r})

        def stalled(source, target):  # the temporary is written; SIGKILL arrives before the rename
            print("written", flush=True)
            time.sleep(600)

        os.replace = stalled
        model.save({str(path)!r})
    """)
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert process.stdout.readline().strip() == "written"
    finally:
        process.kill()
        process.wait()
    leftovers = [name for name in os.listdir(tmp_path) if name != "model.keras"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".model.keras.convx-"), leftovers
    model = convx.models.load_model(path)  # the previous file, intact
    model.save(path)
    assert os.listdir(tmp_path) == ["model.keras"]
    other = tmp_path / "other.keras"
    (tmp_path / ".other.keras.convx-1-x.tmp").write_bytes(b"")  # pid 1 is alive: maybe a save in progress
    model.save(other)
    assert sorted(os.listdir(tmp_path)) == [".other.keras.convx-1-x.tmp", "model.keras", "other.keras"]
