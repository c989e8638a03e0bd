"""SIGTERM as an error that unwinds, for the commands that read with loader worker processes.

Python's default SIGTERM ends the process at once: no ``finally`` runs, so the loader's worker
processes are left to notice on their own that their parent is gone (PyTorch's workers look every
few seconds) while still holding memory and files. Inside :func:`terminate_cleanly` SIGTERM raises
:class:`Terminated` instead: the command unwinds, its loader ends its workers (``run_inference``
does), ``run_tool`` prints one line and the exit status is 143 (128 + SIGTERM), as before.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading

from ..errors import Rs3dError


class Terminated(Rs3dError):
    """The command was stopped by SIGTERM; what it was computing is not written."""

    exit_code = 128 + signal.SIGTERM


@contextlib.contextmanager
def terminate_cleanly():
    """SIGTERM raises ``Terminated`` in this process (main thread only; elsewhere: nothing changes).

    Forked children (loader workers) inherit the handler; in them it falls back to the default
    action, so a worker signalled directly still ends at once as it always did."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def handle(signum, frame):
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise Terminated("stopped by SIGTERM; nothing was written")

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
