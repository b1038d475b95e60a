"""A custom layer's call() in the execution plan: traced into the steps of the layers and ops it calls
(convx.models.traced_call), so it runs as the same network written with built-in layers; calls a graph
cannot hold run as one taped step."""

import numpy as np
import pytest

import convx
from convx import ops
from convx.layers import base
from convx.ops.symbolic import VariableRead
from guide_layers import guide_layers

L = convx.layers


class Block(L.Layer):
    """The benchmarks' residual block (benchmarks/workers/_common.py) as a Keras user writes it."""

    def __init__(self, filters, strides, **kwargs):
        super().__init__(**kwargs)
        self.conv_1 = L.Conv2D(filters, 3, strides=strides, padding="same", activation="relu")
        self.conv_2 = L.Conv2D(filters, 3, padding="same")
        self.shortcut = L.Conv2D(filters, 1, strides=strides)

    def call(self, inputs):
        return ops.relu(self.conv_2(self.conv_1(inputs)) + self.shortcut(inputs))


def _residual(custom):
    inputs = convx.Input(shape=(12, 12, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    for filters, strides in ((8, 1), (16, 2)):
        if custom:
            x = Block(filters, strides)(x)
        else:
            y = L.Conv2D(filters, 3, strides=strides, padding="same", activation="relu")(x)
            y = L.Conv2D(filters, 3, padding="same")(y)
            x = L.Activation("relu")(L.Add()([y, L.Conv2D(filters, 1, strides=strides)(x)]))
    outputs = L.Dense(5, activation="softmax")(L.GlobalAveragePooling2D()(x))
    model = convx.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _step_types(model, training):
    plan = model._plan(training, training)
    return [(type(s).__name__, type(s.layer).__name__) for s in plan.steps]


def test_a_custom_block_runs_as_the_built_in_steps(rng):
    builtin, custom = _residual(False), _residual(True)
    assert _step_types(custom, True) == _step_types(builtin, True)
    assert _step_types(custom, False) == _step_types(builtin, False)
    custom.set_weights(builtin.get_weights())
    x = rng.normal(size=(20, 12, 12, 3)).astype(np.float32)
    y = rng.integers(0, 5, size=20)
    np.testing.assert_array_equal(custom.predict(x, verbose=0), builtin.predict(x, verbose=0))
    losses = [m.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"] for m in (builtin, custom)]
    np.testing.assert_array_equal(losses[0], losses[1])
    for a, b in zip(builtin.get_weights(), custom.get_weights()):
        np.testing.assert_array_equal(a, b)
    # at inference the block's tensors share the plan's arenas as the built-in layers' do
    assert all(s.arena is not None for s in custom._plan(False, False).steps if type(s.layer).__name__ == "Add")


def test_weights_read_by_ops_train_as_a_dense_layer(rng):
    linear = guide_layers(convx, ops)["Linear"]
    # one layer called twice (its weights' gradients summed), against a shared Dense
    shared, dense = linear(6, 6), L.Dense(6)
    models = []
    for layer in (shared, dense):
        inputs = convx.Input(shape=(6,))
        models.append(convx.Model(inputs, L.Dense(2)(layer(ops.tanh(layer(inputs))))))
    custom, builtin = models
    assert any(isinstance(s.layer, VariableRead) for s in custom._plan(True, False).steps)
    builtin.set_weights(custom.get_weights())
    x, y = rng.normal(size=(24, 6)).astype(np.float32), rng.normal(size=(24, 2)).astype(np.float32)
    for m in models:
        m.compile(optimizer=convx.optimizers.SGD(0.1), loss="mse")
    losses = [m.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0).history["loss"] for m in models]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    for a, b in zip(custom.get_weights(), builtin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


class ValueDependent(L.Layer):
    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, inputs):
        return inputs * 2.0 if float(ops.mean(inputs)) > 0 else inputs


class ExplicitInference(L.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dropout = L.Dropout(0.5)

    def call(self, inputs, training=None):
        return self.dropout(inputs, training=False) + 1.0


@pytest.mark.parametrize("name", ["ComputeSum", "ActivityRegularizationLayer", "ValueDependent",
                                  "ExplicitInference"])
def test_calls_a_graph_cannot_hold_run_as_one_taped_step(rng, name):
    layers = dict(guide_layers(convx, ops), ValueDependent=ValueDependent, ExplicitInference=ExplicitInference)
    layer = layers[name](4) if name == "ComputeSum" else layers[name]()
    inputs = convx.Input(shape=(4,))
    hidden = L.Dense(4)(inputs)
    model = convx.Model(inputs, L.Dense(1)(layer(hidden) if name != "ComputeSum" else hidden + layer(hidden)))
    model.compile(optimizer="sgd", loss="mse")
    assert any(s.layer is layer for s in model._plan(True, True).steps)
    history = model.fit(rng.normal(size=(16, 4)).astype(np.float32), rng.normal(size=(16, 1)).astype(np.float32),
                        epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_tracing_leaves_names_and_cached_plans_alone(rng):
    model = _residual(True)
    names, generation = dict(base._name_counts), base.Layer.trainable_generation
    model._plan(True, True), model._plan(False, False)
    assert dict(base._name_counts) == names and base.Layer.trainable_generation == generation
    plan = model._plan(True, True)
    model.fit(rng.normal(size=(8, 12, 12, 3)).astype(np.float32), rng.integers(0, 5, 8), verbose=0)
    assert model._plan(True, True) is plan  # the trace did not invalidate the plan cache


class SquarePenalty(L.Layer):
    """A layer whose add_loss is the model's whole objective."""

    def call(self, inputs):
        self.add_loss(ops.mean(ops.square(inputs)))
        return inputs


def _penalised(with_layer):
    convx.utils.set_random_seed(1)
    inputs = convx.Input(shape=(5,))
    y = L.Dense(3)(L.Dense(4, activation="tanh")(inputs))
    return convx.Model(inputs, SquarePenalty()(y) if with_layer else y)


def test_compile_without_a_loss_trains_on_add_loss(rng):
    # Keras: compile() without a loss, fit(x): the loss is sum(model.losses); here mean(y**2), which is the
    # mse against zeros of the same model without the layer
    x = rng.normal(size=(32, 5)).astype(np.float32)
    own, mse = _penalised(True), _penalised(False)
    mse.set_weights(own.get_weights())
    own.compile(optimizer=convx.optimizers.SGD(0.1))
    mse.compile(optimizer=convx.optimizers.SGD(0.1), loss="mse")
    zeros = np.zeros((32, 3), np.float32)
    losses = own.fit(x, batch_size=8, epochs=3, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(losses, mse.fit(x, zeros, batch_size=8, epochs=3, shuffle=False,
                                               verbose=0).history["loss"], rtol=1e-6)
    assert losses[-1] < losses[0]
    for a, b in zip(own.get_weights(), mse.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(own.evaluate(x, verbose=0), mse.evaluate(x, zeros, verbose=0), rtol=1e-6)
    plain = _penalised(False)
    plain.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="No loss to compute"):
        plain.fit(x, verbose=0)
