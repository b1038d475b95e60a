"""get_file against a local HTTP server on 127.0.0.1 (this machine has no internet)."""

import hashlib
import io
import os
import tarfile
import zipfile

import pytest
from local_http import server  # noqa: F401 - the fixture

from convx.utils import get_file


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_download_cache_and_hash(server, tmp_path):
    url, files = server
    files["/data.bin"] = b"hello convx" * 100
    path = get_file(origin=url + "/data.bin", file_hash=sha256(files["/data.bin"]), cache_dir=str(tmp_path))
    assert path == str(tmp_path / "datasets" / "data.bin")
    assert open(path, "rb").read() == files["/data.bin"]
    del files["/data.bin"]  # cached: no second download
    assert get_file("data.bin", url + "/data.bin", cache_dir=str(tmp_path)) == path
    md5 = hashlib.md5(b"hello convx" * 100).hexdigest()
    assert get_file("data.bin", url + "/data.bin", file_hash=md5, cache_dir=str(tmp_path)) == path


def test_convx_home_is_the_default_cache(server, tmp_path, monkeypatch):
    url, files = server
    files["/home.bin"] = b"x"
    monkeypatch.setenv("CONVX_HOME", str(tmp_path / "home"))
    assert get_file(origin=url + "/home.bin") == str(tmp_path / "home" / "datasets" / "home.bin")


def test_wrong_hash_refused_and_nothing_cached(server, tmp_path):
    url, files = server
    files["/bad.bin"] = b"corrupt"
    with pytest.raises(ValueError, match="hash does not match"):
        get_file(origin=url + "/bad.bin", file_hash="0" * 64, cache_dir=str(tmp_path))
    assert os.listdir(tmp_path / "datasets") == []


def test_interrupted_download_leaves_no_file(server, tmp_path):
    url, files = server
    files["/truncated.bin"] = b"partial data"
    with pytest.raises(Exception, match="place it at"):
        get_file(origin=url + "/truncated.bin", cache_dir=str(tmp_path))
    assert os.listdir(tmp_path / "datasets") == []


def test_offline_error_says_where_to_put_the_file(server, tmp_path):
    url, _ = server
    with pytest.raises(Exception, match="404") as info:
        get_file(origin=url + "/missing.bin", cache_dir=str(tmp_path))
    assert str(tmp_path / "datasets" / "missing.bin") in str(info.value)
    with pytest.raises(Exception, match="URL fetch failure"):
        get_file(origin="http://127.0.0.1:9/none.bin", cache_dir=str(tmp_path))


def test_stale_cached_file_is_downloaded_again(server, tmp_path):
    url, files = server
    files["/fresh.bin"] = b"new content"
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "fresh.bin").write_bytes(b"old")
    path = get_file(origin=url + "/fresh.bin", file_hash=sha256(b"new content"), cache_dir=str(tmp_path))
    assert open(path, "rb").read() == b"new content"


def test_fname_must_not_be_a_path(server, tmp_path):
    with pytest.raises(ValueError, match="Paths are no longer accepted"):
        get_file("a/b.bin", server[0] + "/x", cache_dir=str(tmp_path))


def _tar(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_extract_tar_and_zip(server, tmp_path):
    url, files = server
    files["/pack.tar.gz"] = _tar([("pack/a.txt", b"A"), ("pack/sub/b.txt", b"B")])
    out = get_file("pack.tar.gz", url + "/pack.tar.gz", extract=True, cache_dir=str(tmp_path))
    assert out == str(tmp_path / "datasets" / "pack_extracted")
    assert open(os.path.join(out, "pack", "sub", "b.txt"), "rb").read() == b"B"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("z/c.txt", "C")
    files["/z.zip"] = buffer.getvalue()
    out = get_file(origin=url + "/z.zip", extract=True, cache_dir=str(tmp_path))
    assert open(os.path.join(out, "z", "c.txt")).read() == "C"


def test_malicious_archive_members_stay_inside(server, tmp_path):
    url, files = server
    files["/evil.tar.gz"] = _tar([("../escaped.txt", b"x"), ("/abs_escaped.txt", b"x"), ("ok.txt", b"fine")])
    with pytest.warns(UserWarning, match="Skipping invalid path"):
        out = get_file("evil.tar.gz", url + "/evil.tar.gz", extract=True, cache_dir=str(tmp_path / "c"))
    assert os.listdir(out) == ["ok.txt"]
    assert not (tmp_path / "c" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert not os.path.exists("/abs_escaped.txt")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../zip_escaped.txt", "x")
        archive.writestr("inside.txt", "y")
    files["/evil.zip"] = buffer.getvalue()
    with pytest.warns(UserWarning, match="Skipping invalid path"):
        out = get_file("evil.zip", url + "/evil.zip", extract=True, cache_dir=str(tmp_path / "z"))
    assert os.listdir(out) == ["inside.txt"]
    assert not list(tmp_path.rglob("zip_escaped.txt"))


def test_mnist_downloads_keras_npz_when_no_local_copy(server, tmp_path, monkeypatch):
    import numpy as np

    from convx.datasets import mnist

    url, files = server
    arrays = {"x_train": np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28), "y_train": np.array([3, 4], np.uint8),
              "x_test": np.zeros((1, 28, 28), np.uint8), "y_test": np.array([7], np.uint8)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    files["/keras/mnist.npz"] = buffer.getvalue()
    monkeypatch.setenv("CONVX_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CONVX_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(mnist, "_checkout_starts", lambda: [tmp_path / "elsewhere"])
    monkeypatch.setattr(mnist, "ORIGIN_FOLDER", url + "/keras/")
    monkeypatch.setattr(mnist, "NPZ_SHA256", sha256(files["/keras/mnist.npz"]))
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    assert np.array_equal(x_train, arrays["x_train"]) and y_test.tolist() == [7]
    assert (tmp_path / "cache" / "datasets" / "mnist.npz").is_file()
    del files["/keras/mnist.npz"]  # now read from the cache
    assert mnist.load_data()[0][1].tolist() == [3, 4]
    monkeypatch.setattr(mnist, "NPZ_SHA256", "0" * 64)
    (tmp_path / "cache" / "datasets" / "mnist.npz").unlink()
    with pytest.raises(FileNotFoundError, match="also failed"):
        mnist.load_data()


def test_fashion_mnist_downloads_keras_files(server, tmp_path, monkeypatch):
    import gzip

    import numpy as np

    from convx.datasets import _idx, fashion_mnist

    url, files = server
    shapes = {_idx.TRAIN_IMAGES: (3, 28, 28), _idx.TRAIN_LABELS: (3,), _idx.TEST_IMAGES: (2, 28, 28),
              _idx.TEST_LABELS: (2,)}
    for name, shape in shapes.items():
        header = (0x0800 | len(shape)).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in shape)
        files[f"/keras/{name}.gz"] = gzip.compress(header + bytes(int(np.prod(shape))))
    monkeypatch.setenv("CONVX_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CONVX_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(fashion_mnist, "ORIGIN_FOLDER", url + "/keras/")
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    assert x_train.shape == (3, 28, 28) and y_test.shape == (2,)
    assert (tmp_path / "cache" / "datasets" / "fashion-mnist" / (_idx.TRAIN_IMAGES + ".gz")).is_file()
