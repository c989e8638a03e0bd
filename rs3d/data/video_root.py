"""Which folder the relative paths of a data folder's lists are relative to, and a check that it
holds the videos at all.

``DATA.PATH_PREFIX`` when set; else the folder named by ``video_root.txt`` in the data folder
(``rs3d-convert-annotations`` writes it: the video folder's absolute path, then the same folder
relative to the data folder; the first that exists is used, so the lists survive a move of the
data folder alone as well as of both together); else the data folder itself.

A list none of whose videos exists (a moved folder, a wrong prefix) is one ``DataError`` naming
the list, the first path and where the root came from, before any worker starts: it would
otherwise end in a loader traceback after every video failed.
"""

from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

from .. import file_io
from ..errors import DataError

VIDEO_ROOT_FILE = "video_root.txt"


def video_root_lines(video_dir: str, data_dir: str) -> List[str]:
    """What ``rs3d-convert-annotations`` writes into ``data_dir/video_root.txt``."""
    video_dir, data_dir = os.path.abspath(video_dir), os.path.abspath(data_dir)
    return [
        "# Folder the paths in this folder's lists are relative to: the first line that exists",
        "# (absolute, then relative to this folder). DATA.PATH_PREFIX overrides it.",
        video_dir,
        os.path.relpath(video_dir, data_dir),
    ]


def resolve_video_root(data_dir: str, path_prefix: Optional[str] = None) -> Tuple[str, str]:
    """``(root, where it came from)`` for the lists of ``data_dir``."""
    if path_prefix:
        return path_prefix, "DATA.PATH_PREFIX"
    marker = file_io.join(data_dir, VIDEO_ROOT_FILE)
    if file_io.is_local(data_dir) and os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            named = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
        if not named:
            raise DataError(f"{marker}: names no folder")
        candidates = [p if os.path.isabs(p) else os.path.normpath(os.path.join(data_dir, p)) for p in named]
        for c in candidates:
            if os.path.isdir(c):
                return c, marker
        return candidates[0], f"{marker} (none of its folders exists)"
    return data_dir, "DATA.PATH_TO_DATA_DIR (no DATA.PATH_PREFIX, no video_root.txt)"


def check_some_video_exists(paths: Sequence[str], csv_path: str, root: str, source: str) -> None:
    """``DataError`` when none of ``paths`` (local) exists; returns at the first that does."""
    if not paths or not all(file_io.is_local(p) for p in paths[:1]):
        return
    for p in paths:
        if os.path.exists(p):
            return
    raise DataError(
        f"{csv_path}: none of its {len(paths)} videos exists (first: {paths[0]}); relative paths "
        f"are resolved against {root}, from {source}: set DATA.PATH_PREFIX to the folder the "
        f"videos are in"
    )
