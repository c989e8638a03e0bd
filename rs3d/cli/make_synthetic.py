"""``rs3d-make-synthetic``: write rs3d's synthetic motion dataset (real encoded videos, CSVs, classes.txt).

    rs3d-make-synthetic --out datasets/synthetic

then train with ``DATA.PATH_TO_DATA_DIR datasets/synthetic MODEL.NUM_CLASSES 8``.

"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from rs3d.data.synthetic import make_synthetic_dataset

from . import run_tool
from .args import command_parser, parse_command
from .synthetic_sets import add_set_options, write_set


def _run(argv: Optional[Sequence[str]] = None) -> int:
    p = command_parser(
        "rs3d-make-synthetic",
        __doc__,
        config=False,
        overrides=False,
        docs="docs/datasets.md",
        examples=("rs3d-make-synthetic --out datasets/synthetic --num-classes 8",),
    )
    p.add_argument("--num-classes", type=int, default=8)
    add_set_options(p, train=40, val=10, test=10, workers_help="encoding processes (0 = per core)")
    p.add_argument("--min-frames", type=int, default=40)
    p.add_argument("--max-frames", type=int, default=64)
    p.add_argument("--clutter", type=float, default=1.0, help="background contrast (0 = plain grey)")
    p.add_argument(
        "--object-size",
        type=float,
        nargs=2,
        default=(0.14, 0.2),
        help="range of the object's half-size as a fraction of the short side",
    )
    a = parse_command(p, argv)
    return write_set(
        make_synthetic_dataset,
        a,
        min_frames=a.min_frames,
        max_frames=a.max_frames,
        clutter=a.clutter,
        object_size=a.object_size,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
