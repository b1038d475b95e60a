"""Helpers shared by the benchmark workers (standard library only at import time).

A worker is started as ``python <framework>_worker.py '<json spec>'`` and prints
one line ``BENCH_RESULT <json>`` on stdout. Frameworks are imported inside the
case functions, after the thread settings, so that the ``import`` case sees a
fresh interpreter and the thread environment is in place before any runtime
starts its pools.
"""

import gzip
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

RESULT_PREFIX = "BENCH_RESULT "

# The seed model's conv layers and a ResNet-style layer:
# (batch, height, width, c_in, c_out, kernel, padding, need_dx).
# The seed's first layer needs no input gradient in training, so it is timed without one.
CONV_LAYERS = {
    "56x56x64->64 same": (32, 56, 56, 64, 64, 3, "same", True),
    "seed1 28x28x1->32": (32, 28, 28, 1, 32, 3, "valid", False),
    "seed2 13x13x32->64": (32, 13, 13, 32, 64, 3, "valid", True),
    "seed3 5x5x64->128": (32, 5, 5, 64, 128, 3, "valid", True),
}

SEED_CLASSES = 10

# The model cases: CIFAR-shaped synthetic data (no downloads), 10 classes.
MODEL_CASES = ("residual", "inception", "resnet", "mobilenet", "vgg")
MODEL_INPUT = (32, 32, 3)
MODEL_CLASSES = 10
# residual blocks as (filters, strides): stride 2 in the first block of each new width
RESIDUAL_BLOCKS = ((32, 1), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1))
# the inception block's branches as (filters, kernel size), concatenated in this order
INCEPTION_BRANCHES = ((64, 1), (96, 3), (32, 5))
INCEPTION_STEM = 64
# MobileNet-style blocks (depthwise 3x3 + BN + ReLU6, pointwise + BN + ReLU6) as (filters, strides)
MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1))
# VGG-style stages: two 3x3 'same' convolutions each, then 2x2 max pooling
VGG_STAGES = (32, 64, 128)


def conv_output_size(n, k, padding):
    """Spatial output length for stride 1, dilation 1."""
    return n if padding == "same" else n - k + 1


def conv_flops(layer):
    """Forward and backward FLOPs (multiply-adds count 2) of one ``CONV_LAYERS`` entry."""
    n, h, w, c_in, c_out, k, padding, need_dx = CONV_LAYERS[layer]
    oh, ow = conv_output_size(h, k, padding), conv_output_size(w, k, padding)
    forward = 2.0 * n * oh * ow * c_out * k * k * c_in
    # backward = weight gradient (+ input gradient), each as costly as the forward pass
    return forward, forward * (2 if need_dx else 1)


def load_mnist(data_dir, count, split="train"):
    """First ``count`` MNIST samples as float32 ``(count, 28, 28, 1)`` in [0, 1] and int64 labels.

    Read straight from the IDX files so that every framework (including a
    TensorFlow venv without convx) trains on the same samples.
    """
    prefix = "train" if split == "train" else "t10k"
    data_dir = Path(data_dir)
    with gzip.open(data_dir / f"{prefix}-images-idx3-ubyte.gz", "rb") as f:
        images = f.read(16 + count * 784)
    with gzip.open(data_dir / f"{prefix}-labels-idx1-ubyte.gz", "rb") as f:
        labels = f.read(8 + count)
    import numpy as np

    x = np.frombuffer(images, dtype=np.uint8, offset=16).reshape(-1, 28, 28, 1)
    y = np.frombuffer(labels, dtype=np.uint8, offset=8).astype(np.int64)
    if len(x) < count:
        raise ValueError(f"MNIST {split} holds {len(x)} samples, fewer than the {count} requested")
    return x.astype(np.float32) / 255.0, y


