"""``rs3d-manifest coverage``: how much of an official list a copy holds, per split and class.

Each reference entry is looked up in the manifest split of the same name (all splits when the
manifest has no such split, or the one ``split`` names): by key first, then by file name without
extension (a copy re-encoded to another container, or named by YouTube id only). A found video
whose class differs from the reference's is a label disagreement (names compared ignoring case
and ``_`` versus space; not compared when the manifest has only class indices); a found video
the probe could not decode is counted as found and listed as undecodable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .reference import Entry
from .table import Manifest


@dataclass
class SplitCoverage:
    reference: int = 0
    found: int = 0
    missing: List[Entry] = field(default_factory=list)
    disagreements: List[Tuple[Entry, dict]] = field(default_factory=list)
    undecodable: List[Tuple[Entry, dict]] = field(default_factory=list)
    per_class: Dict[str, List[int]] = field(default_factory=dict)  # class -> [reference, found]
    compared_against: str = ""

    def counts(self) -> dict:
        return {
            "reference": self.reference,
            "found": self.found,
            "missing": len(self.missing),
            "coverage_percent": round(100.0 * self.found / self.reference, 3) if self.reference else 0.0,
            "label_disagreements": len(self.disagreements),
            "undecodable": len(self.undecodable),
            "compared_against": self.compared_against,
        }


def _norm(label: str) -> str:
    return " ".join(label.replace("_", " ").lower().split())


class _Lookup:
    def __init__(self, rows: Sequence[dict]):
        self.by_key: Dict[str, dict] = {}
        self.by_stem: Dict[str, dict] = {}
        for r in rows:
            self.by_key.setdefault(r["key"], r)
            self.by_stem.setdefault(os.path.splitext(os.path.basename(r["path"]))[0], r)

    def find(self, e: Entry) -> Optional[dict]:
        for k in e.keys:
            if k in self.by_key:
                return self.by_key[k]
        for s in e.stems:
            if s in self.by_stem:
                return self.by_stem[s]
        return None


def coverage(manifest: Manifest, entries: Sequence[Entry], split: Optional[str] = None) -> Dict[str, SplitCoverage]:
    """``{reference split: SplitCoverage}``; ``split`` forces the manifest split compared against."""
    names_known = bool(manifest.summary.get("classes"))
    lookups: Dict[str, _Lookup] = {}
    out: Dict[str, SplitCoverage] = {}
    for e in entries:
        target = split or (e.split if e.split in manifest.splits else "")
        if target not in lookups:
            rows = (
                manifest.splits[target] if target else [r for s in sorted(manifest.splits) for r in manifest.splits[s]]
            )
            lookups[target] = _Lookup(rows)
        cov = out.setdefault(e.split, SplitCoverage(compared_against=target or "all splits"))
        cov.reference += 1
        cls = cov.per_class.setdefault(e.label or "(no label)", [0, 0])
        cls[0] += 1
        row = lookups[target].find(e)
        if row is None:
            cov.missing.append(e)
            continue
        cov.found += 1
        cls[1] += 1
        if names_known and e.label is not None and _norm(row["label"]) != _norm(e.label):
            cov.disagreements.append((e, row))
        if not row["decodable"]:
            cov.undecodable.append((e, row))
    return out


def report(result: Dict[str, SplitCoverage]) -> dict:
    """The JSON summary: counts per split and, per split, ``{class: [reference, found]}``."""
    return {
        "splits": {s: c.counts() for s, c in sorted(result.items())},
        "per_class": {s: dict(sorted(c.per_class.items())) for s, c in sorted(result.items())},
    }


def missing_lines(result: Dict[str, SplitCoverage]) -> List[str]:
    """TSV lines: split, first key, class, file:line of each missing entry."""
    return [f"{s}\t{e.keys[0]}\t{e.label or ''}\t{e.where}" for s, c in sorted(result.items()) for e in c.missing]


def disagreement_lines(result: Dict[str, SplitCoverage]) -> List[str]:
    """TSV lines: split, key, reference class, the copy's class, file:line."""
    return [
        f"{s}\t{row['key']}\t{e.label}\t{row['label']}\t{e.where}"
        for s, c in sorted(result.items())
        for e, row in c.disagreements
    ]


def undecodable_lines(result: Dict[str, SplitCoverage]) -> List[str]:
    """TSV lines: split, key, path in the copy, reason."""
    return [
        f"{s}\t{row['key']}\t{row['path']}\t{row['reason']}"
        for s, c in sorted(result.items())
        for _, row in c.undecodable
    ]


def plot_per_class(result: Dict[str, SplitCoverage], path: str, worst: int = 10) -> None:
    """One panel per reference split: each class's coverage (%), classes sorted from the least
    covered; the ``worst`` classes are named (every class when there are at most 40)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = sorted(result)
    fig, axes = plt.subplots(len(splits), 1, figsize=(10, 3.6 * len(splits)), squeeze=False)
    for ax, s in zip(axes[:, 0], splits):
        items = sorted(((100.0 * f / r if r else 0.0), name) for name, (r, f) in result[s].per_class.items())
        values = [v for v, _ in items]
        bars = ax.bar(range(len(items)), values, width=1.0 if len(items) > 40 else 0.8, color="tab:blue")
        if len(items) <= 40:
            counts = result[s].per_class
            ax.bar_label(bars, [f"{counts[n][1]}/{counts[n][0]}" for _, n in items], fontsize=7)
        ax.set_ylim(0, 105)
        ax.set_ylabel("coverage (%)")
        c = result[s].counts()
        ax.set_title(
            f"{s}: {c['found']} of {c['reference']} reference videos ({c['coverage_percent']:.2f}%), "
            f"{len(items)} classes"
        )
        if len(items) <= 40:
            ax.set_xticks(range(len(items)))
            ax.set_xticklabels([n for _, n in items], rotation=90, fontsize=7)
        else:
            ax.set_xticks([])
            ax.set_xlabel("classes, least covered first")
            text = "\n".join(f"{v:.1f}%  {n}" for v, n in items[:worst])
            ax.text(
                1.01, 1.0, f"least covered:\n{text}", transform=ax.transAxes, fontsize=7, va="top", family="monospace"
            )
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
