"""Learning-rate schedules: values at many steps against Keras 3's formulas (float64) and against Keras
itself, configs and serialize/deserialize round trips, user schedules, schedules inside optimizer configs."""

import math
import os

import numpy as np
import pytest

from conftest import optional
from convx.optimizers import schedules

STEPS = [0, 1, 2, 5, 9, 10, 11, 37, 99, 100, 101, 250, 1000, 5000]

FORMULAS = [
    (schedules.ExponentialDecay(0.1, 10, 0.9), lambda s: 0.1 * 0.9 ** (s / 10)),
    (schedules.ExponentialDecay(0.1, 10, 0.9, staircase=True), lambda s: 0.1 * 0.9 ** math.floor(s / 10)),
    (schedules.PiecewiseConstantDecay([10, 100], [1.0, 0.5, 0.1]),
     lambda s: 1.0 if s <= 10 else 0.5 if s <= 100 else 0.1),
    (schedules.PolynomialDecay(0.1, 100, 0.001, power=2.0),
     lambda s: (0.1 - 0.001) * (1 - min(s, 100) / 100) ** 2 + 0.001),
    (schedules.PolynomialDecay(0.1, 100, 0.001, cycle=True),
     lambda s: (0.1 - 0.001) * (1 - s / (100 * max(1, math.ceil(s / 100)))) + 0.001),
    (schedules.InverseTimeDecay(0.1, 10, 0.5), lambda s: 0.1 / (1 + 0.5 * s / 10)),
    (schedules.InverseTimeDecay(0.1, 10, 0.5, staircase=True), lambda s: 0.1 / (1 + 0.5 * math.floor(s / 10))),
    (schedules.CosineDecay(0.1, 100, alpha=0.1),
     lambda s: 0.1 * (0.9 * 0.5 * (1 + math.cos(math.pi * min(s, 100) / 100)) + 0.1)),
    (schedules.CosineDecay(0.0, 100, warmup_target=0.2, warmup_steps=10),
     lambda s: 0.2 * s / 10 if s < 10 else 0.2 * 0.5 * (1 + math.cos(math.pi * (min(s, 110) - 10) / 100))),
    (schedules.CosineDecayRestarts(0.1, 10, t_mul=1.0, m_mul=0.5),
     lambda s: 0.1 * 0.5 ** math.floor(s / 10) * 0.5 * (1 + math.cos(math.pi * (s / 10 - math.floor(s / 10))))),
]


def _restarts_reference(s, lr=0.1, first=10, t_mul=2.0, m_mul=0.9, alpha=0.05):
    # walk the periods: period i lasts first * t_mul**i steps and peaks at lr * m_mul**i
    start, i, length = 0.0, 0, float(first)
    while s >= start + length:
        start, i, length = start + length, i + 1, length * t_mul
    cosine = 0.5 * m_mul**i * (1 + math.cos(math.pi * (s - start) / length))
    return lr * ((1 - alpha) * cosine + alpha)


FORMULAS.append((schedules.CosineDecayRestarts(0.1, 10, t_mul=2.0, m_mul=0.9, alpha=0.05), _restarts_reference))


@pytest.mark.parametrize("schedule, formula", FORMULAS, ids=lambda x: type(x).__name__)
def test_values_follow_the_formulas(schedule, formula):
    for step in STEPS:
        value = schedule(step)
        assert value.dtype == np.float32
        np.testing.assert_allclose(value, formula(step), rtol=2e-7, atol=1e-12, err_msg=f"step {step}")


@pytest.mark.parametrize("schedule, formula", FORMULAS, ids=lambda x: type(x).__name__)
def test_config_round_trip(schedule, formula):
    config = schedules.serialize(schedule)
    assert config["module"] == "keras.optimizers.schedules" and config["registered_name"] is None
    clone = schedules.deserialize(config)
    assert type(clone) is type(schedule) and clone.get_config() == schedule.get_config()
    assert [clone(s) for s in STEPS] == [schedule(s) for s in STEPS]


@pytest.mark.parametrize("schedule, formula", FORMULAS, ids=lambda x: type(x).__name__)
def test_values_and_configs_match_keras(schedule, formula):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = optional("keras", "test")
    theirs = getattr(keras.optimizers.schedules, type(schedule).__name__)(**schedule.get_config())
    assert keras.optimizers.schedules.serialize(theirs) == schedules.serialize(schedule)
    for step in STEPS:
        np.testing.assert_allclose(schedule(step), float(theirs(step)), rtol=3e-6, atol=1e-9, err_msg=f"step {step}")


class HalfEvery(schedules.LearningRateSchedule):
    def __init__(self, rate, every):
        self.rate, self.every = rate, every

    def __call__(self, step):
        return self.rate * 0.5 ** (step // self.every)

    def get_config(self):
        return {"rate": self.rate, "every": self.every}


def test_user_schedule_in_an_optimizer_round_trips():
    from convx import optimizers

    opt = optimizers.Adam(learning_rate=HalfEvery(0.1, 2))
    assert opt.learning_rate == np.float32(0.1)
    for _ in range(2):
        opt.update_flat(np.zeros(3, np.float32), np.ones(3, np.float32))
    assert opt.learning_rate == np.float32(0.05)
    config = optimizers.serialize(opt)
    assert config["config"]["learning_rate"]["registered_name"] == "Custom>HalfEvery"
    clone = optimizers.deserialize(config, custom_objects={"HalfEvery": HalfEvery})
    assert isinstance(clone._learning_rate, HalfEvery) and clone._learning_rate.get_config() == {"rate": 0.1, "every": 2}
    with pytest.raises(ValueError, match="Unknown learning rate schedule: 'HalfEvery'"):
        optimizers.deserialize(config)


def test_bad_arguments_and_the_abstract_base():
    with pytest.raises(ValueError, match="Argument `decay_steps` must be > 0"):
        schedules.ExponentialDecay(0.1, 0, 0.9)
    with pytest.raises(ValueError, match="The length of boundaries should be 1 less"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1])
    with pytest.raises(NotImplementedError, match="must override `__call__"):
        schedules.LearningRateSchedule()(0)


def test_a_saved_model_keeps_its_schedule(tmp_path, rng):
    import convx
    from convx import optimizers

    model = convx.Sequential([convx.Input((3,)), convx.layers.Dense(2)])
    schedule = schedules.CosineDecayRestarts(0.1, 5, t_mul=1.5)
    model.compile(optimizer=optimizers.SGD(learning_rate=schedule, momentum=0.9), loss="mse")
    model.fit(rng.random((8, 3)), rng.random((8, 2)), batch_size=2, epochs=2, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = convx.models.load_model(tmp_path / "m.keras")
    lr = restored.optimizer._learning_rate
    assert isinstance(lr, schedules.CosineDecayRestarts) and lr.get_config() == schedule.get_config()
    assert restored.optimizer.iterations == 8
    assert restored.optimizer.learning_rate == model.optimizer.learning_rate == schedule(8)
