"""iopath handlers for the non-local paths rs3d accepts: HTTP(S)/FTP URLs and object stores.

``HTTPHandler`` is iopath's ``HTTPURLHandler`` (read-only; a URL is downloaded once into a cache
and opened from there) with two changes: the cache is kept per host (iopath's keys it by the URL's
path alone, so ``http://a/x.pyth`` and ``http://b/x.pyth`` would share one file) and a failed
download is an ``OSError`` with one line naming the URL (iopath's draws a progress bar and logs the
failure on stderr first).

``FsspecHandler`` serves ``s3://``, ``gs://``, ``az://``, ... and ``memory://`` through fsspec, whose
implementation for the protocol (s3fs, gcsfs, adlfs) is imported on first use; a missing one is an
``OSError`` that says which package to install. ``memory://`` is fsspec's in-process store (used by
tests to exercise a writable non-local backend).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from typing import Any, List
from urllib.parse import urlparse

from iopath.common.file_io import HTTPURLHandler, PathHandler, file_lock, get_cache_dir

# fsspec protocol -> the package that implements it (for the error message when it is missing).
OBJECT_STORES = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs", "memory": "fsspec"}


class HTTPHandler(HTTPURLHandler):
    """Download ``http(s)://`` and ``ftp://`` files once into ``$FVCORE_CACHE/<host>/<path>``.

    A cached file is used again by later runs without asking the server (downloads are meant for
    files that do not change under one URL, such as released weights); delete it to fetch anew.
    A reader that finds the cached copy unusable evicts it (``rs3d.file_io.evict_download``), so a
    fixed server is asked again.
    """

    @staticmethod
    def cached_path(path: str, cache_dir=None) -> str:
        """Where the download of ``path`` is (or would be) cached."""
        url = urlparse(path)
        name = os.path.basename(url.path) or "index"
        folder = os.path.join(
            get_cache_dir(cache_dir), url.netloc.replace(":", "_"), os.path.dirname(url.path.lstrip("/"))
        )
        return os.path.join(folder, name[:200])

    def evict(self, path: str, cache_dir=None) -> str:
        """Forget the cached download of ``path`` (a bad copy: the next read downloads it anew);
        returns the cached file's path (removed if it was there)."""
        cached = self.cache_map.pop(path, None) or self.cached_path(path, cache_dir)
        with file_lock(cached):
            if os.path.isfile(cached):
                os.remove(cached)
        return cached

    def _get_local_path(self, path: str, force: bool = False, cache_dir=None, **kwargs: Any) -> str:
        self._check_kwargs(kwargs)
        cached = self.cached_path(path, cache_dir)
        if not force and path in self.cache_map and os.path.isfile(self.cache_map[path]):
            return self.cache_map[path]
        with file_lock(cached):
            if force or not os.path.isfile(cached):
                _download(path, cached)
        self.cache_map[path] = cached
        return cached

    def _exists(self, path: str, **kwargs: Any) -> bool:
        """True when the URL can be downloaded (it then is, into the cache)."""
        try:
            self._get_local_path(path, **kwargs)
        except OSError:
            return False
        return True

    _isfile = _exists

    def _isdir(self, path: str, **kwargs: Any) -> bool:
        return False


def _download(url: str, dest: str) -> None:
    """``url`` -> ``dest`` through a temporary file in the same folder, so a download cut short
    never passes for a complete one."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), suffix=".download")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            shutil.copyfileobj(resp, out, length=1 << 20)
        if os.path.getsize(tmp) == 0:
            raise OSError(f"cannot download {url}: the server sent an empty file")
        os.replace(tmp, dest)
    except urllib.error.HTTPError as e:
        err = FileNotFoundError if e.code == 404 else OSError
        raise err(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise OSError(f"cannot download {url}: {e.reason}") from None
    except (TimeoutError, ConnectionError) as e:
        raise OSError(f"cannot download {url}: {e}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class FsspecHandler(PathHandler):
    """``<protocol>://bucket/key`` through ``fsspec.filesystem(protocol)`` for the object stores."""

    def __init__(self, protocols=tuple(OBJECT_STORES)):
        super().__init__()
        self.protocols = tuple(protocols)
        self._fs: dict = {}

    def _get_supported_prefixes(self) -> List[str]:
        return [f"{p}://" for p in self.protocols]

    def fs(self, path: str):
        """The fsspec file system of ``path``'s protocol (created once)."""
        proto = path.split("://", 1)[0]
        if proto not in self._fs:
            import fsspec

            try:
                self._fs[proto] = fsspec.filesystem(proto)
            except ImportError:
                raise OSError(
                    f"{path}: {proto}:// paths need the {OBJECT_STORES.get(proto, proto)} package (pip install it)"
                ) from None
        return self._fs[proto]

    def _open(self, path: str, mode: str = "r", buffering: int = -1, **kwargs: Any):
        self._check_kwargs(kwargs)
        return self.fs(path).open(path, mode)

    def _get_local_path(self, path: str, force: bool = False, **kwargs: Any) -> str:
        """A fresh local copy (objects here may change under one name, so nothing is cached);
        the caller removes it."""
        self._check_kwargs(kwargs)
        fd, tmp = tempfile.mkstemp(suffix="_" + os.path.basename(path))
        os.close(fd)
        self.fs(path).get_file(path, tmp)
        return tmp

    def _copy_from_local(self, local_path: str, dst_path: str, overwrite: bool = False, **kwargs: Any):
        self._check_kwargs(kwargs)
        fs = self.fs(dst_path)
        if not overwrite and fs.exists(dst_path):
            raise FileExistsError(f"{dst_path} exists")
        fs.put_file(local_path, dst_path)
        return True

    def _exists(self, path: str, **kwargs: Any) -> bool:
        return self.fs(path).exists(path)

    def _isfile(self, path: str, **kwargs: Any) -> bool:
        return self.fs(path).isfile(path)

    def _isdir(self, path: str, **kwargs: Any) -> bool:
        return self.fs(path).isdir(path)

    def _ls(self, path: str, **kwargs: Any) -> List[str]:
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs(path).ls(path, detail=False)]

    def _mkdirs(self, path: str, **kwargs: Any) -> None:
        self.fs(path).makedirs(path, exist_ok=True)  # object stores: nothing to create

    def _rm(self, path: str, **kwargs: Any) -> None:
        self.fs(path).rm(path)
