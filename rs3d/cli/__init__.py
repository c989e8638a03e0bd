"""The command-line entry points, one ``main(argv)`` per command, each run through :func:`run_tool`.

``run_tool(main)`` calls ``main()`` and turns an :class:`~rs3d.errors.Rs3dError` into one line
``error: <message>`` on stderr and the error's exit status (2 for bad input, 1 for a failed run),
so tools never print tracebacks for mistakes a user can fix. Anything else is a bug and keeps
its traceback. It is defined in :mod:`rs3d.errors` (beside the statuses it maps) and is the
public entry of this package. The argument rules every command shares are in :mod:`rs3d.cli.args`.
"""

from ..errors import error_line, run_tool

__all__ = ["error_line", "run_tool"]