def synthetic_images(count, seed=0):
    """``count`` fixed-seed random images, float32 ``(count, 32, 32, 3)`` in [0, 1), and int64 labels in [0, 10).

    The same arrays in every framework's worker (NumPy's PCG64 stream is fixed for a seed).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.random((count,) + MODEL_INPUT, dtype=np.float32)
    y = rng.integers(0, MODEL_CLASSES, count, dtype=np.int64)
    return x, y


def keras_model(keras, name):
    """The `residual` or `inception` network, built with the Keras functional API of ``keras``.

    ``keras`` is the module (``keras`` itself, or ``convx`` used as ``import convx as keras``), so
    that convx and TensorFlow-Keras build the network from the same code.
    """
    layers = keras.layers
    inputs = keras.Input(shape=MODEL_INPUT)
    if name == "residual":
        x = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
        for filters, strides in RESIDUAL_BLOCKS:
            y = layers.Conv2D(filters, 3, strides=strides, padding="same", activation="relu")(x)
            y = layers.Conv2D(filters, 3, padding="same")(y)
            shortcut = layers.Conv2D(filters, 1, strides=strides)(x)  # a 1x1 projection in every block
            x = layers.Activation("relu")(layers.Add()([y, shortcut]))
    elif name == "inception":
        x = layers.Conv2D(INCEPTION_STEM, 3, padding="same", activation="relu")(inputs)
        x = layers.MaxPooling2D()(x)
        x = layers.Concatenate()([layers.Conv2D(filters, k, padding="same", activation="relu")(x)
                                  for filters, k in INCEPTION_BRANCHES])
        x = layers.MaxPooling2D()(x)
    elif name == "resnet":
        x = _conv_bn(layers, inputs, 32, 3, 1, "relu")
        width = 32
        for filters, strides in RESIDUAL_BLOCKS:
            y = _conv_bn(layers, x, filters, 3, strides, "relu")
            y = _conv_bn(layers, y, filters, 3, 1, None)
            # a 1x1 projection (+ BN) where the shape changes, the identity elsewhere
            shortcut = x if strides == 1 and filters == width else _conv_bn(layers, x, filters, 1, strides, None)
            x = layers.Activation("relu")(layers.Add()([y, shortcut]))
            width = filters
    elif name == "mobilenet":
        x = _conv_bn(layers, inputs, 32, 3, 2, "relu6")
        for filters, strides in MOBILENET_BLOCKS:
            x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False)(x)
            x = layers.ReLU(6.0)(layers.BatchNormalization()(x))
            x = _conv_bn(layers, x, filters, 1, 1, "relu6")
    elif name == "vgg":
        x = inputs
        for filters in VGG_STAGES:
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = layers.MaxPooling2D()(x)
        x = layers.Dense(128, activation="relu")(layers.Flatten()(x))
    else:
        raise ValueError(f"unknown model {name!r}; choose from {MODEL_CASES}")
    if name != "vgg":
        x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(MODEL_CLASSES, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def residual_block_layer(keras, ops):
    """The `residual` case's block as a custom Layer, written as a Keras 3 user writes one
    (``call()`` over sublayers and ``keras.ops``): the `residual_layer` case trains it against the
    same network of built-in layers."""

    class ResidualBlock(keras.layers.Layer):
        def __init__(self, filters, strides, **kwargs):
            super().__init__(**kwargs)
            self.conv_1 = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", activation="relu")
            self.conv_2 = keras.layers.Conv2D(filters, 3, padding="same")
            self.shortcut = keras.layers.Conv2D(filters, 1, strides=strides)

        def call(self, inputs):
            return ops.relu(self.conv_2(self.conv_1(inputs)) + self.shortcut(inputs))

    return ResidualBlock


def residual_layer_model(keras, ops):
    """The `residual` network with each block one custom ``ResidualBlock`` layer."""
    block = residual_block_layer(keras, ops)
    inputs = keras.Input(shape=MODEL_INPUT)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    for filters, strides in RESIDUAL_BLOCKS:
        x = block(filters, strides)(x)
    outputs = keras.layers.Dense(MODEL_CLASSES, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# The text CNN case (Kim 2014 shapes, examples/text_cnn.py): token indices in, a sigmoid out
TEXT_VOCAB, TEXT_LENGTH, TEXT_EMBEDDING, TEXT_FILTERS, TEXT_WIDTHS = 20000, 56, 128, 100, (3, 4, 5)


def synthetic_tokens(count, seed=0):
    """``count`` sequences of TEXT_LENGTH token indices (int32; 0 is padding, the tail of some rows) and 0/1 labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.integers(2, TEXT_VOCAB, (count, TEXT_LENGTH), dtype=np.int32)
    lengths = rng.integers(10, TEXT_LENGTH + 1, count)
    x[np.arange(TEXT_LENGTH) >= lengths[:, None]] = 0
    return x, rng.integers(0, 2, count).astype(np.float32)


def keras_text_cnn(keras):
    """Embedding -> Conv1D widths 3/4/5 (relu) -> GlobalMaxPooling1D -> Concatenate -> Dropout -> Dense(1, sigmoid)."""
    layers = keras.layers
    inputs = keras.Input(shape=(TEXT_LENGTH,), dtype="int32")
    embedded = layers.Embedding(TEXT_VOCAB, TEXT_EMBEDDING)(inputs)
    branches = [layers.GlobalMaxPooling1D()(layers.Conv1D(TEXT_FILTERS, w, activation="relu")(embedded))
                for w in TEXT_WIDTHS]
    outputs = layers.Dense(1, activation="sigmoid")(layers.Dropout(0.5)(layers.Concatenate()(branches)))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def time_keras_text_cnn(keras, spec):
    """The `textcnn` case for a Keras-API framework: ``model.fit`` steps at spec['batch'] after a warm-up fit,
    then ``model.predict`` of spec['predict_batch'] other sequences, one batch per call."""
    batch, steps, warmup = spec["batch"], spec["steps"], spec["warmup"]
    x, y = synthetic_tokens(batch * (warmup + steps), seed=0)
    x_pred, _ = synthetic_tokens(spec["predict_batch"], seed=1)
    baseline = rss_mb()
    keras.utils.set_random_seed(0)
    model = keras_text_cnn(keras)
    model.fit(x[: batch * warmup], y[: batch * warmup], batch_size=batch, epochs=1, verbose=0)
    t0 = time.perf_counter()
    history = model.fit(x[batch * warmup:], y[batch * warmup:], batch_size=batch, epochs=1, verbose=0)
    seconds = time.perf_counter() - t0
    train = train_result(seconds, steps, batch, history.history["loss"][-1], baseline)
    predict = time_calls(lambda: model.predict(x_pred, batch_size=len(x_pred), verbose=0), spec["iters"],
                         spec["max_seconds"], warmup=2)
    return {"train": train, "predict": predict, "params": int(model.count_params())}


