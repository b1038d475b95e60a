"""CIFAR-10 small colour images in 10 classes (Keras-compatible ``load_data``), read without pickle.

Keras' download (the python version from the CIFAR homepage) goes to
``$CONVX_HOME/datasets/`` (default ``~/.convx/datasets/``), SHA-256 checked,
and is extracted there; its batches are pickled dicts, read by a restricted
reader that builds only data (``convx.datasets._pickle_data``).
"""

import os

import numpy as np

from convx.datasets._cifar import load_batch

DIRNAME = "cifar-10-batches-py-target"
ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FILE_HASH = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"


def load_data():
    """Load the CIFAR-10 data set.

    50,000 training and 10,000 test 32x32 colour images labelled 0-9:
    airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuple of numpy.ndarray
        ``x_train`` uint8 (50000, 32, 32, 3) and ``x_test`` uint8 (10000, 32, 32, 3), values 0-255
        (channels-last views of the stored channels-first data, as Keras returns them);
        ``y_train`` uint8 (50000, 1) and ``y_test`` uint8 (10000, 1).

    Raises
    ------
    Exception
        When the file is neither cached nor downloadable (the message says where to put it).
    ValueError
        If the download's hash differs, or a batch is not plain CIFAR data.
    """
    from convx.utils.file_utils import get_file

    path = get_file(fname=DIRNAME, origin=ORIGIN, extract=True, file_hash=FILE_HASH)
    path = os.path.join(path, "cifar-10-batches-py")
    batches = [load_batch(os.path.join(path, f"data_batch_{i}")) for i in range(1, 6)]
    x_train = np.concatenate([data for data, _ in batches]).astype("uint8", copy=False)
    y_train = np.concatenate([np.asarray(labels) for _, labels in batches]).astype("uint8")
    x_test, y_test = load_batch(os.path.join(path, "test_batch"))

    y_train = np.reshape(y_train, (len(y_train), 1))
    y_test = np.reshape(y_test, (len(y_test), 1))
    x_train = x_train.transpose(0, 2, 3, 1)
    x_test = x_test.transpose(0, 2, 3, 1)
    return (x_train, y_train), (x_test.astype(x_train.dtype), y_test.astype(y_train.dtype))
