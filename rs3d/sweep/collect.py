"""Every point's own files -> one table: ``results.csv`` and ``results.json`` in the sweep folder.

Read per point (``ROOT/NAME/``): ``sweep_point.json`` (status, failed step, error),
``test_metrics.json`` (written by rs3d-test: 30-view top-1/top-5 of the EMA weights) and
``model_stats.json`` (written by rs3d.sweep.measure). Nothing is recomputed, so the table always
says what the runs themselves wrote; a point never started is ``pending``.

A sweep over seeds also gets ``seeds.csv`` / ``seeds.json`` (:func:`seed_summary`): per setting, the
mean, sample standard deviation and range of top-1 over its finished seeds, so a difference between
two settings can be read against the noise of one.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
from typing import Dict, List, Optional, Sequence, Tuple

from .grid import Point
from .runner import METRICS_FILE, STATS_FILE, STATUS_FILE

INFO = [
    "arch",
    "depth",
    "width",
    "frames",
    "sampling",
    "train_res",
    "test_res",
    "batch",
    "epochs",
    "seed",
    "seed_group",
]
METRICS = ["top1", "top5", "mean_class_accuracy", "num_videos", "num_failed", "views_per_video", "weights"]
STATS = [
    "params_m",
    "gflops",
    "device",
    "amp_dtype",
    "measure_batch",
    "step_s",
    "latency_ms_per_clip",
    "latency_s_per_batch",
    "peak_mem_gib",
    "other_cores_busy",
]


def _read_json(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def collect(points: Sequence[Point], root: str) -> List[Dict[str, object]]:
    """One row per point, in the points' order."""
    rows = []
    for p in points:
        d = os.path.join(root, p.name)
        status = _read_json(os.path.join(d, STATUS_FILE)) or {}
        metrics = _read_json(os.path.join(d, METRICS_FILE)) or {}
        stats = _read_json(os.path.join(d, STATS_FILE)) or {}
        state = status.get("status") or ("done" if metrics and stats else "pending")
        if state == "running":  # a sweep stopped during this point
            state = "interrupted"
        row: Dict[str, object] = {
            "name": p.name,
            "label": p.label,
            "status": state,
            "step": status.get("step"),
            "error": status.get("error"),
        }
        row.update({k: p.info.get(k) for k in INFO})
        row.update({f"grid:{k}": v for k, v in p.axes.items()})
        row.update({k: metrics.get(k) for k in METRICS})
        row.update({k: stats.get(k) for k in STATS})
        row["error_pct"] = None if row["top1"] is None else 100.0 - float(row["top1"])
        row["cfg_file"] = p.cfg_file
        row["output_dir"] = d
        rows.append(row)
    return rows


def _spread(values: List[float], key: str) -> Dict[str, Optional[float]]:
    """mean, sample standard deviation (None below 2 values), min and max of ``values``."""
    if not values:
        return {f"{key}_{k}": None for k in ("mean", "std", "min", "max")}
    return {
        f"{key}_mean": statistics.fmean(values),
        f"{key}_std": statistics.stdev(values) if len(values) > 1 else None,
        f"{key}_min": min(values),
        f"{key}_max": max(values),
    }


def seed_summary(rows: Sequence[Dict[str, object]]) -> List[Dict[str, object]]:
    """One row per seed group (in order of first appearance) over the rows that have one.

    Top-1/top-5 statistics are over the finished seeds only (``seeds_done`` of ``seeds``); the
    error columns (``error_pct`` = 100 - mean top-1, ``error_std``, ``error_min``/``error_max``
    from the best/worst seed) are what the Pareto plot draws. Latency is the mean of the
    measured seeds (the same model measured again), memory the largest.
    """
    groups: Dict[str, List[Dict[str, object]]] = {}
    for r in rows:
        if r.get("seed_group") is not None:
            groups.setdefault(str(r["seed_group"]), []).append(r)
    out = []
    for name, members in groups.items():
        done = [r for r in members if r.get("top1") is not None]
        top1 = [float(r["top1"]) for r in done]
        top5 = [float(r["top5"]) for r in done if r.get("top5") is not None]
        lat = [float(r["latency_ms_per_clip"]) for r in done if r.get("latency_ms_per_clip") is not None]
        mem = [float(r["peak_mem_gib"]) for r in done if r.get("peak_mem_gib") is not None]
        first = members[0]
        row: Dict[str, object] = {
            "name": name,
            "label": first.get("label"),
            "status": "done" if len(done) == len(members) else f"{len(done)}/{len(members)} done",
            "seeds": len(members),
            "seeds_done": len(done),
            "seed_values": [r.get("seed") for r in done],
        }
        row.update({k: first.get(k) for k in INFO if k not in ("seed", "seed_group")})
        row.update(_spread(top1, "top1"))
        row.update(_spread(top5, "top5"))
        row["top1"], row["top5"] = row["top1_mean"], row["top5_mean"]
        row["error_pct"] = None if not top1 else 100.0 - float(row["top1_mean"])
        row["error_std"] = row["top1_std"]
        row["error_min"] = None if not top1 else 100.0 - max(top1)
        row["error_max"] = None if not top1 else 100.0 - min(top1)
        row["params_m"], row["gflops"] = first.get("params_m"), first.get("gflops")
        row["device"] = first.get("device")
        row["latency_ms_per_clip"] = statistics.fmean(lat) if lat else None
        row["peak_mem_gib"] = max(mem) if mem else None
        row["other_cores_busy"] = max((float(r.get("other_cores_busy") or 0) for r in done), default=None)
        out.append(row)
    return out


def write_results(rows: Sequence[Dict[str, object]], root: str, stem: str = "results") -> Tuple[str, str]:
    """``STEM.csv`` (one column per field, blank where unknown) and ``STEM.json``."""
    os.makedirs(root, exist_ok=True)
    columns: List[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    csv_path, json_path = os.path.join(root, f"{stem}.csv"), os.path.join(root, f"{stem}.json")
    with open(csv_path + ".tmp", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    os.replace(csv_path + ".tmp", csv_path)
    with open(json_path + ".tmp", "w") as f:
        json.dump(list(rows), f, indent=2)
        f.write("\n")
    os.replace(json_path + ".tmp", json_path)
    return csv_path, json_path
