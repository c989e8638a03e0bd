"""What ``rs3d-make-synthetic`` and ``rs3d-make-directions`` share: the split-size options and
writing a set with one line of summary (a bad value or an unwritable folder is one ``error:`` line)."""

from __future__ import annotations

import argparse
import time
from typing import Callable, Dict

from rs3d.errors import DataError


def add_set_options(p: argparse.ArgumentParser, *, train: int, val: int, test: int, workers_help: str) -> None:
    """``--out``, the videos per class of each split (defaults ``train``, ``val``, ``test``),
    ``--seed`` and ``--workers``."""
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--train-per-class", type=int, default=train)
    p.add_argument("--val-per-class", type=int, default=val)
    p.add_argument("--test-per-class", type=int, default=test)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help=workers_help)


def write_set(writer: Callable[..., Dict[str, str]], args: argparse.Namespace, **options) -> int:
    """``writer(args.out, ...)`` with the options of :func:`add_set_options`, ``--num-classes`` and
    ``options``; prints the CSVs written and the time taken."""
    t0 = time.time()
    try:
        paths = writer(
            args.out,
            num_classes=args.num_classes,
            train_per_class=args.train_per_class,
            val_per_class=args.val_per_class,
            test_per_class=args.test_per_class,
            seed=args.seed,
            workers=args.workers,
            **options,
        )
    except (ValueError, OSError) as e:  # a bad option value, or an output folder that cannot be written
        raise DataError(str(e)) from e
    print(f"wrote {', '.join(paths.values())} in {time.time() - t0:.1f} s")
    return 0
