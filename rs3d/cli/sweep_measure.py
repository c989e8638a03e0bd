"""The measure step of a sweep point, as its own process (``rs3d-sweep`` runs it).

    python -m rs3d.cli.sweep_measure --cfg CFG --json OUT.json [--batch-cap 128] [--steps 3] [KEY VALUE ...]

Params, GFLOPs, and the training-step latency and peak memory of the config's model
(:func:`rs3d.sweep.measure.measure_point`), written to ``--json``. Its own process so that an
out-of-memory kill or a crash costs one point's figures, not the sweep.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from ..config import load_config
from ..sweep.measure import measure_point
from ..sweep.runner import write_json
from . import run_tool


def _run(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m rs3d.cli.sweep_measure", description="measure one sweep point (params, GFLOPs, latency, memory)"
    )
    p.add_argument("--cfg", required=True)
    p.add_argument("--json", required=True, help="where the figures are written")
    p.add_argument("--batch-cap", type=int, default=128)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("opts", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    cfg = load_config(args.cfg, args.opts)
    write_json(args.json, measure_point(cfg, batch_cap=args.batch_cap, steps=args.steps))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