def _conv_bn(layers, x, filters, kernel, strides, activation):
    """Conv2D ('same', no bias) -> BatchNormalization -> activation ('relu', 'relu6' or None)."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    if activation == "relu6":
        return layers.ReLU(6.0)(x)
    return layers.Activation(activation)(x) if activation else x


def time_keras_model(keras, spec):
    """The `residual`/`inception` case for a Keras-API framework (convx or TensorFlow-Keras).

    Training: ``model.fit`` over ``spec['steps']`` steps at ``spec['batch']`` after a warm-up ``fit``
    of ``spec['warmup']`` steps (which also traces TF's train function); then ``model.predict`` on
    ``spec['predict_batch']`` other images, one batch per call.
    """
    batch, steps, warmup = spec["batch"], spec["steps"], spec["warmup"]
    x, y = synthetic_images(batch * (warmup + steps), seed=0)
    x_pred, _ = synthetic_images(spec["predict_batch"], seed=1)
    baseline = rss_mb()
    keras.utils.set_random_seed(0)
    model = keras_model(keras, spec["case"])
    model.fit(x[: batch * warmup], y[: batch * warmup], batch_size=batch, epochs=1, verbose=0)
    t0 = time.perf_counter()
    history = model.fit(x[batch * warmup:], y[batch * warmup:], batch_size=batch, epochs=1, verbose=0)
    seconds = time.perf_counter() - t0
    train = train_result(seconds, steps, batch, history.history["loss"][-1], baseline)
    predict = time_calls(lambda: model.predict(x_pred, batch_size=len(x_pred), verbose=0), spec["iters"],
                         spec["max_seconds"], warmup=2)
    return {"train": train, "predict": predict, "params": int(model.count_params())}


def rss_mb():
    """Current resident set size in MiB (from /proc; None where unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb():
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_calls(fn, iters, max_seconds, warmup=1):
    """Median and minimum wall time (s) of ``fn()`` over up to ``iters`` calls.

    Stops early once ``max_seconds`` have been spent (always at least 2 timed
    calls), so a slow machine cannot blow the suite's time budget.
    """
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < iters:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 2 and time.perf_counter() - start > max_seconds:
            break
    return {"median_s": statistics.median(times), "min_s": min(times), "calls": len(times)}


def train_result(seconds, steps, batch, final_loss, baseline_rss):
    """The fields every framework's training case reports."""
    step = seconds / steps
    return {
        "s_per_step": step,
        "samples_per_s": batch / step,
        "steps": steps,
        "final_loss": float(final_loss),
        "rss_baseline_mb": baseline_rss,
        "rss_peak_mb": peak_rss_mb(),
    }


def alternate_threads(run_chunk, set_threads, chunks, steps):
    """1- and 2-thread training time per step, the counts alternating chunk by chunk.

    ``run_chunk(i)`` trains ``steps`` steps on the i-th slice of the data and
    ``set_threads(n)`` changes the framework's thread count in place. Chunk 0
    is a warm-up at 2 threads; then 2 * ``chunks`` chunks run with 1, 2, 2, 1,
    1, 2, ... threads (neither count always first), so that both counts see
    the same drifts of a shared machine (here up to ~30% over seconds), which
    two separate processes do not. Returns the median ms per step of each
    count, their ratio (the speed-up) and every chunk's figure.
    """
    set_threads(2)
    run_chunk(0)
    times = {1: [], 2: []}
    for chunk in range(2 * chunks):
        threads = (1, 2)[(chunk + chunk // 2) % 2]
        set_threads(threads)
        t0 = time.perf_counter()
        run_chunk(chunk + 1)
        times[threads].append(1e3 * (time.perf_counter() - t0) / steps)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    return {"ms_per_step": {"1": one, "2": two}, "speedup": one / two,
            "chunk_ms_per_step": {"1": times[1], "2": times[2]}}


def time_imports(modules):
    """Seconds to import numpy, then ``modules`` on top of it, in this (fresh) process."""
    t0 = time.perf_counter()
    import numpy  # noqa: F401

    t1 = time.perf_counter()
    for name in modules:
        __import__(name)
    t2 = time.perf_counter()
    return {"numpy_s": t1 - t0, "extra_s": t2 - t1}


def run(cases, versions):
    """Worker entry point: run ``cases[spec['case']](spec)`` and print the result line.

    ``versions`` is called after the case (so that it never imports a framework
    before the case has timed its import) and its dict is added under ``'versions'``.
    """
    spec = json.loads(sys.argv[1])
    case = cases.get(spec["case"])
    if case is None:
        raise SystemExit(f"this worker has no case {spec['case']!r}; it has {sorted(cases)}")
    result = case(spec)
    result["versions"] = versions()
    result["pid"] = os.getpid()
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
