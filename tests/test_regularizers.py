"""convx.regularizers, convx.constraints, Layer.add_weight, and regularization counted in training as Keras 3 does."""

import os
import sys

import numpy as np
import pytest

import convx
from convx import constraints as C
from convx import layers as L
from convx import regularizers as R
from gradcheck import check_gradient

sys.path.insert(0, os.path.dirname(__file__))
from make_keras_regularization_reference import build, data, initial_weights  # noqa: E402


# ----- against Keras 3.15.1 -----------------------------------------------------------------------------------------

def test_training_with_regularizers_and_constraints_matches_keras():
    """make_keras_regularization_reference.py trained the same model (Dense with L2/L1 weight penalties, MaxNorm,
    NonNeg and UnitNorm constraints, an L1L2 activity regularizer, PReLU with an alpha penalty,
    ActivityRegularization) in Keras 3.15.1 from the same weights with SGD(0.1): the logged losses (penalties
    included), the evaluated loss, model.losses and the final weights agree to 1e-5."""
    ref = np.load(os.path.join(os.path.dirname(__file__), "data", "keras_regularization.npz"))
    model = build(convx)
    model.set_weights(initial_weights(model))
    model.compile(optimizer=convx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    x, y = data()
    history = model.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], ref["loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), ref["eval"], rtol=1e-5)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, ref[f"w{i}"], rtol=1e-5, atol=1e-6)
    model(x)
    np.testing.assert_allclose(model.losses, ref["losses"], rtol=1e-5, atol=1e-7)


def test_penalties_enter_the_logged_loss_and_the_gradient(rng):
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    plain = convx.Sequential([L.Dense(2, input_shape=(3,))])
    reg = convx.Sequential([L.Dense(2, input_shape=(3,), kernel_regularizer=R.L2(0.5))])
    reg.set_weights(plain.get_weights())
    for m in (plain, reg):
        m.compile(optimizer=convx.optimizers.SGD(0.1), loss="mse")
    kernel = plain.get_weights()[0]
    loss_plain = plain.train_on_batch(x, y)
    loss_reg = reg.train_on_batch(x, y)
    assert loss_reg == pytest.approx(loss_plain + 0.5 * float(np.sum(kernel.astype(np.float64) ** 2)), rel=1e-6)
    # the regularized step = the plain step - lr * 2 * 0.5 * kernel
    np.testing.assert_allclose(reg.get_weights()[0], plain.get_weights()[0] - 0.1 * kernel, rtol=1e-6, atol=1e-7)
    assert len(reg.losses) == 1 and not plain.losses


# ----- regularizers ------------------------------------------------------------------------------------------------

REGULARIZERS = [R.L1(0.3), R.L2(0.2), R.L1L2(0.1, 0.4), R.OrthogonalRegularizer(0.5), R.OrthogonalRegularizer(0.2, "columns")]


@pytest.mark.parametrize("regularizer", REGULARIZERS, ids=repr)
def test_regularizer_gradient_matches_finite_differences(rng, regularizer):
    x = rng.uniform(0.1, 1.0, (4, 3)) * rng.choice([-1.0, 1.0], (4, 3))
    grad = np.zeros_like(x)
    regularizer.add_gradient(x, grad, np.empty_like(x))
    f = (lambda: float(regularizer._parts(x)[3].__abs__().sum() * regularizer.factor * 0.5 / regularizer._parts(x)[4])) \
        if isinstance(regularizer, R.OrthogonalRegularizer) else (lambda: float(
            getattr(regularizer, "l1", 0.0) * np.abs(x).sum() + getattr(regularizer, "l2", 0.0) * np.square(x).sum()))
    check_gradient(f, x, grad, rtol=1e-5, atol=1e-8)


def test_regularizer_values_and_defaults():
    x = np.array([[1.0, -2.0], [3.0, 0.5]], np.float32)
    assert R.L1()(x) == pytest.approx(0.01 * 6.5) and R.L2()(x) == pytest.approx(0.01 * 14.25)
    assert R.L1L2()(x) == 0.0 and R.get("l1_l2")(x) == pytest.approx(0.01 * 6.5 + 0.01 * 14.25)
    assert R.get("l2").l2 == 0.01 and R.get("L1").l1 == 0.01 and R.get("l1l2").get_config() == {"l1": 0.0, "l2": 0.0}
    assert R.l1 is R.L1 and R.l2 is R.L2 and R.l1_l2 is R.L1L2
    rows = R.OrthogonalRegularizer(1.0)(np.eye(3, dtype=np.float32))
    assert rows == 0.0 and R.OrthogonalRegularizer(1.0)(np.ones((2, 2), np.float32)) == pytest.approx(1.0)


@pytest.mark.parametrize("regularizer", REGULARIZERS, ids=repr)
def test_regularizer_config_round_trip(regularizer):
    config = R.serialize(regularizer)
    assert config["class_name"] == type(regularizer).__name__
    clone = R.get(config)
    assert type(clone) is type(regularizer) and clone.get_config() == regularizer.get_config()


def test_regularizer_errors():
    with pytest.raises(ValueError, match="Invalid value for argument l2: expected a non-negative float.*l2=-1"):
        R.L2(-1)
    with pytest.raises(ValueError, match="l1=nan"):
        R.L1(float("nan"))
    with pytest.raises(ValueError, match="Could not interpret regularizer identifier: 'l3'"):
        R.get("l3")
    with pytest.raises(ValueError, match="Expected one of.*Received: mode=diag"):
        R.OrthogonalRegularizer(mode="diag")
    with pytest.raises(ValueError, match="must have rank 2"):
        R.OrthogonalRegularizer()(np.zeros((2, 2, 2)))


def test_a_regularizer_without_gradient_is_refused_at_fit(rng):
    m = convx.Sequential([L.Dense(2, input_shape=(3,), kernel_regularizer=lambda w: 0.1 * np.sum(w ** 2))])
    m.compile(optimizer="sgd", loss="mse")
    assert m.losses[0] > 0  # counted in model.losses
    with pytest.raises(ValueError, match="regularizer of weight 'dense(_[0-9]+)?/kernel'.*has no add_gradient"):
        m.fit(np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32), verbose=0)


