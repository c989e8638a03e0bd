"""The command-line convention every command shares, in one place.

``command_parser`` builds a command's parser: ``prog`` is the console-script name, ``--version``
prints the package version, ``--cfg`` (where the command reads a config) is optional, and the
``--help`` text ends with an example, the exit statuses and the documentation page.
``parse_command`` parses with the rules below, the same for every command:

- options may come anywhere before ``--`` (before, between or after the positional tokens);
- config overrides are ``KEY VALUE`` pairs (``SOLVER.BASE_LR 0.1``) after the options, or every
  token after ``--opts``; they land in ``args.opts`` (one name for them in every command);
- every token after ``--`` is positional, never an option: an override for a command without
  videos, a video for one with them;
- a folder given as a video stands for every video file under it, subfolders included, sorted
  by path (:func:`rs3d.cli.videos.videos_in_folder`).

Videos and ``KEY VALUE`` config overrides after the options are told apart so that no file name is
ever read as a key:

- every token after ``--`` is a video; every token after ``--opts`` is an override;
- a path that exists is a video, whatever its name looks like; a folder stands for every video
  file under it (``rs3d.cli.videos``);
- any other token shaped like a config key (``TEST.USE_EMA``) starts an override and takes the next
  token as its value; anything else is a video.

``--`` is cut off before argparse sees it (argparse versions disagree on what it means).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple

from rs3d import __version__
from rs3d.errors import ConfigError, DataError

from .videos import videos_in_folder

# The exit statuses every command shares (``rs3d.errors``: a user-fixable mistake is 2).
EXIT_STATUSES = {0: "done", 2: "a mistake in the command, the config, the data or a checkpoint (one line: error: ...)"}
OVERRIDES_HELP = (
    "config overrides: KEY VALUE pairs after the options, or every token after --opts\n"
    "  (e.g. SOLVER.BASE_LR 0.1 OUTPUT_DIR out/run1); options may come anywhere before --"
)


def command_parser(
    prog: str,
    description: str,
    *,
    examples: Sequence[str],
    docs: str,
    exit_statuses: Optional[Mapping[int, str]] = None,
    config: bool = True,
    overrides: bool = True,
    videos: bool = False,
) -> argparse.ArgumentParser:
    """A command's parser with the shared options and ``--help`` layout.

    ``description``: what the command does (a module docstring is fine). ``examples``: command
    lines shown under "examples". ``docs``: the documentation page (``docs/training.md``).
    ``exit_statuses``: the command's own statuses, added to 0 and 2. ``config``: add ``--cfg``
    (optional; without it the defaults are used). ``overrides``/``videos``: the positional tokens
    the command takes (``KEY VALUE`` overrides, videos and folders); read them with
    :func:`parse_command`.
    """
    statuses = {**EXIT_STATUSES, **(exit_statuses or {})}
    epilog = ["examples:", *(f"  {e}" for e in examples), ""]
    if overrides:
        epilog += [OVERRIDES_HELP, ""]
    if videos:
        epilog += [
            "videos: files or folders (every video file under a folder, subfolders included);\n"
            "  every token after -- is a video",
            "",
        ]
    epilog += [
        "exit status:",
        *(f"  {code:>3}  {text}" for code, text in sorted(statuses.items())),
        "",
        f"documentation: {docs}",
    ]
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="\n".join(epilog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s (rs3d) {__version__}")
    add_shared_arguments(p, config=config, overrides=overrides, videos=videos)
    return p


def add_shared_arguments(
    p: argparse.ArgumentParser, *, config: bool = True, overrides: bool = True, videos: bool = False
) -> None:
    """``--cfg`` and the positional tokens, for :func:`command_parser` and for a subcommand's parser."""
    if config:
        p.add_argument(
            "--cfg",
            dest="cfg_file",
            default="",
            metavar="YAML",
            help="config file (may use _BASE_); optional: the defaults otherwise",
        )
    if overrides or videos:
        metavar = "VIDEO|FOLDER|KEY VALUE" if videos else "KEY VALUE"
        p.add_argument("rest", nargs="*", metavar=metavar, help=argparse.SUPPRESS)


