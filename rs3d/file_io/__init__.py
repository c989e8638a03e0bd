"""Files anywhere: local paths, HTTP(S) URLs and object stores behind one iopath PathManager.

Every file a run names goes through here: checkpoints (``OUTPUT_DIR``, ``TRAIN.CHECKPOINT_FILE_PATH``,
``TEST.CHECKPOINT_FILE_PATH``), video lists and ``classes.txt``, the saved config, the logs.

============================  ======================================================================
path                          behaviour
============================  ======================================================================
``/a/b``, ``file:///a/b``     plain ``os`` calls; writes are atomic (tmp + fsync + rename)
``http(s)://``, ``ftp://``    read-only; downloaded once into ``$FVCORE_CACHE/<host>/`` (default
                              ``~/.torch/iopath_cache``) and read from there
``s3://``, ``gs://``,         through fsspec when s3fs / gcsfs / adlfs is installed; a write is one
``az://``, ``abfs://``        upload that the store publishes only when complete (see ``atomic_write``)
``memory://``                 fsspec's in-process store (tests)
============================  ======================================================================
"""

from .files import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    download,
    evict_download,
    exists,
    is_local,
    is_url,
    isdir,
    isfile,
    join,
    ls,
    mkdirs,
    open,
    path_manager,
    rm,
    upload,
)
from .mirror import OutputMirror

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "download",
    "evict_download",
    "exists",
    "is_local",
    "is_url",
    "isdir",
    "isfile",
    "join",
    "ls",
    "mkdirs",
    "open",
    "path_manager",
    "rm",
    "upload",
    "OutputMirror",
]
