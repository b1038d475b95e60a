"""``get_file``: download a file once into a cache, verify its hash, extract archives safely.

The cache is ``$CONVX_HOME`` (default ``~/.convx``) / ``cache_subdir``. A
download goes to a temporary file that becomes the cached file only once it is
complete and its hash verified, so an interrupted or corrupt download never
looks like a good file. Archive members that would land outside the target
directory (``..``, absolute paths, links leaving it) are skipped, as Keras 3
does.
"""

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile

_CHUNK = 1 << 16


def convx_home():
    """``$CONVX_HOME``, else ``~/.convx``."""
    return os.path.expanduser(os.environ.get("CONVX_HOME") or os.path.join("~", ".convx"))


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None, cache_subdir="datasets",
             hash_algorithm="auto", extract=False, archive_format="auto", cache_dir=None, force_download=False):
    """Download ``origin`` into the cache unless a good copy is there; return its local path.

    Parameters
    ----------
    fname : str, optional
        File name in the cache (default: the last part of ``origin``'s path); not a path.
    origin : str
        URL of the file.
    untar : bool
        Deprecated: ``extract=True`` with ``archive_format="tar"``.
    md5_hash : str, optional
        Deprecated: ``file_hash`` with ``hash_algorithm="md5"``.
    file_hash : str, optional
        Expected SHA-256 or MD5 hex digest of the file; a cached file that does
        not match is downloaded again, a download that does not match is refused.
    cache_subdir : str, default "datasets"
        Subdirectory of the cache directory (an absolute path is used as is).
    hash_algorithm : "auto", "sha256" or "md5"
        ``"auto"`` tells them apart by the digest's length.
    extract : bool
        Extract the (tar, tar.gz, tar.bz2 or zip) archive; the extraction directory is returned.
    archive_format : "auto", "tar", "zip" or None
    cache_dir : str, optional
        Cache location; default ``$CONVX_HOME`` or ``~/.convx``.
    force_download : bool
        Download even when a cached copy exists.

    Returns
    -------
    str
        Path of the downloaded file, or of the extraction directory when extracting.

    Raises
    ------
    ValueError
        On a missing origin, a path as ``fname`` or a hash mismatch of the download.
    Exception
        When the download fails (offline, HTTP error); the message says where to put the file by hand.
    """
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    datadir = _cache_directory(cache_dir, cache_subdir)
    provided = fname is not None and os.fspath(fname) != ""
    fname = _file_name(fname, origin)
    if extract or untar:
        if provided and "." in fname:
            download_target = os.path.join(datadir, fname)
            extraction_dir = os.path.join(datadir, fname[:fname.find(".")] + "_extracted")
        else:
            extraction_dir = os.path.join(datadir, fname)
            download_target = os.path.join(datadir, fname + "_archive")
    else:
        download_target = os.path.join(datadir, fname)
    download = force_download or not os.path.exists(download_target)
    if not download and file_hash is not None and not validate_file(download_target, file_hash, hash_algorithm):
        print(f"A local file was found, but it seems to be incomplete or outdated because the "
              f"{_algorithm(hash_algorithm, file_hash)} file hash does not match the original value of {file_hash} "
              "so we will re-download the data.")
        download = True
    if download:
        _download(origin, download_target, file_hash, hash_algorithm)
    if extract or untar:
        if not extract_archive(download_target, extraction_dir, "tar" if untar else archive_format):
            warnings.warn("Could not extract archive.", stacklevel=2)
        return extraction_dir
    return download_target


def _cache_directory(cache_dir, cache_subdir):
    base = os.path.expanduser(cache_dir) if cache_dir is not None else convx_home()
    os.makedirs(base, exist_ok=True)
    if not os.access(base, os.W_OK):
        base = os.path.join(tempfile.gettempdir(), ".convx")
    datadir = os.path.join(base, cache_subdir)
    os.makedirs(datadir, exist_ok=True)
    return datadir


def _file_name(fname, origin):
    if fname is None or os.fspath(fname) == "":
        name = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not name or name in (os.curdir, os.pardir):
            raise ValueError(f"Can't parse the file name from the origin provided: '{origin}'. "
                             "Please specify the `fname` argument.")
        return name
    name = os.fspath(fname)
    if os.sep in name or (os.altsep and os.altsep in name) or name in (os.curdir, os.pardir):
        raise ValueError("Paths are no longer accepted as the `fname` argument. To specify the file's parent "
                         f"directory, use the `cache_dir` argument. Received: fname={name}")
    return name


