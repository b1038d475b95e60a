"""Real MNIST: a short training run of the seed model must learn, and the example script must run."""

import runpy
from pathlib import Path

import pytest

import convx
from convx.datasets import _idx

REPO_ROOT = Path(__file__).resolve().parents[2]
REPO_DATA = REPO_ROOT / "data" / "mnist"
needs_mnist = pytest.mark.skipif(
    bool(_idx.missing_files(REPO_DATA)), reason=f"no MNIST copy in {REPO_DATA} (an sdist leaves data/ out)"
)


@needs_mnist
def test_seed_model_learns_mnist_in_one_short_epoch():
    (x_train, y_train), (x_test, y_test) = convx.datasets.mnist.load_data(path=REPO_DATA)
    x_train, y_train = x_train[:2000, ..., None] / 255.0, y_train[:2000]
    x_test, y_test = x_test[:1000, ..., None] / 255.0, y_test[:1000]
    convx.utils.set_random_seed(0)
    model = convx.Sequential([
        convx.layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        convx.layers.MaxPooling2D((2, 2)),
        convx.layers.Conv2D(64, (3, 3), activation="relu"),
        convx.layers.MaxPooling2D((2, 2)),
        convx.layers.Conv2D(128, (3, 3), activation="relu"),
        convx.layers.MaxPooling2D((2, 2)),
        convx.layers.Flatten(),
        convx.layers.Dense(128, activation="relu"),
        convx.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    # chance is 0.10 and a 2.30 loss; one pass over 2,000 images reaches about 0.8
    assert accuracy >= 0.70, (accuracy, history.history)
    assert loss < 1.0


@needs_mnist
def test_example_script_runs_and_reports_accuracy(capsys):
    example = runpy.run_path(str(REPO_ROOT / "examples" / "mnist_cnn.py"))
    accuracy = example["main"](["--train-samples", "32", "--test-samples", "16"])
    out = capsys.readouterr().out
    assert "Epoch 10/10" in out and f"Test accuracy: {accuracy:.4f}" in out
    assert 0.0 <= accuracy <= 1.0
