"""TextVectorization: strings to token indices or token counts (Keras 3's ``keras.layers.TextVectorization``).

Each string goes through the steps Keras applies with TensorFlow's string ops,
reproduced here in plain Python so that the results are the same:

1. standardize: ``'lower'`` lowercases ASCII letters only (``tf.strings.lower``
   leaves ``'É'`` or ``'Σ'`` as they are); ``'strip_punctuation'`` deletes the
   32 ASCII punctuation characters (Keras' regular expression; ``'—'`` or
   ``'“'`` stay);
2. split: ``'whitespace'`` on runs of ASCII whitespace (space, tab, newline,
   vertical tab, form feed, carriage return; a no-break space does not split),
   ``'character'`` into Unicode code points;
3. ngrams: for each width in the order given, every run of that many tokens
   joined by a space;
4. lookup: index 0 is padding (the empty string), 1 the out-of-vocabulary
   token ``'[UNK]'`` in ``'int'`` mode; in the other modes index 0 is ``'[UNK]'``.

``adapt`` counts tokens and orders the vocabulary by count, highest first,
ties broken by the token's UTF-8 bytes in *descending* order (Keras'
``np.lexsort((tokens, counts))[::-1]``). ``tf_idf`` weights are
``log(1 + documents / (1 + documents containing the token))``, the
out-of-vocabulary weight their mean.
"""

import collections
import math
import os
import re

import numpy as np

from convx.layers.base import Layer
from convx.layers.node import is_symbolic

