"""TextVectorization against TF-Keras 3.15.1, pinned in data/keras_text_vectorization.json (written by
make_keras_text_vectorization_reference.py): vocabulary order, OOV, ngrams, every output mode, tf_idf
weights, padding and truncation, Unicode standardization, configs; the Rotten Tomatoes vocabulary."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import convx
from convx import layers as L

REFERENCE = json.loads((Path(__file__).parent / "data" / "keras_text_vectorization.json").read_text("utf-8"))
CASES = REFERENCE["cases"]


def _layer(args):
    args = dict(args)
    if isinstance(args.get("ngrams"), list):
        args["ngrams"] = tuple(args["ngrams"])
    return L.TextVectorization(**args)


@pytest.mark.parametrize("case", CASES, ids=[json.dumps(c["args"], ensure_ascii=True) for c in CASES])
def test_matches_keras(case):
    layer = _layer(case["args"])
    if "vocabulary" not in case["args"]:
        layer.adapt(np.array(REFERENCE["corpus"]))
    assert layer.get_vocabulary() == case["vocabulary"]
    assert layer.vocabulary_size() == case["vocabulary_size"]
    out = layer(np.array(REFERENCE["queries"]))
    assert out.dtype.name == case["output_dtype"]
    np.testing.assert_allclose(out, np.array(case["output"]), rtol=1e-6)
    config = layer.get_config()
    config.pop("name")
    expected = dict(case["config"])
    if "vocabulary" not in case["args"]:  # convx keeps an adapted vocabulary in the config too
        assert config.pop("vocabulary") == case["vocabulary"]
        idf = config.pop("idf_weights")
        assert (idf is None) == (case["args"].get("output_mode") != "tf_idf")
        expected.pop("vocabulary"), expected.pop("idf_weights")
    assert json.loads(json.dumps(config, default=list)) == expected


@pytest.mark.parametrize("case", CASES[:2] + CASES[10:12], ids=["default", "max_tokens", "tf_idf", "tf_idf_padded"])
def test_adapt_over_lists_batches_and_datasets(case):
    corpus = REFERENCE["corpus"]
    sources = {
        "list": corpus,
        "generator": (np.array(corpus[i:i + 3]) for i in range(0, len(corpus), 3)),
        "dataset": convx.data.Dataset.from_tensor_slices(np.array(corpus)).batch(3),
        "bytes": np.array([s.encode("utf-8") for s in corpus]),
        "column": np.array(corpus)[:, None],
    }
    for name, data in sources.items():
        layer = _layer(case["args"])
        layer.adapt(data)
        assert layer.get_vocabulary() == case["vocabulary"], name
        np.testing.assert_allclose(layer(np.array(REFERENCE["queries"])), np.array(case["output"]), rtol=1e-6)


def test_adapt_steps_reads_that_many_batches():
    corpus = REFERENCE["corpus"]
    layer = L.TextVectorization()
    layer.adapt(convx.data.Dataset.from_tensor_slices(np.array(corpus)).batch(2).repeat(), steps=1)
    assert sorted(layer.get_vocabulary()[2:]) == sorted(set(" ".join(corpus[:2]).lower().replace(",", "")
                                                          .replace("!", "").replace(".", "").replace(";", "")
                                                          .replace(":", "").split()))


RT_DATA = Path(__file__).resolve().parents[2] / "data" / "rotten_tomatoes"


@pytest.mark.skipif(not RT_DATA.is_dir(), reason=f"no Rotten Tomatoes copy in {RT_DATA} (an sdist leaves data/ out)")
def test_rotten_tomatoes_vocabulary_as_keras():
    from convx.datasets import rotten_tomatoes

    expected = REFERENCE["rotten_tomatoes"]
    (x_train, _), (x_test, _) = rotten_tomatoes.load_data(test_split=0.0, path=RT_DATA)
    assert len(x_train) == 12808 and len(x_test) == 0
    layer = L.TextVectorization(max_tokens=expected["max_tokens"])
    layer.adapt(x_train)
    vocabulary = layer.get_vocabulary()
    assert vocabulary[:200] == expected["head"]
    assert len(vocabulary) == expected["size"]
    assert hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest() == expected["sha256"]


def test_unicode_standardization_as_tensorflow():
    layer = L.TextVectorization(vocabulary=["école", "cafÉ"])
    # tf.strings.lower lowercases ASCII only; only ASCII punctuation is stripped; ASCII whitespace splits
    np.testing.assert_array_equal(layer(["ÉCOLE école CAFÉ, café“ a\u00a0b"]), [[1, 2, 3, 1, 1]])


def test_errors_as_keras():
    with pytest.raises(ValueError, match="standardize"):
        L.TextVectorization(standardize="upper")
    with pytest.raises(ValueError, match="output_sequence_length"):
        L.TextVectorization(output_mode="count", output_sequence_length=3)
    with pytest.raises(ValueError, match="idf_weights"):
        L.TextVectorization(output_mode="tf_idf", vocabulary=["a"])
    with pytest.raises(ValueError, match="repeated"):
        L.TextVectorization(vocabulary=["a", "b", "a"])
    with pytest.raises(ValueError, match="larger than the maximum"):
        L.TextVectorization(max_tokens=3, vocabulary=["a", "b"])
    with pytest.raises(ValueError, match="static vocabulary"):
        L.TextVectorization(vocabulary=["a"]).adapt(["a b"])
    with pytest.raises(RuntimeError, match="set the layer's vocabulary"):
        L.TextVectorization(output_mode="multi_hot")(["a"])
    with pytest.raises(ValueError, match="last shape dimension must be 1"):
        L.TextVectorization(vocabulary=["a"])(np.array([["a", "b"]]))


def test_assets_and_variables_round_trip(tmp_path):
    layer = L.TextVectorization(output_mode="tf_idf")
    layer.adapt(REFERENCE["corpus"])
    store = {}
    layer.save_own_variables(store)
    layer.save_assets(tmp_path)
    assert (tmp_path / "vocabulary.txt").read_text("utf-8").split("\n") == layer.get_vocabulary()
    other = L.TextVectorization(output_mode="tf_idf")
    other.load_own_variables(store)
    other.load_assets(tmp_path)
    assert other.get_vocabulary() == layer.get_vocabulary()
    queries = np.array(REFERENCE["queries"])
    np.testing.assert_array_equal(other(queries), layer(queries))
    clone = L.TextVectorization.from_config(layer.get_config())
    np.testing.assert_array_equal(clone(queries), layer(queries))


def _text_model(vectorizer):
    inputs = convx.Input((1,), dtype="string")
    h = L.Embedding(vectorizer.vocabulary_size(), 4)(vectorizer(inputs))
    outputs = L.Dense(1, activation="sigmoid")(L.GlobalMaxPooling1D()(h))
    return convx.Model(inputs, outputs)


def test_string_inputs_train_predict_and_save(tmp_path):
    vectorizer = L.TextVectorization(max_tokens=50, output_sequence_length=6)
    vectorizer.adapt(REFERENCE["corpus"])
    model = _text_model(vectorizer)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    x = np.array(REFERENCE["corpus"] * 4)
    y = np.arange(len(x)) % 2
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    predicted = model.predict(x, verbose=0)
    assert predicted.shape == (len(x), 1)
    np.testing.assert_allclose(model.predict(list(x[:3]), verbose=0), predicted[:3], rtol=1e-6)
    np.testing.assert_allclose(model.predict(x[:3, None], verbose=0), predicted[:3], rtol=1e-6)
    dataset = convx.data.Dataset.from_tensor_slices((x, y)).batch(8)
    model.fit(dataset, epochs=1, verbose=0)
    np.testing.assert_allclose(model.predict(dataset.map(lambda text, label: text), verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
    predicted = model.predict(x, verbose=0)
    path = tmp_path / "text.keras"
    model.save(path)
    loaded = convx.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), predicted, rtol=1e-6)


def test_in_dataset_map():
    vectorizer = L.TextVectorization(vocabulary=["great", "the"], output_sequence_length=3)
    dataset = convx.data.Dataset.from_tensor_slices(np.array(["the great", "great"])).batch(2).map(vectorizer)
    np.testing.assert_array_equal(next(iter(dataset)), [[3, 2, 0], [2, 0, 0]])


_KERAS_SIDE = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np, keras
folder = sys.argv[1]
corpus = np.load(os.path.join(folder, "corpus.npy"), allow_pickle=True)
model = keras.models.load_model(os.path.join(folder, "convx.keras"))
np.save(os.path.join(folder, "keras_pred.npy"), model.predict(corpus, verbose=0))
vectorizer = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=5, output_mode="int")
vectorizer.adapt(corpus)
inputs = keras.Input((1,), dtype="string")
native = keras.Model(inputs, keras.layers.Embedding(vectorizer.vocabulary_size(), 3)(vectorizer(inputs)))
native.save(os.path.join(folder, "keras.keras"))
np.save(os.path.join(folder, "native_pred.npy"), native.predict(corpus, verbose=0))
"""


