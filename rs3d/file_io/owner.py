"""Who wrote a file, and whether that writer still runs: this host's name and liveness by PID.

A temporary file carries its writer's host and PID in its name (``atomic_write``), and a run's
lock file holds them (``rs3d.engine.run_lock``), so leftovers are removed or taken over only when
their writer is gone. Liveness can only be told on the same host; another host's writer is
assumed alive (the caller says how to remove its file by hand).
"""

from __future__ import annotations

import os
import re
import socket
from typing import Optional

_HOST_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def this_host() -> str:
    """This machine's name, as written into lock files and temporary names (no dots or slashes)."""
    return _HOST_UNSAFE.sub("-", socket.gethostname() or "localhost")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def writer_alive(host: Optional[str], pid: int) -> Optional[bool]:
    """True/False for a writer on this host (``host`` None: this host); None when it is another
    host's, whose processes cannot be seen from here."""
    if host is not None and host != this_host():
        return None
    return pid_alive(pid)


def temporary_name(path: str) -> str:
    """``{path}.{host}.{pid}.tmp``: the temporary a write of ``path`` by this process goes through."""
    return f"{path}.{this_host()}.{os.getpid()}.tmp"


def temporary_writer(tmp: str, path_suffix: str = "") -> Optional[tuple]:
    """(host or None, pid) of a temporary named by ``temporary_name`` (or by older versions,
    ``{path}.{pid}.tmp``: this host); None when the name says neither. ``path_suffix``: how the
    final file's name ends (``.pyth``), which separates it from the writer's part."""
    name = os.path.basename(tmp)
    if not name.endswith(".tmp"):
        return None
    rest = name[: -len(".tmp")]
    if path_suffix and path_suffix in rest:
        rest = rest[rest.rindex(path_suffix) + len(path_suffix) :].lstrip(".")
        parts = rest.split(".")
    else:
        parts = rest.rsplit(".", 2)[-2:]
    if len(parts) == 1 and parts[0].isdigit():
        return None, int(parts[0])
    if len(parts) == 2 and parts[1].isdigit():
        return parts[0], int(parts[1])
    return None
