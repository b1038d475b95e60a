"""MNIST handwritten digits (Keras-compatible): local IDX files first, else Keras' ``mnist.npz``.

The data (Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0) ships in the
repository under ``data/mnist/``, never inside the package, so wheels carry no
data set: an installed convx reads the IDX files when present, else the cached
``mnist.npz`` (``$CONVX_HOME/datasets/``), else downloads it from Keras' origin
and checks its SHA-256 (``convx.utils.get_file``). See ``data/mnist/README.md``
for provenance and checksums.
"""

import os
from pathlib import Path

from convx.datasets import _idx

# SHA-256 of the decompressed files, from data/mnist/README.md.
SHA256 = {
    _idx.TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    _idx.TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    _idx.TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    _idx.TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Keras' download: origin and SHA-256 of mnist.npz (x_train, y_train, x_test, y_test; no pickled objects).
ORIGIN_FOLDER = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
NPZ_NAME = "mnist.npz"
NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

# The file whose presence marks a checkout's data directory.
_MARKER = Path("data") / "mnist" / (_idx.TRAIN_IMAGES + ".gz")

_ADVICE = (
    "Put the four files " + ", ".join(n + ".gz" for n in _idx.FILE_NAMES)
    + " (gzip-compressed or not) in ~/.convx/datasets/mnist/ or in $CONVX_DATA/mnist/,"
    " or pass load_data(path=<directory holding them>). A checkout of the convx"
    " repository has them in data/mnist/."
)


def find_checkout_data(start):
    """Return ``<ancestor>/data/mnist`` for the nearest ancestor of ``start`` holding the files.

    Parameters
    ----------
    start : path-like
        Directory (or file) to walk up from, itself included.

    Returns
    -------
    pathlib.Path or None
        None when no ancestor has ``data/mnist/train-images-idx3-ubyte.gz``.
    """
    start = Path(start).resolve()
    for directory in (start, *start.parents):
        if (directory / _MARKER).is_file():
            return directory / _MARKER.parent
    return None


def _checkout_starts():
    # The working directory finds a checkout installed with `pip install .`;
    # the package file finds it for in-place and editable installs.
    return [Path.cwd(), Path(__file__).parent]


def _candidates(path):
    if path is not None:
        return [("path argument", Path(path).expanduser())]
    candidates = []
    root = os.environ.get("CONVX_DATA")
    if root:
        candidates.append(("$CONVX_DATA/mnist", Path(root).expanduser() / "mnist"))
    else:
        candidates.append(("$CONVX_DATA/mnist: CONVX_DATA is not set", None))
    starts = _checkout_starts()
    found = []
    for start in starts:
        directory = find_checkout_data(start)
        if directory is not None and directory not in found:
            found.append(directory)
    candidates.extend(("repository checkout", directory) for directory in found)
    if not found:
        where = " or ".join(str(s) for s in starts)
        candidates.append((f"data/mnist/ of a repository checkout: none above {where}", None))
    candidates.append(("user data directory", Path.home() / ".convx" / "datasets" / "mnist"))
    return candidates


def load_data(path=None):
    """Load the MNIST data set of handwritten digits.

    Parameters
    ----------
    path : path-like, optional
        Directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each
        gzip-compressed (``.gz``) or not; or, as in Keras, a file name such as
        ``"mnist.npz"`` in the cache directory. When None (default), the first
        directory holding all four files among: ``$CONVX_DATA/mnist/``; the
        repository's ``data/mnist/`` when running from a checkout (searched
        upwards from the working directory and from this package);
        ``~/.convx/datasets/mnist/``; else Keras' ``mnist.npz`` from the cache
        (``$CONVX_HOME/datasets/``, default ``~/.convx/datasets/``) or
        downloaded from Keras' origin, SHA-256 checked.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuple of numpy.ndarray
        uint8 arrays: ``x_train`` (60000, 28, 28) grey levels 0-255,
        ``y_train`` (60000,) digits 0-9, ``x_test`` (10000, 28, 28),
        ``y_test`` (10000,).

    Raises
    ------
    FileNotFoundError
        If no directory holds the files and the download fails; the message
        lists every place looked and where to put the files by hand.
    ValueError
        If a file's SHA-256 differs from the published one, or a file is
        malformed or truncated.
    """
    if path is not None and _is_cache_name(path):
        return _load_npz(os.fspath(path), None)
    try:
        directory = _idx.locate("MNIST", _candidates(path), _ADVICE)
    except FileNotFoundError as missing:
        if path is not None:
            raise
        return _load_npz(NPZ_NAME, missing)
    return _idx.load_idx_dataset(directory, checksums=SHA256)


def _is_cache_name(path):
    # Keras' form: load_data(path="mnist.npz") names the file in the cache directory
    name = os.fspath(path)
    return name.endswith(".npz") and os.sep not in name and not os.path.exists(name)


def _load_npz(name, missing):
    """Keras' ``mnist.npz`` from the cache or downloaded (hash-checked), read without pickle."""
    import numpy as np

    from convx.utils.file_utils import get_file

    try:
        npz = get_file(name, origin=ORIGIN_FOLDER + NPZ_NAME, file_hash=NPZ_SHA256)
    except Exception as exc:  # noqa: BLE001 - reported with every place looked
        looked = f"{missing}\n" if missing is not None else ""
        raise FileNotFoundError(f"{looked}Downloading {ORIGIN_FOLDER + NPZ_NAME} also failed: {exc}") from exc
    with np.load(npz, allow_pickle=False) as data:
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
