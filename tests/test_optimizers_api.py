"""Optimizer objects: Keras defaults, lookup, update rules on the flat buffer and per variable."""

import numpy as np
import pytest

import convx
from convx import optimizers


def test_keras_defaults_and_lookup():
    adam = optimizers.get("adam")
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert optimizers.get("sgd").learning_rate == 0.01 and optimizers.get("SGD").momentum == 0.0
    rms = optimizers.get("rmsprop")
    assert (rms.learning_rate, rms.rho, rms.momentum, rms.epsilon) == (0.001, 0.9, 0.0, 1e-7)
    custom = optimizers.Adam(learning_rate=0.01)
    assert optimizers.get(custom) is custom
    clone = optimizers.get(optimizers.serialize(optimizers.RMSprop(rho=0.8, centered=True)))
    assert clone.get_config() == optimizers.RMSprop(rho=0.8, centered=True).get_config()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: optimizers.get("adagrad"), "Could not interpret optimizer identifier: 'adagrad'"),
        (lambda: optimizers.SGD(learning_rate=-1), "learning_rate must be > 0, received learning_rate=-1"),
        (lambda: optimizers.Adam(beta_1=1.0), r"beta_1 must be in \[0, 1\)"),
        (lambda: optimizers.SGD(momentum=-0.5), "momentum must be >= 0"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def keras_adam_reference(w, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    m = np.zeros_like(w, dtype=np.float64)
    v = np.zeros_like(w, dtype=np.float64)
    w = w.astype(np.float64)
    for t, g in enumerate(grads, start=1):
        m += (g - m) * (1 - b1)
        v += (g * g - v) * (1 - b2)
        w = w - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    return w


def test_adam_flat_update_follows_keras_formula(rng):
    w = rng.standard_normal(50).astype(np.float32)
    grads = [rng.standard_normal(50).astype(np.float32) for _ in range(4)]
    opt = optimizers.Adam(learning_rate=0.01)
    params = w.copy()
    for g in grads:
        opt.update_flat(params, g)
    assert opt.iterations == 4
    np.testing.assert_allclose(params, keras_adam_reference(w, grads, lr=0.01), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda: optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
    lambda: optimizers.Adam(),
    lambda: optimizers.RMSprop(momentum=0.5, centered=True),
])
def test_per_variable_apply_equals_flat_update(make, rng):
    shapes = [(3, 4), (4,), (2, 2, 1)]
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    flat = np.concatenate([v.ravel() for v in values])
    separate = [v.copy() for v in values]
    flat_opt, var_opt = make(), make()
    for _ in range(3):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        flat_opt.update_flat(flat, np.concatenate([g.ravel() for g in grads]))
        var_opt.apply_gradients(zip(grads, separate))
    np.testing.assert_allclose(flat, np.concatenate([v.ravel() for v in separate]), rtol=1e-6, atol=1e-7)
    assert flat_opt.iterations == var_opt.iterations == 3


def test_learning_rate_schedule_and_assignment():
    opt = optimizers.SGD(learning_rate=lambda step: 0.1 / (1 + step))
    w = np.ones(3, dtype=np.float32)
    opt.update_flat(w, np.ones(3, dtype=np.float32))  # step 0: lr 0.1
    opt.update_flat(w, np.ones(3, dtype=np.float32))  # step 1: lr 0.05
    np.testing.assert_allclose(w, 1 - 0.15, rtol=1e-6)
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5


def test_model_training_uses_one_flat_update_per_step(rng, monkeypatch):
    calls = []
    model = convx.Sequential([convx.layers.Dense(4, activation="relu", input_shape=(3,)), convx.layers.Dense(2)])
    opt = optimizers.SGD()
    original = opt.update_flat
    monkeypatch.setattr(opt, "update_flat", lambda p, g: calls.append(p.size) or original(p, g))
    model.compile(optimizer=opt, loss="mse")
    model.fit(rng.random((10, 3)), rng.random((10, 2)), batch_size=4, epochs=1, verbose=0)
    assert calls == [model.count_params()] * 3