# ----- constraints -------------------------------------------------------------------------------------------------

def _norms(w, axis):
    return np.sqrt(np.sum(w.astype(np.float64) ** 2, axis=axis, keepdims=True))


@pytest.mark.parametrize("constraint, expected", [
    (C.MaxNorm(0.7), lambda w: w * np.clip(_norms(w, 0), 0, 0.7) / (1e-7 + _norms(w, 0))),
    (C.MaxNorm(1.0, axis=[0, 1, 2]), lambda w: w * np.clip(_norms(w, (0, 1, 2)), 0, 1.0) / (1e-7 + _norms(w, (0, 1, 2)))),
    (C.UnitNorm(axis=1), lambda w: w / (1e-7 + _norms(w, 1))),
    (C.MinMaxNorm(0.5, 0.9, rate=0.5), lambda w: w * (0.5 * np.clip(_norms(w, 0), 0.5, 0.9) + 0.5 * _norms(w, 0))
     / (1e-7 + _norms(w, 0))),
    (C.NonNeg(), lambda w: np.maximum(w, 0)),
], ids=repr)
def test_constraints_match_keras_formulas_in_place_and_not(rng, constraint, expected):
    w = rng.standard_normal((3, 2, 4, 5)).astype(np.float32)
    want = expected(w)
    np.testing.assert_allclose(constraint(w), want, rtol=1e-6, atol=1e-7)
    inplace = w.copy()
    constraint.apply(inplace, np.empty_like(inplace))
    np.testing.assert_allclose(inplace, want, rtol=1e-6, atol=1e-7)
    clone = C.get(C.serialize(constraint))
    assert type(clone) is type(constraint) and clone.get_config() == constraint.get_config()


def test_constraint_names_and_errors():
    assert type(C.get("max_norm")) is C.MaxNorm and C.get("max_norm").get_config() == {"max_value": 2, "axis": 0}
    assert type(C.get("NonNeg")) is C.NonNeg and type(C.get(C.UnitNorm)) is C.UnitNorm and C.get(None) is None
    assert C.max_norm is C.MaxNorm and C.non_neg is C.NonNeg and C.unit_norm is C.UnitNorm
    with pytest.raises(ValueError, match="Could not interpret constraint identifier: 'max_nrom'"):
        C.get("max_nrom")


