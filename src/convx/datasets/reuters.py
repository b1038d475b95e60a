"""Reuters newswire topics (Keras-compatible ``load_data``, ``get_word_index``, ``get_label_names``), no pickle.

Keras' ``reuters.npz`` stores the newswires as object arrays of word-index
lists, which NumPy can only save as pickles; they are read by a restricted
reader that builds only data (``convx.datasets._pickle_data``). Files are
cached in ``$CONVX_HOME/datasets/`` (default ``~/.convx/datasets/``) and
SHA-256 (word index: MD5) checked, as Keras publishes them.
"""

import numpy as np

from convx.datasets import _sequences
from convx.datasets._pickle_data import read_npz

ORIGIN = _sequences.ORIGIN_FOLDER + "reuters.npz"
FILE_HASH = "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
WORD_INDEX_ORIGIN = _sequences.ORIGIN_FOLDER + "reuters_word_index.json"
WORD_INDEX_HASH = "4d44cc38712099c9e383dc6e5f11a921"

LABEL_NAMES = (
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply", "coffee", "sugar",
    "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas", "cpi", "money-fx", "interest", "gnp",
    "meal-feed", "alum", "oilseed", "gold", "tin", "strategic-metal", "livestock", "retail", "ipi", "iron-steel",
    "rubber", "heat", "jobs", "lei", "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver", "wpi", "hog",
    "lead",
)


def load_data(path="reuters.npz", num_words=None, skip_top=0, maxlen=None, test_split=0.2, seed=113, start_char=1,
              oov_char=2, index_from=3):
    """Load the Reuters data set: 11,228 newswires labelled with one of 46 topics.

    Words are indexed by their frequency rank (1 the most frequent); 0 is kept for padding.

    Parameters
    ----------
    path : str, default "reuters.npz"
        File name in the cache directory.
    num_words : int, optional
        Keep the ``num_words`` most frequent words; rarer ones become ``oov_char``. None keeps all.
    skip_top : int, default 0
        The ``skip_top`` most frequent words also become ``oov_char``.
    maxlen : int, optional
        Drop the newswires of ``maxlen`` words or more (counting ``start_char``).
    test_split : float, default 0.2
        Fraction of the (shuffled) newswires held out as the test split.
    seed : int, default 113
        Seed of the shuffle.
    start_char : int or None, default 1
        Index put at the start of every newswire; None puts none.
    oov_char : int or None, default 2
        Index of cut-out words; None drops them.
    index_from : int, default 3
        Offset added to every word index.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuple of numpy.ndarray
        ``x``: object arrays (N,) of lists of int (2-D if all kept newswires have one length, as
        ``np.array`` makes it in Keras); ``y``: int64 (N,) topic indices (see ``get_label_names``).

    Raises
    ------
    ValueError
        If the file is corrupt or holds more than data.
    Exception
        When the file is neither cached nor downloadable (the message says where to put it).
    """
    from convx.utils.file_utils import get_file

    arrays = read_npz(get_file(fname=path, origin=ORIGIN, file_hash=FILE_HASH))
    xs, labels = _sequences.shuffled(np.random.RandomState(seed), arrays["x"], arrays["y"])
    xs = _sequences.offset(xs, start_char, index_from)
    if maxlen:
        xs, labels = _sequences.remove_long_seq(maxlen, xs, labels)
    xs = _sequences.limit_vocabulary(xs, num_words, skip_top, oov_char)
    idx = int(len(xs) * (1 - test_split))
    return ((np.array(xs[:idx], dtype="object"), np.array(labels[:idx])),
            (np.array(xs[idx:], dtype="object"), np.array(labels[idx:])))


def get_word_index(path="reuters_word_index.json"):
    """The dict mapping each word to its frequency rank in the Reuters newswires.

    Parameters
    ----------
    path : str, default "reuters_word_index.json"
        File name in the cache directory.

    Returns
    -------
    dict of str to int
        Ranks from 1; add ``index_from`` (3 by default) to match ``load_data``'s sequences.
    """
    return _sequences.read_word_index(path, WORD_INDEX_ORIGIN, WORD_INDEX_HASH)


def get_label_names():
    """The 46 topic names, indexed as ``load_data``'s labels.

    Returns
    -------
    tuple of str
    """
    return LABEL_NAMES
