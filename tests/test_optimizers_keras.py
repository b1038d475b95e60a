"""convx's optimizers against Keras 3 itself (TF-Keras 3.15, float32): several steps from identical weights,
with the common arguments; the state Keras lists (variables) and the configs."""

import os

import numpy as np
import pytest

from conftest import optional
from convx import optimizers
from convx.layers.base import Variable
from test_optimizers_api import CASES, COMMON, NAMES, SHAPES


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    return optional("keras", "test")


def _both(keras, name, cfg, rng, steps=6):
    weights = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [[(rng.standard_normal(s) * 2).astype(np.float32) for s in SHAPES] for _ in range(steps)]
    theirs = getattr(keras.optimizers, NAMES[name])(**cfg)
    kvars = [keras.Variable(w.copy(), name=f"v{i}") for i, w in enumerate(weights)]
    ours = getattr(optimizers, NAMES[name])(**cfg)
    mine = [Variable(w.copy(), f"v{i}", f"v{i}") for i, w in enumerate(weights)]
    for step in grads:
        theirs.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in step], kvars))
        ours.apply_gradients(zip(step, mine))
    return theirs, kvars, ours, mine


@pytest.mark.parametrize("name, cfg", CASES)
def test_matches_keras(keras, rng, name, cfg):
    theirs, kvars, ours, mine = _both(keras, name, cfg, rng)
    for k, v in zip(kvars, mine):
        np.testing.assert_allclose(v.value, k.numpy(), rtol=2e-5, atol=2e-6)
    for k, v in zip(theirs.variables, ours.variables):
        assert tuple(k.shape) == np.shape(v)
        # Ftrl's linear state subtracts large near-equal float32 terms: compare at the state's scale
        scale = np.abs(k.numpy()).max()
        np.testing.assert_allclose(np.asarray(v, np.float64), k.numpy(), rtol=2e-5, atol=2e-6 + 1e-6 * scale)
    assert ours.get_config() == {**theirs.get_config(), "name": ours.name}


@pytest.mark.parametrize("extra", COMMON, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_common_arguments_match_keras(keras, rng, extra):
    theirs, kvars, ours, mine = _both(keras, "nadam", extra, rng, steps=7)
    for k, v in zip(kvars, mine):
        np.testing.assert_allclose(v.value, k.numpy(), rtol=2e-5, atol=2e-6)
    assert [tuple(k.shape) for k in theirs.variables] == [np.shape(v) for v in ours.variables]
    for k, v in zip(theirs.variables, ours.variables):
        np.testing.assert_allclose(np.asarray(v, np.float64), k.numpy(), rtol=2e-5, atol=2e-6)


def test_schedule_config_matches_keras(keras):
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001])
    mine = optimizers.schedules.PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001])
    theirs = keras.optimizers.SGD(learning_rate=schedule, momentum=0.5, name="s")
    ours = optimizers.SGD(learning_rate=mine, momentum=0.5, name="s")
    assert optimizers.serialize(ours) == keras.optimizers.serialize(theirs)
