"""The sweep as a picture: top-1 error vs measured training latency and vs peak memory (PNG).

Drawn like the paper's Figure 4: every finished point labelled ``depth-frames-res``, the Pareto
front joined by a line. Rows of a sweep over seeds (:func:`rs3d.sweep.collect.seed_summary`) are
drawn at their mean error with the standard deviation over seeds as error bars and the range
(best to worst seed) as a thin line, so the front can be read against the noise.

Uses matplotlib's Agg canvas directly (no pyplot, no display, no global backend switch), so it
works on a headless machine and inside other programs.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

from .pareto import front_line, pareto_front

PANELS = (
    ("latency_ms_per_clip", "training latency (ms per clip, measured)"),
    ("peak_mem_gib", "peak training memory (GiB, at the measured batch)"),
)


def _point_labels(rows: Sequence[Dict[str, object]]) -> List[str]:
    """The ``depth-frames-res`` label, or the point name where two points share a label."""
    labels = [str(r.get("label") or r.get("name")) for r in rows]
    return [str(r.get("name")) if labels.count(lab) > 1 else lab for r, lab in zip(rows, labels)]


def _draw_spread(ax, rows: Sequence[Dict[str, object]], xs: Sequence[float]) -> None:
    """Standard deviation over seeds as error bars, the range over seeds as a thin line."""
    ranged = [(x, r) for x, r in zip(xs, rows) if r.get("error_min") is not None and r.get("seeds_done", 0) > 1]
    if not ranged:
        return
    ax.vlines(
        [x for x, _ in ranged],
        [float(r["error_min"]) for _, r in ranged],
        [float(r["error_max"]) for _, r in ranged],
        color="0.3",
        linewidth=0.8,
        alpha=0.6,
        zorder=1,
        label="range over seeds",
    )
    sd = [(x, r) for x, r in ranged if r.get("error_std") is not None]
    ax.errorbar(
        [x for x, _ in sd],
        [float(r["error_pct"]) for _, r in sd],
        yerr=[float(r["error_std"]) for _, r in sd],
        fmt="none",
        ecolor="C0",
        elinewidth=2,
        capsize=4,
        zorder=2,
        label="mean \u00b1 std over seeds",
    )


def _draw(ax, rows: Sequence[Dict[str, object]], key: str, xlabel: str) -> None:
    plotted = [r for r in rows if r.get(key) is not None and r.get("error_pct") is not None]
    ax.set_xlabel(xlabel)
    ax.set_ylabel("top-1 error (%)")
    ax.grid(True, alpha=0.3)
    if not plotted:
        ax.text(0.5, 0.5, "no finished points", ha="center", va="center", transform=ax.transAxes)
        return
    xs = [float(r[key]) for r in plotted]
    ys = [float(r["error_pct"]) for r in plotted]
    on = pareto_front(xs, ys)
    ax.scatter(
        [x for x, f in zip(xs, on) if not f],
        [y for y, f in zip(ys, on) if not f],
        color="0.55",
        zorder=2,
        label="other points",
    )
    ax.scatter(
        [x for x, f in zip(xs, on) if f], [y for y, f in zip(ys, on) if f], color="C3", zorder=3, label="Pareto front"
    )
    line = front_line(xs, ys)
    ax.plot([xs[i] for i in line], [ys[i] for i in line], color="C3", zorder=1)
    _draw_spread(ax, plotted, xs)
    labels = _point_labels(plotted)
    if any(r.get("seeds") for r in plotted):
        labels = [f"{lab} (n={r.get('seeds_done')})" for lab, r in zip(labels, plotted)]
    for x, y, text in zip(xs, ys, labels):
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.margins(0.15)
    ax.legend(loc="best", fontsize=8)


def plot_pareto(rows: Sequence[Dict[str, object]], path: str, title: Optional[str] = None) -> str:
    """Write the two-panel Pareto plot of the collected ``rows`` to ``path``; returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, (key, xlabel) in zip(axes, PANELS):
        _draw(ax, rows, key, xlabel)
    done = sum(1 for r in rows if r.get("error_pct") is not None)
    failed = sum(1 for r in rows if r.get("status") == "failed")
    devices = sorted({str(r["device"]) for r in rows if r.get("device")})
    head = title or "speed-accuracy Pareto curve"
    fig.suptitle(
        f"{head}: {done} of {len(rows)} points"
        + (f", {failed} failed" if failed else "")
        + (f" (measured on {', '.join(devices)})" if devices else ""),
        fontsize=10,
    )
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path
