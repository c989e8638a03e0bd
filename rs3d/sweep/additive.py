"""The additive study as a table: "row, change, top-1, delta vs previous row" (the paper's layout).

For a list of configs that each add one method to the previous one (``configs/ablation/*.yaml``),
the table shows what each row changed, its measured top-1 and the gain over the row before. A
row's change is the config's own description (its first comment line, ``# Row N: + dropout 0.5
...``) and, always, the config keys that differ from the previous row.

When the configs are the Kinetics-400 ablation configs (``configs/ablation/``, 400 classes), the
paper's numbers stand beside the measured ones. The paper's text gives three of them (appendix
H and section 3.4; REFERENCE.md): 73.4 for the baseline, 77.4 with all training methods (after
row 7, scale jittering) and 78.2 with ResNet-D and SE (row 9); the other rows have no published
figure here, so their column is left blank rather than guessed.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .grid import Point

ABLATION_ROWS = (
    "00_baseline",
    "01_dropout",
    "02_label_smoothing",
    "03_stochastic_depth",
    "04_ema",
    "05_weight_decay",
    "06_350_epochs",
    "07_scale_jitter",
    "08_resnet_d",
    "09_squeeze_excitation",
)
PAPER_K400_TOP1 = {"00_baseline": 73.4, "07_scale_jitter": 77.4, "09_squeeze_excitation": 78.2}


def describe_change(cfg_file: str) -> Optional[str]:
    """``# Row 1: + dropout 0.5 before the classifier (appendix H text).`` -> ``+ dropout 0.5 before
    the classifier``; None when the config's first comment line does not describe a row."""
    try:
        with open(cfg_file) as f:
            first = next((ln.strip() for ln in f if ln.strip()), "")
    except OSError:
        return None
    m = re.match(r"#.*?\brow\s+\d+\s*:\s*(.+)$", first, flags=re.IGNORECASE)
    if not m:
        return None
    text = m.group(1).split(" (")[0].strip().rstrip(".").strip()
    return text or None


def _flat(cfg, prefix: str = "") -> Dict[str, object]:
    out: Dict[str, object] = {}
    for k, v in cfg.items():
        if hasattr(v, "items"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def config_diff(prev, cur) -> List[str]:
    """``["MODEL.DROPOUT_RATE 0.0 -> 0.5", ...]``: the keys ``cur`` changes from ``prev`` (OUTPUT_DIR aside)."""
    a, b = _flat(prev), _flat(cur)
    return [f"{k} {a.get(k)!r} -> {b[k]!r}" for k in sorted(b) if k != "OUTPUT_DIR" and a.get(k) != b[k]]


def is_k400_ablation(point: Point) -> bool:
    path = Path(point.cfg_file)
    return path.parent.name == "ablation" and path.stem in ABLATION_ROWS and point.info.get("num_classes") == 400


def additive_table(points: Sequence[Point], rows: Sequence[Dict[str, object]]) -> List[Dict[str, object]]:
    """One entry per point, in order; ``rows`` are the collected results of the same points."""
    with_paper = bool(points) and all(is_k400_ablation(p) for p in points)
    by_name = {r["name"]: r for r in rows}
    table: List[Dict[str, object]] = []
    prev_cfg, prev_top1 = None, None
    prev_paper: Optional[Tuple[int, float]] = None
    for i, p in enumerate(points):
        cfg = p.load()
        diff = config_diff(prev_cfg, cfg) if prev_cfg is not None else []
        r = by_name.get(p.name, {})
        top1 = r.get("top1")
        entry: Dict[str, object] = {
            "row": i,
            "name": p.name,
            "change": describe_change(p.cfg_file) or ("; ".join(diff) if diff else p.name),
            "keys": "; ".join(diff),
            "status": r.get("status", "pending"),
            "top1": top1,
            "delta": (float(top1) - float(prev_top1)) if top1 is not None and prev_top1 is not None else None,
        }
        if with_paper:
            ref = PAPER_K400_TOP1.get(Path(p.cfg_file).stem)
            entry["paper_top1"] = ref
            entry["paper_delta"] = None
            if ref is not None and prev_paper is not None:
                entry["paper_delta"] = ref - prev_paper[1]
                entry["paper_delta_vs_row"] = prev_paper[0]
            if ref is not None:
                prev_paper = (i, ref)
        table.append(entry)
        prev_cfg, prev_top1 = cfg, top1
    return table


def _num(v, signed: bool = False) -> str:
    if v is None:
        return ""
    return f"{float(v):+.1f}" if signed else f"{float(v):.1f}"


def format_markdown(table: Sequence[Dict[str, object]]) -> str:
    """The table in Markdown, the paper's columns first."""
    paper = any("paper_top1" in e for e in table)
    head = ["row", "change", "top-1", "Δ vs previous row"]
    if paper:
        head += ["paper top-1 (K400)", "paper Δ"]
    head += ["status", "config keys changed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in table:
        cells = [str(e["row"]), str(e["change"]), _num(e["top1"]), _num(e["delta"], signed=True)]
        if paper:
            pd = _num(e.get("paper_delta"), signed=True)
            if pd:
                pd += f" (vs row {e['paper_delta_vs_row']})"
            cells += [_num(e.get("paper_top1")), pd]
        cells += [str(e["status"]), str(e["keys"]).replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_additive(table: Sequence[Dict[str, object]], root: str) -> Tuple[str, str]:
    """``additive.md`` and ``additive.csv`` in ``root``."""
    md, csv_path = os.path.join(root, "additive.md"), os.path.join(root, "additive.csv")
    with open(md, "w") as f:
        f.write(format_markdown(table))
    columns: List[str] = []
    for e in table:
        columns += [k for k in e if k not in columns]
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for e in table:
            w.writerow({k: "" if e.get(k) is None else e.get(k) for k in columns})
    return md, csv_path
