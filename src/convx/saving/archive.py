"""The zip container of a ``.keras`` file: written atomically, read only after its members are checked.

Every refusal of a file raises :class:`FileRejectedError` naming the file: member
names that could write outside a folder (``../``, absolute, drive or backslash
paths), duplicated or unexpected members, more than :data:`MAX_TOTAL_BYTES`
declared, a compression ratio above :data:`MAX_RATIO` (a zip bomb), a truncated
or corrupt archive.
"""

import io
import os
import posixpath
import tempfile
import zipfile

MAX_TOTAL_BYTES = 8 << 30
MAX_JSON_BYTES = 64 << 20
MAX_RATIO = 200  # Keras stores members uncompressed; zlib itself cannot exceed ~1032


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
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".convx-", suffix=".tmp", dir=folder)
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
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".convx-", suffix=".tmp", dir=folder)
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
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise FileRejectedError(filepath, f"not a readable zip archive ({error})") from None
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
            if total > MAX_TOTAL_BYTES:
                raise FileRejectedError(self.filepath, f"it declares more than {MAX_TOTAL_BYTES} bytes uncompressed")
            if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise FileRejectedError(self.filepath, f"member {name!r} expands {info.file_size} bytes from "
                                        f"{info.compress_size} (a zip bomb?)")
        self.names = names

    def read(self, name, limit=MAX_TOTAL_BYTES):
        """The bytes of member ``name`` (at most ``limit``)."""
        if name not in self.names:
            raise FileRejectedError(self.filepath, f"it has no {name}")
        info = self._zip.getinfo(name)
        if info.file_size > limit:
            raise FileRejectedError(self.filepath, f"{name} declares {info.file_size} bytes (at most {limit})")
        try:
            return self._zip.read(name)
        except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as error:
            raise FileRejectedError(self.filepath, f"{name} is truncated or corrupt ({error})") from None

    def open_bytes(self, name):
        return io.BytesIO(self.read(name))

    def close(self):
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def safe_member_name(name):
    """Whether a member name stays inside the folder it would be extracted to."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return False
    return ".." not in posixpath.normpath(name).split("/") and not posixpath.isabs(posixpath.normpath(name))
