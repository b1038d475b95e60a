"""IMDB movie-review sentiment (Keras-compatible ``load_data`` and ``get_word_index``), read without pickle.

Keras' ``imdb.npz`` stores the reviews as object arrays of word-index lists,
which NumPy can only save as pickles; they are read by a restricted reader that
builds only data (``convx.datasets._pickle_data``). Files are cached in
``$CONVX_HOME/datasets/`` (default ``~/.convx/datasets/``) and SHA-256 (word
index: MD5) checked, as Keras publishes them.
"""

import numpy as np

from convx.datasets import _sequences
from convx.datasets._pickle_data import read_npz

ORIGIN = _sequences.ORIGIN_FOLDER + "imdb.npz"
FILE_HASH = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
WORD_INDEX_ORIGIN = _sequences.ORIGIN_FOLDER + "imdb_word_index.json"
WORD_INDEX_HASH = "bfafd718b763782e994055a2d397834f"


def load_data(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1, oov_char=2,
              index_from=3, **kwargs):
    """Load the IMDB data set: 25,000 training and 25,000 test reviews labelled positive (1) or negative (0).

    Words are indexed by their frequency rank in the training set (1 the most
    frequent); 0 is kept for padding.

    Parameters
    ----------
    path : str, default "imdb.npz"
        File name in the cache directory.
    num_words : int, optional
        Keep the ``num_words`` most frequent words; rarer ones become ``oov_char``. None keeps all.
    skip_top : int, default 0
        The ``skip_top`` most frequent words also become ``oov_char``.
    maxlen : int, optional
        Drop the reviews of ``maxlen`` words or more (counting ``start_char``).
    seed : int, default 113
        Seed of the shuffle of each split.
    start_char : int or None, default 1
        Index put at the start of every review; None puts none.
    oov_char : int or None, default 2
        Index of cut-out words; None drops them.
    index_from : int, default 3
        Offset added to every word index.
    **kwargs
        Accepted and ignored, as Keras does.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuple of numpy.ndarray
        ``x``: object arrays (N,) of lists of int (a 2-D object array if all
        reviews kept have one length, as ``np.array`` makes it in Keras);
        ``y``: int64 (N,) labels.

    Raises
    ------
    ValueError
        If ``maxlen`` leaves no review in a split, or the file is corrupt or holds more than data.
    Exception
        When the file is neither cached nor downloadable (the message says where to put it).
    """
    from convx.utils.file_utils import get_file

    arrays = read_npz(get_file(fname=path, origin=ORIGIN, file_hash=FILE_HASH))
    rng = np.random.RandomState(seed)
    x_train, labels_train = _sequences.shuffled(rng, arrays["x_train"], arrays["y_train"])
    x_test, labels_test = _sequences.shuffled(rng, arrays["x_test"], arrays["y_test"])
    x_train = _sequences.offset(x_train, start_char, index_from)
    x_test = _sequences.offset(x_test, start_char, index_from)
    if maxlen:
        x_train, labels_train = _sequences.remove_long_seq(maxlen, x_train, labels_train)
        x_test, labels_test = _sequences.remove_long_seq(maxlen, x_test, labels_test)
        if not x_train or not x_test:
            raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, no sequence was kept. "
                             "Increase maxlen.")
    xs = _sequences.limit_vocabulary(x_train + x_test, num_words, skip_top, oov_char)
    labels = np.concatenate([labels_train, labels_test])
    idx = len(x_train)
    return (np.array(xs[:idx], dtype="object"), labels[:idx]), (np.array(xs[idx:], dtype="object"), labels[idx:])


def get_word_index(path="imdb_word_index.json"):
    """The dict mapping each word to its frequency rank in the IMDB training set.

    Parameters
    ----------
    path : str, default "imdb_word_index.json"
        File name in the cache directory.

    Returns
    -------
    dict of str to int
        Ranks from 1; add ``index_from`` (3 by default) to match ``load_data``'s sequences.
    """
    return _sequences.read_word_index(path, WORD_INDEX_ORIGIN, WORD_INDEX_HASH)
