"""image/text_dataset_from_directory and timeseries_dataset_from_array, as Keras 3 builds them."""

import numpy as np
import pytest
from conftest import optional

import convx
from convx.utils import image_dataset_from_directory, text_dataset_from_directory, timeseries_dataset_from_array


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory):
    Image = optional("PIL.Image", "images")
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for label in ("cat", "dog", "bird"):
        (root / label).mkdir()
        for i in range(6):
            h, w = rng.integers(10, 40, 2)
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / label / f"img{i}.png")
    (root / "dog" / "nested").mkdir()
    Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8)).save(root / "dog" / "nested" / "gray.png")
    Image.fromarray(rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)).save(root / "cat" / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (21, 33, 3), dtype=np.uint8)).save(root / "bird" / "b.bmp")
    Image.fromarray(rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)).save(root / "bird" / "g.gif")
    (root / "bird" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    return root


def test_image_dataset_classes_order_and_shapes(image_tree):
    ds = image_dataset_from_directory(image_tree, image_size=(16, 24), batch_size=4, shuffle=False, verbose=False)
    assert ds.class_names == ["bird", "cat", "dog"]
    assert len(ds.file_paths) == 22 and ds.file_paths[0].endswith("bird/b.bmp")
    assert ds.file_paths[-1].endswith("dog/nested/gray.png")
    x, y = next(iter(ds))
    assert x.shape == (4, 16, 24, 3) and x.dtype == np.float32 and y.dtype == np.int32
    labels = np.concatenate([y for _, y in ds])
    assert labels.tolist() == [0] * 8 + [1] * 7 + [2] * 7
    assert ds.cardinality() == 6


def test_image_dataset_label_modes_and_split(image_tree):
    cat = image_dataset_from_directory(image_tree, label_mode="categorical", image_size=8, shuffle=False,
                                       verbose=False)
    assert next(iter(cat))[1].shape == (22, 3) and next(iter(cat))[1].dtype == np.float32
    binary = image_dataset_from_directory(image_tree, label_mode="binary", class_names=["dog", "cat"], image_size=8,
                                          verbose=False, seed=1)
    y = np.concatenate([b for _, b in binary])
    assert y.shape == (14, 1) and y.dtype == np.float32
    train, val = image_dataset_from_directory(image_tree, validation_split=0.25, subset="both", seed=5, image_size=8,
                                              verbose=False)
    assert len(train.file_paths) == 17 and len(val.file_paths) == 5
    assert not set(train.file_paths) & set(val.file_paths)
    with pytest.raises(ValueError, match="seed"):
        image_dataset_from_directory(image_tree, validation_split=0.2, subset="training")
    images = image_dataset_from_directory(image_tree, labels=None, image_size=8, color_mode="grayscale",
                                          batch_size=None, verbose=False)
    assert next(iter(images)).shape == (8, 8, 1)


def test_image_dataset_matches_keras(image_tree):
    tf = optional("tensorflow", "test")
    for kwargs in (dict(image_size=(16, 24)), dict(image_size=(50, 45), color_mode="grayscale", class_names=["cat"]),
                   dict(image_size=(16, 24), interpolation="nearest", label_mode="categorical"),
                   dict(image_size=(16, 16), crop_to_aspect_ratio=True),
                   dict(image_size=(8, 8), validation_split=0.3, subset="validation")):
        ours = image_dataset_from_directory(str(image_tree), seed=3, batch_size=None, verbose=False, shuffle=False,
                                            **kwargs)
        theirs = tf.keras.utils.image_dataset_from_directory(str(image_tree), seed=3, batch_size=None, verbose=False,
                                                             shuffle=False, **kwargs)
        assert ours.class_names == theirs.class_names and ours.file_paths == theirs.file_paths
        for (xa, ya), (xb, yb) in zip(ours, theirs.as_numpy_iterator()):
            assert xa.dtype == xb.dtype and np.array_equal(ya, yb) and ya.dtype == yb.dtype
            # TensorFlow's grey conversion differs by one level on a few pixels
            np.testing.assert_allclose(xa, xb, atol=1.0 if kwargs.get("color_mode") == "grayscale" else 2e-3)
    shuffled = image_dataset_from_directory(str(image_tree), seed=7, image_size=8, verbose=False)
    reference = tf.keras.utils.image_dataset_from_directory(str(image_tree), seed=7, image_size=8, verbose=False)
    assert shuffled.file_paths == reference.file_paths


def test_missing_directory_and_empty(tmp_path):
    optional("PIL.Image", "images")
    with pytest.raises(FileNotFoundError):
        image_dataset_from_directory(tmp_path / "nope")
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="No images found"):
        image_dataset_from_directory(tmp_path, verbose=False)


