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


def test_get_config_round_trip_and_saving_with_custom_objects(tmp_path):
    layers = guide_layers(convx, ops)
    deferred = layers["DeferredLinear"](64)
    rebuilt = layers["DeferredLinear"].from_config(deferred.get_config())
    assert rebuilt.units == 64 and rebuilt.get_config()["units"] == 64

