"""One manifest row: a listed file's size, content digest, and what rs3d's video probe sees.

The probe is :func:`rs3d.data.video.probe.describe_video` (the stream ffmpeg picks, the size as
shown after the display matrix, the packet index's frame count, the first shown frame decoded), the
same look that decides how training reads the file. A file that is missing, cannot be opened or
does not decode is a row with ``decodable`` 0 and the reason, never an error of the build.
"""

from __future__ import annotations

import os

from ..data.video.guard import run_with_timeout, short
from ..data.video.probe import describe_video
from ..errors import DecodeError
from .digest import content_digest
from .keys import video_key

MISSING = "file not found"
PROBE_TIMEOUT_S = 120.0


def manifest_row(path: str, root: str, label: str, label_index: str, full: bool = False) -> dict:
    """The row of the video at ``path`` (absolute) listed with ``label``."""
    rel = os.path.relpath(path, root).replace(os.sep, "/") if root else path
    row = {
        "key": video_key(path, root),
        "path": rel,
        "label": label,
        "label_index": label_index,
        "bytes": 0,
        "digest": "",
        "decodable": False,
        "reason": "",
        "width": 0,
        "height": 0,
        "fps": 0.0,
        "duration": 0.0,
        "frames": 0,
        "frames_exact": False,
    }
    try:
        row["bytes"] = os.stat(path).st_size
        row["digest"] = content_digest(path, full)
    except FileNotFoundError:
        row["reason"] = MISSING
        return row
    except OSError as e:
        row["reason"] = f"cannot read: {e.strerror or e}"
        return row
    try:
        facts = run_with_timeout(lambda: describe_video(path), PROBE_TIMEOUT_S)
    except DecodeError as e:
        row["reason"] = str(e)
        return row
    except Exception as e:  # a probe that crashes on one file must not end a 250k-video build
        row["reason"] = f"probe failed: {short(e)}"
        return row
    row.update(
        width=facts.width,
        height=facts.height,
        fps=facts.fps,
        duration=facts.duration,
        frames=facts.frames,
        frames_exact=facts.frames_exact,
        decodable=facts.decodable,
        reason=facts.reason,
    )
    return row