def parse_command(
    parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None, *, videos: bool = False
) -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``) by the rules of this module.

    Sets ``args.opts`` (the overrides, ``KEY VALUE ...``) and, with ``videos``, ``args.videos``
    (the video and folder tokens, not yet expanded: :func:`expand_videos`).
    """
    argv, after = split_at_dashdash(sys.argv[1:] if argv is None else argv)
    tail: List[str] = []
    if "--opts" in argv:
        cut = argv.index("--opts")
        argv, tail = argv[:cut], argv[cut + 1 :]
    args = parser.parse_intermixed_args(argv)
    if not hasattr(args, "rest") and (after or tail):
        parser.error("this command takes no config overrides or videos (nothing after -- or --opts)")
    rest = list(getattr(args, "rest", None) or [])
    if videos:
        args.videos, opts = split_videos_and_overrides(rest + ["--"] + after)
        args.opts = opts + tail
    else:
        args.opts = rest + after + tail
    return args


def parse_subcommand(
    parser: argparse.ArgumentParser,
    subparsers: Mapping[str, argparse.ArgumentParser],
    argv: Optional[Sequence[str]] = None,
    *,
    videos: Sequence[str] = (),
):
    """``(name, args)`` of a command with subcommands (``rs3d-visualize gradcam ...``), each parsed
    by :func:`parse_command` (``videos``: the subcommands that take videos); None when ``argv``
    names no subcommand and argparse did not exit with its own message (the caller's status 2).

    Dispatched by hand: argparse's subparsers cannot parse options in any order."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in subparsers:
        parser.parse_args(argv)  # --help, --version, or argparse's error naming the missing command
        return None
    return argv[0], parse_command(subparsers[argv[0]], argv[1:], videos=argv[0] in videos)


def split_at_dashdash(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    """``argv`` before ``--`` and the tokens after it (``--`` itself dropped)."""
    argv = list(argv)
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$")


def split_videos_and_overrides(tokens: Sequence[str]) -> Tuple[List[str], List[str]]:
    """``[v1, KEY, VALUE, v2, "--", v3]`` -> ``([v1, v2, v3], [KEY, VALUE])`` by the rules above."""
    tokens, after = split_at_dashdash(tokens)
    videos, opts, i = [], [], 0
    while i < len(tokens):
        t = tokens[i]
        if t == "--opts":
            opts += tokens[i + 1 :]
            break
        if not os.path.exists(t):
            if _KEY.match(t):
                if i + 1 >= len(tokens):
                    raise ConfigError(
                        f"{t}: an override without a value (a video by that name is not "
                        "there; videos after -- are never read as overrides)"
                    )
                opts += tokens[i : i + 2]
                i += 2
                continue
            if t.startswith("-"):
                raise ConfigError(f"{t}: options go before the videos (or, if it is a video, put it after --)")
        videos.append(t)
        i += 1
    return videos + after, opts


def expand_videos(tokens: Sequence[str]) -> List[str]:
    """Each folder replaced by its video files; DataError naming every path that does not exist."""
    missing = [t for t in tokens if not os.path.exists(t)]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DataError(
            f"{len(missing)} videos not found: {shown}" if len(missing) > 1 else f"{missing[0]}: video not found"
        )
    videos: List[str] = []
    for t in tokens:
        videos += videos_in_folder(Path(t)) if os.path.isdir(t) else [t]
    return videos


def add_timeline_options(p: argparse.ArgumentParser, window_required: bool = True) -> None:
    """The sliding-window options (also what ``rs3d-predict`` offers for its timeline mode)."""
    p.add_argument(
        "--window",
        type=float,
        required=window_required,
        default=None,
        metavar="SEC",
        help="window length in seconds (rs3d-timeline's default: the span of the clips the "
        "model was trained on; one that spaces the frames >25%% differently warns)",
    )
    p.add_argument(
        "--stride",
        type=float,
        default=None,
        metavar="SEC",
        help="seconds between window starts (default: half the window)",
    )
    p.add_argument(
        "--smooth", type=int, default=3, metavar="N", help="centred moving average over N windows (odd; 1 = none)"
    )
    p.add_argument("--crops", type=int, default=1, help="spatial crops per window (1 = centre)")
    p.add_argument("--out", default="", help="output folder (default OUTPUT_DIR/timeline)")
    p.add_argument("--plot-classes", type=int, default=5, help="classes drawn in the PNG")


def timeline_requested(args) -> bool:
    """Whether a parser with :func:`add_timeline_options` asked for a timeline (``--window``)."""
    if args.window is None and args.stride is not None:
        raise ConfigError("--stride needs --window (the window length in seconds)")
    return args.window is not None
