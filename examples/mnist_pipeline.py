"""The seed article's MNIST CNN fed by an input pipeline (the article's tf.data, section 2.2).

``from_tensor_slices(...).shuffle(...).map(augment, num_parallel_calls=AUTOTUNE)
.batch(32).prefetch(AUTOTUNE)``: the raw uint8 images are scaled, and randomly
shifted by up to two pixels, in background threads while the kernels train.
Validation and test data go through the same pipeline without augmentation.

The run is reproducible: each element's shift is drawn from its own generator,
seeded by (seed, its position in the epoch) from ``enumerate()``, so which
thread maps which element, and when, does not matter (a generator shared by the
threads would hand out draws in thread-timing order).

Usage: python examples/mnist_pipeline.py [--train-samples N] [--test-samples M] [--epochs E] [--seed S]
"""

import argparse
from types import SimpleNamespace

import numpy as np

import convx

tf = SimpleNamespace(keras=convx, data=convx.data)
AUTOTUNE = tf.data.AUTOTUNE


def scale(image, label):
    return image.astype(np.float32)[..., None] * np.float32(1 / 255), label


def make_augment(seed):
    def augment(index, element):
        # enumerate() follows shuffle(), which reorders every epoch: an image
        # meets a different position, hence a different shift, each epoch
        dy, dx = np.random.default_rng((seed, int(index))).integers(-2, 3, 2)
        image, label = scale(*element)
        return np.roll(image, (dy, dx), axis=(0, 1)), label

    return augment


def pipelines(train_samples, test_samples, seed):
    (x_train, y_train), (x_test, y_test) = convx.datasets.mnist.load_data()
    x_train, y_train = x_train[:train_samples], y_train[:train_samples]
    x_test, y_test = x_test[:test_samples], y_test[:test_samples]
    train = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
             .shuffle(10000, seed=seed)
             .enumerate()
             .map(make_augment(seed), num_parallel_calls=AUTOTUNE)
             .batch(32)
             .prefetch(AUTOTUNE))
    test = (tf.data.Dataset.from_tensor_slices((x_test, y_test))
            .map(scale, num_parallel_calls=AUTOTUNE)
            .batch(256)
            .prefetch(AUTOTUNE))
    return train, test, y_test


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=None, help="use the first N training images")
    parser.add_argument("--test-samples", type=int, default=None, help="use the first M test images")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="seed for initialisation, shuffling and augmentation")
    args = parser.parse_args(argv)
    convx.utils.set_random_seed(args.seed)
    train, test, y_test = pipelines(args.train_samples, args.test_samples, args.seed)

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
    model.fit(train, epochs=args.epochs, validation_data=test)
    predictions = model.predict(test)

    accuracy = float(np.mean(np.argmax(predictions, axis=1) == y_test))
    print(f"Test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
