"""TensorFlow-Keras reference side of the benchmarks; run by benchmarks/run.py.

Runs under the interpreter given by ``run.py --tf-python`` (which need not have
convx or torch). Training and inference use the seed's own Keras code.
"""

import os
import time

import _common
import data_cases

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tf(threads):
    import tensorflow as tf

    # must happen before TensorFlow runs its first op
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def _seed_model(tf):
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(128, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(_common.SEED_CLASSES, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train(spec):
    tf = _import_tf(spec["threads"])
    batch, steps, warmup = spec["batch"], spec["steps"], spec["warmup"]
    x, y = _common.load_mnist(spec["data"], batch * (warmup + steps))
    baseline = _common.rss_mb()
    model = _seed_model(tf)
    # the warm-up traces the train function, which later fit calls reuse
    model.fit(x[: batch * warmup], y[: batch * warmup], batch_size=batch, epochs=1, verbose=0)
    timed_x, timed_y = x[batch * warmup:], y[batch * warmup:]
    t0 = time.perf_counter()
    history = model.fit(timed_x, timed_y, batch_size=batch, epochs=1, verbose=0)
    seconds = time.perf_counter() - t0
    return _common.train_result(seconds, steps, batch, history.history["loss"][-1], baseline)


def infer(spec):
    tf = _import_tf(spec["threads"])
    model = _seed_model(tf)
    x_all, _ = _common.load_mnist(spec["data"], max(b for b, _ in spec["points"]), split="test")
    points = {}
    for batch, api in spec["points"]:
        x = x_all[:batch]
        if api == "predict":
            fn = lambda x=x, batch=batch: model.predict(x, batch_size=batch, verbose=0)  # noqa: E731
        else:
            fn = lambda x=x: model(x, training=False)  # noqa: E731
        points[f"{batch}/{api}"] = _common.time_calls(fn, spec["iters"], spec["max_seconds"], warmup=2)
    return {"points": points}


def conv(spec):
    tf = _import_tf(spec["threads"])
    gen = tf.random.Generator.from_seed(0)
    layers = {}
    for name in spec["layers"]:
        n, h, w, c_in, c_out, k, padding, need_dx = _common.CONV_LAYERS[name]
        pad = padding.upper()
        x = gen.normal((n, h, w, c_in))
        kernel = gen.normal((k, k, c_in, c_out)) * 0.1
        bias = gen.normal((c_out,))
        y = tf.nn.conv2d(x, kernel, 1, pad)
        dz = gen.normal(y.shape)
        strides = [1, 1, 1, 1]

        def forward():
            return tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, pad), bias)

        def backward():
            dx = None
            if need_dx:
                dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=x.shape, filter=kernel, out_backprop=dz,
                                                    strides=strides, padding=pad)
            dk = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=kernel.shape, out_backprop=dz,
                                                 strides=strides, padding=pad)
            return dx, dk, tf.reduce_sum(dz, axis=(0, 1, 2))

        layers[name] = {"fwd": _common.time_calls(forward, spec["iters"], spec["max_seconds"]),
                        "bwd": _common.time_calls(backward, spec["iters"], spec["max_seconds"])}
    return {"layers": layers}


def model_case(spec):
    """The `residual` and `inception` cases: the functional-API network of _common.keras_model."""
    _import_tf(spec["threads"])
    import keras

    return _common.time_keras_model(keras, spec)


def text_cnn(spec):
    """The `textcnn` case: _common.keras_text_cnn."""
    _import_tf(spec["threads"])
    import keras

    return _common.time_keras_text_cnn(keras, spec)


def import_time(spec):
    return _common.time_imports(["tensorflow", "keras"])


def versions():
    import keras
    import numpy
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": numpy.__version__}


if __name__ == "__main__":
    _common.run({"train": train, "infer": infer, "conv": conv, "import": import_time, "textcnn": text_cnn,
                 "imagedir": lambda spec: data_cases.imagedir_tf(spec, _import_tf), **{case: model_case for case in _common.MODEL_CASES}}, versions)
