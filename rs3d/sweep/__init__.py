"""Scaling sweeps, the additive study and the speed-accuracy Pareto curve (the paper's method as a tool).

The paper's advice: train several models to convergence at different depths, widths, resolutions
(and, for video, frame counts), measure training latency and memory on the hardware at hand rather
than counting FLOPs, and pick from the Pareto curve; separate training methods from architecture
with an additive study. This package turns that into one command (``rs3d-sweep``):

    grid.py      a grid (or a list of configs) -> named points, every value checked before training
    rules.py     the paper's scaling rules (dropout per width, stochastic depth per depth, slow
                 resolution scaling) as opt-in options
    runner.py    each point in its own OUTPUT_DIR, resumable; a ``Launcher`` decides where points run
    measure.py   params, GFLOPs, measured training-step latency and peak memory of one point
    collect.py   every run's own metric files -> one table (CSV and JSON)
    pareto.py    which points are on the front (pure)
    plot.py      error vs latency and vs peak memory, points labelled ``depth-frames-res``
    additive.py  the additive-study table, the paper's numbers beside it for the K400 ablation configs
    presets.py   ready-made sweeps (``--preset demo``: a laptop-sized grid on the synthetic set)
"""

from .collect import collect, write_results
from .grid import Axis, Point, expand_grid, parse_axis, points_from_configs
from .pareto import pareto_front
from .runner import Launcher, LocalLauncher, PointFailed, Steps, run_point, run_sweep

__all__ = [
    "Axis",
    "Point",
    "parse_axis",
    "expand_grid",
    "points_from_configs",
    "Launcher",
    "LocalLauncher",
    "Steps",
    "PointFailed",
    "run_point",
    "run_sweep",
    "collect",
    "write_results",
    "pareto_front",
]
