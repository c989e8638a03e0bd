#!/usr/bin/env python
"""Scaling sweeps, the additive study and the speed-accuracy Pareto plot (see rs3d/cli/sweep.py).

    python tools/sweep.py --preset demo
    python tools/sweep.py --cfg configs/k400_rs50.yaml --grid depth=50,101 frames=16,32 --out output/sweep
    python tools/sweep.py --configs configs/ablation/*.yaml --out output/ablation
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rs3d.cli import run_tool  # noqa: E402
from rs3d.cli.sweep import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_tool(main))
