"""Memory stays flat: resident size after warm-up does not grow over 5,000 training steps, 5,000 predicts,
or 200 create / fit / delete cycles with the cyclic garbage collector disabled (models are freed by
reference counting alone)."""

import gc
import os
import weakref

import numpy as np
import pytest

import convx
from convx import layers as L

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="resident size from /proc (Linux)")

GROWTH_MB = 20


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _model():
    model = convx.Sequential([convx.Input((8,)), L.Dense(16, activation="relu"), L.Dropout(0.1), L.Dense(2)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


def _data():
    x = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
    return x, x[:, :2] * 2


def _growth(step, count=5000, warmup=500):
    for _ in range(warmup):
        step()
    before = _rss_mb()
    for _ in range(count - warmup):
        step()
    return _rss_mb() - before


def test_training_steps_keep_memory_flat():
    convx.utils.clear_session()
    model, (x, y) = _model(), _data()
    assert _growth(lambda: model.train_on_batch(x[:8], y[:8])) < GROWTH_MB
    history = []
    growth = _growth(lambda: history.append(model.fit(x, y, batch_size=32, epochs=1, verbose=0)), count=1500,
                     warmup=150)
    assert growth < GROWTH_MB


def test_predicts_keep_memory_flat():
    convx.utils.clear_session()
    model, (x, _) = _model(), _data()
    assert _growth(lambda: model.predict(x[:8], verbose=0)) < GROWTH_MB
    assert _growth(lambda: model(x[:4])) < GROWTH_MB


def test_create_fit_delete_cycles_free_models_without_the_cyclic_collector():
    convx.utils.clear_session()
    x, y = _data()
    alive = []

    def cycle():
        model = _model()
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        model.predict(x, verbose=0)
        alive.append(weakref.ref(model))

    enabled = gc.isenabled()
    gc.disable()
    try:
        growth = _growth(cycle, count=200, warmup=20)
        leaked = sum(ref() is not None for ref in alive)
    finally:
        if enabled:
            gc.enable()
    assert leaked == 0  # no reference cycle keeps a trained model (or its History) alive
    assert growth < GROWTH_MB
