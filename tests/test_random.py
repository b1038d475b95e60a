"""convx.random: Keras 3's keras.random names and signatures, NumPy draws, statistics, reproducibility, and a
custom layer drawing dropout masks from its own SeedGenerator in training."""

import numpy as np
import pytest

import convx
from convx import ops
from convx import random

N = 200_000


@pytest.mark.parametrize("dtype", [None, "float64"])
def test_normal_uniform_truncated_statistics(dtype):
    x = random.normal((N,), mean=2.0, stddev=3.0, dtype=dtype, seed=1)
    assert x.dtype == np.dtype(dtype or "float32") and x.shape == (N,)
    assert abs(x.mean() - 2.0) < 0.05 and abs(x.std() - 3.0) < 0.05
    u = random.uniform((400, 500), minval=-1.0, maxval=3.0, seed=2)
    assert u.shape == (400, 500) and u.min() >= -1.0 and u.max() < 3.0
    assert abs(u.mean() - 1.0) < 0.02 and abs(u.std() - 4 / np.sqrt(12)) < 0.02
    t = random.truncated_normal((N,), mean=1.0, stddev=2.0, seed=3)
    assert np.abs(t - 1.0).max() <= 4.0 + 1e-5
    # the normal truncated at two standard deviations: std 0.8796 of the untruncated one
    assert abs(t.mean() - 1.0) < 0.03 and abs(t.std() - 2.0 * 0.8796) < 0.03


def test_randint_and_categorical_statistics():
    r = random.randint((N,), 3, 8, seed=4)
    assert r.dtype == np.int32 and r.min() == 3 and r.max() == 7
    np.testing.assert_allclose(np.bincount(r)[3:] / N, 0.2, atol=0.01)
    logits = np.log(np.array([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]]) + 1e-12).astype(np.float32)
    c = random.categorical(logits, 20_000, seed=5)
    assert c.shape == (2, 20_000) and c.dtype == np.int32
    np.testing.assert_allclose(np.bincount(c[0], minlength=3) / 20_000, [0.1, 0.2, 0.7], atol=0.015)
    assert set(np.unique(c[1])) <= {0, 1}


def test_dropout_and_shuffle():
    x = np.ones((500, 400), np.float32)
    y = random.dropout(x, 0.25, seed=6)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01 and np.allclose(y[kept], 1 / 0.75)
    rows = random.dropout(x, 0.5, noise_shape=(None, 1), seed=7)
    assert all(len(np.unique(row)) == 1 for row in rows)  # one draw per row, broadcast along it
    np.testing.assert_array_equal(random.dropout(x, 0.0), x)
    np.testing.assert_array_equal(random.dropout(x, 1.0), np.zeros_like(x))
    s = random.shuffle(np.arange(1000).reshape(100, 10), seed=8)
    assert sorted(s[:, 0].tolist()) == list(range(0, 1000, 10)) and not np.array_equal(s[:, 0], np.arange(0, 1000, 10))
    np.testing.assert_array_equal(np.sort(s, axis=0), np.arange(1000).reshape(100, 10))
    with pytest.raises(ValueError, match="rate"):
        random.dropout(x, 1.5)


def test_seeds_as_keras_has_them():
    # an int seed: the same values at every call; a SeedGenerator: a new draw per call, a fixed stream
    np.testing.assert_array_equal(random.normal((5,), seed=11), random.normal((5,), seed=11))
    a, b = random.SeedGenerator(42), random.SeedGenerator(42)
    first = random.uniform((5,), seed=a)
    assert not np.array_equal(first, random.uniform((5,), seed=a))
    np.testing.assert_array_equal(first, random.uniform((5,), seed=b))
    np.testing.assert_array_equal(a.state, [42, 2])
    assert random.SeedGenerator.from_config(a.get_config()).state.tolist() == [42, 0]
    with pytest.raises(ValueError, match="seed"):
        random.normal((2,), seed="x")
    with pytest.raises(ValueError, match="floating"):
        random.uniform((2,), dtype="int32")
    with pytest.raises(ValueError, match="integer"):
        random.randint((2,), 0, 3, dtype="float32")


def test_draws_repeat_under_set_random_seed():
    def draws():
        convx.utils.set_random_seed(123)
        generator = random.SeedGenerator()  # its seed from Python's random, as Keras draws it
        return [random.normal((4,)), random.uniform((4,), seed=generator), random.randint((4,), 0, 100),
                random.dropout(np.ones((4, 4), np.float32), 0.5), random.shuffle(np.arange(10)),
                random.categorical(np.zeros((2, 5), np.float32), 3)]

    for a, b in zip(draws(), draws()):
        np.testing.assert_array_equal(a, b)


class NoisyDense(convx.layers.Layer):
    """A custom layer as Keras documents random ops in layers: its own SeedGenerator, dropout in training."""

    def __init__(self, units, rate, **kwargs):
        super().__init__(**kwargs)
        self.units, self.rate = units, rate
        self.seed_generator = random.SeedGenerator(1337)

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform")

    def call(self, inputs, training=False):
        if training:
            inputs = random.dropout(inputs, self.rate, seed=self.seed_generator)
        return ops.matmul(inputs, self.w)


def _noisy_model():
    inputs = convx.Input(shape=(6,))
    model = convx.Model(inputs, NoisyDense(1, 0.3)(convx.layers.Dense(16, activation="relu")(inputs)))
    model.compile(optimizer=convx.optimizers.Adam(0.01), loss="mse")
    return model


def test_a_custom_layer_with_random_dropout_trains_reproducibly(rng):
    x = rng.normal(size=(256, 6)).astype(np.float32)
    y = (x[:, :1] - 2 * x[:, 1:2]).astype(np.float32)
    runs = []
    for _ in range(2):
        convx.utils.set_random_seed(0)
        model = _noisy_model()
        history = model.fit(x, y, batch_size=32, epochs=8, verbose=0)
        runs.append((history.history["loss"], model.get_weights(), model.predict(x, verbose=0)))
    losses = runs[0][0]
    assert losses[-1] < 0.5 * losses[0]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    # inference has no dropout: predict is deterministic and equals the call on arrays
    model = _noisy_model()
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    np.testing.assert_allclose(model.predict(x, verbose=0), model(x), rtol=1e-6)


def test_dropout_gradient_is_the_scaled_mask(rng):
    layer = NoisyDense(3, 0.5)
    layer.build((None, 4))
    inputs = convx.Input(shape=(4,))
    model = convx.Model(inputs, layer(inputs))
    model.compile(optimizer=convx.optimizers.SGD(1.0), loss="mse")
    x = rng.normal(size=(8, 4)).astype(np.float32)
    w0 = layer.w.value.copy()
    generator_state = layer.seed_generator.state.copy()
    model.fit(x, np.zeros((8, 3), np.float32), batch_size=8, epochs=1, shuffle=False, verbose=0)
    # the same mask, redrawn from the generator's state before the step
    mask = np.random.default_rng(generator_state).uniform(size=x.shape) < 0.5
    xd = x * mask / 0.5
    grad = xd.T @ (2 * (xd @ w0) / (8 * 3))
    np.testing.assert_allclose(layer.w.value, w0 - grad, rtol=1e-4, atol=1e-6)
