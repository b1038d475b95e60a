"""cifar10, cifar100, imdb and reuters: Keras' files, downloaded from a local server, read without unpickling.

The fixtures are small files in Keras' exact formats, made here: CIFAR batches
pickled as Python 2 wrote them (protocol 2, str as BINSTRING, numpy.core
globals) inside Keras' tarball layout, ``imdb.npz`` written by ``np.savez``
(object arrays pickled at NumPy's protocol) and ``reuters.npz`` with Python 2
pickles. When Keras is importable, its own loaders read the same files and the
results must be equal.
"""

import hashlib
import io
import json
import os
import pickle
import struct
import tarfile
import zipfile

import numpy as np
import pytest
from conftest import optional
from local_http import server  # noqa: F401 - the fixture

import convx
from convx.datasets._pickle_data import PickleDataError, read_npz, read_pickle


class _Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote it: str and bytes both as (SHORT_)BINSTRING."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = _save_py2_str
    dispatch[bytes] = _save_py2_str


def py2_pickle(obj):
    stream = io.BytesIO()
    _Py2Pickler(stream, protocol=2).dump(obj)
    # NumPy 1 (and Python 2) name the reconstructor numpy.core.multiarray
    return stream.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def tar_gz(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def cifar_batch(rng, count, label_keys, label_range):
    batch = {"batch_label": "training batch 1 of 5",
             "data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
             "filenames": [f"image_{i:05d}.png" for i in range(count)]}
    for key in label_keys:
        batch[key] = [int(v) for v in rng.integers(0, label_range, count)]
    return batch


def ragged(rng, count, vocabulary, longest):
    array = np.empty(count, dtype=object)
    array[:] = [[int(w) for w in rng.integers(1, vocabulary, rng.integers(1, longest))] for _ in range(count)]
    return array


def npy_member(array, py2):
    """A .npy file; with ``py2`` the object array's pickle is written as Python 2's NumPy wrote it."""
    stream = io.BytesIO()
    if not py2:
        np.lib.format.write_array(stream, array, allow_pickle=True)
        return stream.getvalue()
    np.lib.format.write_array_header_1_0(stream, np.lib.format.header_data_from_array_1_0(array))
    stream.write(py2_pickle(array))
    return stream.getvalue()


def npz(members, py2=False):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in members.items():
            archive.writestr(name + ".npy", npy_member(array, py2 and array.dtype == object))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def fixtures():
    rng = np.random.default_rng(16)
    cifar10 = {f"cifar-10-batches-py/data_batch_{i}": cifar_batch(rng, 3, ["labels"], 10) for i in range(1, 6)}
    cifar10["cifar-10-batches-py/test_batch"] = cifar_batch(rng, 4, ["labels"], 10)
    cifar100 = {f"cifar-100-python/{name}": cifar_batch(rng, count, ["fine_labels", "coarse_labels"], 100)
                for name, count in (("train", 5), ("test", 3))}
    imdb = {"x_train": ragged(rng, 30, 60, 12), "y_train": rng.integers(0, 2, 30),
            "x_test": ragged(rng, 20, 80, 12), "y_test": rng.integers(0, 2, 20)}
    reuters = {"x": ragged(rng, 40, 70, 15), "y": rng.integers(0, 46, 40)}
    return {
        "cifar10": (cifar10, tar_gz({name: py2_pickle(batch) for name, batch in cifar10.items()})),
        "cifar100": (cifar100, tar_gz({name: py2_pickle(batch) for name, batch in cifar100.items()})),
        "imdb": (imdb, npz(imdb)),
        "reuters": (reuters, npz(reuters, py2=True)),
    }


@pytest.fixture
def served(server, fixtures, tmp_path, monkeypatch):  # noqa: F811 - the fixture
    """Point the four loaders at the local server, their hashes at the fixtures', the cache at tmp_path."""
    url, files = server
    monkeypatch.setenv("CONVX_HOME", str(tmp_path))
    for name, module in (("cifar10", convx.datasets.cifar10), ("cifar100", convx.datasets.cifar100),
                         ("imdb", convx.datasets.imdb), ("reuters", convx.datasets.reuters)):
        body = fixtures[name][1]
        files[f"/{name}.bin"] = body
        monkeypatch.setattr(module, "ORIGIN", f"{url}/{name}.bin")
        monkeypatch.setattr(module, "FILE_HASH", sha256(body))
    return tmp_path


def _expected_cifar10(batches):
    x = np.concatenate([batches[f"cifar-10-batches-py/data_batch_{i}"]["data"] for i in range(1, 6)])
    y = np.concatenate([batches[f"cifar-10-batches-py/data_batch_{i}"]["labels"] for i in range(1, 6)])
    test = batches["cifar-10-batches-py/test_batch"]
    return ((x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y.astype(np.uint8)[:, None]),
            (test["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1),
             np.array(test["labels"], np.uint8)[:, None]))


def assert_same(received, expected):
    """Equal nested tuples of arrays, dtypes and shapes included; object arrays element by element."""
    if isinstance(expected, tuple):
        assert isinstance(received, tuple) and len(received) == len(expected)
        for r, e in zip(received, expected):
            assert_same(r, e)
        return
    assert isinstance(received, np.ndarray), type(received)
    assert received.dtype == expected.dtype and received.shape == expected.shape
    if expected.dtype == object:
        assert [list(map(int, r)) for r in received.ravel()] == [list(map(int, e)) for e in expected.ravel()]
        assert all(type(r) is list for r in received.ravel())
    else:
        np.testing.assert_array_equal(received, expected)


def test_cifar10_downloads_extracts_and_reads_keras_layout(served, fixtures):
    received = convx.datasets.cifar10.load_data()
    assert_same(received, _expected_cifar10(fixtures["cifar10"][0]))
    cache = served / "datasets"
    assert (cache / "cifar-10-batches-py-target_archive").is_file()
    assert (cache / "cifar-10-batches-py-target" / "cifar-10-batches-py" / "test_batch").is_file()
    (x_train, y_train), (x_test, y_test) = received
    assert (x_train.dtype, y_train.dtype, x_test.dtype, y_test.dtype) == (np.uint8,) * 4
    assert (x_train.shape, y_train.shape) == ((15, 32, 32, 3), (15, 1))


def test_cifar_batches_equal_keras_load_batch(served, fixtures):
    optional("keras", "test")
    from keras.src.datasets import cifar as keras_cifar

    convx.datasets.cifar10.load_data()
    root = served / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    from convx.datasets._cifar import load_batch

    for name in ("data_batch_1", "data_batch_5", "test_batch"):
        data, labels = load_batch(root / name)
        keras_data, keras_labels = keras_cifar.load_batch(str(root / name))
        assert_same(data, keras_data)
        assert labels == keras_labels


@pytest.mark.parametrize("label_mode", ["fine", "coarse"])
def test_cifar100_equals_keras(served, fixtures, label_mode, monkeypatch):
    received = convx.datasets.cifar100.load_data(label_mode=label_mode)
    batches = fixtures["cifar100"][0]
    key = f"{label_mode}_labels"
    expected = tuple((batches[f"cifar-100-python/{name}"]["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1),
                      np.array(batches[f"cifar-100-python/{name}"][key])[:, None]) for name in ("train", "test"))
    assert_same(received, expected)
    keras = optional("keras", "test")
    from keras.src.datasets import cifar100 as keras_cifar100

    extracted = str(served / "datasets" / "cifar-100-python-target")
    monkeypatch.setattr(keras_cifar100, "get_file", lambda *args, **kwargs: extracted)
    assert keras.datasets.cifar100.load_data is keras_cifar100.load_data
    assert_same(received, keras_cifar100.load_data(label_mode=label_mode))


def test_cifar100_label_mode_checked():
    with pytest.raises(ValueError, match="label_mode"):
        convx.datasets.cifar100.load_data(label_mode="medium")


IMDB_CASES = [{}, {"num_words": 20, "skip_top": 3}, {"maxlen": 8, "seed": 7},
              {"start_char": None, "oov_char": None, "index_from": 0, "num_words": 30},
              {"start_char": 5, "oov_char": 4, "index_from": 6}]


@pytest.mark.parametrize("kwargs", IMDB_CASES)
def test_imdb_equals_keras(served, fixtures, kwargs, monkeypatch):
    received = convx.datasets.imdb.load_data(**kwargs)
    assert (served / "datasets" / "imdb.npz").is_file()
    (x_train, y_train), (x_test, y_test) = received
    assert x_train.dtype == object and y_train.dtype == np.int64 and len(x_train) == len(y_train)
    if not kwargs:
        originals = fixtures["imdb"][0]
        assert sorted(map(tuple, x_train)) == sorted(tuple([1] + [w + 3 for w in x]) for x in originals["x_train"])
    optional("keras", "test")
    from keras.src.datasets import imdb as keras_imdb

    monkeypatch.setattr(keras_imdb, "get_file", lambda *args, **kwargs: str(served / "datasets" / "imdb.npz"))
    assert_same(received, keras_imdb.load_data(**kwargs))


def test_imdb_maxlen_keeping_nothing_is_an_error(served):
    with pytest.raises(ValueError, match="Increase maxlen"):
        convx.datasets.imdb.load_data(maxlen=1)


@pytest.mark.parametrize("kwargs", [{}, {"test_split": 0.3, "seed": 1}, {"num_words": 25, "skip_top": 2, "maxlen": 10},
                                    {"start_char": None, "index_from": 0, "oov_char": None}])
def test_reuters_equals_keras(served, kwargs, monkeypatch):
    received = convx.datasets.reuters.load_data(**kwargs)
    (x_train, y_train), (x_test, _) = received
    assert len(x_train) == int((len(x_train) + len(x_test)) * (1 - kwargs.get("test_split", 0.2)))
    optional("keras", "test")
    from keras.src.datasets import reuters as keras_reuters

    monkeypatch.setattr(keras_reuters, "get_file", lambda *args, **kwargs: str(served / "datasets" / "reuters.npz"))
    assert_same(received, keras_reuters.load_data(**kwargs))
    assert convx.datasets.reuters.get_label_names() == keras_reuters.get_label_names()


@pytest.mark.parametrize("module, fname", [(convx.datasets.imdb, "imdb_word_index.json"),
                                           (convx.datasets.reuters, "reuters_word_index.json")])
def test_word_index_downloaded_md5_checked(server, tmp_path, monkeypatch, module, fname):  # noqa: F811
    url, files = server
    body = json.dumps({"the": 1, "and": 2, "café": 3}).encode()
    files["/" + fname] = body
    monkeypatch.setenv("CONVX_HOME", str(tmp_path))
    monkeypatch.setattr(module, "WORD_INDEX_ORIGIN", f"{url}/{fname}")
    monkeypatch.setattr(module, "WORD_INDEX_HASH", hashlib.md5(body).hexdigest())
    assert module.get_word_index() == {"the": 1, "and": 2, "café": 3}
    assert (tmp_path / "datasets" / fname).is_file()
    monkeypatch.setattr(module, "WORD_INDEX_HASH", "0" * 32)
    (tmp_path / "datasets" / fname).unlink()
    with pytest.raises(ValueError, match="hash does not match"):
        module.get_word_index()


def test_keras_signatures_and_constants_match():
    keras = optional("keras", "test")
    import inspect

    for name in ("cifar10", "cifar100", "imdb", "reuters"):
        ours, theirs = getattr(convx.datasets, name), getattr(keras.datasets, name)
        for function in ("load_data", "get_word_index", "get_label_names"):
            if hasattr(theirs, function):
                assert inspect.signature(getattr(ours, function)) == inspect.signature(getattr(theirs, function))
    from keras.src.datasets import cifar10, cifar100, imdb, reuters

    for ours, theirs in ((convx.datasets.cifar10, cifar10), (convx.datasets.cifar100, cifar100),
                         (convx.datasets.imdb, imdb), (convx.datasets.reuters, reuters)):
        source = inspect.getsource(theirs)
        folder, name = ours.ORIGIN.rsplit("/", 1)
        assert ours.ORIGIN in source or (folder + "/" in source and f"}}{name}" in source)
        assert ours.FILE_HASH in source
        for constant in ("DIRNAME", "WORD_INDEX_HASH"):
            if hasattr(ours, constant):
                assert getattr(ours, constant) in source


# --- the restricted reader itself ---------------------------------------------------------------------------

PLAIN = {"ints": [0, -1, 255, 65535, -(2 ** 31), 2 ** 40, -(2 ** 70)],
         # long runs of the three small int opcodes, across the reader's 64 KiB read-ahead chunks
         "many ints": [int(v) for v in np.random.default_rng(0).integers(-2 ** 31, 2 ** 31, 60000) >> np.arange(60000) % 32], "floats": (1.5, -0.0, float("inf")),
         "text": "café", b"key": b"\x00\xff" * 200, "flags": [True, False, None], "nested": [[], (), {}],
         "arrays": [np.arange(12, dtype="<f8").reshape(3, 4), np.arange(6, dtype=">i4").reshape(2, 3).T,
                    np.zeros((0, 5), np.uint8), np.array([[1, 2], [3]], dtype=object), np.array(["ab", "c"])]}


def _equal(a, b):
    if isinstance(b, np.ndarray):
        same = (isinstance(a, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and a.flags.f_contiguous == b.flags.f_contiguous and a.flags.writeable)
        return same and (all(map(_equal, a.ravel(), b.ravel())) if b.dtype == object else np.array_equal(a, b))
    if isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(b, dict):
        return type(a) is dict and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in b)
    return type(a) is type(b) and (a == b or a != a and b != b)


@pytest.mark.parametrize("protocol", [3, 4])
def test_reader_equals_pickle_on_plain_data_and_arrays(protocol):
    data = pickle.dumps(PLAIN, protocol=protocol)
    assert _equal(read_pickle(data), pickle.loads(data))


def test_reader_reads_python2_strings_as_pickle_does():
    data = py2_pickle({"label": "abc", "blob": b"\xff\x00", "data": np.arange(4, dtype=np.uint8)})
    for encoding in ("bytes", "latin1"):
        assert _equal(read_pickle(data, encoding=encoding), pickle.loads(data, encoding=encoding))
    with pytest.raises(PickleDataError, match="malformed"):
        read_pickle(data)  # as pickle, ASCII cannot decode the byte 0xff


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def evil_pickles(marker):
    """(payload, expected message): each would create ``marker`` (or build an object) if unpickled."""
    return [
        (f"cos\nsystem\n(S'touch {marker}'\ntR.".encode(), "os.system"),  # protocol 0 GLOBAL + REDUCE
        (pickle.dumps(_Evil(os.system, f"touch {marker}"), protocol=4), f"refusing to load {os.system.__module__}.system"),
        (pickle.dumps(_Evil(eval, f"open('{marker}', 'w')"), protocol=2), "__builtin__.eval"),
        (pickle.dumps(_Evil(eval, f"open('{marker}', 'w')"), protocol=3), "builtins.eval"),
        (pickle.dumps([1, _Evil(np.ndarray, (2,))], protocol=3), "refusing to call numpy.ndarray"),
        (pickle.dumps(_Evil(np.dtype, "f8"), protocol=2), "dtype used before its BUILD"),
        (pickle.dumps({1, 2}, protocol=4), "EMPTY_SET"),
        (b"c__builtin__\nobject\n)\x81.", "__builtin__.object"),
    ]


@pytest.mark.parametrize("case", range(8))
def test_malicious_pickles_are_refused_without_running_anything(case, tmp_path):
    marker = tmp_path / "pwned"
    payload, message = evil_pickles(marker)[case]
    with pytest.raises(PickleDataError, match=message):
        read_pickle(payload, source="evil.pkl")
    assert not marker.exists()


@pytest.mark.parametrize("payload", [b"", b"\x80\x04K\x01", b"\x80\x03]q\x00(K\x01e", b"\x80\x03K\x01K\x02.",
                                     b"\x80\x03e.", b"\x80\x03h\x05.", b"\xff."])
def test_malformed_pickles_raise_a_clear_error(payload):
    with pytest.raises(PickleDataError):
        read_pickle(payload, source="bad.pkl")


def test_malicious_npz_and_cifar_batch_are_refused(served, server, monkeypatch, tmp_path):  # noqa: F811
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Evil(os.system, f"touch {marker}"), protocol=3)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False, "shape": (2,)})
    members = {"x_train.npy": header.getvalue() + evil}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    path = tmp_path / "evil.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(PickleDataError, match=f"refusing to load {os.system.__module__}.system"):
        read_npz(path)
    url, files = server
    body = tar_gz({"cifar-10-batches-py/data_batch_1": evil})
    files["/evil-cifar.bin"] = body
    monkeypatch.setattr(convx.datasets.cifar10, "ORIGIN", f"{url}/evil-cifar.bin")
    monkeypatch.setattr(convx.datasets.cifar10, "FILE_HASH", sha256(body))
    monkeypatch.setattr(convx.datasets.cifar10, "DIRNAME", "evil-target")
    with pytest.raises(PickleDataError, match=f"refusing to load {os.system.__module__}.system"):
        convx.datasets.cifar10.load_data()
    assert not marker.exists()


def test_object_array_header_and_pickle_must_agree(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False, "shape": (3,)})
    path = tmp_path / "mismatch.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + pickle.dumps({"not": "an array"}, protocol=3))
    with pytest.raises(PickleDataError, match="not the"):
        read_npz(path)
