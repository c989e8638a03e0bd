"""Ownership of ``OUTPUT_DIR``: one run at a time, and never a new run over another run's checkpoints.

Two runs writing one folder interleave their logs, overwrite each other's checkpoints and delete
each other's temporaries, so a run first takes ``OUTPUT_DIR/rs3d.lock`` for its whole lifetime.

    the lock     ``fcntl.flock`` on ``rs3d.lock`` (the kernel frees it when the process dies, even
                 by SIGKILL), the file holding the holder's host, PID and start time for messages
    held         by a live run: refused in one line naming its PID and host (exit 2)
    left behind  by a process of this host that is gone: taken over, and the log says so
    another host a lock written on another machine (a shared file system, where ``flock`` may not
                 reach across hosts): respected; the message says which file to delete once that
                 run has ended
    torchrun     rank 0 locks and checks; every rank learns the outcome (one collective), so all
                 of them stop together when rank 0 may not go on

A folder that already holds checkpoints is another run's unless this run resumes it
(``TRAIN.AUTO_RESUME True``, the default): with ``AUTO_RESUME False`` the run is refused by name
instead of numbering and pruning its own files among the old run's (whose newer-looking epoch
numbers would make pruning delete the new run's checkpoints and the test pick the old run's).
Refusing keeps one folder = one run, which is also what ``log.txt``, ``json_stats.log`` and
TensorBoard assume. An object-store ``OUTPUT_DIR`` cannot be locked (no ``flock``): nothing is
locked there, which the log says.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from typing import Optional

from rs3d import file_io
from rs3d.checkpoint import best_checkpoint_path, checkpoint_dir, list_checkpoints
from rs3d.engine import distributed as dist_utils
from rs3d.engine.logs import logger
from rs3d.errors import OutputDirError, OutputWriteError, Rs3dError
from rs3d.file_io.owner import this_host, writer_alive

LOCK_NAME = "rs3d.lock"


@dataclass
class RunLock:
    """The held lock of ``output_dir`` (rank 0); ``release`` at the end of the run."""

    path: str
    fd: int
    previous: dict = field(default_factory=dict)  # the stale holder taken over, if any

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            os.unlink(self.path)  # while still held: no one can take the file in between
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1


def _holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def describe_holder(h: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h["started"])) if h.get("started") else "?"
    return f"PID {h.get('pid', '?')} on host {h.get('host', '?')}, since {since}"


def acquire(output_dir: str) -> RunLock:
    """Take ``output_dir``'s lock or raise ``OutputDirError`` (held) / ``OutputWriteError`` (the
    folder cannot be written: nothing was written, what it holds is kept)."""
    path = os.path.join(output_dir, LOCK_NAME)
    for _ in range(10):
        try:
            os.makedirs(output_dir, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutputWriteError(
                f"cannot write in OUTPUT_DIR {output_dir} ({e.filename or path}: "
                f"{e.strerror}); nothing was written and what it holds is kept"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise OutputDirError(
                f"OUTPUT_DIR {output_dir} is in use by another run ({describe_holder(holder)}); "
                "wait for it to end or choose another OUTPUT_DIR"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # its previous holder removed the file between our open and our lock
            os.close(fd)
            continue
        holder = _holder(fd)
        if holder and writer_alive(holder.get("host"), int(holder.get("pid", 0) or 0)) is None:
            os.close(fd)
            raise OutputDirError(
                f"OUTPUT_DIR {output_dir} is locked by a run on another machine ({describe_holder(holder)}); "
                f"if that run has ended, delete {path}"
            )
        me = {"host": this_host(), "pid": os.getpid(), "started": time.time()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode("utf-8"), 0)
            os.fsync(fd)
        except OSError as e:
            os.close(fd)
            raise OutputWriteError(f"cannot write {path}: {e.strerror}; nothing else was written") from None
        return RunLock(path, fd, holder)
    raise OutputDirError(f"OUTPUT_DIR {output_dir}: {path} keeps changing hands; is another run starting there?")


def refuse_other_runs_checkpoints(output_dir: str) -> None:
    """A run that does not resume may not start in a folder holding checkpoints."""
    found = [os.path.basename(p) for p in list_checkpoints(output_dir)]
    if file_io.exists(best_checkpoint_path(output_dir)):
        found.append(os.path.basename(best_checkpoint_path(output_dir)))
    if found:
        shown = ", ".join(found[-3:]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise OutputDirError(
            f"OUTPUT_DIR {output_dir} holds another run's checkpoints ({shown}) and TRAIN.AUTO_RESUME is False: "
            f"set TRAIN.AUTO_RESUME True to continue that run, or choose another OUTPUT_DIR (or delete "
            f"{checkpoint_dir(output_dir)}) to start a new one"
        )


def claim_output_dir(output_dir: str, resuming: bool) -> Optional[RunLock]:
    """Rank 0 locks ``output_dir`` and checks it is this run's to write; collective: every rank
    raises the same error when rank 0 may not go on. Returns the lock on rank 0 (None elsewhere,
    and for an object store)."""
    lock, error = None, None
    if dist_utils.is_main_process():
        try:
            if file_io.is_local(output_dir):
                lock = acquire(file_io.join(output_dir))
            if not resuming:
                refuse_other_runs_checkpoints(output_dir)
        except Rs3dError as e:
            if lock is not None:
                lock.release()
            lock, error = None, e
    outcome = dist_utils.all_gather_object(
        None if error is None else (isinstance(error, OutputWriteError), str(error))
    )[0]
    if error is not None:
        raise error
    if outcome is not None:
        raise (OutputWriteError if outcome[0] else OutputDirError)(f"rank 0: {outcome[1]}")
    return lock


def announce(lock: Optional[RunLock], output_dir: str) -> None:
    """Log what claiming the folder did (after logging is set up, so it reaches log.txt)."""
    if not dist_utils.is_main_process():
        return
    if lock is None and not file_io.is_local(output_dir):
        logger.info(f"{output_dir} is an object store: no lock keeps a second run out of it")
    elif lock is not None and lock.previous:
        gone = writer_alive(lock.previous.get("host"), int(lock.previous.get("pid", 0) or 0)) is False
        why = "that process is gone (a run that was killed)" if gone else "that process no longer holds it"
        logger.warning(f"took over the stale lock {lock.path} of {describe_holder(lock.previous)}: {why}")