def test_keras_files_both_ways(tmp_path):
    """A convx text model (adapted vocabulary) loads in TF-Keras 3 with the same predictions, and a model with a
    vocabulary Keras adapted (kept in the archive's assets) loads in convx."""
    import importlib.util
    import os
    import subprocess
    import sys

    from conftest import optional

    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("tensorflow") is None:
        if os.environ.get("CONVX_REQUIRE_OPTIONAL") == "1":
            pytest.fail("TensorFlow-Keras 3 not installed: pip install tensorflow-cpu")
        pytest.skip("TensorFlow-Keras 3 not installed: pip install tensorflow-cpu")
    optional("h5py", "keras")
    corpus = np.array(["a good film", "a bad film", "good good", "bad", "an unseen word"], dtype=object)
    vectorizer = L.TextVectorization(max_tokens=20, output_sequence_length=5)
    vectorizer.adapt(corpus[:4])
    model = _text_model(vectorizer)
    model.save(tmp_path / "convx.keras")
    np.save(tmp_path / "corpus.npy", corpus)
    done = subprocess.run([sys.executable, "-c", _KERAS_SIDE, str(tmp_path)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "keras_pred.npy"), model.predict(corpus, verbose=0), rtol=1e-5,
                               atol=1e-6)
    native = convx.saving.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(native.predict(corpus, verbose=0), np.load(tmp_path / "native_pred.npy"), rtol=1e-5,
                               atol=1e-6)
