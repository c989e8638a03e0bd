"""``rs3d-make-synthetic``: write rs3d's synthetic motion dataset (real encoded videos, CSVs, classes.txt).

    rs3d-make-synthetic --out datasets/synthetic

then train with ``DATA.PATH_TO_DATA_DIR datasets/synthetic MODEL.NUM_CLASSES 8``.

"""

from __future__ import annotations

import sys
import time
from typing import Optional, Sequence

from rs3d.data.synthetic import make_synthetic_dataset
from rs3d.errors import DataError

from . import run_tool
from .args import command_parser, parse_command


def _run(argv: Optional[Sequence[str]] = None) -> int:
    p = command_parser(
        "rs3d-make-synthetic",
        __doc__,
        config=False,
        overrides=False,
        docs="docs/datasets.md",
        examples=("rs3d-make-synthetic --out datasets/synthetic --num-classes 8",),
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num-classes", type=int, default=8)
    p.add_argument("--train-per-class", type=int, default=40)
    p.add_argument("--val-per-class", type=int, default=10)
    p.add_argument("--test-per-class", type=int, default=10)
    p.add_argument("--min-frames", type=int, default=40)
    p.add_argument("--max-frames", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="encoding processes (0 = per core)")
    p.add_argument("--clutter", type=float, default=1.0, help="background contrast (0 = plain grey)")
    p.add_argument(
        "--object-size",
        type=float,
        nargs=2,
        default=(0.14, 0.2),
        help="range of the object's half-size as a fraction of the short side",
    )
    a = parse_command(p, argv)

    t0 = time.time()
    try:
        paths = make_synthetic_dataset(
            a.out,
            num_classes=a.num_classes,
            train_per_class=a.train_per_class,
            val_per_class=a.val_per_class,
            test_per_class=a.test_per_class,
            min_frames=a.min_frames,
            max_frames=a.max_frames,
            seed=a.seed,
            workers=a.workers,
            clutter=a.clutter,
            object_size=a.object_size,
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
