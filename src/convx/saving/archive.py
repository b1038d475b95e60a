"""The zip container of a ``.keras`` file: written atomically, read only after its members are checked.

Every refusal of a file raises :class:`FileRejectedError` naming the file: member
names that could write outside a folder (``../``, absolute, drive or backslash
paths), duplicated or unexpected members, more than
:data:`~convx.saving.limits.MAX_ARCHIVE_BYTES` declared, a compression ratio above
:data:`~convx.saving.limits.MAX_COMPRESSION_RATIO` (a zip bomb), a member that
inflates beyond its declared size (decompression is streamed and stops there), a
truncated or corrupt archive, JSON too large or too deeply nested
(:mod:`convx.saving.limits`).
"""

import io
import json
import os
import posixpath
import tempfile
import zipfile
import zlib

from convx.saving import limits

_CHUNK = 1 << 20
# what zipfile and zlib raise on a damaged archive: a truncated or crafted one must not escape as any of these
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, NotImplementedError,
               RuntimeError, ValueError, UnicodeDecodeError, OverflowError)


class FileRejectedError(ValueError):
    """A file convx refuses to load: malformed, truncated, crafted, or describing what convx cannot build.

    A ``ValueError``, so code written for Keras' errors catches it. ``filepath`` is the file's path.
    """

    def __init__(self, filepath, reason):
        self.filepath = os.fspath(filepath) if filepath is not None else None
        self.reason = reason
        super().__init__(f"Cannot load {self.filepath!r}: {reason}")


def write_atomically(path, members):
    """Write ``members`` (name -> bytes) as a zip to a temporary file beside ``path``, then move it into place.

    A crash or a full disk mid-save leaves the previous file intact.
    """
    fd, temporary = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
                for name, data in members.items():
                    archive.writestr(name, data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 would surprise whoever reads the file next
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def write_file_atomically(path, data):
    """``data`` (bytes) to ``path`` through a temporary file and one rename."""
    fd, temporary = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _temporary(path):
    """A new temporary file beside ``path``, named ``.<file name>.convx-<pid>-<random>.tmp``; those of
    earlier saves of the same path whose process is gone (``kill -9`` mid-save) are removed first."""
    folder, name = os.path.split(os.path.abspath(path))
    prefix = f".{name}.convx-"
    _remove_stale(folder, prefix)
    return tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}-", suffix=".tmp", dir=folder)


def _remove_stale(folder, prefix):
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):].split("-", 1)[0] if name.startswith(prefix) and name.endswith(".tmp") else ""
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:  # gone already, or (Windows) still open by a live save
                pass


def _alive(pid):
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT; a live save's open file refuses deletion
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's process
        return True
    return True


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class CheckedArchive:
    """A zip archive opened for reading, its member list checked first.

    Parameters
    ----------
    filepath : str
    allowed : callable
        ``allowed(name) -> bool`` for the member names this kind of file may hold.
    """

    def __init__(self, filepath, allowed):
        self.filepath = filepath
        try:
            self._zip = zipfile.ZipFile(filepath)
        except (*_ZIP_ERRORS, IndexError, KeyError) as error:  # struct/index errors of a crafted directory
            raise FileRejectedError(filepath, f"not a readable zip archive ({type(error).__name__}: {error})") \
                from None
        try:
            self._check(allowed)
        except BaseException:
            self._zip.close()
            raise

    def _check(self, allowed):
        names, total = set(), 0
        for info in self._zip.infolist():
            name = info.filename
            if name in names:
                raise FileRejectedError(self.filepath, f"member {name!r} appears twice")
            names.add(name)
            if not safe_member_name(name):
                raise FileRejectedError(self.filepath, f"member name {name!r} points outside the archive")
            if not info.is_dir() and not allowed(name):
                raise FileRejectedError(self.filepath, f"unexpected member {name!r}")
            total += info.file_size
            if total > limits.MAX_ARCHIVE_BYTES:
                raise FileRejectedError(self.filepath, f"it declares more than {limits.MAX_ARCHIVE_BYTES} bytes "
                                        "uncompressed (convx.saving.limits.MAX_ARCHIVE_BYTES)")
            if info.file_size > _CHUNK and info.file_size > limits.MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
                raise FileRejectedError(self.filepath, f"member {name!r} expands {info.file_size} bytes from "
                                        f"{info.compress_size} (a zip bomb?)")
        self.names = names

    def size(self, name):
        """The uncompressed size member ``name`` declares (0 for a missing member)."""
        return self._zip.getinfo(name).file_size if name in self.names else 0

    def read(self, name, limit=None):
        """The bytes of member ``name``: at most ``limit`` (default
        :data:`~convx.saving.limits.MAX_ARCHIVE_BYTES`), inflated chunk by chunk into a buffer of its
        declared size, never beyond it."""
        if name not in self.names:
            raise FileRejectedError(self.filepath, f"it has no {name}")
        limit = limits.MAX_ARCHIVE_BYTES if limit is None else limit
        info = self._zip.getinfo(name)
        if info.file_size > limit:
            raise FileRejectedError(self.filepath, f"{name} declares {info.file_size} bytes (at most {limit})")
        data = bytearray(info.file_size)
        try:
            with self._zip.open(info) as member:
                filled = _read_into(member, memoryview(data))
                extra = member.read(1)
        except _ZIP_ERRORS as error:
            raise FileRejectedError(self.filepath, f"{name} is truncated or corrupt ({type(error).__name__}: "
                                                   f"{error})") from None
        if filled != info.file_size or extra:
            raise FileRejectedError(self.filepath, f"{name} does not inflate to the {info.file_size} bytes it "
                                                   "declares")
        return data

    def open_bytes(self, name):
        return io.BytesIO(self.read(name))

    def close(self):
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _read_into(stream, view):
    filled = 0
    while filled < len(view):
        count = stream.readinto(view[filled:filled + _CHUNK])
        if not count:
            break
        filled += count
    return filled


def parse_json(filepath, name, data):
    """The JSON object in ``data`` (bytes or str), checked against :mod:`~convx.saving.limits` (size,
    nesting, layer count) before anything is built from it."""
    if len(data) > limits.MAX_JSON_BYTES:
        raise FileRejectedError(filepath, f"{name} has {len(data)} bytes (at most {limits.MAX_JSON_BYTES}, "
                                          "convx.saving.limits.MAX_JSON_BYTES)")
    try:
        value = json.loads(data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data)
    except (UnicodeDecodeError, ValueError, RecursionError, TypeError) as error:
        raise FileRejectedError(filepath, f"{name} is not valid JSON ({type(error).__name__}: {error})") from None
    if not isinstance(value, dict):
        raise FileRejectedError(filepath, f"{name} is not a JSON object")
    depth, layers = limits.json_depth_and_layers(value)
    if depth > limits.MAX_JSON_DEPTH:
        raise FileRejectedError(filepath, f"{name} nests deeper than {limits.MAX_JSON_DEPTH} levels "
                                          "(convx.saving.limits.MAX_JSON_DEPTH)")
    if layers > limits.MAX_LAYERS:
        raise FileRejectedError(filepath, f"{name} describes {layers} layers (at most {limits.MAX_LAYERS}, "
                                          "convx.saving.limits.MAX_LAYERS)")
    return value


def safe_member_name(name):
    """Whether a member name stays inside the folder it would be extracted to."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return False
    return ".." not in posixpath.normpath(name).split("/") and not posixpath.isabs(posixpath.normpath(name))
