"""Compression of the seed MNIST model: int8 quantization, magnitude pruning and filter pruning.

Trains the example's model (examples/mnist_cnn.py), then measures what the README's compression
section reports: test accuracy of the float model, of its int8 form (static calibration on 1,000
training images, and dynamic), of the model pruned to 80% sparsity and fine-tuned, and of the
model with half its filters removed, fine-tuned; the saved files' sizes (and deflate-compressed
sizes for the pruned model); predict times at batch 256 in this process (medians, side by side).

Usage: python examples/mnist_compression.py [--epochs 10] [--finetune-epochs 2] [--seed 0] [--out DIR]
                                           [--model trained.keras]  (skip the training)
"""

import argparse
import os
import tempfile
import time
import zipfile

import numpy as np

import convx
from convx import pruning


def seed_model():
    layers = convx.layers
    return convx.Sequential([
        layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(128, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])


def compile_(model, learning_rate=1e-3):
    model.compile(optimizer=convx.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def accuracy(model, x, y):
    return float(np.mean(model.predict(x, batch_size=256, verbose=0).argmax(1) == y))


def saved_size(model, path, deflated=False):
    """Bytes of the saved file (uncompiled: weights only, no optimizer state), or of it deflated."""
    model.save(path)
    if not deflated:
        return os.path.getsize(path)
    with zipfile.ZipFile(path + ".zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.write(path, "model.keras")
    return os.path.getsize(path + ".zip")


def predict_times(models, x, rounds=15):
    """Median predict time (s) at batch 256 of each model, rounds alternating the models."""
    times = {name: [] for name in models}
    for model in models.values():
        model.predict(x, batch_size=256, verbose=0)
    for _ in range(rounds):
        for name, model in models.items():
            t0 = time.perf_counter()
            model.predict(x, batch_size=256, verbose=0)
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


def uncompiled_copy(model):
    copy = convx.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder for the saved models (default: a temporary one)")
    parser.add_argument("--model", default=None, help="a trained seed model (.keras) to start from")
    args = parser.parse_args(argv)
    out = args.out or tempfile.mkdtemp()
    convx.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = convx.datasets.mnist.load_data()
    x_train = (x_train / 255.0).astype(np.float32)[..., None]
    x_test = (x_test / 255.0).astype(np.float32)[..., None]
    report = {}

    if args.model:
        model = convx.models.load_model(args.model)
    else:
        model = compile_(seed_model())
        model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=2)
    float_model = uncompiled_copy(model)
    report["float accuracy"] = accuracy(float_model, x_test, y_test)
    float_size = saved_size(float_model, f"{out}/float.keras")
    float_deflated = saved_size(float_model, f"{out}/float.keras", deflated=True)

    # int8
    int8 = uncompiled_copy(model)
    int8.quantize("int8", calibration_data=x_train[:1000])
    report["int8 (static) accuracy"] = accuracy(int8, x_test, y_test)
    dynamic = uncompiled_copy(model)
    dynamic.quantize("int8")
    report["int8 (dynamic) accuracy"] = accuracy(dynamic, x_test, y_test)
    report["int8 file size ratio"] = float_size / saved_size(int8, f"{out}/int8.keras")
    restored = convx.models.load_model(f"{out}/int8.keras")
    report["int8 reloaded accuracy"] = accuracy(restored, x_test, y_test)

    # magnitude pruning to 80% sparsity, fine-tuned
    steps = -(-len(x_train) // 32)
    schedule = pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=steps, frequency=100)
    pruned = compile_(pruning.prune_low_magnitude(model, pruning_schedule=schedule), 3e-4)
    pruned.fit(x_train, y_train, epochs=args.finetune_epochs, batch_size=32, verbose=2,
               callbacks=[pruning.UpdatePruningStep()])
    stripped = pruning.strip_pruning(pruned)
    report["pruned sparsity"] = pruning.sparsity(stripped)
    report["pruned (80%) accuracy"] = accuracy(stripped, x_test, y_test)
    report["pruned deflated file ratio"] = float_deflated / saved_size(stripped, f"{out}/pruned.keras", deflated=True)
    report["float deflated file ratio (for reference)"] = float_size / float_deflated

    # half the filters removed, fine-tuned
    smaller = pruning.prune_filters(float_model, 0.5)
    report["filters 50% accuracy before fine-tuning"] = accuracy(smaller, x_test, y_test)
    compile_(smaller, 3e-4).fit(x_train, y_train, epochs=args.finetune_epochs, batch_size=32, verbose=2)
    smaller = uncompiled_copy(smaller)
    report["filters 50% accuracy after fine-tuning"] = accuracy(smaller, x_test, y_test)

    times = predict_times({"float": float_model, "int8": int8, "filters50": smaller}, x_test[:2560])
    report["predict b256 float ms (10 batches)"] = 1e3 * times["float"]
    report["int8 / float predict time"] = times["int8"] / times["float"]
    report["float / filters50 predict time (speed-up)"] = times["float"] / times["filters50"]
    for key, value in report.items():
        print(f"{key}: {value:.4f}")
    return report


if __name__ == "__main__":
    main()
