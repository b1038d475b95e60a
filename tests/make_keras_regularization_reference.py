"""Writes data/keras_regularization.npz (a small model with weight/activity regularizers and
constraints) and data/keras_activation_training.npz (a model of the new activations and activation
layers), both trained by Keras 3 (TensorFlow backend), for tests/test_regularizers.py and
tests/layers/test_activation_layers.py.

Run with the TensorFlow environment (not convx's):
    /work/venvs/tf/bin/python tests/make_keras_regularization_reference.py
The models are built by ``build(keras)`` and ``build_activations(keras)``, which the tests call with
``convx`` too.
"""

import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def build(k):
    """The model, for ``k`` = keras or convx."""
    L, R, C = k.layers, k.regularizers, k.constraints
    inputs = k.Input((6,))
    h = L.Dense(5, activation="tanh", kernel_regularizer=R.L2(0.05), bias_regularizer=R.L1(0.02),
                kernel_constraint=C.MaxNorm(0.8), activity_regularizer=R.L1L2(0.01, 0.02))(inputs)
    h = L.Dense(4, kernel_regularizer="l2", bias_constraint=C.NonNeg())(h)
    h = L.PReLU(alpha_initializer=k.initializers.Constant(0.1), alpha_regularizer=R.L2(0.01))(h)
    h = L.ActivityRegularization(l1=0.001, l2=0.002)(h)
    outputs = L.Dense(3, activation="softmax", kernel_regularizer=R.L1L2(l1=0.01, l2=0.03),
                      kernel_constraint=C.UnitNorm())(h)
    return k.Model(inputs, outputs)


def build_activations(k):
    """Dense layers with gelu / swish / mish / selu / hard_silu activations and the activation layers."""
    L = k.layers
    inputs = k.Input((6,))
    h = L.Dense(8, activation="gelu")(inputs)
    h = L.Dense(8, activation="swish")(h)
    h = L.LeakyReLU(negative_slope=0.2)(h)
    h = L.Dense(8, activation="mish")(h)
    h = L.ELU(alpha=0.7)(h)
    h = L.Dense(8, activation="selu")(h)
    h = L.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.05)(h)
    h = L.Dense(8, activation="hard_silu")(h)
    h = L.PReLU(alpha_initializer=k.initializers.Constant(0.25))(h)
    outputs = L.Dense(3, activation="softmax")(h)
    return k.Model(inputs, outputs)


def data():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 6)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    return x, y


def initial_weights(model):
    rng = np.random.default_rng(11)
    return [(0.6 * rng.standard_normal(w.shape)).astype(np.float32) if "alpha" not in w.path
            else np.full(w.shape, 0.1, np.float32) for w in model.weights]


def _train_activations(keras):
    model = build_activations(keras)
    model.set_weights(initial_weights(model))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    x, y = data()
    history = model.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0)
    out = {"loss": np.array(history.history["loss"]), "predict": model.predict(x, verbose=0)}
    for i, w in enumerate(model.get_weights()):
        out[f"w{i}"] = w
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "keras_activation_training.npz")
    np.savez(path, **out)
    print("wrote", path, out["loss"])


def main():
    import keras

    _train_activations(keras)
    model = build(keras)
    model.set_weights(initial_weights(model))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    x, y = data()
    history = model.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0)
    evaluated = model.evaluate(x, y, verbose=0)
    model(x)  # an eager call: model.losses holds this call's activity penalties
    out = {"loss": np.array(history.history["loss"]), "eval": np.array(evaluated),
           "losses": np.array([float(v) for v in model.losses]), "keras_version": np.array(keras.__version__)}
    for i, w in enumerate(model.get_weights()):
        out[f"w{i}"] = w
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "keras_regularization.npz")
    np.savez(path, **out)
    print("wrote", path, out["loss"], out["eval"])


if __name__ == "__main__":
    main()
