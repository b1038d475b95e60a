"""Offline data set loaders: the real MNIST copy, IDX parsing, lookup and errors."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from convx.datasets import _idx, fashion_mnist, mnist

REPO_ROOT = Path(__file__).resolve().parents[2]
REPO_DATA = REPO_ROOT / "data" / "mnist"
# The repository's MNIST copy is left out of the sdist, whose tests then skip these checks.
needs_repo_data = pytest.mark.skipif(
    bool(_idx.missing_files(REPO_DATA)), reason=f"no MNIST copy in {REPO_DATA} (an sdist leaves data/ out)"
)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx_bytes(array, magic=None):
    """IDX encoding of a uint8 array; ``magic`` overrides the header's magic number."""
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x00000800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_file(directory, name, data, gz):
    path = directory / (name + ".gz" if gz else name)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_dataset(directory, rng, n_train=5, n_test=3, gz=True):
    """Write four small random IDX files; returns the arrays written."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        _idx.TRAIN_IMAGES: rng.integers(0, 256, (n_train, 4, 3), dtype=np.uint8),
        _idx.TRAIN_LABELS: rng.integers(0, 10, n_train, dtype=np.uint8),
        _idx.TEST_IMAGES: rng.integers(0, 256, (n_test, 4, 3), dtype=np.uint8),
        _idx.TEST_LABELS: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_file(directory, name, idx_bytes(array), gz)
    return arrays


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Default lookup confined to empty places under tmp_path."""
    monkeypatch.setenv("CONVX_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(mnist, "_checkout_starts", lambda: [tmp_path / "elsewhere"])
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "system")
    return tmp_path


# ---------------------------------------------------------------- real MNIST


@pytest.fixture(scope="module")
def real_mnist():
    return mnist.load_data(path=REPO_DATA)


@needs_repo_data
def test_mnist_shapes_and_dtypes(real_mnist):
    (x_train, y_train), (x_test, y_test) = real_mnist
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    for array in (x_train, y_train, x_test, y_test):
        assert array.dtype == np.uint8
        assert array.flags.writeable and array.flags.c_contiguous


@needs_repo_data
def test_mnist_published_checks(real_mnist):
    (x_train, y_train), (x_test, y_test) = real_mnist
    assert y_train[0] == 5
    assert np.bincount(y_train, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == MNIST_TEST_COUNTS
    # Exact integer moments: far cheaper than a float64 copy of 47 M pixels.
    n = x_train.size
    squares = np.square(x_train.astype(np.uint16))  # 255**2 fits in uint16
    mean = x_train.sum(dtype=np.int64) / n / 255.0
    std = np.sqrt(squares.sum(dtype=np.int64) / n / 255.0**2 - mean**2)
    assert abs(mean - 0.1306605) < 1e-6
    assert abs(std - 0.3081078) < 1e-6
    assert x_train.max() == 255 and x_test.max() == 255 and x_train.min() == 0


@needs_repo_data
def test_default_lookup_finds_the_checkout_from_the_working_directory(monkeypatch):
    monkeypatch.delenv("CONVX_DATA", raising=False)
    monkeypatch.chdir(REPO_ROOT / "tests")
    assert ("repository checkout", REPO_DATA) in mnist._candidates(None)


@needs_repo_data
def test_default_lookup_finds_the_checkout_from_the_package():
    if REPO_ROOT not in Path(mnist.__file__).resolve().parents:
        pytest.skip("convx is installed outside this checkout")
    assert mnist.find_checkout_data(mnist.__file__) == REPO_DATA


def test_find_checkout_data_none_without_checkout(tmp_path):
    assert mnist.find_checkout_data(tmp_path) is None


def test_find_checkout_data_walks_up(tmp_path):
    data = tmp_path / "repo" / "data" / "mnist"
    data.mkdir(parents=True)
    (data / "train-images-idx3-ubyte.gz").write_bytes(b"")
    deep = tmp_path / "repo" / "a" / "b"
    deep.mkdir(parents=True)
    assert mnist.find_checkout_data(deep) == data.resolve()


# ---------------------------------------------------------------- IDX format


@pytest.mark.parametrize("gz", [True, False])
def test_synthetic_round_trip(tmp_path, rng, gz):
    arrays = write_dataset(tmp_path, rng, gz=gz)
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(path=tmp_path)
    np.testing.assert_array_equal(x_train, arrays[_idx.TRAIN_IMAGES])
    np.testing.assert_array_equal(y_train, arrays[_idx.TRAIN_LABELS])
    np.testing.assert_array_equal(x_test, arrays[_idx.TEST_IMAGES])
    np.testing.assert_array_equal(y_test, arrays[_idx.TEST_LABELS])
    assert x_train.dtype == np.uint8 and x_train.shape == (5, 4, 3)


def test_mixed_compressed_and_raw_files(tmp_path, rng):
    arrays = write_dataset(tmp_path, rng, gz=True)
    (tmp_path / (_idx.TEST_LABELS + ".gz")).unlink()
    write_file(tmp_path, _idx.TEST_LABELS, idx_bytes(arrays[_idx.TEST_LABELS]), gz=False)
    (_, _), (_, y_test) = fashion_mnist.load_data(path=str(tmp_path))
    np.testing.assert_array_equal(y_test, arrays[_idx.TEST_LABELS])


def test_parse_idx_empty_and_exact():
    assert _idx.parse_idx(idx_bytes(np.zeros((0, 28, 28))), _idx.IMAGES_MAGIC, "f").shape == (0, 28, 28)
    labels = _idx.parse_idx(idx_bytes([3, 1, 4]), _idx.LABELS_MAGIC, "f")
    assert labels.tolist() == [3, 1, 4]


def test_bad_magic(tmp_path, rng):
    write_dataset(tmp_path, rng)
    images = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    write_file(tmp_path, _idx.TRAIN_LABELS, idx_bytes(images), gz=True)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte\.gz: bad IDX magic number: "
                       r"expected 0x00000801, received 0x00000803"):
        fashion_mnist.load_data(path=tmp_path)