_MASK, _OOV = "", "[UNK]"
_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_PUNCTUATION = {ord(c): None for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"}
_WHITESPACE = re.compile("[ \t\n\v\f\r]+")
_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
_SPLIT = ("whitespace", "character")
_OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")


def _check_choice(value, allowed, name):
    if value is None or callable(value) or value in allowed:
        return
    raise ValueError(f"The `{name}` argument of TextVectorization must be one of {allowed}, None or a callable. "
                     f"Received: {name}={value!r}")


def _text(value, encoding):
    return value.decode(encoding) if isinstance(value, bytes) else str(value)


def _as_strings(data, encoding):
    """A NumPy array of str (any shape) from strings, bytes, lists of them or a tensor with ``numpy()``."""
    if hasattr(data, "numpy") and not isinstance(data, np.ndarray):
        data = data.numpy()
    array = np.asarray(data, dtype=object)
    if array.dtype.kind in "fiub":
        raise ValueError(f"TextVectorization expects strings, received an array of dtype {array.dtype}")
    flat = [_text(v, encoding) for v in array.reshape(-1)]
    return np.array(flat, dtype=object).reshape(array.shape)


class TextVectorization(Layer):
    """Maps strings to integer token sequences or to per-string token counts.

    Parameters
    ----------
    max_tokens : int, optional
        Largest vocabulary size, special tokens included.
    standardize : {'lower_and_strip_punctuation', 'lower', 'strip_punctuation'}, None or callable
        A callable receives a NumPy array of str and returns one of the same shape.
    split : {'whitespace', 'character'}, None or callable
        A callable receives a 1-D NumPy array of str and returns one list of tokens per string.
    ngrams : int or tuple of int, optional
        ``n``: widths 1..n; a tuple: those widths, in that order.
    output_mode : {'int', 'multi_hot', 'count', 'tf_idf'}, default 'int'
    output_sequence_length : int, optional
        'int' mode: pad with 0 or truncate every sequence to this length (else: to the batch's longest).
    pad_to_max_tokens : bool, default False
        Non-int modes: outputs have ``max_tokens`` columns, not the vocabulary size.
    vocabulary : list of str or path of a text file (one token per line), optional
    idf_weights : array-like, optional
        'tf_idf' mode with a given vocabulary: one weight per vocabulary entry.
    sparse : False
        Only dense outputs.
    encoding : str, default 'utf-8'
        How bytes inputs are decoded.

    Notes
    -----
    Input: strings, shape ``(batch,)`` or ``(batch, 1)`` (NumPy str/bytes/object arrays, lists). Output:
    'int' int64 ``(batch, length)``; 'multi_hot' and 'count' int64, 'tf_idf' float32 ``(batch, depth)`` (as
    Keras).
    """

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation", split="whitespace", ngrams=None,
                 output_mode="int", output_sequence_length=None, pad_to_max_tokens=False, vocabulary=None,
                 idf_weights=None, sparse=False, ragged=False, encoding="utf-8", name=None, **kwargs):
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        _check_choice(standardize, _STANDARDIZE, "standardize")
        _check_choice(split, _SPLIT, "split")
        if output_mode not in _OUTPUT_MODES:
            raise ValueError(f"The `output_mode` argument of TextVectorization must be one of {_OUTPUT_MODES} "
                             f"in convx. Received: output_mode={output_mode!r}")
        if not (ngrams is None or isinstance(ngrams, int) or isinstance(ngrams, tuple)
                and all(isinstance(n, int) for n in ngrams)):
            raise ValueError(f"`ngrams` must be None, an integer, or a tuple of integers. Received: ngrams={ngrams}")
        if output_mode == "int" and not (output_sequence_length is None or isinstance(output_sequence_length, int)):
            raise ValueError("`output_sequence_length` must be either None or an integer when `output_mode` is "
                             f"'int'. Received: output_sequence_length={output_sequence_length}")
        if output_mode != "int" and output_sequence_length is not None:
            raise ValueError("`output_sequence_length` must not be set if `output_mode` is not 'int'. "
                             f"Received output_sequence_length={output_sequence_length}.")
        if sparse or ragged:
            raise ValueError(f"convx's TextVectorization gives dense outputs only; received sparse={sparse!r}, "
                             f"ragged={ragged!r}")
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError("`idf_weights` should only be set if `output_mode` is `'tf_idf'`. Received: "
                             f"idf_weights={idf_weights} and output_mode={output_mode}")
        if output_mode == "tf_idf" and vocabulary is not None and idf_weights is None:
            raise ValueError("When specifying the `vocabulary` argument, in TF-IDF output mode, the `idf_weights` "
                             "argument must also be provided.")
        self._has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        kwargs.pop("vocabulary_size", None)
        super().__init__(name=name, **kwargs)
        self.max_tokens = max_tokens
        self.standardize = standardize
        self.split = split
        self.ngrams = ngrams
        self._widths = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self.output_mode = output_mode
        self.output_sequence_length = output_sequence_length
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.encoding = encoding
        self._input_vocabulary = vocabulary if not isinstance(vocabulary, str) else None
        self._input_idf_weights = idf_weights
        self._tokens, self._index, self._idf = [], {}, None
        self._frozen_size = None
        self.reset_state()
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    # ----- text processing ---------------------------------------------------------------------------------------

    def _token_start(self):
        return 2 if self.output_mode == "int" else 1

    def _standardized(self, strings):
        mode = self.standardize
        if callable(mode):
            return _as_strings(mode(strings), self.encoding)
        if mode is None:
            return strings
        if mode in ("lower", "lower_and_strip_punctuation"):
            strings = np.array([s.translate(_LOWER) for s in strings.reshape(-1)], dtype=object).reshape(strings.shape)
        if mode in ("strip_punctuation", "lower_and_strip_punctuation"):
            strings = np.array([s.translate(_PUNCTUATION) for s in strings.reshape(-1)],
                               dtype=object).reshape(strings.shape)
        return strings

    def _documents(self, data):
        """The token lists of ``data``'s strings (one per row), standardized, split and n-grammed."""
        strings = self._standardized(_as_strings(data, self.encoding))
        if self.split is None:
            rows = strings.reshape(strings.shape[0], -1) if strings.ndim else strings.reshape(1, 1)
            docs = [list(row) for row in rows]
        else:
            if strings.ndim > 1:
                if strings.shape[-1] != 1:
                    raise ValueError("When using `TextVectorization` to tokenize strings, the input rank must be 1 "
                                     f"or the last shape dimension must be 1. Received: inputs.shape="
                                     f"{strings.shape} with rank={strings.ndim}")
                strings = strings.reshape(strings.shape[:-1])
            strings = strings.reshape(-1)
            if self.split == "whitespace":
                docs = [[t for t in _WHITESPACE.split(s) if t] for s in strings]
            elif self.split == "character":
                docs = [list(s) for s in strings]
            else:
                docs = [[_text(t, self.encoding) for t in tokens] for tokens in self.split(strings)]
        if self._widths is not None:
            docs = [[" ".join(doc[i:i + w]) for w in self._widths for i in range(len(doc) - w + 1)] for doc in docs]
        return docs

    # ----- vocabulary --------------------------------------------------------------------------------------------

    def reset_state(self):
        """Forget the counts gathered by ``update_state`` (``adapt`` starts with it)."""
        self._counts = collections.Counter()
        self._document_counts = collections.Counter()
        self._documents_seen = 0

    def update_state(self, data):
        """Count the tokens of one batch of strings."""
        if self._has_input_vocabulary:
            raise ValueError(f"Cannot adapt layer '{self.name}' after setting a static vocabulary via "
                             "`vocabulary` argument or `set_vocabulary()` method.")
        docs = self._documents(data)
        for doc in docs:
            self._counts.update(doc)
        if self.output_mode == "tf_idf":
            for doc in docs:
                self._document_counts.update(set(doc))
            self._documents_seen += len(docs)

    def finalize_state(self):
        """Build the vocabulary from the counts: by count, ties by descending UTF-8 bytes (as Keras)."""
        counts = {t: c for t, c in self._counts.items() if t not in (_MASK, _OOV)}
        if not self._counts:
            self._frozen_size = self.vocabulary_size()
            return
        tokens = [t for t, _ in sorted(counts.items(), key=lambda kv: (kv[1], kv[0].encode("utf-8")), reverse=True)]
        if self.max_tokens:
            tokens = tokens[:self.max_tokens - self._token_start()]
        self._set_tokens(tokens)
        if self.output_mode == "tf_idf":
            n = self._documents_seen
            idf = np.array([math.log(1 + n / (1 + self._document_counts[t])) for t in tokens], dtype=np.float32)
            oov = np.mean(idf, dtype=np.float32) if idf.size else np.float32(0)
            self._idf = self._padded_idf(np.concatenate([np.full(self._token_start(), oov, np.float32), idf]))
        self.reset_state()
        self._frozen_size = self.vocabulary_size()

    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary (and tf_idf weights) from ``data``.

        Parameters
        ----------
        data : array, list or iterable
            Strings: an array or list is one batch; any other iterable (a ``convx.data.Dataset``, a
            generator, a ``tf.data.Dataset``) yields batches.
        batch_size : None
            Ignored, as in Keras.
        steps : int, optional
            Batches to read from an iterable (all by default).
        """
        self.reset_state()
        if isinstance(data, (list, tuple, np.ndarray, str, bytes)) or not hasattr(data, "__iter__"):
            self.update_state(data)
        else:
            for i, batch in enumerate(data):
                if steps is not None and i >= steps:
                    break
                self.update_state(batch)
        self.finalize_state()

    def _set_tokens(self, tokens):
        start = self._token_start()
        self._tokens = list(tokens)
        self._index = {t: start + i for i, t in enumerate(self._tokens)}
        self._index[_MASK] = 0 if self.output_mode == "int" else -1

    def _padded_idf(self, weights):
        if self.pad_to_max_tokens and self.max_tokens is not None:
            weights = np.pad(weights, (0, self.max_tokens - weights.size))
        return weights.astype(np.float32)

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Set the vocabulary (and tf_idf weights) directly, as Keras' ``set_vocabulary``.

        Parameters
        ----------
        vocabulary : sequence of str, or the path of a text file with one token per line
            May start with the special tokens (``['', '[UNK]']`` in 'int' mode, ``['[UNK]']`` otherwise).
        idf_weights : array-like, optional
            Required in 'tf_idf' mode (one per vocabulary entry), refused otherwise.
        """
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError("`idf_weights` must be set if output_mode is 'tf_idf'.")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError("`idf_weights` should only be set if output_mode is `'tf_idf'`. Received: "
                             f"output_mode={self.output_mode} and idf_weights={idf_weights}")
        if isinstance(vocabulary, (str, os.PathLike)):
            if self.output_mode == "tf_idf":
                raise ValueError("output_mode `'tf_idf'` does not support loading a vocabulary from file.")
            if not os.path.isfile(vocabulary):
                raise ValueError(f"Vocabulary file {vocabulary} does not exist.")
            with open(vocabulary, encoding="utf-8") as f:
                vocabulary = f.read().splitlines()
        vocabulary = [_text(t, self.encoding) for t in np.asarray(vocabulary, dtype=object).reshape(-1)]
        if not vocabulary:
            raise ValueError(f"Cannot set an empty vocabulary. Received: vocabulary={vocabulary}")
        start = self._token_start()
        specials = [_MASK, _OOV][-start:]
        found_specials = vocabulary[:start] == specials
        tokens = vocabulary[start:] if found_specials else vocabulary
        repeated = [t for t, c in collections.Counter(tokens).items() if c > 1]
        if repeated:
            raise ValueError("The passed vocabulary has at least one repeated term. Please uniquify your dataset. "
                             f"The repeated terms are: {repeated}")
        if _MASK in tokens:
            raise ValueError("Found reserved mask token at unexpected location in `vocabulary`. Note that passed "
                             "`vocabulary` does not need to include the OOV and mask tokens. Either remove all mask "
                             "and OOV tokens, or include them only at the start of the vocabulary in precisely this "
                             f"order: {specials}. Received: mask_token= at vocabulary index "
                             f"{vocabulary.index(_MASK)}")
        if self.max_tokens is not None and start + len(tokens) > self.max_tokens:
            raise ValueError("Attempted to set a vocabulary larger than the maximum vocab size. Received vocabulary "
                             f"size is {start + len(tokens)}; `max_tokens` is {self.max_tokens}.")
        if idf_weights is not None:
            idf = np.asarray(idf_weights, dtype=np.float64)
            if idf.shape[0] != len(vocabulary):
                raise ValueError(f"`idf_weights` must be the same length as vocabulary. len(idf_weights) is "
                                 f"{idf.shape[0]}; len(vocabulary) is {len(vocabulary)}")
            if idf.ndim != 1:
                raise ValueError(f"TF-IDF data must be a 1-index array. Received: type(idf_weights)={type(idf_weights)}")
            if not found_specials:
                idf = np.concatenate([np.full(start, np.average(idf)), idf])
            self._idf = self._padded_idf(idf)
        self._set_tokens(tokens)
        self._frozen_size = self.vocabulary_size()

    def get_vocabulary(self, include_special_tokens=True):
        """The vocabulary in index order (a list of str); with the special tokens, position = index."""
        specials = [_MASK, _OOV][-self._token_start():] if include_special_tokens else []
        return specials + list(self._tokens)

    def vocabulary_size(self):
        """Size of the vocabulary, special tokens included."""
        return self._token_start() + len(self._tokens)

    # ----- calling -----------------------------------------------------------------------------------------------

    def _depth(self):
        if self.pad_to_max_tokens and self.max_tokens is not None:
            return self.max_tokens
        if self._frozen_size is None:
            raise RuntimeError(f"When using `output_mode={self.output_mode}` and `pad_to_max_tokens=False`, you must "
                               "set the layer's vocabulary before calling it. Either pass a `vocabulary` argument to "
                               "the layer, or call `adapt` with some sample data.")
        return self._frozen_size

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            if self.split is None:
                return tuple(input_shape[:-1]) + (self.output_sequence_length or input_shape[-1],)
            return (input_shape[0], self.output_sequence_length)
        depth = self.max_tokens if self.pad_to_max_tokens else self._frozen_size
        return (input_shape[0], depth)

    def check_input_shape(self, input_shape):
        """Strings of any batch shape (checked when called)."""

    def __call__(self, x, training=False):
        # strings stay strings (the base class casts its inputs to float32)
        if is_symbolic(x):
            return self._call_symbolic(x)
        self._state = self._own_state
        return np.array(self.forward(x, training=training))

    def forward(self, x, training=False):
        docs = self._documents(x)
        ids = [[self._index.get(t, 1 if self.output_mode == "int" else 0) for t in doc] for doc in docs]
        if self.output_mode == "int":
            return self._sequences(ids, np.shape(x))
        if self.split is None and np.ndim(x) == 1:  # Keras encodes a 1-D batch of tokens as one sample
            return self._encoded([sum(ids, [])])[0]
        return self._encoded(ids)

    def _encoded(self, ids):
        depth = self._depth()
        # Keras: counts as int64, tf_idf weights as float32
        out = np.zeros((len(ids), depth), dtype=np.float32 if self.output_mode == "tf_idf" else np.int64)
        for row, doc in zip(out, ids):
            doc = [i for i in doc if 0 <= i < depth]
            if self.output_mode == "multi_hot":
                row[doc] = 1
            else:
                np.add.at(row, doc, 1)
        if self.output_mode == "tf_idf":
            out *= self._idf[:depth] if self._idf.size >= depth else np.pad(self._idf, (0, depth - self._idf.size))
        return out

    def _sequences(self, ids, input_shape):
        length = self.output_sequence_length
        if self.split is None:  # one token per string: the input's shape, the last axis padded or cut
            array = np.array(ids, dtype=np.int64).reshape(input_shape)
            if length is None or array.ndim < 2:
                return array
            array = array[..., :length]
            return np.pad(array, [(0, 0)] * (array.ndim - 1) + [(0, length - array.shape[-1])])
        if length is None:
            length = max((len(doc) for doc in ids), default=0)
        out = np.zeros((len(ids), length), dtype=np.int64)
        for row, doc in zip(out, ids):
            doc = doc[:length]
            row[:len(doc)] = doc
        return out

    def backward(self, dy):
        return None

    # ----- config and saving -------------------------------------------------------------------------------------

    def get_config(self):
        """Keras 3's config. Unlike Keras, an adapted vocabulary (and its tf_idf weights) is in it too, so that the
        config alone rebuilds the layer (Keras keeps it in the archive's assets: :meth:`save_assets`)."""
        vocabulary, idf = self._input_vocabulary, self._input_idf_weights
        if vocabulary is None and self._tokens:
            vocabulary = self.get_vocabulary()
            if self._idf is not None:
                idf = self._idf[:len(vocabulary)]
        return {
            **super().get_config(),
            "max_tokens": self.max_tokens,
            "standardize": self.standardize,
            "split": self.split,
            "ngrams": self.ngrams,
            "output_mode": self.output_mode,
            "output_sequence_length": self.output_sequence_length,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "sparse": False,
            "ragged": False,
            "vocabulary": None if vocabulary is None else [str(t) for t in vocabulary],
            "idf_weights": None if idf is None else [float(w) for w in np.asarray(idf).reshape(-1)],
            "encoding": self.encoding,
            "vocabulary_size": self.vocabulary_size(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("ngrams"), list):
            config["ngrams"] = tuple(config["ngrams"])
        return cls(**config)

    def save_own_variables(self, store):
        """Keras 3: the tf_idf weights under ``"idf_weights"``."""
        if self.output_mode == "tf_idf":
            store["idf_weights"] = np.array(self._idf, dtype=np.float32)

    def load_own_variables(self, store):
        if self.output_mode == "tf_idf":
            self._idf = np.array(store["idf_weights"], dtype=np.float32)

    def save_assets(self, dir_path):
        """Keras 3: an adapted vocabulary (special tokens first) as ``vocabulary.txt``, one token per line."""
        if self._input_vocabulary is not None:
            return
        with open(os.path.join(dir_path, "vocabulary.txt"), "w", encoding="utf-8", newline="") as f:
            f.write("\n".join(str(t) for t in self.get_vocabulary()))

    def load_assets(self, dir_path):
        if self._input_vocabulary is not None:
            return
        # split on "\n" only, the inverse of save_assets' join (splitlines would also cut tokens at \x1c, \x85, ...)
        with open(os.path.join(dir_path, "vocabulary.txt"), encoding="utf-8", newline="") as f:
            lines = f.read().split("\n")
        while lines and lines[-1] == "":
            lines.pop()
        self.set_vocabulary(lines, idf_weights=self._idf[:len(lines)] if self.output_mode == "tf_idf" else None)


__all__ = ["TextVectorization"]
