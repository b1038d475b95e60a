"""Pin Keras 3's training of the guide's custom layers (tests/layers/guide_layers.py) as test data.

Run with a Python that has TensorFlow and Keras 3 (``KERAS_BACKEND=tensorflow``)::

    python tests/layers/make_keras_custom_layers_reference.py

writes ``tests/layers/data/keras_custom_layers.npz``: for each model, the initial weights (drawn here,
set on the Keras model; convx sets the same), the training data, the per-epoch losses of
``fit(..., batch_size=16, epochs=3, shuffle=False)`` with SGD(0.05), the final weights and predictions.
Also the guide's eager ``ComputeSum`` results and weight lists.
"""

import os
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
from keras import ops  # noqa: E402

from guide_layers import guide_layers, guide_models, training_data  # noqa: E402

EPOCHS, BATCH, LR = 3, 16, 0.05


def main():
    out = {}
    rng = np.random.default_rng(2026)
    for name, model, loss in guide_models(keras, ops):
        initial = [rng.normal(scale=0.3, size=w.shape).astype(np.float32) for w in model.get_weights()]
        x, y = training_data(name, rng)
        model.set_weights(initial)
        model.compile(optimizer=keras.optimizers.SGD(LR), loss=loss)
        history = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0)
        out[f"{name}/x"], out[f"{name}/y"] = x, y
        out[f"{name}/loss"] = np.array(history.history["loss"])
        out[f"{name}/predict"] = model.predict(x, verbose=0)
        out[f"{name}/paths"] = np.array([w.path for w in model.weights])
        out[f"{name}/trainable"] = np.array([w.trainable for w in model.weights])
        for i, (w0, w1) in enumerate(zip(initial, model.get_weights())):
            out[f"{name}/initial/{i}"], out[f"{name}/final/{i}"] = w0, w1
    layers = guide_layers(keras, ops)
    my_sum = layers["ComputeSum"](2)
    x = ops.ones((2, 2))
    out["compute_sum/first"] = ops.convert_to_numpy(my_sum(x))
    out["compute_sum/second"] = ops.convert_to_numpy(my_sum(x))
    out["compute_sum/counts"] = np.array([len(my_sum.weights), len(my_sum.non_trainable_weights),
                                          len(my_sum.trainable_weights)])
    np.savez_compressed(os.path.join(os.path.dirname(__file__), "data", "keras_custom_layers.npz"), **out)


if __name__ == "__main__":
    main()
