#!/usr/bin/env python
"""Where a loader worker's CPU time goes for one training clip: decoding vs crop+resize+flip.

    python tools/benchmark_worker_split.py --num-videos 4 --rounds 6

What is measured and how: ``benchmarks/worker_split.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # benchmarks/ belongs to the checkout, not to the installed package
    sys.path.insert(0, _ROOT)

from benchmarks.videos import make_kinetics_like_videos  # noqa: E402
from benchmarks.worker_split import measure  # noqa: E402
from rs3d.data import decode as D  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-videos", type=int, default=4)
    p.add_argument("--rounds", type=int, default=6, help="passes over the videos; the first is warm-up")
    p.add_argument("--backend", default="decord", choices=list(D.BACKENDS))
    p.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "rs3d_benchmark_cache"))
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    if args.rounds < 2:
        p.error("--rounds must be at least 2 (the first is warm-up)")
    paths = make_kinetics_like_videos(os.path.join(args.cache_dir, "kinetics_like"), args.num_videos)
    res = measure(paths, args.rounds, backend=args.backend)
    print(f"{res['clips']} clips of 32x2 at 224 from 256x340 files, 1 thread: decode {res['decode_ms']} ms, "
          f"crop+resize+flip {res['augment_ms']} ms per clip ({100 * res['augment_share']:.1f}% of the "
          f"worker's time); workers that only decoded would serve {res['decode_only_speedup']}x the clips")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
