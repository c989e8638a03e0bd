"""The one wrapper every command-line entry point runs through.

``run_tool(main)`` calls ``main()`` and turns an :class:`~rs3d.errors.Rs3dError` into one line
``error: <message>`` on stderr and the error's exit status (2 for bad input, 1 for a failed run),
so tools never print tracebacks for mistakes a user can fix. Anything else is a bug and keeps
its traceback.
"""
from __future__ import annotations

import sys
from typing import Callable, Optional, Sequence

from ..errors import Rs3dError


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