def test_constraints_apply_after_each_update(rng):
    m = convx.Sequential([L.Dense(3, input_shape=(4,), kernel_constraint=C.NonNeg(), bias_constraint="non_neg")])
    m.compile(optimizer=convx.optimizers.SGD(1.0), loss="mse")
    x = rng.standard_normal((16, 4)).astype(np.float32)
    m.fit(x, -10 * np.ones((16, 3), np.float32), epochs=2, verbose=0)
    assert all((w >= 0).all() for w in m.get_weights()) and np.any(m.get_weights()[0] == 0)


# ----- add_weight --------------------------------------------------------------------------------------------------

class _Scale(L.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w", regularizer="l2",
                                 constraint="non_neg")
        self.c = self.add_weight(shape=(2,), initializer=lambda shape, dtype: np.full(shape, 3.0, dtype),
                                 trainable=False, name="c")
        self.d = self.add_weight((2, 2), convx.initializers.Constant(5.0), "d")  # the former positional form
        self.e = self.add_weight((1,), "zeros", "float32", name="e")  # Keras' positional (shape, initializer, dtype)
        self.f = self.add_weight(name="f")


def test_add_weight_signature_and_variable_attributes():
    layer = _Scale(name="s")
    layer.build_for((None, 3))
    assert [w.path for w in layer.weights] == ["s/w", "s/c", "s/d", "s/e", "s/f"]
    assert type(layer.w.regularizer) is R.L2 and type(layer.w.constraint) is C.NonNeg
    assert layer.c.trainable is False and layer.c.value.tolist() == [3.0, 3.0] and layer.d.value.sum() == 20
    assert layer.f.shape == () and layer.f.dtype == np.float32 and layer.w.aggregation == "none"
    assert layer.losses == [pytest.approx(0.03)]


def test_add_weight_errors():
    layer = L.Layer()
    with pytest.raises(ValueError, match="`name` must be passed as a keyword argument"):
        layer.add_weight("kernel")
    with pytest.raises(ValueError, match="`shape` was passed both positionally and as a keyword argument"):
        layer.add_weight((2,), shape=(2,))
    with pytest.raises(TypeError, match="at most 3 positional arguments but 4 were given"):
        layer.add_weight((2,), "zeros", "float32", "x")
    with pytest.raises(ValueError, match="convx weights are float32; add_weight\\(\\) received dtype='float64'"):
        layer.add_weight(shape=(2,), dtype="float64")
    with pytest.raises(ValueError, match="Could not interpret initializer identifier: 'zeroes'"):
        layer.add_weight(shape=(2,), initializer="zeroes")


# ----- layers' config and saving -----------------------------------------------------------------------------------

def test_dense_config_keys_and_round_trip():
    dense = L.Dense(3, kernel_regularizer="l2", bias_regularizer=R.L1(0.2), activity_regularizer=R.L1L2(0.1, 0.2),
                    kernel_constraint=C.MaxNorm(3), bias_constraint="non_neg")
    config = dense.get_config()
    assert config["kernel_regularizer"]["class_name"] == "L2" and config["kernel_regularizer"]["config"] == {"l2": 0.01}
    assert config["kernel_constraint"]["config"] == {"max_value": 3, "axis": 0}
    assert config["activity_regularizer"]["class_name"] == "L1L2" and config["bias_constraint"]["class_name"] == "NonNeg"
    assert L.Dense.from_config(config).get_config() == config
    assert L.Dense(2).get_config()["kernel_regularizer"] is None


def test_a_saved_regularized_model_trains_on_identically(rng, tmp_path):
    model = build(convx)
    model.set_weights(initial_weights(model))
    model.compile(optimizer=convx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    x, y = data()
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = convx.saving.load_model(tmp_path / "m.keras")
    a = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history["loss"]
    b = loaded.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history["loss"]
    assert a == b
    for u, v in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_regularized_training_is_the_same_for_any_thread_count():
    from thread_identity import assert_same_for_any_thread_count

    x, y = data()

    def train():
        model = build(convx)
        model.set_weights(initial_weights(model))
        model.compile(optimizer=convx.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        loss = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history["loss"]
        return (np.array(loss),) + tuple(model.get_weights())

    assert_same_for_any_thread_count(train)
