"""Tune a small CNN on Fashion-MNIST with scikit-learn, then train the best setting with callbacks.

1. GridSearchCV over the convolution filters and the learning rate on a subset of the
   training images (convx.wrappers.SKLearnClassifier, 2-fold cross-validation).
2. The best setting trained longer with EarlyStopping (restoring the best weights),
   ReduceLROnPlateau and ModelCheckpoint (the best model saved as a .keras file).
3. The training curves saved as a PNG (convx.utils.plot_history) and the test accuracy printed.

Needs scikit-learn and matplotlib (pip install 'convx-cnn[sklearn,plot]').

Usage: python examples/tune_fashion_mnist.py [--train-samples N] [--search-epochs E] [--epochs F] [--out DIR]
"""

import argparse
import os

import numpy as np

import convx
from convx import callbacks, layers


def load(train_samples, test_samples):
    """Flattened images in [0, 1] (scikit-learn takes 2-D X; the model reshapes them) and labels."""
    (x_train, y_train), (x_test, y_test) = convx.datasets.fashion_mnist.load_data()
    x_train = (x_train[:train_samples] / 255.0).astype(np.float32).reshape(-1, 28 * 28)
    x_test = (x_test[:test_samples] / 255.0).astype(np.float32).reshape(-1, 28 * 28)
    return (x_train, y_train[:train_samples]), (x_test, y_test[:test_samples])


def make_model(X, y, filters=32, learning_rate=1e-3):
    """The CNN the search builds for ``X`` (N, 784) and one-hot ``y`` (N, 10)."""
    model = convx.Sequential([
        convx.Input((X.shape[1],)),
        layers.Reshape((28, 28, 1)),
        layers.Conv2D(filters, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(2 * filters, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(y.shape[1], activation="softmax"),
    ])
    model.compile(optimizer=convx.optimizers.Adam(learning_rate=learning_rate), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def search(x, y, epochs):
    """The best ``make_model`` keyword arguments by 2-fold cross-validated accuracy."""
    from sklearn.model_selection import GridSearchCV

    from convx.wrappers import SKLearnClassifier

    classifier = SKLearnClassifier(make_model, fit_kwargs={"epochs": epochs, "batch_size": 64})
    grid = {"model_kwargs": [{"filters": f, "learning_rate": lr} for f in (16, 32) for lr in (1e-3, 3e-3)]}
    result = GridSearchCV(classifier, grid, cv=2).fit(x, y)
    for params, score in zip(result.cv_results_["params"], result.cv_results_["mean_test_score"]):
        print(f"  {params['model_kwargs']}: cross-validated accuracy {score:.4f}")
    return result.best_params_["model_kwargs"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=6000, help="training images used (default 6000)")
    parser.add_argument("--test-samples", type=int, default=2000, help="test images used (default 2000)")
    parser.add_argument("--search-epochs", type=int, default=3, help="epochs per grid-search fit (default 3)")
    parser.add_argument("--epochs", type=int, default=20, help="most epochs of the final training (default 20)")
    parser.add_argument("--out", default="tune_fashion_mnist_out", help="directory for the model and the plot")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    convx.utils.set_random_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = load(args.train_samples, args.test_samples)

    print(f"Grid search on {len(x_train)} images, {args.search_epochs} epochs per fit:")
    best = search(x_train, y_train, args.search_epochs)
    print(f"Best setting: {best}")

    model = make_model(x_train, np.eye(10)[y_train], **best)
    checkpoint = os.path.join(args.out, "best.keras")
    history = model.fit(
        x_train, np.eye(10, dtype=np.float32)[y_train], batch_size=64, epochs=args.epochs, validation_split=0.2,
        verbose=2, callbacks=[
            callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True),
            callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=1, min_lr=1e-5),
            callbacks.ModelCheckpoint(checkpoint, monitor="val_accuracy", save_best_only=True),
        ])
    figure = convx.utils.plot_history(history, metrics=["loss", "accuracy"])
    figure.savefig(os.path.join(args.out, "history.png"), dpi=100)
    accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1) == y_test))
    print(f"Test accuracy: {accuracy:.4f}  (best model: {checkpoint}, curves: {args.out}/history.png)")
    return accuracy


if __name__ == "__main__":
    main()
