"""The seed article's MNIST CNN, run with convx in place of tf.keras.

The model, compile and fit lines are the article's code unchanged; only the
import differs (``tf.keras`` is convx) and the data come from convx's offline
MNIST loader, scaled to [0, 1] with a channel axis. Prints the test accuracy.

Usage: python examples/mnist_cnn.py [--train-samples N] [--test-samples M] [--seed S]
(the defaults use all 60,000 / 10,000 images; 10 epochs take a while on a CPU).
"""

import argparse
from types import SimpleNamespace

import numpy as np

import convx

tf = SimpleNamespace(keras=convx)


def load(train_samples, test_samples):
    (x_train, y_train), (x_test, y_test) = convx.datasets.mnist.load_data()
    x_train = (x_train[:train_samples] / 255.0).astype(np.float32)[..., None]
    x_test = (x_test[:test_samples] / 255.0).astype(np.float32)[..., None]
    return (x_train, y_train[:train_samples]), (x_test, y_test[:test_samples])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=None, help="use the first N training images")
    parser.add_argument("--test-samples", type=int, default=None, help="use the first M test images")
    parser.add_argument("--seed", type=int, default=0, help="seed for initialisation and shuffling (default 0)")
    args = parser.parse_args(argv)
    convx.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load(args.train_samples, args.test_samples)

    model = tf.keras.Sequential([
      tf.keras.layers.Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)),
      tf.keras.layers.MaxPooling2D((2, 2)),
      tf.keras.layers.Conv2D(64, (3, 3), activation='relu'),
      tf.keras.layers.MaxPooling2D((2, 2)),
      tf.keras.layers.Conv2D(128, (3, 3), activation='relu'),
      tf.keras.layers.MaxPooling2D((2, 2)),
      tf.keras.layers.Flatten(),
      tf.keras.layers.Dense(128, activation='relu'),
      tf.keras.layers.Dense(10, activation='softmax')
    ])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    model.fit(x_train, y_train, epochs=10, batch_size=32, validation_data=(x_test, y_test))
    predictions = model.predict(x_test)

    accuracy = float(np.mean(np.argmax(predictions, axis=1) == y_test))
    print(f"Test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
