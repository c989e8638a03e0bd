"""A video's key: the same for the same clip on any machine, whatever folder holds the copy.

Kinetics clips are named by the common download scripts ``<youtube_id>_<start>_<end>.<ext>``
(``abc123def45_000010_000020.mp4``; some write the times without zero padding): the key is then
``<youtube_id>_<start:06d>_<end:06d>``, the stem the Kinetics converter looks for. Any other video's
key is its path relative to the folder all of the dataset's listed videos share (``/`` separated),
which is how UCF101 and HMDB51 name their videos (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi``).
"""

from __future__ import annotations

import os
import re
from typing import Collection, Iterable, Optional

# YouTube ids are 11 characters of [A-Za-z0-9_-]; the times are whole seconds.
_KINETICS = re.compile(r"^(?P<ytid>[A-Za-z0-9_-]{11})_(?P<start>\d{1,9})_(?P<end>\d{1,9})$")


def kinetics_key(name: str) -> Optional[str]:
    """``abc123def45_10_20.mp4`` (or a path ending so) -> ``abc123def45_000010_000020``; else None."""
    stem = os.path.splitext(os.path.basename(name))[0]
    m = _KINETICS.match(stem)
    if not m or int(m.group("end")) < int(m.group("start")):
        return None
    return f"{m.group('ytid')}_{int(m.group('start')):06d}_{int(m.group('end')):06d}"


def key_root(paths: Iterable[str]) -> str:
    """The deepest folder holding every one of ``paths`` (absolute); "" for none."""
    folders = sorted({os.path.dirname(os.path.abspath(p)) for p in paths})
    return os.path.commonpath(folders) if folders else ""


def video_key(path: str, root: str) -> str:
    """The key of the video at ``path`` (see the module docstring); ``root`` as :func:`key_root`."""
    key = kinetics_key(path)
    if key is not None:
        return key
    full = os.path.abspath(path)
    rel = os.path.relpath(full, root) if root else full
    return rel.replace(os.sep, "/")


def match_key(path: str, keys: Collection[str]) -> Optional[str]:
    """The key among ``keys`` that names the video at ``path`` (any folder), or None.

    Its Kinetics key, else the longest trailing part of its path that is a key (a relative-path
    key is the end of every absolute path of that video), so no root needs to be known.
    """
    key = kinetics_key(path)
    if key is not None and key in keys:
        return key
    parts = os.path.abspath(path).replace(os.sep, "/").split("/")
    for i in range(1, len(parts)):
        tail = "/".join(parts[i:])
        if tail in keys:
            return tail
    return None
