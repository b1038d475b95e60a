"""Optimizer objects: Keras 3 defaults, lookup and configs, and every optimizer's steps (clipping, weight
decay, moving average, gradient accumulation, loss scaling included) against float64 NumPy transcriptions
of Keras 3's formulas (tests/optimizer_reference.py), on the flat buffer and per variable."""

import numpy as np
import pytest

import convx
from convx import optimizers
from convx.layers.base import Variable
from optimizer_reference import run

NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "adamax": "Adamax", "nadam": "Nadam",
         "adagrad": "Adagrad", "adadelta": "Adadelta", "ftrl": "Ftrl", "lion": "Lion", "rmsprop": "RMSprop"}

CASES = [
    ("sgd", {}), ("sgd", {"momentum": 0.9}), ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("adam", {}), ("adam", {"amsgrad": True, "beta_2": 0.9}), ("adamw", {}), ("adamw", {"weight_decay": 0.1}),
    ("adamax", {}), ("nadam", {}), ("adagrad", {}), ("adagrad", {"initial_accumulator_value": 0.5}),
    ("adadelta", {"learning_rate": 1.0}), ("ftrl", {}),
    ("ftrl", {"l1_regularization_strength": 0.01, "l2_regularization_strength": 0.02,
              "l2_shrinkage_regularization_strength": 0.03, "beta": 0.1, "learning_rate_power": -0.7}),
    ("lion", {}), ("rmsprop", {}), ("rmsprop", {"momentum": 0.5, "centered": True}),
    ("rmsprop", {"centered": True}), ("rmsprop", {"momentum": 0.9}),
]
COMMON = [
    {"clipnorm": 0.5}, {"clipvalue": 0.3}, {"global_clipnorm": 0.7}, {"weight_decay": 0.05},
    {"use_ema": True, "ema_momentum": 0.9}, {"use_ema": True, "ema_overwrite_frequency": 3},
    {"gradient_accumulation_steps": 3}, {"loss_scale_factor": 128.0},
]
SHAPES = [(3, 4), (4,), (2, 2, 1)]
TIGHT = dict(rtol=1e-11, atol=1e-13)


def _data(rng, steps=7, scale=1.0):
    weights = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) * scale * 10.0 ** rng.uniform(-2, 0) for s in SHAPES] for _ in range(steps)]
    return weights, grads


def _flat_run(name, cfg, weights, grads):
    opt = getattr(optimizers, NAMES[name])(**cfg)
    variables = [Variable(w.copy(), f"v{i}", f"layer/v{i}") for i, w in enumerate(weights)]
    params = np.concatenate([w.ravel() for w in weights])
    offset = 0
    for v in variables:  # the model's layout: variables are views of the flat buffer
        v.value = params[offset:offset + v.value.size].reshape(v.shape)
        offset += v.value.size
    opt.build(variables)
    for step in grads:
        opt.update_flat(params, np.concatenate([g.ravel() for g in step]))
    return opt, params, variables


@pytest.mark.parametrize("name, cfg", CASES)
def test_rule_follows_keras_formula(rng, name, cfg):
    weights, grads = _data(rng)
    _, params, _ = _flat_run(name, cfg, weights, grads)
    want, _ = run(name, cfg, weights, grads)
    np.testing.assert_allclose(params, np.concatenate([w.ravel() for w in want]), **TIGHT)


