"""Custom layers written as Keras 3's subclassing guide writes them (tests/layers/guide_layers.py, the
import swapped to convx), trained by fit through the execution plan and compared with the same code
trained by Keras 3 from identical weights (pinned by make_keras_custom_layers_reference.py)."""

import os

import numpy as np
import pytest

import convx
from convx import ops
from guide_layers import guide_layers, guide_models

REFERENCE = os.path.join(os.path.dirname(__file__), "data", "keras_custom_layers.npz")


@pytest.fixture(scope="module")
def keras_reference():
    return np.load(REFERENCE)


def _trained(name, model, loss, ref):
    count = len(model.get_weights())
    model.set_weights([ref[f"{name}/initial/{i}"] for i in range(count)])
    model.compile(optimizer=convx.optimizers.SGD(0.05), loss=loss)
    history = model.fit(ref[f"{name}/x"], ref[f"{name}/y"], batch_size=16, epochs=3, shuffle=False, verbose=0)
    return history.history["loss"]


@pytest.mark.parametrize("name", ["linear_mlp", "add_loss", "non_trainable", "residual", "functional_ops",
                                  "subclassed_model"])
def test_guide_layers_train_as_in_keras(keras_reference, name):
    ref = keras_reference
    convx.utils.clear_session()
    models = {n: (m, loss) for n, m, loss in guide_models(convx, ops)}
    model, loss = models[name]
    assert [bool(w.trainable) for w in model.weights] == ref[f"{name}/trainable"].tolist()
    losses = _trained(name, model, loss, ref)
    np.testing.assert_allclose(losses, ref[f"{name}/loss"], rtol=2e-5)
    # the reference predicts, then reads the weights (predict updates ScaledSum's non-trainable total)
    np.testing.assert_allclose(model.predict(ref[f"{name}/x"], verbose=0), ref[f"{name}/predict"], rtol=1e-4,
                               atol=2e-6)
    for i, weight in enumerate(model.get_weights()):
        np.testing.assert_allclose(weight, ref[f"{name}/final/{i}"], rtol=1e-4, atol=2e-6, err_msg=f"weight {i}")


def test_compute_sum_as_the_guide_runs_it(keras_reference):
    my_sum = guide_layers(convx, ops)["ComputeSum"](2)
    x = np.ones((2, 2))
    np.testing.assert_array_equal(my_sum(x), keras_reference["compute_sum/first"])
    np.testing.assert_array_equal(my_sum(x), keras_reference["compute_sum/second"])
    counts = [len(my_sum.weights), len(my_sum.non_trainable_weights), len(my_sum.trainable_weights)]
    assert counts == keras_reference["compute_sum/counts"].tolist()


def test_linear_eagerly_and_its_weights():
    layers = guide_layers(convx, ops)
    linear = layers["Linear"](4, 2)
    y = linear(np.ones((2, 2)))
    np.testing.assert_allclose(y, np.ones((2, 2)) @ linear.w.value + linear.b.value, rtol=1e-6)
    assert [w is v for w, v in zip(linear.weights, [linear.w, linear.b])] == [True, True]
    mlp = layers["MLPBlock"]()
    assert mlp(np.ones((3, 64))).shape == (3, 1)
    assert len(mlp.weights) == 6 and len(mlp.trainable_weights) == 6


def test_add_loss_collects_like_keras():
    layers = guide_layers(convx, ops)
    outer = layers["OuterLayer"]()
    assert outer.losses == []
    outer(np.ones((2, 2)))
    np.testing.assert_allclose(outer.losses, [0.04])  # 1e-2 * sum(ones)
    outer(np.ones((2, 2)))
    assert len(outer.losses) == 1  # reset at the start of every top-level call


