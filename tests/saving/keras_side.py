"""Run by the interoperability tests in a subprocess with TensorFlow-Keras 3: what Keras makes of convx's files.

``python keras_side.py FOLDER``: for every ``<name>.keras`` convx wrote in FOLDER
(inputs in ``<name>.inputs.npz``), Keras loads it, writes its predictions
(``<name>.keras_pred.npy``) and saves the model itself (``<name>.by_keras.keras``,
``.by_keras.weights.h5``), and loads convx's ``<name>.convx.weights.h5`` into a fresh
clone (predictions in ``<name>.keras_from_weights.npy``). For ``train.keras`` it also takes one
training step on ``train.data.npz`` and writes the weights after it
(``train.after_step.npz``). Files named ``native_*`` are models Keras builds itself.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

import keras  # noqa: E402


def _native(folder):
    L = keras.layers
    inputs = keras.Input((8, 8, 3), name="pixels")
    a = L.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    # no biases before the BatchNormalization: their gradients would be rounding noise, which RMSprop amplifies
    b = L.DepthwiseConv2D(3, padding="same", use_bias=False)(inputs)
    b = L.Conv2D(4, 1, use_bias=False)(b)
    x = L.Concatenate()([a, b])
    x = L.BatchNormalization()(x)
    inner = keras.Sequential([L.Dense(5, activation="tanh"), L.Dense(3)], name="head")
    outputs = inner(L.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.RMSprop(0.01, momentum=0.5), loss="mse")
    rng = np.random.default_rng(7)
    x, y = rng.random((6, 8, 8, 3), dtype=np.float32), rng.random((6, 3), dtype=np.float32)
    model.fit(x, y, batch_size=6, epochs=2, verbose=0)
    model.save(os.path.join(folder, "native_functional.keras"))
    model.save(os.path.join(folder, "native_functional.h5"))
    np.savez(os.path.join(folder, "native_functional.data.npz"), x=x, y=y)
    np.save(os.path.join(folder, "native_functional.keras_pred.npy"), model.predict(x, verbose=0))
    model.train_on_batch(x, y)
    np.savez(os.path.join(folder, "native_functional.after_step.npz"), *[w.numpy() for w in model.weights])


def main(folder):
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".keras") or ".by_keras" in name or name.startswith("native_"):
            continue
        stem = name[:-len(".keras")]
        model = keras.models.load_model(os.path.join(folder, name))
        with np.load(os.path.join(folder, stem + ".inputs.npz")) as data:
            x = [data[key] for key in sorted(data.files, key=lambda k: int(k.split("_")[1]))]
        np.save(os.path.join(folder, stem + ".keras_pred.npy"), model.predict(x if len(x) > 1 else x[0], verbose=0))
        weights_file = os.path.join(folder, stem + ".convx.weights.h5")
        if os.path.exists(weights_file):  # convx's weights file into a fresh Keras model of the architecture
            fresh = keras.models.clone_model(model)
            fresh.load_weights(weights_file)
            np.save(os.path.join(folder, stem + ".keras_from_weights.npy"),
                    fresh.predict(x if len(x) > 1 else x[0], verbose=0))
        model.save(os.path.join(folder, stem + ".by_keras.keras"))
        model.save_weights(os.path.join(folder, stem + ".by_keras.weights.h5"))
        if stem == "train":
            with np.load(os.path.join(folder, "train.data.npz")) as data:
                model.train_on_batch(data["x"], data["y"])
            np.savez(os.path.join(folder, "train.after_step.npz"), *[w.numpy() for w in model.weights],
                     iterations=model.optimizer.iterations.numpy())
    _native(folder)


if __name__ == "__main__":
    main(sys.argv[1])
