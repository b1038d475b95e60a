"""What the IMDB and Reuters loaders share: Keras' word-index encoding of ragged sequences."""

import json

import numpy as np

ORIGIN_FOLDER = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


def shuffled(rng, *arrays):
    """``arrays`` reordered by one permutation drawn with ``rng.shuffle``, as Keras draws it."""
    indices = np.arange(len(arrays[0]))
    rng.shuffle(indices)
    return [array[indices] for array in arrays]


def offset(sequences, start_char, index_from):
    """Each sequence as a list, its word indices shifted by ``index_from``, after ``start_char`` unless None."""
    if start_char is not None:
        return [[start_char] + [w + index_from for w in x] for x in sequences]
    if index_from:
        return [[w + index_from for w in x] for x in sequences]
    return [list(x) for x in sequences]


def remove_long_seq(maxlen, seq, label):
    """The sequences shorter than ``maxlen`` (Keras drops, not truncates, longer ones), with their labels."""
    kept = [(x, y) for x, y in zip(seq, label) if len(x) < maxlen]
    return [x for x, _ in kept], [y for _, y in kept]


def limit_vocabulary(sequences, num_words, skip_top, oov_char):
    """Indices outside ``[skip_top, num_words)`` become ``oov_char``, or are dropped when it is None.

    Without ``num_words`` the bound is the largest index present, which is
    therefore itself replaced, as in Keras.
    """
    if not num_words:
        num_words = max(max(x) for x in sequences)
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in sequences]
    return [[w for w in x if skip_top <= w < num_words] for x in sequences]


def read_word_index(fname, origin, file_hash):
    """The JSON word index (word -> rank) from the cache, else downloaded, hash-checked."""
    from convx.utils.file_utils import get_file

    with open(get_file(fname=fname, origin=origin, file_hash=file_hash)) as stream:
        return json.load(stream)
