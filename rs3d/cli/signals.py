"""SIGTERM as an error that unwinds, for the commands that read with loader worker processes.

Python's default SIGTERM ends the process at once: no ``finally`` runs, so the loader's worker
processes are left to notice on their own that their parent is gone (PyTorch's workers look every
few seconds) while still holding memory and files. Inside :func:`terminate_cleanly` SIGTERM ends the
worker processes and raises :class:`Terminated`: the command unwinds (``run_inference`` also shuts its
loader down), ``run_tool`` prints one line and the exit status is 143 (128 + SIGTERM), as before.
"""

from __future__ import annotations

import contextlib
import multiprocessing
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
        # The workers' work is discarded: end them before unwinding. Left to the loader's polite
        # shutdown, a worker could be mid-way through handing this process a batch's file descriptor
        # when the exception lands here, and its sharing thread then printed a traceback on its way out.
        # (PyTorch's SIGCHLD handler would report the killed workers as a loader failure.)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for child in multiprocessing.active_children():
            child.kill()
        raise Terminated("stopped by SIGTERM; nothing was written")

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