def test_bad_magic_hints_at_unnamed_gzip():
    data = gzip.compress(idx_bytes([1, 2]))
    with pytest.raises(ValueError, match=r"looks gzip-compressed"):
        _idx.parse_idx(data, _idx.LABELS_MAGIC, "labels")


def test_truncated_body(tmp_path, rng):
    write_dataset(tmp_path, rng, gz=False)
    path = tmp_path / _idx.TEST_IMAGES
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: truncated IDX file: "
                       r"shape \(3, 4, 3\) needs 36 data bytes, the file has 31"):
        fashion_mnist.load_data(path=tmp_path)


@pytest.mark.parametrize("length, needed", [(2, "too short for a magic number"), (9, "the header needs 16 bytes")])
def test_truncated_header(length, needed):
    data = idx_bytes(np.zeros((2, 2, 2)))[:length]
    with pytest.raises(ValueError, match=f"truncated IDX file: .*{needed}"):
        _idx.parse_idx(data, _idx.IMAGES_MAGIC, "images")


def test_trailing_bytes():
    with pytest.raises(ValueError, match=r"2 unexpected bytes after the 3 data bytes of shape \(3,\)"):
        _idx.parse_idx(idx_bytes([1, 2, 3]) + b"\0\0", _idx.LABELS_MAGIC, "labels")


def test_truncated_gzip(tmp_path, rng):
    write_dataset(tmp_path, rng)
    path = tmp_path / (_idx.TRAIN_IMAGES + ".gz")
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: not a valid gzip file"):
        fashion_mnist.load_data(path=tmp_path)


def test_count_mismatch(tmp_path, rng):
    write_dataset(tmp_path, rng)
    write_file(tmp_path, _idx.TEST_LABELS, idx_bytes([1, 2]), gz=True)
    with pytest.raises(ValueError, match=r"count mismatch: .*t10k-images-idx3-ubyte\.gz holds 3 images "
                       r"but .*t10k-labels-idx1-ubyte\.gz holds 2 labels"):
        fashion_mnist.load_data(path=tmp_path)


# ---------------------------------------------------------------- checksums and lookup


