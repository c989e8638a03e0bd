"""``rs3d-make-directions``: write the direction-and-speed dataset
(:mod:`rs3d.data.synthetic_directions`): a ball moving left to right / right to left, slowly /
quickly, up or down, with a distractor, a drifting background and noise; 15-60 fps, 2-4 s,
112x112 to 150x200, mp4/mkv/avi/webm/mov.

    rs3d-make-directions --out datasets/directions
    rs3d-demo DATA.PATH_TO_DATA_DIR datasets/directions MODEL.NUM_CLASSES 6 OUTPUT_DIR output/directions
"""

from __future__ import annotations

import sys
import time
from typing import Optional, Sequence

from rs3d.data.synthetic_directions import CLASSES, make_direction_dataset
from rs3d.errors import DataError

from . import run_tool
from .args import command_parser, parse_command


def _run(argv: Optional[Sequence[str]] = None) -> int:
    p = command_parser(
        "rs3d-make-directions",
        __doc__,
        config=False,
        overrides=False,
        docs="docs/datasets.md",
        examples=("rs3d-make-directions --out datasets/directions",),
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num-classes", type=int, default=len(CLASSES), help="the first N classes")
    p.add_argument("--train-per-class", type=int, default=100)
    p.add_argument("--val-per-class", type=int, default=10)
    p.add_argument("--test-per-class", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="encoding processes (0 = per core, at most 4)")
    a = parse_command(p, argv)
    t0 = time.time()
    try:
        paths = make_direction_dataset(
            a.out,
            num_classes=a.num_classes,
            train_per_class=a.train_per_class,
            val_per_class=a.val_per_class,
            test_per_class=a.test_per_class,
            seed=a.seed,
            workers=a.workers,
        )
    except (ValueError, OSError) as e:  # a bad option value, or an output folder that cannot be written
        raise DataError(str(e)) from e
    print(f"wrote {', '.join(paths.values())} in {time.time() - t0:.1f} s")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
