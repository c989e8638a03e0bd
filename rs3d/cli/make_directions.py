"""``rs3d-make-directions``: write the direction-and-speed dataset
(:mod:`rs3d.data.synthetic_directions`): a ball moving left to right / right to left, slowly /
quickly, up or down, with a distractor, a drifting background and noise; 15-60 fps, 2-4 s,
112x112 to 150x200, mp4/mkv/avi/webm/mov.

    rs3d-make-directions --out datasets/directions
    rs3d-demo DATA.PATH_TO_DATA_DIR datasets/directions MODEL.NUM_CLASSES 6 OUTPUT_DIR output/directions
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from rs3d.data.synthetic_directions import CLASSES, make_direction_dataset

from . import run_tool
from .args import command_parser, parse_command
from .synthetic_sets import add_set_options, write_set


def _run(argv: Optional[Sequence[str]] = None) -> int:
    p = command_parser(
        "rs3d-make-directions",
        __doc__,
        config=False,
        overrides=False,
        docs="docs/datasets.md",
        examples=("rs3d-make-directions --out datasets/directions",),
    )
    p.add_argument("--num-classes", type=int, default=len(CLASSES), help="the first N classes")
    add_set_options(p, train=100, val=10, test=25, workers_help="encoding processes (0 = per core, at most 4)")
    return write_set(make_direction_dataset, parse_command(p, argv))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
