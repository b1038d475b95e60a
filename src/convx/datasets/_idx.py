"""Reading data sets stored in the IDX format of MNIST and Fashion-MNIST.

An IDX file is a big-endian header followed by raw data: a 4-byte magic number
``0x0000TTNN`` (``TT`` the element type, ``0x08`` for unsigned bytes, and
``NN`` the number of dimensions), then ``NN`` 4-byte dimensions, then the
elements in C order. Files may be gzip-compressed (``.gz`` suffix).

Everything here is plain parsing of bytes: no pickle, nothing executed.
"""

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (count, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (count)

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILE_NAMES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

_GZIP_SIGNATURE = b"\x1f\x8b"


def find_idx_file(directory, name):
    """Return the path of ``name`` or ``name.gz`` in ``directory``, or None.

    Parameters
    ----------
    directory : path-like
        Directory to look in.
    name : str
        File name without the ``.gz`` suffix, e.g. ``"train-images-idx3-ubyte"``.

    Returns
    -------
    pathlib.Path or None
        The gzip-compressed file when present, else the uncompressed one,
        else None.
    """
    directory = Path(directory)
    for candidate in (directory / (name + ".gz"), directory / name):
        if candidate.is_file():
            return candidate
    return None


def read_idx_bytes(path):
    """Return the (decompressed) bytes of an IDX file.

    Parameters
    ----------
    path : path-like
        An IDX file; decompressed with gzip when its name ends in ``.gz``.

    Returns
    -------
    bytes

    Raises
    ------
    ValueError
        If a ``.gz`` file is not valid or truncated gzip data.
    """
    path = Path(path)
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: not a valid gzip file ({exc})") from exc


def verify_sha256(data, expected, source):
    """Raise ValueError unless ``sha256(data)`` equals the hex digest ``expected``."""
    received = hashlib.sha256(data).hexdigest()
    if received != expected:
        raise ValueError(
            f"{source}: SHA-256 checksum mismatch of the decompressed data: "
            f"expected {expected}, received {received}. The file is corrupt or "
            f"not the expected data set; replace it with a good copy."
        )


def parse_idx(data, magic, source):
    """Decode an IDX byte string of unsigned bytes into an array.

    Parameters
    ----------
    data : bytes
        Whole (decompressed) content of the file.
    magic : int
        Expected magic number: ``IMAGES_MAGIC`` or ``LABELS_MAGIC``. Its low
        byte is the number of dimensions.
    source : str
        Name used in error messages (usually the file path).

    Returns
    -------
    numpy.ndarray
        Writable uint8 array whose shape is the header's dimensions.

    Raises
    ------
    ValueError
        On a wrong magic number, a header or body shorter than the header
        announces (truncated file), or trailing bytes after the data.
    """
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(data) < 4:
        raise ValueError(f"{source}: truncated IDX file: {len(data)} bytes, too short for a magic number")
    received = int.from_bytes(data[:4], "big")
    if received != magic:
        hint = " (the data looks gzip-compressed: name the file *.gz)" if data[:2] == _GZIP_SIGNATURE else ""
        raise ValueError(
            f"{source}: bad IDX magic number: expected 0x{magic:08X}, received 0x{received:08X}{hint}"
        )
    if len(data) < header_len:
        raise ValueError(
            f"{source}: truncated IDX file: the header needs {header_len} bytes, the file has {len(data)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    received_len = len(data) - header_len
    if received_len < expected:
        raise ValueError(
            f"{source}: truncated IDX file: shape {shape} needs {expected} data bytes, "
            f"the file has {received_len}"
        )
    if received_len > expected:
        raise ValueError(
            f"{source}: IDX file has {received_len - expected} unexpected bytes after "
            f"the {expected} data bytes of shape {shape}"
        )
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=header_len).reshape(shape).copy()


def _load_array(directory, name, magic, checksums):
    path = find_idx_file(directory, name)
    if path is None:
        raise FileNotFoundError(f"{Path(directory) / name}[.gz] not found")
    data = read_idx_bytes(path)
    if checksums is not None:
        verify_sha256(data, checksums[name], str(path))
    return parse_idx(data, magic, str(path)), path


def _load_split(directory, images_name, labels_name, checksums):
    x, x_path = _load_array(directory, images_name, IMAGES_MAGIC, checksums)
    y, y_path = _load_array(directory, labels_name, LABELS_MAGIC, checksums)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"count mismatch: {x_path} holds {x.shape[0]} images but {y_path} holds {y.shape[0]} labels"
        )
    return x, y


def load_idx_dataset(directory, checksums=None):
    """Load the four MNIST-layout IDX files of ``directory``.

    Parameters
    ----------
    directory : path-like
        Directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each
        optionally gzip-compressed (``.gz``).
    checksums : dict of str to str, optional
        SHA-256 hex digest of each file's decompressed bytes, keyed by the
        names above. None (default) skips verification.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuple of numpy.ndarray
        uint8 arrays of shapes (n_train, rows, cols), (n_train,),
        (n_test, rows, cols) and (n_test,).

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        On a checksum mismatch, a malformed or truncated file, or a different
        number of images and labels.
    """
    train = _load_split(directory, TRAIN_IMAGES, TRAIN_LABELS, checksums)
    test = _load_split(directory, TEST_IMAGES, TEST_LABELS, checksums)
    return train, test


def missing_files(directory):
    """Names of the four IDX files absent (in either form) from ``directory``."""
    return [name for name in FILE_NAMES if find_idx_file(directory, name) is None]


def locate(dataset, candidates, advice):
    """Return the first candidate directory holding all four IDX files.

    Parameters
    ----------
    dataset : str
        Data set name for the error message, e.g. ``"MNIST"``.
    candidates : list of (str, pathlib.Path or None)
        ``(description, directory)`` pairs in priority order; a None directory
        is a place that could not be formed (its description says why) and is
        only reported.
    advice : str
        Where the user should put the files, appended to the error message.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        If no candidate holds all four files; the message lists every place
        looked and what was missing there.
    """
    report = []
    for description, directory in candidates:
        if directory is None:
            report.append(f"  - {description}")
            continue
        if not directory.is_dir():
            state = "is a file, not a directory" if directory.exists() else "does not exist"
            report.append(f"  - {directory} ({description}): {state}")
            continue
        missing = missing_files(directory)
        if not missing:
            return directory
        report.append(f"  - {directory} ({description}): missing {', '.join(n + '[.gz]' for n in missing)}")
    raise FileNotFoundError(
        f"{dataset} data files not found. Looked in:\n" + "\n".join(report) + "\n" + advice
    )