def test_text_dataset(tmp_path):
    for label, texts in (("neg", ["bad", "awful movie"]), ("pos", ["great", "good film", "fine"])):
        (tmp_path / label).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / label / f"{i}.txt").write_text(text, encoding="utf-8")
    ds = text_dataset_from_directory(tmp_path, batch_size=2, shuffle=False, verbose=False)
    assert ds.class_names == ["neg", "pos"]
    batches = list(ds)
    assert batches[0][0].tolist() == ["bad", "awful movie"] and batches[0][1].tolist() == [0, 0]
    assert batches[0][0].dtype.kind == "U"
    short = text_dataset_from_directory(tmp_path, max_length=3, batch_size=None, shuffle=False, verbose=False)
    assert [str(t) for t, _ in short] == ["bad", "awf", "gre", "goo", "fin"]


def test_text_dataset_matches_keras(tmp_path):
    tf = optional("tensorflow", "test")
    for label in ("a", "b", "c"):
        (tmp_path / label).mkdir()
        for i in range(4):
            (tmp_path / label / f"{i}.txt").write_text(f"{label} text {i}", encoding="utf-8")
    ours = text_dataset_from_directory(tmp_path, seed=2, validation_split=0.25, subset="training", batch_size=None,
                                       shuffle=True, verbose=False)
    theirs = tf.keras.utils.text_dataset_from_directory(str(tmp_path), seed=2, validation_split=0.25,
                                                        subset="training", batch_size=None, verbose=False)
    assert ours.class_names == theirs.class_names
    assert sorted(str(t) for t, _ in ours) == sorted(t.decode() for t, _ in theirs.as_numpy_iterator())


def test_timeseries_windows():
    data = np.arange(100)
    ds = timeseries_dataset_from_array(data, None, sequence_length=10, batch_size=32)
    batches = list(ds)
    assert [b.shape for b in batches] == [(32, 10), (32, 10), (27, 10)]
    assert batches[0][1].tolist() == list(range(1, 11))
    # the documentation's example: targets offset by the sequence length
    x = np.arange(50, dtype=np.float64)
    ds = timeseries_dataset_from_array(x[:-10], x[10:], sequence_length=10, sampling_rate=2, sequence_stride=3,
                                       batch_size=4, start_index=2, end_index=35)
    windows, targets = next(iter(ds))
    assert windows.dtype == np.float64 and windows[1].tolist() == list(range(5, 25, 2)) and targets[1] == 15.0
    shuffled = timeseries_dataset_from_array(data, data, sequence_length=5, shuffle=True, seed=3, batch_size=None)
    starts = [int(w[0]) for w, _ in shuffled]
    assert sorted(starts) == list(range(96)) and starts != list(range(96))
    with pytest.raises(ValueError, match="sampling_rate"):
        timeseries_dataset_from_array(data, None, 5, sampling_rate=0)


def test_timeseries_matches_keras():
    tf = optional("tensorflow", "test")
    data = np.random.default_rng(0).normal(size=(60, 2))
    kwargs = dict(sequence_length=7, sequence_stride=2, sampling_rate=3, batch_size=5, start_index=4, end_index=55)
    ours = list(timeseries_dataset_from_array(data, np.arange(60), **kwargs))
    theirs = list(tf.keras.utils.timeseries_dataset_from_array(data, np.arange(60), **kwargs).as_numpy_iterator())
    assert len(ours) == len(theirs)
    for (xa, ya), (xb, yb) in zip(ours, theirs):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
