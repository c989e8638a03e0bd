"""Every point's own files -> one table: ``results.csv`` and ``results.json`` in the sweep folder.

Read per point (``ROOT/NAME/``): ``sweep_point.json`` (status, failed step, error),
``test_metrics.json`` (written by rs3d-test: 30-view top-1/top-5 of the EMA weights) and
``model_stats.json`` (written by rs3d.sweep.measure). Nothing is recomputed, so the table always
says what the runs themselves wrote; a point never started is ``pending``.
"""
from __future__ import annotations

import csv
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

from .grid import Point
from .runner import METRICS_FILE, STATS_FILE, STATUS_FILE

INFO = ["arch", "depth", "width", "frames", "sampling", "train_res", "test_res", "batch", "epochs"]
METRICS = ["top1", "top5", "mean_class_accuracy", "num_videos", "num_failed", "views_per_video", "weights"]
STATS = ["params_m", "gflops", "device", "amp_dtype", "measure_batch", "step_s", "latency_ms_per_clip",
         "latency_s_per_batch", "peak_mem_gib", "other_cores_busy"]


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
        row: Dict[str, object] = {"name": p.name, "label": p.label, "status": state,
                                  "step": status.get("step"), "error": status.get("error")}
        row.update({k: p.info.get(k) for k in INFO})
        row.update({f"grid:{k}": v for k, v in p.axes.items()})
        row.update({k: metrics.get(k) for k in METRICS})
        row.update({k: stats.get(k) for k in STATS})
        row["error_pct"] = None if row["top1"] is None else 100.0 - float(row["top1"])
        row["cfg_file"] = p.cfg_file
        row["output_dir"] = d
        rows.append(row)
    return rows


def write_results(rows: Sequence[Dict[str, object]], root: str) -> Tuple[str, str]:
    """``results.csv`` (one column per field, blank where unknown) and ``results.json``."""
    os.makedirs(root, exist_ok=True)
    columns: List[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    csv_path, json_path = os.path.join(root, "results.csv"), os.path.join(root, "results.json")
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
