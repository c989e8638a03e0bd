"""A progress line with rate and ETA: redrawn in place on a terminal, a log line every 10 s else."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


def _clock(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """``update(n)`` after each item; ``close()`` at the end. ``done`` items were done before."""

    def __init__(self, total: int, label: str = "", done: int = 0, stream: Optional[TextIO] = None):
        self.total, self.label, self.done, self.start_done = total, label, done, done
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = self.last = time.monotonic()
        self.period = 0.25 if self.tty else 10.0
        self.shown = -1

    def line(self) -> str:
        elapsed = time.monotonic() - self.t0
        new = self.done - self.start_done
        rate = new / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = _clock(left) if left == left else "?"
        return (
            f"{self.label} {self.done}/{self.total} ({pct:.1f}%) {rate:.1f} videos/s "
            f"elapsed {_clock(elapsed)} ETA {eta}"
        )

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.period or self.done >= self.total:
            self.last = now
            self._show()

    def _show(self) -> None:
        self.shown = self.done
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.shown != self.done:
            self._show()
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