def _download(origin, target, file_hash, hash_algorithm):
    print(f"Downloading data from {origin}")
    partial = f"{target}.part-{os.getpid()}"
    try:
        try:
            with urllib.request.urlopen(origin, timeout=60) as response, open(partial, "wb") as stream:
                _copy_with_progress(response, stream)
        except urllib.error.HTTPError as exc:
            raise Exception(f"URL fetch failure on {origin}: {exc.code} -- {exc.msg}. "
                            f"{_by_hand(target)}") from exc
        except (urllib.error.URLError, OSError, EOFError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Exception(f"URL fetch failure on {origin}: {getattr(exc, 'errno', None)} -- {reason}. "
                            f"{_by_hand(target)}") from exc
        if file_hash is not None and not validate_file(partial, file_hash, hash_algorithm):
            raise ValueError(f"Incomplete or corrupted file detected. The {_algorithm(hash_algorithm, file_hash)} "
                             f"file hash does not match the provided value of {file_hash}. {_by_hand(target)}")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _by_hand(target):
    return f"If this machine is offline, download the file elsewhere and place it at {target}"


def _copy_with_progress(response, stream):
    from convx.callbacks.progbar import Progbar

    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    progbar, done = Progbar(total, unit_name="B"), 0
    while True:
        chunk = response.read(_CHUNK)
        if not chunk:
            break
        stream.write(chunk)
        done += len(chunk)
        progbar.update(min(done, total) if total else done)
    if total is not None and done < total:
        raise EOFError(f"the connection closed after {done} of {total} bytes")
    if total is None:
        progbar.update(done, finalize=True)


def _algorithm(hash_algorithm, file_hash):
    if hash_algorithm in ("sha256", "md5"):
        return hash_algorithm
    if hash_algorithm != "auto":
        raise ValueError(f"hash_algorithm must be 'auto', 'sha256' or 'md5', received {hash_algorithm!r}")
    return "sha256" if len(file_hash) == 64 else "md5"


def hash_file(fpath, algorithm="sha256", chunk_size=_CHUNK):
    """Hex digest of the file ``fpath`` (``"sha256"``, or ``"md5"``)."""
    hasher = hashlib.sha256() if algorithm in ("sha256", "auto") else hashlib.md5()
    with open(fpath, "rb") as stream:
        for chunk in iter(lambda: stream.read(chunk_size), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def validate_file(fpath, file_hash, algorithm="auto", chunk_size=_CHUNK):
    """True when the file's hash equals ``file_hash``."""
    return hash_file(fpath, _algorithm(algorithm, file_hash), chunk_size) == str(file_hash)


def _inside(base, name):
    target = os.path.realpath(os.path.join(base, name))
    return os.path.commonpath([target, base]) == base


def _safe_tar_members(archive, base):
    for member in archive:
        ok = _inside(base, member.name)
        if ok and member.islnk():
            ok = _inside(base, member.linkname)
        elif ok and member.issym():
            ok = _inside(base, os.path.join(os.path.dirname(member.name), member.linkname))
        if not ok:
            warnings.warn(f"Skipping invalid path during archive extraction: '{member.name}'.", stacklevel=3)
            continue
        yield member


def _safe_zip_members(archive, base):
    for member in archive.infolist():
        if not _inside(base, member.filename):
            warnings.warn(f"Skipping invalid path during archive extraction: '{member.filename}'.", stacklevel=3)
            continue
        yield member


def extract_archive(file_path, path=".", archive_format="auto"):
    """Extract a tar (any compression) or zip archive into ``path``, skipping members that would leave it.

    Returns
    -------
    bool
        True when a supported archive was extracted, False when the file is none of ``archive_format``.
    """
    if archive_format is None:
        return False
    formats = ["tar", "zip"] if archive_format == "auto" else (
        [archive_format] if isinstance(archive_format, str) else list(archive_format))
    file_path, path = os.fspath(file_path), os.fspath(path)
    for kind in formats:
        if kind == "tar" and tarfile.is_tarfile(file_path):
            opener = tarfile.open
        elif kind == "zip" and zipfile.is_zipfile(file_path):
            opener = zipfile.ZipFile
        elif kind in ("tar", "zip"):
            continue
        else:
            raise NotImplementedError(archive_format)
        _extract(opener, file_path, path)
        return True
    return False


def _extract(opener, file_path, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".extracting-", dir=os.path.dirname(os.path.abspath(path)))
    base = os.path.realpath(staging)
    try:
        with opener(file_path) as archive:
            if isinstance(archive, zipfile.ZipFile):
                archive.extractall(staging, members=list(_safe_zip_members(archive, base)))
            else:
                archive.extractall(staging, members=list(_safe_tar_members(archive, base)), filter="data")
        if os.path.isdir(path):
            shutil.copytree(staging, path, dirs_exist_ok=True)
        else:
            os.replace(staging, path)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
