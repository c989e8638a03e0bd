"""A local folder that stands for a remote output folder, for the files a run appends to.

Logs (``log.txt``, ``json_stats.log``) and TensorBoard events grow line by line; object stores
cannot append, and uploading a whole file per line would be slow. So a run whose ``OUTPUT_DIR`` is
remote writes them into a local folder (under ``$TMPDIR``, one per remote folder) and uploads what
changed at every checkpoint and at the end: after a preemption the remote copy lacks at most the
lines since the last checkpoint, which are the lines of work that is redone anyway. For a local
``OUTPUT_DIR`` the mirror is the folder itself and ``pull``/``push`` do nothing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Iterable

from . import files


class OutputMirror:
    def __init__(self, output_dir: str, staging_root: str = ""):
        self.remote = output_dir
        self.is_remote = not files.is_local(output_dir)
        if self.is_remote:
            key = hashlib.sha1(output_dir.encode("utf-8")).hexdigest()[:16]
            self.local = os.path.join(staging_root or tempfile.gettempdir(), "rs3d_outputs", key)
        else:
            self.local = files.join(output_dir)
        self._pushed: dict = {}

    def pull(self, names: Iterable[str]) -> None:
        """Copy the remote ``names`` (files directly in the folder) here, so that a resumed run
        appends to the logs it continues rather than starting them afresh."""
        if not self.is_remote:
            return
        os.makedirs(self.local, exist_ok=True)
        for name in names:
            src = files.join(self.remote, name)
            if files.isfile(src):
                dst = os.path.join(self.local, name)
                files.download(src, dst)
                self._pushed[name] = _signature(dst)

    def push(self) -> list:
        """Upload each local file that is new or changed since the last push; returns their names."""
        if not self.is_remote or not os.path.isdir(self.local):
            return []
        sent = []
        for root, _, names in os.walk(self.local):
            for name in sorted(names):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, self.local).replace(os.sep, "/")
                sig = _signature(path)
                if self._pushed.get(rel) != sig:
                    files.upload(path, files.join(self.remote, rel))
                    self._pushed[rel] = sig
                    sent.append(rel)
        return sent


def _signature(path: str) -> tuple:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns
