"""Writes tests/layers/data/keras_text_vectorization.json: what TF-Keras 3 (TensorFlow backend) gives for
TextVectorization on fixed corpora (vocabularies, outputs of every mode, configs), and the vocabulary it
learns from the whole Rotten Tomatoes corpus shipped in data/rotten_tomatoes/.

Run with TensorFlow and Keras 3 installed (not a test dependency):
    python tests/layers/make_keras_text_vectorization_reference.py
"""

import csv
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
ROOT = HERE.parent.parent

CORPUS = [
    "The movie was GREAT, great fun!",
    "the plot... was thin; the acting: superb",
    "Ünïcode ÉCOLE café naïve — “quoted” ‘single’ dash… ΣΑΣ",
    "tabs\tand\nnewlines  and\u00a0nbsp\x1cfs\r\nend",
    "It's a can't-miss, don't-miss film (really).",
    "numbers 123 4.5 $6 #tag @user e-mail",
    "",
    "great great great the the a",
]
QUERIES = ["The great film was unseen!", "", "café CAFÉ ÉCOLE école", "a a a a a a a a a a a a great"]

CASES = [
    {},
    {"max_tokens": 10, "output_sequence_length": 5},
    {"standardize": "lower"},
    {"standardize": "strip_punctuation"},
    {"standardize": None},
    {"split": "character", "output_sequence_length": 12},
    {"ngrams": 2},
    {"ngrams": [3, 1], "max_tokens": 30},
    {"output_mode": "multi_hot"},
    {"output_mode": "count"},
    {"output_mode": "tf_idf"},
    {"output_mode": "tf_idf", "max_tokens": 20, "pad_to_max_tokens": True},
    {"output_mode": "multi_hot", "max_tokens": 8, "pad_to_max_tokens": True},
    {"output_mode": "count", "ngrams": 2, "max_tokens": 12},
    {"split": None},
    {"split": None, "output_mode": "multi_hot"},
    {"vocabulary": ["great", "the", "fun"]},
    {"vocabulary": ["", "[UNK]", "great", "the", "fun"], "output_sequence_length": 3},
    {"vocabulary": ["great", "the", "fun"], "output_mode": "tf_idf", "idf_weights": [0.5, 0.25, 2.0]},
    {"vocabulary": ["[UNK]", "great", "the"], "output_mode": "count"},
]


def _keras_case(keras, tf, case):
    args = dict(case)
    if isinstance(args.get("ngrams"), list):
        args["ngrams"] = tuple(args["ngrams"])
    layer = keras.layers.TextVectorization(**args)
    if "vocabulary" not in case:
        layer.adapt(np.array(CORPUS))
    out = layer(np.array(QUERIES)).numpy()
    config = layer.get_config()
    config.pop("name")
    entry = {"args": case, "vocabulary": [str(t) for t in layer.get_vocabulary()],
             "vocabulary_size": int(layer.vocabulary_size()), "output": out.tolist(), "output_dtype": out.dtype.name,
             "config": json.loads(json.dumps(config, default=lambda v: list(v)))}
    if "vocabulary" not in case:
        batched = keras.layers.TextVectorization(**args)
        batched.adapt(tf.data.Dataset.from_tensor_slices(CORPUS).batch(3))
        assert batched.get_vocabulary() == layer.get_vocabulary()
    return entry


def _rotten_tomatoes_vocabulary(keras):
    with gzip.open(ROOT / "data" / "rotten_tomatoes" / "rotten_tomatoes_snippets.csv.gz", "rt", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    layer = keras.layers.TextVectorization(max_tokens=20000)
    layer.adapt(np.array(texts))
    vocabulary = [str(t) for t in layer.get_vocabulary()]
    return {"max_tokens": 20000, "size": len(vocabulary), "head": vocabulary[:200],
            "sha256": hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest()}


def main():
    import keras
    import tensorflow as tf

    reference = {
        "keras_version": keras.__version__,
        "corpus": CORPUS,
        "queries": QUERIES,
        "cases": [_keras_case(keras, tf, case) for case in CASES],
        "rotten_tomatoes": _rotten_tomatoes_vocabulary(keras),
    }
    path = HERE / "data" / "keras_text_vectorization.json"
    path.write_text(json.dumps(reference, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