def test_mnist_checksum_mismatch_names_file_and_digests(tmp_path, rng):
    arrays = write_dataset(tmp_path, rng)
    received = hashlib.sha256(idx_bytes(arrays[_idx.TRAIN_IMAGES])).hexdigest()
    expected = mnist.SHA256[_idx.TRAIN_IMAGES]
    with pytest.raises(ValueError, match=f"train-images-idx3-ubyte.gz: SHA-256 checksum mismatch.*"
                       f"expected {expected}, received {received}"):
        mnist.load_data(path=tmp_path)


def test_mnist_env_var_takes_precedence_over_checkout(monkeypatch, tmp_path, rng):
    env_dir = tmp_path / "env" / "mnist"
    write_dataset(env_dir, rng)
    monkeypatch.setenv("CONVX_DATA", str(tmp_path / "env"))
    # The synthetic files fail the checksum, which proves they were the ones read.
    with pytest.raises(ValueError, match=f"{env_dir}.*SHA-256 checksum mismatch"):
        mnist.load_data()


def test_mnist_home_directory_is_the_last_resort(isolated, rng):
    home_dir = isolated / "home" / ".convx" / "datasets" / "mnist"
    write_dataset(home_dir, rng)
    with pytest.raises(ValueError, match=f"{home_dir}.*SHA-256 checksum mismatch"):
        mnist.load_data()


def test_mnist_missing_files_message_lists_every_place(isolated):
    (isolated / "env" / "mnist").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as info:
        mnist.load_data()
    message = str(info.value)
    assert "MNIST data files not found. Looked in:" in message
    assert f"{isolated / 'env' / 'mnist'} ($CONVX_DATA/mnist): missing train-images-idx3-ubyte[.gz]" in message
    assert f"data/mnist/ of a repository checkout: none above {isolated / 'elsewhere'}" in message
    assert f"{isolated / 'home' / '.convx' / 'datasets' / 'mnist'} (user data directory): does not exist" in message
    assert "Put the four files train-images-idx3-ubyte.gz" in message
    assert "~/.convx/datasets/mnist/" in message and "path=" in message


def test_mnist_unset_env_var_is_reported(isolated, monkeypatch):
    monkeypatch.delenv("CONVX_DATA")
    with pytest.raises(FileNotFoundError, match=r"CONVX_DATA is not set"):
        mnist.load_data()


def test_explicit_path_missing_one_file(tmp_path, rng):
    write_dataset(tmp_path, rng)
    (tmp_path / (_idx.TEST_LABELS + ".gz")).unlink()
    with pytest.raises(FileNotFoundError, match=r"\(path argument\): missing t10k-labels-idx1-ubyte\[\.gz\]\nPut"):
        mnist.load_data(path=tmp_path)


def test_explicit_path_that_is_a_file(tmp_path):
    npz = tmp_path / "mnist.npz"
    npz.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"mnist\.npz \(path argument\): is a file, not a directory"):
        mnist.load_data(path=npz)


# ---------------------------------------------------------------- Fashion-MNIST


def test_fashion_lookup_order(isolated, rng):
    env_arrays = write_dataset(isolated / "env" / "fashion-mnist", rng, n_train=2)
    (_, y_train), _ = fashion_mnist.load_data()
    np.testing.assert_array_equal(y_train, env_arrays[_idx.TRAIN_LABELS])
    system_arrays = write_dataset(isolated / "system", rng, n_train=4)
    (_, y_train), _ = fashion_mnist.load_data()
    np.testing.assert_array_equal(y_train, system_arrays[_idx.TRAIN_LABELS])


def test_fashion_missing_files_message(isolated):
    with pytest.raises(FileNotFoundError) as info:
        fashion_mnist.load_data()
    message = str(info.value)
    assert f"{isolated / 'system'} (Debian package dataset-fashion-mnist): does not exist" in message
    assert f"{isolated / 'env' / 'fashion-mnist'} ($CONVX_DATA/fashion-mnist): does not exist" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_real_fashion_mnist():
    if _idx.missing_files(fashion_mnist.SYSTEM_DIR):
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert y_train[0] == 9  # the well-known first image: an ankle boot
    # The data set is balanced by construction.
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
