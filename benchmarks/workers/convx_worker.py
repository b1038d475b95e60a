"""convx side of the benchmarks (see benchmarks/README.md); run by benchmarks/run.py."""

import time

import _common
import data_cases


def _seed_model(convx):
    from convx import layers

    model = convx.Sequential([
        layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
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


def _import_convx(threads):
    import convx

    convx.set_num_threads(threads)
    return convx


def train(spec):
    convx = _import_convx(spec["threads"])
    batch, steps, warmup = spec["batch"], spec["steps"], spec["warmup"]
    x, y = _common.load_mnist(spec["data"], batch * (warmup + steps))
    baseline = _common.rss_mb()
    model = _seed_model(convx)
    model.fit(x[: batch * warmup], y[: batch * warmup], batch_size=batch, epochs=1, verbose=0)
    timed_x, timed_y = x[batch * warmup:], y[batch * warmup:]
    t0 = time.perf_counter()
    history = model.fit(timed_x, timed_y, batch_size=batch, epochs=1, verbose=0)
    seconds = time.perf_counter() - t0
    return _common.train_result(seconds, steps, batch, history.history["loss"][-1], baseline)


def threads(spec):
    """1 vs 2 threads alternating in this process (see _common.alternate_threads)."""
    convx = _import_convx(2)
    batch, steps, chunks = spec["batch"], spec["steps"], spec["chunks"]
    per_chunk = batch * steps
    x, y = _common.load_mnist(spec["data"], per_chunk * (2 * chunks + 1))
    model = _seed_model(convx)

    def run_chunk(i):
        part = slice(i * per_chunk, (i + 1) * per_chunk)
        model.fit(x[part], y[part], batch_size=batch, epochs=1, verbose=0)

    return _common.alternate_threads(run_chunk, convx.set_num_threads, chunks, steps)


def infer(spec):
    convx = _import_convx(spec["threads"])
    model = _seed_model(convx)
    x_all, _ = _common.load_mnist(spec["data"], max(b for b, _ in spec["points"]), split="test")
    points = {}
    for batch, api in spec["points"]:
        x = x_all[:batch]
        if api == "predict":
            fn = lambda x=x, batch=batch: model.predict(x, batch_size=batch, verbose=0)  # noqa: E731
        else:
            fn = lambda x=x: model.predict_on_batch(x)  # noqa: E731
        points[f"{batch}/{api}"] = _common.time_calls(fn, spec["iters"], spec["max_seconds"], warmup=2)
    return {"points": points}


def onnx_runtime(spec):
    """convx predict vs ONNX Runtime on the model's exported file, same process, alternating rounds."""
    import os
    import statistics
    import tempfile

    import onnxruntime

    convx = _import_convx(spec["threads"])
    model = _seed_model(convx)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = spec["threads"], 1
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "seed.onnx")
        model.export(path, format="onnx")
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x_all, _ = _common.load_mnist(spec["data"], max(spec["batches"]), split="test")
    points = {}
    for batch in spec["batches"]:
        x = x_all[:batch]
        calls = {"predict": lambda x=x, b=batch: model.predict(x, batch_size=b, verbose=0),
                 "predict_on_batch": lambda x=x: model.predict_on_batch(x),
                 "ort": lambda x=x: session.run(None, {name: x})}
        medians = {key: [] for key in calls}
        for _ in range(3):  # rounds alternate the engines, so both see the same drifts of the machine
            for key, fn in calls.items():
                medians[key].append(_common.time_calls(fn, spec["iters"], spec["max_seconds"] / 3, warmup=2)["median_s"])
        points[str(batch)] = {key: statistics.median(values) for key, values in medians.items()}
    return {"points": points, "onnxruntime": onnxruntime.__version__}


def conv(spec):
    _import_convx(spec["threads"])
    import numpy as np
    from convx._kernels.conv import conv2d_backward, conv2d_forward

    rng = np.random.default_rng(0)
    layers = {}
    for name in spec["layers"]:
        n, h, w, c_in, c_out, k, padding, need_dx = _common.CONV_LAYERS[name]
        x = rng.standard_normal((n, h, w, c_in), dtype=np.float32)
        kernel = rng.standard_normal((k, k, c_in, c_out), dtype=np.float32) * 0.1
        bias = rng.standard_normal(c_out, dtype=np.float32)
        y = conv2d_forward(x, kernel, bias, padding=padding)
        dz = rng.standard_normal(y.shape, dtype=np.float32)
        fwd = _common.time_calls(lambda: conv2d_forward(x, kernel, bias, padding=padding),
                                 spec["iters"], spec["max_seconds"])
        bwd = _common.time_calls(lambda: conv2d_backward(x, kernel, dz, padding=padding, need_dx=need_dx),
                                 spec["iters"], spec["max_seconds"])
        layers[name] = {"fwd": fwd, "bwd": bwd}
    return {"layers": layers}


def gemm(spec):
    _import_convx(spec["threads"])
    import numpy as np
    from convx._kernels.gemm import gemm as cx_gemm

    rng = np.random.default_rng(0)
    sizes = {}
    for n in spec["sizes"]:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        c = np.empty((n, n), dtype=np.float32)
        sizes[str(n)] = _common.time_calls(lambda: cx_gemm(a, b, c=c), spec["iters"], spec["max_seconds"])
    return {"sizes": sizes}


def model_case(spec):
    """The `residual` and `inception` cases: the functional-API network of _common.keras_model, built
    from ``convx`` exactly as Keras code does from ``keras`` (``import convx as keras``)."""
    keras = _import_convx(spec["threads"])
    return _common.time_keras_model(keras, spec)


def compression(spec):
    """The seed model, trained briefly, then side by side in this process at one batch size: its float
    predict, its int8 form (model.quantize, static calibration), ONNX Runtime's float and static int8
    (quantize_static) runs of the same network, and the model with half its filters removed
    (prune_filters). Rounds alternate the contenders, each round starting with the next one;
    medians (and minima) per contender."""
    import tempfile

    import numpy as np

    import onnx_int8

    convx = _import_convx(spec["threads"])
    x, y = _common.load_mnist(spec["data"], spec["train_samples"])
    x_test, _ = _common.load_mnist(spec["data"], spec["batch"], split="test")
    convx.utils.set_random_seed(0)
    model = _seed_model(convx)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    calibration = x[:spec["calibration_samples"]]
    filters = convx.pruning.prune_filters(model, 0.5)
    quantized = convx.models.clone_model(model)
    quantized.set_weights(model.get_weights())
    quantized.quantize("int8", calibration_data=calibration)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_int8.build_onnx(model, f"{tmp}/float.onnx")
        onnx_int8.quantize_onnx(f"{tmp}/float.onnx", f"{tmp}/int8.onnx", calibration.transpose(0, 3, 1, 2).copy())
        ort_float = onnx_int8.session(f"{tmp}/float.onnx", spec["threads"])
        ort_int8 = onnx_int8.session(f"{tmp}/int8.onnx", spec["threads"])
    batch = spec["batch"]
    nchw = np.ascontiguousarray(x_test.transpose(0, 3, 1, 2))
    contenders = {
        "float": lambda: model.predict(x_test, batch_size=batch, verbose=0),
        "int8": lambda: quantized.predict(x_test, batch_size=batch, verbose=0),
        "filters50": lambda: filters.predict(x_test, batch_size=batch, verbose=0),
        "ort_float": lambda: ort_float.run(None, {"x": nchw}),
        "ort_int8": lambda: ort_int8.run(None, {"x": nchw}),
    }
    agreement = float(np.mean(contenders["int8"]().argmax(1) == contenders["ort_int8"]()[0].argmax(1)))
    times = {name: [] for name in contenders}
    for name, fn in contenders.items():
        fn()  # warm-up
    names = list(contenders)
    for round_ in range(spec["rounds"]):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:  # each goes first in turn
            t0 = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - t0)
    from convx._kernels import quant

    return {"median_s": {name: sorted(t)[len(t) // 2] for name, t in times.items()},
            "min_s": {name: min(t) for name, t in times.items()},
            "int8_isa": quant.isa(), "argmax_agreement_with_ort": agreement}
def residual_layer(spec):
    """The `residual` network of built-in layers and the same network with each block a custom Layer
    (call() over sublayers and convx.ops, which the plan traces into its steps), timed in this process in
    alternating chunks of ``spec['steps']`` training steps, then of predict calls on
    ``spec['predict_batch']`` images: the ratios are what writing the block as a custom layer costs."""
    import numpy as np

    keras = _import_convx(spec["threads"])
    from convx import ops

    batch, steps, chunks = spec["batch"], spec["steps"], spec["chunks"]
    x, y = _common.synthetic_images(batch * steps, seed=0)
    keras.utils.set_random_seed(0)
    models = {"builtin": _common.keras_model(keras, "residual"), "custom": _common.residual_layer_model(keras, ops)}
    times = {name: [] for name in models}
    for model in models.values():
        model.fit(x[: batch * spec["warmup"]], y[: batch * spec["warmup"]], batch_size=batch, epochs=1, verbose=0)
    for _ in range(chunks):
        for name, model in models.items():
            t0 = time.perf_counter()
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
            times[name].append((time.perf_counter() - t0) / steps)
    predict_times = {name: [] for name in models}
    x_predict = x[: spec["predict_batch"]]
    for model in models.values():
        model.predict(x_predict, batch_size=len(x_predict), verbose=0)
    for _ in range(chunks * steps):
        for name, model in models.items():
            t0 = time.perf_counter()
            model.predict(x_predict, batch_size=len(x_predict), verbose=0)
            predict_times[name].append(time.perf_counter() - t0)
    result = {name: {"s_per_step": float(np.median(t)), "predict_s": float(np.median(predict_times[name])),
                     "params": int(models[name].count_params())} for name, t in times.items()}
    result["ratio"] = float(np.median(np.array(times["custom"]) / np.array(times["builtin"])))
    result["predict_ratio"] = float(np.median(np.array(predict_times["custom"]) / np.array(predict_times["builtin"])))
    return result


def text_cnn(spec):
    """The `textcnn` case: _common.keras_text_cnn built from ``convx`` as from ``keras``."""
    return _common.time_keras_text_cnn(_import_convx(spec["threads"]), spec)


def import_time(spec):
    return _common.time_imports(["convx"])


def info(spec):
    from convx._config import config_info

    return {"config": config_info()}


def versions():
    import numpy

    import convx

    return {"convx": convx.__version__, "numpy": numpy.__version__}


if __name__ == "__main__":
    _common.run({"train": train, "threads": threads, "infer": infer, "conv": conv, "gemm": gemm,
                 "import": import_time, "textcnn": text_cnn, "info": info, "onnx": onnx_runtime, "compression": compression,
                 "residual_layer": residual_layer,
                 "pipeline": lambda spec: data_cases.pipeline(spec, _import_convx, _seed_model),
                 "imagedir": data_cases.imagedir_convx, **{case: model_case for case in _common.MODEL_CASES}}, versions)
