"""Keeping one bad file from costing the run: a time limit on a decode, one-line messages."""

from __future__ import annotations

import re
import threading
from typing import Callable

from ...errors import DecodeError


def run_with_timeout(fn: Callable, timeout_s: float):
    """``fn()`` in a daemon thread; :class:`DecodeError` if it has not returned in ``timeout_s``.

    A hung decoder thread cannot be killed, only abandoned; it is a daemon so it never blocks exit.
    decord and PyAV release the GIL while decoding, so the caller carries on meanwhile.
    """
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    thread = threading.Thread(target=target, name="rs3d-decode", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise DecodeError(f"decoding took longer than {timeout_s:g} s (DATA.DECODE_TIMEOUT_S)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def short(e: BaseException) -> str:
    """First meaningful line of a decoder message (decord appends C++ stack traces)."""
    lines = [t for t in str(e).strip().splitlines() if t.strip()]
    line = lines[0] if lines else type(e).__name__
    line = re.sub(r"^\[[0-9:]+\] \S+:\d+: ", "", line)  # decord's "[time] file.cc:line: "
    return line[:200]
