"""One error hierarchy for everything a user can get wrong.

Every error rs3d raises on purpose derives from :class:`Rs3dError` and carries a one-line message
that names the file, line or config key at fault. Command-line tools catch ``Rs3dError`` in one
place (:func:`run_tool`, also importable as ``rs3d.cli.run_tool``), print ``error: <message>`` and
exit with ``exit_code`` (2 for bad input, 1 for a run that failed on its own), so no tool repeats
that block. ``run_tool`` lives here, beside the hierarchy it maps to exit statuses, so every layer
that has a command entry point (``rs3d.cli``, ``python -m rs3d.sweep.measure``) uses the same one.

    Rs3dError
    ├── ConfigError        a config key, value or file that cannot be used     (exit 2)
    ├── DataError          a CSV, class list or dataset folder that cannot be used (exit 2)
    │   └── DecodeError    one video that cannot give the frames asked for
    ├── CheckpointError    a checkpoint or weight file that cannot be read      (exit 2)
    ├── EvaluationError    a test run that cannot start or cannot be trusted    (exit 2)
    ├── OutputDirError     OUTPUT_DIR in use by another run, or holding another run (exit 2)
    ├── NonFiniteLossError the loss became NaN/inf; training stopped            (exit 1)
    ├── NonFiniteOutputError a model whose outputs are NaN/inf; nothing scored   (exit 1)
    └── OutputWriteError   a file of the run cannot be written (disk full, read-only) (exit 1)
"""

from __future__ import annotations

import sys
from typing import Callable, Optional, Sequence


class Rs3dError(Exception):
    """Base of every deliberate rs3d error; ``str(e)`` is one line a user can act on."""

    exit_code = 2


class ConfigError(Rs3dError, ValueError):
    """A config mistake, with a one-line message naming the key or file."""


class DataError(Rs3dError, ValueError):
    """A video list, class file or dataset folder that cannot be used; names the file and line."""


class DecodeError(DataError):
    """A video that cannot give the frames asked for; ``str(e)`` is the reason.

    Loaders catch it per video (the video is skipped and counted), so it never stops a run.
    """


class CheckpointError(Rs3dError, RuntimeError):
    """A checkpoint or weight file that cannot be used (missing, truncated, unsafe pickle, wrong shape)."""


class EvaluationError(Rs3dError, RuntimeError):
    """A test run that cannot start or cannot be trusted."""


class OutputDirError(Rs3dError, RuntimeError):
    """OUTPUT_DIR is held by another run (its lock), or holds another run's checkpoints."""


class NonFiniteLossError(Rs3dError, RuntimeError):
    """The loss became NaN/inf; training stopped without writing a checkpoint."""

    exit_code = 1


class NonFiniteOutputError(Rs3dError, RuntimeError):
    """A model gave NaN/inf scores; they are not turned into predictions or metrics."""

    exit_code = 1


class OutputWriteError(Rs3dError, RuntimeError):
    """A file of the run could not be written (disk full, read-only folder, permission denied);
    the message names it and what was kept."""

    exit_code = 1


def error_line(e: BaseException) -> str:
    """The first line of an error's message (or its type name when it has none)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def run_tool(main: Callable[..., Optional[int]], argv: Optional[Sequence[str]] = None) -> int:
    """Run a tool's ``main(argv)``; return its exit status, mapping rs3d errors to one line."""
    try:
        code = main(argv)
    except Rs3dError as e:
        print(f"error: {error_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0 if code is None else int(code)
