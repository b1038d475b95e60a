"""CIFAR-100 small colour images in 100 classes (Keras-compatible ``load_data``), read without pickle.

Keras' download (the python version from the CIFAR homepage) goes to
``$CONVX_HOME/datasets/`` (default ``~/.convx/datasets/``), SHA-256 checked,
and is extracted there; its files are pickled dicts, read by a restricted
reader that builds only data (``convx.datasets._pickle_data``).
"""

import os

import numpy as np

from convx.datasets._cifar import load_batch

DIRNAME = "cifar-100-python-target"
ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
FILE_HASH = "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"


def load_data(label_mode="fine"):
    """Load the CIFAR-100 data set.

    50,000 training and 10,000 test 32x32 colour images in 100 fine classes grouped into 20 coarse ones.

    Parameters
    ----------
    label_mode : {"fine", "coarse"}, default "fine"
        The 100 fine-grained classes, or the 20 coarse-grained superclasses.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuple of numpy.ndarray
        ``x_train`` uint8 (50000, 32, 32, 3) and ``x_test`` uint8 (10000, 32, 32, 3), values 0-255
        (channels-last views of the stored data, as Keras returns them); ``y_train`` (50000, 1) and
        ``y_test`` (10000, 1) int64 labels (the stored lists as NumPy makes them; Keras' docstring
        says uint8, its code gives int64).

    Raises
    ------
    ValueError
        On another ``label_mode``, a hash mismatch of the download, or a file that is not plain CIFAR data.
    Exception
        When the file is neither cached nor downloadable (the message says where to put it).
    """
    if label_mode not in ["fine", "coarse"]:
        raise ValueError(f'`label_mode` must be one of `"fine"`, `"coarse"`. Received: label_mode={label_mode}.')
    from convx.utils.file_utils import get_file

    path = get_file(fname=DIRNAME, origin=ORIGIN, extract=True, file_hash=FILE_HASH)
    path = os.path.join(path, "cifar-100-python")
    x_train, y_train = load_batch(os.path.join(path, "train"), label_key=f"{label_mode}_labels")
    x_test, y_test = load_batch(os.path.join(path, "test"), label_key=f"{label_mode}_labels")
    y_train = np.reshape(y_train, (len(y_train), 1))
    y_test = np.reshape(y_test, (len(y_test), 1))
    return (x_train.transpose(0, 2, 3, 1), y_train), (x_test.transpose(0, 2, 3, 1), y_test)
