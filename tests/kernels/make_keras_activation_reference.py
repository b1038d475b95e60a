"""Writes data/keras_activations.npz: Keras 3 (TensorFlow backend) activations and their gradients, float32.

Run with the TensorFlow environment (not convx's):
    /work/venvs/tf/bin/python tests/kernels/make_keras_activation_reference.py
Inputs: 64 values spread over [-8, 8] plus 0 and +-3 (hard_sigmoid's corners are avoided by
the gradient comparison), and a (4, 7) block for the row activations. Gradients are of
sum(f(x) * w) with a fixed w.
"""

import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

A = keras.activations
CASES = {
    "sigmoid": A.sigmoid, "tanh": A.tanh, "softplus": A.softplus, "softsign": A.softsign, "elu": A.elu,
    "elu_alpha_0.5": lambda x: A.elu(x, alpha=0.5), "selu": A.selu, "gelu": A.gelu,
    "gelu_tanh": lambda x: A.gelu(x, approximate=True), "silu": A.silu, "hard_sigmoid": A.hard_sigmoid,
    "hard_silu": A.hard_silu, "leaky_relu": A.leaky_relu, "leaky_relu_0.3": lambda x: A.leaky_relu(x, negative_slope=0.3),
    "relu6": A.relu6, "mish": A.mish, "exponential": A.exponential, "relu": A.relu,
    "relu_general": lambda x: A.relu(x, negative_slope=0.1, max_value=4.5, threshold=0.5),
    "softmax": A.softmax, "log_softmax": A.log_softmax,
}


def main():
    rng = np.random.default_rng(7)
    x = np.concatenate([np.linspace(-8, 8, 61), rng.uniform(-4, 4, 67)]).astype(np.float32).reshape(4, 32)
    w = rng.standard_normal(x.shape).astype(np.float32)
    out = {"x": x, "w": w, "keras_version": np.array(keras.__version__)}
    for name, fn in CASES.items():
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = fn(xt)
            s = tf.reduce_sum(y * w)
        out[name] = y.numpy()
        out[name + "_grad"] = tape.gradient(s, xt).numpy()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "keras_activations.npz")
    np.savez(path, **out)
    print("wrote", path, "Keras", keras.__version__)


if __name__ == "__main__":
    main()
