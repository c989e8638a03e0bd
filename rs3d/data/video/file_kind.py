"""Why a path listed as a video is not a readable file, in words a user can act on.

"file not found" for a symbolic link that points to itself, a named pipe or a device sends the user
looking for a file that is there; each kind gets its own reason. A FIFO or a device is never
opened: reading one can block for ever or consume data.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Optional

_NOT_A_FILE = (
    (stat.S_ISDIR, "a folder, not a video file"),
    (stat.S_ISFIFO, "a FIFO (named pipe), not a video file"),
    (stat.S_ISCHR, "a character device, not a video file"),
    (stat.S_ISBLK, "a block device, not a video file"),
    (stat.S_ISSOCK, "a socket, not a video file"),
)


def unreadable_reason(path: str) -> Optional[str]:
    """None for a regular file this process may read; else one line saying what ``path`` is."""
    try:
        st = os.stat(path)
    except OSError as e:
        return _stat_failure(path, e)
    for is_kind, reason in _NOT_A_FILE:
        if is_kind(st.st_mode):
            return reason
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if not os.access(path, os.R_OK):
        return "permission denied (not readable by this user)"
    return None


def _stat_failure(path: str, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symbolic link loop (the link leads back to itself)"
    if os.path.islink(path):
        return f"broken symbolic link (to {os.readlink(path)}, which does not exist)"
    if e.errno == errno.ENOENT:
        return "file not found"
    if e.errno == errno.ENOTDIR:
        return "file not found (a part of the path is a file, not a folder)"
    if e.errno == errno.EACCES:
        return "permission denied (a folder on the path is not searchable by this user)"
    return f"cannot be read: {e.strerror or type(e).__name__}"
