"""One PathManager for every file rs3d names, and the few operations the library needs.

Local paths take the plain ``os`` route (iopath's native handler), so nothing changes for them.
``http://``, ``https://``, ``ftp://`` are read-only downloads (cached, see ``handlers.HTTPHandler``);
``s3://``, ``gs://``, ``az://`` ... go through fsspec where its implementation is installed.
Failures are ``OSError``s whose message is one line naming the path.
"""

from __future__ import annotations

import builtins
import io
import os
import posixpath
import re
import tempfile
from typing import IO, Callable, List

from iopath.common.file_io import PathManager

from .handlers import FsspecHandler, HTTPHandler
from .owner import temporary_name

path_manager = PathManager()
_http = HTTPHandler()
path_manager.register_handler(_http)
path_manager.register_handler(FsspecHandler())
path_manager.set_logging(False)  # iopath's telemetry hook: nothing to report to

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
READ_ONLY = ("http://", "https://", "ftp://")


def is_local(path: str) -> bool:
    """A path on this machine's file system (no ``scheme://``; ``file://`` counts as local)."""
    path = os.fspath(path)
    return not _SCHEME.match(path) or path.startswith("file://")


def is_url(path: str) -> bool:
    """An ``http(s)://`` or ``ftp://`` address (read-only)."""
    return os.fspath(path).startswith(READ_ONLY)


def _native(path: str) -> str:
    path = os.fspath(path)
    return path[len("file://") :] if path.startswith("file://") else path


def join(base: str, *parts: str) -> str:
    """``os.path.join`` for local paths, ``/``-joined for the others."""
    return os.path.join(_native(base), *parts) if is_local(base) else posixpath.join(base, *parts)


def open(path: str, mode: str = "r", **kwargs) -> IO:  # noqa: A001  (the builtin, for any path)
    """Like the builtin ``open``, for any path (a URL opens its cached download)."""
    if is_local(path):
        return builtins.open(_native(path), mode, **kwargs)
    if "b" in mode:
        return path_manager.open(path, mode, **kwargs)
    # Text: the handlers take no encoding, so decode here (UTF-8 unless asked otherwise).
    raw = path_manager.open(path, mode + "b")
    return io.TextIOWrapper(raw, encoding=kwargs.get("encoding") or "utf-8", newline=kwargs.get("newline"))


def exists(path: str) -> bool:
    return os.path.exists(_native(path)) if is_local(path) else path_manager.exists(path)


def isfile(path: str) -> bool:
    """A file that can be read (for a URL: downloaded into the cache, which the read then uses)."""
    return os.path.isfile(_native(path)) if is_local(path) else path_manager.isfile(path)


def isdir(path: str) -> bool:
    """A folder; on an object store, a prefix with objects under it. Never true for a URL."""
    return os.path.isdir(_native(path)) if is_local(path) else path_manager.isdir(path)


def ls(path: str) -> List[str]:
    """Names (not paths) in the folder ``path``; [] when it does not exist."""
    if is_local(path):
        try:
            return os.listdir(_native(path))
        except FileNotFoundError:
            return []
    if is_url(path):
        raise OSError(f"{path}: a URL cannot be listed")
    return path_manager.ls(path) if path_manager.exists(path) else []


def evict_download(url: str) -> str:
    """Remove the cached download of the URL ``url`` (a copy that turned out unusable), so the
    next read asks the server again; returns the cached file's path."""
    return _http.evict(url)


def mkdirs(path: str) -> None:
    if is_url(path):
        raise PermissionError(f"{path}: URLs are read-only")
    if is_local(path):
        os.makedirs(_native(path), exist_ok=True)
    else:
        path_manager.mkdirs(path)


def rm(path: str, missing_ok: bool = True) -> None:
    try:
        os.remove(_native(path)) if is_local(path) else path_manager.rm(path)
    except FileNotFoundError:
        if not missing_ok:
            raise


def upload(local_path: str, dst: str) -> None:
    """Copy the local file ``local_path`` over ``dst`` (any writable path)."""
    if is_url(dst):
        raise PermissionError(f"{dst}: URLs are read-only")
    if is_local(dst):
        atomic_write(dst, lambda f: _copy_into(local_path, f))
    else:
        path_manager.copy_from_local(local_path, dst, overwrite=True)


def download(path: str, local_path: str) -> None:
    """Copy ``path`` (any readable path) into the local file ``local_path``."""
    with open(path, "rb") as src, builtins.open(local_path, "wb") as dst:
        _copy_stream(src, dst)


def _copy_into(local_path: str, f: IO[bytes]) -> None:
    with builtins.open(local_path, "rb") as src:
        _copy_stream(src, f)


def _copy_stream(src, dst) -> None:
    while True:
        chunk = src.read(1 << 20)
        if not chunk:
            return
        dst.write(chunk)


# ----------------------------------------------------------------------------- atomic writes
def atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> str:
    """Write a file with ``write(f)`` (a binary stream) so ``path`` is never seen half-written.

    Local paths: a temporary ``{path}.{host}.{pid}.tmp`` in the same folder (its writer in its name,
    so a cleaner can tell whether that writer still runs) is written, fsynced and renamed
    over ``path`` (``os.replace`` is atomic on POSIX), then the folder is fsynced so the rename
    survives a power cut; a SIGKILL at any moment leaves at worst the stray ``.tmp``.

    Object stores (S3, GCS, Azure Blob): the file is written to a local temporary and uploaded;
    those stores publish an object only when its upload completes (one PUT, or the final call of a
    multipart upload), so readers see the old object or the new one, never a part. There is no
    rename, so nothing stays behind to clean. What cannot be atomic there is a *pair* of writes:
    the second of two files can be missing after a crash (rs3d never relies on two files agreeing).
    Other fsspec file systems (sftp, webdav, ...) upload in place: a crash can leave a partial
    file, which for a checkpoint means it fails to load and is skipped.

    URLs (http, https, ftp) are read-only: ``PermissionError``.
    """
    if is_url(path):
        raise PermissionError(f"{path}: URLs are read-only")
    if not is_local(path):
        fd, tmp = tempfile.mkstemp(suffix=".upload")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            path_manager.copy_from_local(tmp, path, overwrite=True)
        finally:
            os.remove(tmp)
        return path
    path = _native(path)
    d = os.path.dirname(path) or "."
    os.makedirs(d, exist_ok=True)
    tmp = temporary_name(path)
    try:
        with builtins.open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


def atomic_write_bytes(path: str, data: bytes) -> str:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str, text: str) -> str:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
