"""get_file against a local HTTP server on 127.0.0.1 (this machine has no internet)."""

import hashlib
import http.server
import io
import os
import tarfile
import threading
import zipfile

import pytest

from convx.utils import get_file


class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        if self.path.endswith("truncated.bin"):  # announce more bytes than sent: an interrupted download
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) * 2))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler.files
    httpd.shutdown()
    thread.join()


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
