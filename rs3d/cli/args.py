"""The argument rules every command shares, in one place.

Videos and ``KEY VALUE`` config overrides after the options are told apart so that no file name is
ever read as a key:

- every token after ``--`` is a video; every token after ``--opts`` is an override;
- a path that exists is a video, whatever its name looks like; a folder stands for the video files
  directly inside it (``rs3d.cli.videos``);
- any other token shaped like a config key (``TEST.USE_EMA``) starts an override and takes the next
  token as its value; anything else is a video.

``--`` is cut off before argparse sees it (argparse versions disagree on what it means).
"""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import List, Sequence, Tuple

from rs3d.errors import ConfigError, DataError

from .videos import videos_in_folder


def split_at_dashdash(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    """``argv`` before ``--`` and the tokens after it (``--`` itself dropped)."""
    argv = list(argv)
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1:]


_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$")


def split_videos_and_overrides(tokens: Sequence[str]) -> Tuple[List[str], List[str]]:
    """``[v1, KEY, VALUE, v2, "--", v3]`` -> ``([v1, v2, v3], [KEY, VALUE])`` by the rules above."""
    tokens, after = split_at_dashdash(tokens)
    videos, opts, i = [], [], 0
    while i < len(tokens):
        t = tokens[i]
        if t == "--opts":
            opts += tokens[i + 1:]
            break
        if not os.path.exists(t):
            if _KEY.match(t):
                if i + 1 >= len(tokens):
                    raise ConfigError(f"{t}: an override without a value (a video by that name is not "
                                      "there; videos after -- are never read as overrides)")
                opts += tokens[i:i + 2]
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
        raise DataError(f"{len(missing)} videos not found: {shown}" if len(missing) > 1
                        else f"{missing[0]}: video not found")
    videos: List[str] = []
    for t in tokens:
        videos += videos_in_folder(Path(t)) if os.path.isdir(t) else [t]
    return videos


def add_timeline_options(p: argparse.ArgumentParser, window_required: bool = True) -> None:
    """The sliding-window options (also what ``rs3d-predict`` offers for its timeline mode)."""
    p.add_argument("--window", type=float, required=window_required, default=None, metavar="SEC",
                   help="window length in seconds")
    p.add_argument("--stride", type=float, default=None, metavar="SEC",
                   help="seconds between window starts (default: half the window)")
    p.add_argument("--smooth", type=int, default=3, metavar="N",
                   help="centred moving average over N windows (odd; 1 = none)")
    p.add_argument("--crops", type=int, default=1, help="spatial crops per window (1 = centre)")
    p.add_argument("--out", default="", help="output folder (default OUTPUT_DIR/timeline)")
    p.add_argument("--plot-classes", type=int, default=5, help="classes drawn in the PNG")


def timeline_requested(args) -> bool:
    """Whether a parser with :func:`add_timeline_options` asked for a timeline (``--window``)."""
    if args.window is None and args.stride is not None:
        raise ConfigError("--stride needs --window (the window length in seconds)")
    return args.window is not None
