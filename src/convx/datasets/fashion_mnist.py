"""Fashion-MNIST (Zalando Research, MIT license) from IDX files: local copies first, else Keras' download.

Debian's package ``dataset-fashion-mnist`` installs the files under
``/usr/share/datasets/fashion-mnist/``. No checksums are verified: the only
published digests are MD5 sums of upstream's gzip files, and Debian's
recompressed files differ from them at the gzip level.
"""

import os
from pathlib import Path

from convx.datasets import _idx

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
# Keras' download origin of the four gzip files
ORIGIN_FOLDER = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

_ADVICE = (
    "Install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist),"
    " or put the four files " + ", ".join(n + ".gz" for n in _idx.FILE_NAMES)
    + " (gzip-compressed or not) in $CONVX_DATA/fashion-mnist/ or ~/.convx/datasets/fashion-mnist/,"
    " or pass load_data(path=<directory holding them>)."
)


def _candidates(path):
    if path is not None:
        return [("path argument", Path(path).expanduser())]
    candidates = [("Debian package dataset-fashion-mnist", SYSTEM_DIR)]
    root = os.environ.get("CONVX_DATA")
    if root:
        candidates.append(("$CONVX_DATA/fashion-mnist", Path(root).expanduser() / "fashion-mnist"))
    else:
        candidates.append(("$CONVX_DATA/fashion-mnist: CONVX_DATA is not set", None))
    candidates.append(("user data directory", Path.home() / ".convx" / "datasets" / "fashion-mnist"))
    return candidates


def load_data(path=None):
    """Load the Fashion-MNIST data set of clothing images.

    Parameters
    ----------
    path : path-like, optional
        Directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each
        gzip-compressed (``.gz``) or not. When None
        (default), the first directory holding all four files among:
        ``/usr/share/datasets/fashion-mnist/``; ``$CONVX_DATA/fashion-mnist/``;
        ``~/.convx/datasets/fashion-mnist/``; else they are downloaded from
        Keras' origin into ``$CONVX_HOME/datasets/fashion-mnist/`` (default
        ``~/.convx``).

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuple of numpy.ndarray
        uint8 arrays: ``x_train`` (60000, 28, 28) grey levels 0-255,
        ``y_train`` (60000,) classes 0-9 (0 T-shirt/top, 1 Trouser, 2 Pullover,
        3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot),
        ``x_test`` (10000, 28, 28), ``y_test`` (10000,).

    Raises
    ------
    FileNotFoundError
        If no directory holds the files; the message lists every place looked.
    ValueError
        If a file is malformed or truncated, or images and labels disagree in number.
    """
    try:
        directory = _idx.locate("Fashion-MNIST", _candidates(path), _ADVICE)
    except FileNotFoundError as missing:
        if path is not None:
            raise
        directory = _download(missing)
    return _idx.load_idx_dataset(directory)


def _download(missing):
    """Keras' four files into ``$CONVX_HOME/datasets/fashion-mnist/`` (Keras publishes no checksum)."""
    from convx.utils.file_utils import get_file

    paths = []
    for name in _idx.FILE_NAMES:
        try:
            paths.append(get_file(name + ".gz", origin=ORIGIN_FOLDER + name + ".gz",
                                  cache_subdir=os.path.join("datasets", "fashion-mnist")))
        except Exception as exc:  # noqa: BLE001 - reported with every place looked
            raise FileNotFoundError(f"{missing}\nDownloading {ORIGIN_FOLDER + name}.gz also failed: {exc}") from exc
    return Path(paths[0]).parent