class Dense2(convx.layers.Layer):
    """A Dense written as a custom layer (its result must equal the built-in Dense's)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform",
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, inputs, training=None):
        return ops.relu(inputs @ self.kernel + self.bias)


def _pair(rng, make):
    convx.utils.clear_session()
    model = convx.Sequential([convx.Input(shape=(5,)), make(), convx.layers.Dense(2)])
    model.compile(optimizer=convx.optimizers.SGD(0.1), loss="mse")
    return model


def test_a_custom_dense_trains_as_the_built_in_one(rng):
    builtin = _pair(rng, lambda: convx.layers.Dense(4, activation="relu"))
    custom = _pair(rng, lambda: Dense2(4))
    custom.set_weights(builtin.get_weights())
    x, y = rng.normal(size=(32, 5)), rng.normal(size=(32, 2))
    for model in (builtin, custom):
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(builtin.get_weights(), custom.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_shared_and_frozen_custom_layers(rng):
    convx.utils.clear_session()
    shared = Dense2(3)
    a, b = convx.Input(shape=(3,)), convx.Input(shape=(3,))
    model = convx.Model([a, b], convx.layers.Add()([shared(a), shared(b)]))
    model.compile(optimizer=convx.optimizers.SGD(0.1), loss="mse")
    xa, xb, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    w0 = [w.copy() for w in model.get_weights()]
    model.train_on_batch([xa, xb], y)
    # the gradient of both calls, summed: one SGD step of the summed numerical gradient
    kernel, bias = w0
    za, zb = xa @ kernel + bias, xb @ kernel + bias
    out = np.maximum(za, 0) + np.maximum(zb, 0)
    dout = 2 * (out - y) / out.size
    grad_k = xa.T @ (dout * (za > 0)) + xb.T @ (dout * (zb > 0))
    np.testing.assert_allclose(model.get_weights()[0], kernel - 0.1 * grad_k, rtol=1e-4, atol=1e-6)
    shared.trainable = False
    before = model.get_weights()
    model.compile(optimizer=convx.optimizers.SGD(0.1), loss="mse")
    model.train_on_batch([xa, xb], y)
    for w0_, w1 in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w0_, w1)
    assert model.trainable_weights == [] and len(model.non_trainable_weights) == 2


class GuideTrainStep(convx.Model):
    """Keras 3's "Customizing what happens in fit()" train_step, in its PyTorch-backend form."""

    def __init__(self):
        super().__init__()
        self.hidden = convx.layers.Dense(8, activation="relu")
        self.out = convx.layers.Dense(1)

    def call(self, inputs):
        return self.out(self.hidden(inputs))

    def train_step(self, data):
        x, y = data
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        trainable_weights = [v for v in self.trainable_weights]
        gradients = [v.grad for v in trainable_weights]
        self.optimizer.apply(gradients, trainable_weights)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


class OwnLossTrainStep(GuideTrainStep):
    """A train_step computing its loss with convx.ops (compiled without a loss), and a test_step."""

    def train_step(self, data):
        x, y = data
        loss = ops.mean(ops.square(self(x, training=True) - y))
        loss.backward()
        self.optimizer.apply([v.grad for v in self.trainable_weights], self.trainable_weights)
        return {"loss": loss}

    def test_step(self, data):
        x, y = data
        return {"loss": ops.mean(ops.square(self(x, training=False) - y)), "seen": len(x)}


class PlainStep(GuideTrainStep):
    train_step = convx.Model.train_step


def test_train_step_overrides_train_as_the_built_in_step(rng):
    x, y = rng.normal(size=(40, 6)).astype(np.float32), rng.normal(size=(40, 1)).astype(np.float32)
    results = {}
    for cls, loss in ((PlainStep, "mse"), (GuideTrainStep, "mse"), (OwnLossTrainStep, None)):
        convx.utils.clear_session()
        convx.utils.set_random_seed(3)
        model = cls()
        model.compile(optimizer=convx.optimizers.SGD(0.05), loss=loss, metrics=["mae"] if loss else None)
        history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, validation_data=(x, y))
        results[cls.__name__] = (model.get_weights(), history.history)
    plain_w, plain_h = results["PlainStep"]
    guide_w, guide_h = results["GuideTrainStep"]
    own_w, own_h = results["OwnLossTrainStep"]
    assert guide_h == plain_h  # same logs, same weights, bit for bit
    for a, b, c in zip(plain_w, guide_w, own_w):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)
    assert len(own_h["loss"]) == 2  # the last step's loss (no tracker): what the override returned
    assert own_h["val_seen"] == [8.0, 8.0] and "val_loss" in own_h


def test_get_config_round_trip():
    layers = guide_layers(convx, ops)
    deferred = layers["DeferredLinear"](64, name="lin")
    rebuilt = layers["DeferredLinear"].from_config(deferred.get_config())
    assert rebuilt.units == 64 and rebuilt.name == "lin" and rebuilt.get_config() == deferred.get_config()


def test_saving_custom_layers_registered_or_through_custom_objects(rng, tmp_path):
    convx.utils.clear_session()
    layers = guide_layers(convx, ops)
    block = convx.saving.register_keras_serializable(package="GuideTest")(layers["ResidualBlock"])
    linear = layers["DeferredLinear"]  # not registered: found through custom_objects only
    inputs = convx.Input(shape=(6, 6, 4))
    x = convx.layers.GlobalAveragePooling2D()(block(4)(inputs))
    model = convx.Model(inputs, linear(3, name="head")(x))
    model.compile(optimizer="adam", loss="mse")
    data = rng.normal(size=(4, 6, 6, 4)).astype(np.float32)
    model.fit(data, rng.normal(size=(4, 3)), verbose=0)
    path = str(tmp_path / "custom.keras")
    model.save(path)
    with pytest.raises(Exception, match="DeferredLinear"):
        convx.models.load_model(path)
    loaded = convx.models.load_model(path, custom_objects={"DeferredLinear": linear})
    np.testing.assert_array_equal(loaded.predict(data, verbose=0), model.predict(data, verbose=0))
    assert len(loaded.weights) == len(model.weights) == 6
