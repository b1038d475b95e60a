"""Rotten Tomatoes review snippets (sentence polarity, English), loaded offline, split by movie.

12,808 snippets labelled fresh (1) or rotten (0), each with the movie it is
about: the Pang and Lee movie-review sentences Kim (2014) classified with text
CNNs. The file ships in the repository under ``data/rotten_tomatoes/`` (never
inside the package); see its README for provenance and checksum.
"""

import csv
import gzip
import io
import os
from pathlib import Path

import numpy as np

from convx.datasets import _idx

FILE_NAME = "rotten_tomatoes_snippets.csv.gz"
# SHA-256 of the decompressed CSV, from data/rotten_tomatoes/README.md.
SHA256 = "d7b965643dd03db46a3f47f2b7d51ddbffc125cbdb39c430897f5c29e021aa8b"
_MARKER = Path("data") / "rotten_tomatoes" / FILE_NAME


def _candidates(path):
    if path is not None:
        return [("path argument", Path(path).expanduser())]
    candidates = []
    root = os.environ.get("CONVX_DATA")
    if root:
        candidates.append(("$CONVX_DATA/rotten_tomatoes", Path(root).expanduser() / "rotten_tomatoes"))
    for start in (Path.cwd(), Path(__file__).parent):
        start = start.resolve()
        for directory in (start, *start.parents):
            if (directory / _MARKER).is_file():
                candidates.append(("repository checkout", directory / _MARKER.parent))
                break
    candidates.append(("user data directory", Path.home() / ".convx" / "datasets" / "rotten_tomatoes"))
    return candidates


def _read(path):
    """The CSV's rows, after checking the decompressed bytes' SHA-256."""
    for description, directory in _candidates(path):
        file = directory / FILE_NAME
        if file.is_file():
            data = gzip.decompress(file.read_bytes())
            _idx.verify_sha256(data, SHA256, str(file))
            return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    looked = "\n".join(f"  - {description}: {directory}" for description, directory in _candidates(path))
    raise FileNotFoundError(f"Rotten Tomatoes data ({FILE_NAME}) not found; looked in:\n{looked}\nPut the file in "
                            "~/.convx/datasets/rotten_tomatoes/ or $CONVX_DATA/rotten_tomatoes/, or pass "
                            "load_data(path=<directory holding it>). A checkout of the convx repository has it in "
                            "data/rotten_tomatoes/.")


def load_data(test_split=0.2, seed=113, path=None):
    """Load the snippets, split so that no movie is on both sides.

    Parameters
    ----------
    test_split : float in [0, 1), default 0.2
        Fraction of the snippets to hold out, in whole movies: movies are shuffled with ``seed`` and taken
        into the test side until it holds at least ``test_split`` of the snippets.
    seed : int, default 113
    path : path-like, optional
        Directory holding ``rotten_tomatoes_snippets.csv.gz``. When None: ``$CONVX_DATA/rotten_tomatoes/``,
        the repository's ``data/rotten_tomatoes/`` (searched upwards from the working directory and from
        this package), ``~/.convx/datasets/rotten_tomatoes/``.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuple of numpy.ndarray
        ``x``: object arrays (N,) of str, the snippets in file order; ``y``: int64 (N,), 1 fresh, 0 rotten.

    Raises
    ------
    FileNotFoundError
        When no place holds the file (the message lists where it looked).
    ValueError
        When ``test_split`` is outside [0, 1), or the file's checksum differs.
    """
    if not 0 <= test_split < 1:
        raise ValueError(f"test_split must be in [0, 1), received test_split={test_split!r}")
    rows = _read(path)
    texts = np.empty(len(rows), dtype=object)  # Python str objects, as Keras' text data sets (and tf.data) take them
    texts[:] = [row["text"] for row in rows]
    labels = np.array([row["label"] == "fresh" for row in rows], dtype=np.int64)
    movies = np.array([row["movie"] for row in rows])
    names, per_movie = np.unique(movies, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(names))
    taken = np.cumsum(per_movie[order]) < test_split * len(rows)
    taken[np.argmin(taken)] |= test_split > 0  # the movie that reaches the fraction goes too
    test = np.isin(movies, names[order[taken]])
    return (texts[~test], labels[~test]), (texts[test], labels[test])
