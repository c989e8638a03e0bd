"""Which files the tools treat as videos when given a folder.

Extensions are matched case-insensitively (cameras write ``GOPR0001.MP4``). The list is wide on
purpose: a file that does not decode is reported as such, while a file skipped for its name is lost
without a word.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from rs3d.errors import DataError

VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".flv",
        ".mpg",
        ".mpeg",
        ".ts",
        ".m2ts",
        ".mts",
        ".3gp",
        ".wmv",
        ".ogv",
        ".gif",
        ".h264",
        ".264",
        ".h265",
        ".265",
        ".hevc",
    }
)


def is_video_name(path: Path) -> bool:
    """True when the file name ends in a video extension (any case)."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


def videos_in_folder(folder: Path) -> List[str]:
    """Every video file under ``folder``, subfolders included, sorted by path; DataError if none.

    The one folder rule of every command (a Kinetics-style ``class/video.mp4`` tree is a folder of
    videos too).
    """
    found = sorted(str(p) for p in Path(folder).rglob("*") if p.is_file() and is_video_name(p))
    if not found:
        raise DataError(f"{folder}: no video files under this folder (.mp4, .mov, .avi, .mkv, .webm, ...)")
    return found