@pytest.mark.parametrize("extra", COMMON, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("name, cfg", [CASES[2], CASES[3], CASES[8], CASES[16]])
def test_common_arguments_follow_keras(rng, name, cfg, extra):
    weights, grads = _data(rng, steps=8, scale=3.0)
    cfg = {**cfg, **extra}
    opt, params, variables = _flat_run(name, cfg, weights, grads)
    want, average = run(name, cfg, weights, grads)
    np.testing.assert_allclose(params, np.concatenate([w.ravel() for w in want]), **TIGHT)
    if cfg.get("use_ema"):
        opt.finalize_variable_values(variables)
        np.testing.assert_allclose(params, np.concatenate([a.ravel() for a in average]), **TIGHT)


@pytest.mark.parametrize("name, cfg", [CASES[1], CASES[4], CASES[8], CASES[13], CASES[16]])
def test_per_variable_apply_equals_flat_update(rng, name, cfg):
    weights, grads = _data(rng)
    cfg = {**cfg, "clipnorm": 0.5}
    _, params, _ = _flat_run(name, cfg, weights, grads)
    separate = [w.copy() for w in weights]
    opt = getattr(optimizers, NAMES[name])(**cfg)
    for step in grads:
        opt.apply_gradients(zip(step, separate))
    np.testing.assert_allclose(params, np.concatenate([v.ravel() for v in separate]), rtol=1e-14, atol=1e-15)
    assert opt.iterations == len(grads)


def test_float32_model_buffer_follows_the_float64_rule(rng):
    weights, grads = _data(rng)
    w32 = [w.astype(np.float32) for w in weights]
    g32 = [[g.astype(np.float32) for g in step] for step in grads]
    _, params, _ = _flat_run("nadam", {"weight_decay": 0.01, "global_clipnorm": 1.0}, w32, g32)
    assert params.dtype == np.float32
    want, _ = run("nadam", {"weight_decay": 0.01, "global_clipnorm": 1.0}, w32, g32)
    np.testing.assert_allclose(params, np.concatenate([w.ravel() for w in want]), rtol=2e-5, atol=2e-6)


def test_exclude_from_weight_decay(rng):
    weights, grads = _data(rng, steps=3)
    opt = optimizers.AdamW(weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["v1"])
    variables = [Variable(w.copy(), f"v{i}", f"layer/v{i}") for i, w in enumerate(weights)]
    for step in grads:
        opt.apply(step, variables)
    decayed, _ = run("adamw", {"weight_decay": 0.5}, weights, grads)
    plain, _ = run("adam", {}, weights, grads)
    for got, want in zip((v.value for v in variables), (decayed[0], plain[1], decayed[2])):
        np.testing.assert_allclose(got, want, **TIGHT)


def test_learning_rate_float_schedule_or_zero_argument_callable(rng):
    weights, grads = _data(rng, steps=5)
    schedule = optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    _, params, _ = _flat_run("sgd", {"learning_rate": schedule, "momentum": 0.9}, weights, grads)
    want, _ = run("sgd", {"momentum": 0.9}, weights, grads, lr_at=lambda i: float(np.float32(0.1 * 0.5 ** (i / 2))))
    np.testing.assert_allclose(params, np.concatenate([w.ravel() for w in want]), rtol=1e-7)
    box = {"lr": 0.05}
    opt = optimizers.SGD(learning_rate=lambda: box["lr"])  # Keras calls a plain callable with no argument
    assert opt.learning_rate == np.float32(0.05)
    box["lr"] = 0.2
    w = np.ones(3)
    opt.update_flat(w, np.ones(3))
    np.testing.assert_allclose(w, 1 - np.float32(0.2))


def test_learning_rate_is_float32_and_assignable():
    opt = optimizers.Adam()
    assert opt.learning_rate == 0.001 and opt.learning_rate.dtype == np.float32
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5 and opt.get_config()["learning_rate"] == 0.5
    assert optimizers.SGD().get_config()["learning_rate"] == float(np.float32(0.01))  # as Keras reads its variable
    scheduled = optimizers.SGD(learning_rate=optimizers.schedules.InverseTimeDecay(0.1, 1, 1.0))
    with pytest.raises(TypeError, match="not settable"):
        scheduled.learning_rate = 0.1


def test_keras_defaults_names_and_lookup():
    adam = optimizers.get("adam")
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon, adam.amsgrad) == (0.001, 0.9, 0.999, 1e-7, False)
    assert optimizers.get("sgd").learning_rate == 0.01 and optimizers.get("SGD").momentum == 0.0
    rms = optimizers.get("rmsprop")
    assert (rms.learning_rate, rms.rho, rms.momentum, rms.epsilon) == (0.001, 0.9, 0.0, 1e-7)
    assert optimizers.get("adamw").weight_decay == 0.004
    for name, cls in NAMES.items():
        assert type(optimizers.get(name)) is getattr(optimizers, cls)
        assert type(optimizers.get(cls)) is getattr(optimizers, cls)
    assert optimizers.Adam(name="mine").name == "mine"
    custom = optimizers.Adam(learning_rate=0.01)
    assert optimizers.get(custom) is custom


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    schedule = optimizers.schedules.CosineDecay(0.1, 100, warmup_target=0.2, warmup_steps=10)
    opt = getattr(optimizers, NAMES[name])(learning_rate=schedule, clipnorm=1.0, name="x")
    config = optimizers.serialize(opt)
    assert config["module"] == "keras.optimizers" and config["class_name"] == NAMES[name]
    assert config["config"]["learning_rate"]["class_name"] == "CosineDecay"
    clone = optimizers.deserialize(config)
    assert clone.get_config() == opt.get_config()
    assert isinstance(clone._learning_rate, optimizers.schedules.CosineDecay)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: optimizers.get("adagradx"), "Could not interpret optimizer identifier: 'adagradx'"),
        (lambda: optimizers.SGD(learning_rate=-1.0), "learning_rate must be a finite number >= 0"),
        (lambda: optimizers.SGD(learning_rate="fast"), "Argument `learning_rate` should be float"),
        (lambda: optimizers.Adam(beta_1=1.0), r"`beta_1` must be a number in \[0.0, 1.0\)"),
        (lambda: optimizers.SGD(momentum=-0.5), "`momentum` must be a number in"),
        (lambda: optimizers.Adam(clipnorm=1.0, clipvalue=1.0), "Only one of `clipnorm`, `clipvalue`"),
        (lambda: optimizers.Adam(gradient_accumulation_steps=1), "must be an integer >= 2"),
        (lambda: optimizers.Adam(use_ema=True, ema_momentum=1.5), "`ema_momentum` must be in the range"),
        (lambda: optimizers.AdamW(weight_decay=None), "Argument `weight_decay` must be a float"),
        (lambda: optimizers.Ftrl(learning_rate_power=0.5), "`learning_rate_power` needs to be negative or zero"),
        (lambda: optimizers.Lion(beta_1=0.0), r"`beta_1` must be a number in \(0.0"),
        (lambda: optimizers.Adam(foo=1), "Argument\\(s\\) not recognized"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_variables_follow_keras_order(rng):
    model = convx.Sequential([convx.Input((3,)), convx.layers.Dense(4), convx.layers.Dense(2)])
    opt = optimizers.Adam(amsgrad=True, use_ema=True)
    model.compile(optimizer=opt, loss="mse")
    model.fit(rng.random((8, 3)), rng.random((8, 2)), epochs=1, verbose=0)
    shapes = [w.shape for w in model.trainable_weights]
    got = [np.shape(v) for v in opt.variables]
    # iterations, learning_rate, averages, then (momentum, velocity) per variable, then velocity_hat per variable
    assert got == [(), ()] + shapes + [s for s in shapes for _ in range(2)] + shapes
    assert int(opt.variables[0]) == 1
    state = opt.get_weights()
    other = optimizers.Adam(amsgrad=True, use_ema=True)
    other.build(model.trainable_weights)
    other.set_weights(state)
    for a, b in zip(other.variables, state):
        np.testing.assert_array_equal(a, b)


def test_update_flat_refuses_a_buffer_of_another_size():
    opt = optimizers.Adam()
    opt.update_flat(np.zeros(4, np.float32), np.ones(4, np.float32))
    with pytest.raises(ValueError, match="update_flat got 5 parameters but the optimizer was built for 4"):
        opt.update_flat(np.zeros(5, np.float32), np.ones(5, np.float32))


def test_model_training_uses_one_flat_update_per_step(rng, monkeypatch):
    calls = []
    model = convx.Sequential([convx.layers.Dense(4, activation="relu", input_shape=(3,)), convx.layers.Dense(2)])
    opt = optimizers.SGD()
    original = opt.update_flat
    monkeypatch.setattr(opt, "update_flat", lambda p, g: calls.append(p.size) or original(p, g))
    model.compile(optimizer=opt, loss="mse")
    model.fit(rng.random((10, 3)), rng.random((10, 2)), batch_size=4, epochs=1, verbose=0)
    assert calls == [model.count_params()] * 3
