"""``rs3d-manifest diff A B``: how two manifests differ, per split, by key.

A key in B only is *added*, in A only *removed*; a key in both with another label is
*relabelled*, with the same label but another content digest *changed*. Digests are compared only
between manifests of one digest kind (fast with fast, full with full). ``intersection`` keeps the
videos both hold with the same label and content: the set two copies can be compared on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

from ..errors import DataError
from .table import Manifest, write_manifest

KINDS = ("added", "removed", "relabelled", "changed")


@dataclass
class SplitDiff:
    added: List[str] = field(default_factory=list)
    removed: List[str] = field(default_factory=list)
    relabelled: List[str] = field(default_factory=list)
    changed: List[str] = field(default_factory=list)
    same: int = 0

    @property
    def identical(self) -> bool:
        return not any(getattr(self, k) for k in KINDS)

    def counts(self) -> dict:
        return {k: len(getattr(self, k)) for k in KINDS} | {"same": self.same}


def _by_key(rows: List[dict]) -> Dict[str, List[dict]]:
    out: Dict[str, List[dict]] = {}
    for r in rows:
        out.setdefault(r["key"], []).append(r)
    return out


def _check_kinds(a: Manifest, b: Manifest) -> None:
    if a.digest and b.digest and a.digest != b.digest:
        raise DataError(
            f"{a.source} has {a.digest} digests and {b.source} {b.digest} ones; build both "
            "with the same kind (--full or not) to compare contents"
        )


def diff_rows(a: List[dict], b: List[dict]) -> SplitDiff:
    """The difference of one split (a key listed twice compares as the set of its rows)."""
    ka, kb = _by_key(a), _by_key(b)
    d = SplitDiff()
    d.removed = sorted(set(ka) - set(kb))
    d.added = sorted(set(kb) - set(ka))
    for key in sorted(set(ka) & set(kb)):
        labels_a = sorted(r["label"] for r in ka[key])
        labels_b = sorted(r["label"] for r in kb[key])
        if labels_a != labels_b:
            d.relabelled.append(key)
        elif sorted(r["digest"] for r in ka[key]) != sorted(r["digest"] for r in kb[key]):
            d.changed.append(key)
        else:
            d.same += 1
    return d


def diff_manifests(a: Manifest, b: Manifest) -> Dict[str, SplitDiff]:
    """``{split: SplitDiff}`` over the splits of either (a split one lacks: all added or removed)."""
    _check_kinds(a, b)
    return {s: diff_rows(a.splits.get(s, []), b.splits.get(s, [])) for s in sorted(set(a.splits) | set(b.splits))}


def write_intersection(a: Manifest, b: Manifest, out_dir: str) -> dict:
    """Write the videos of ``a`` that ``b`` holds with the same label and content, per split both
    have, as a manifest; returns its summary."""
    _check_kinds(a, b)
    splits = {}
    for s in sorted(set(a.splits) & set(b.splits)):
        same = {(r["key"], r["label"], r["digest"]) for r in b.splits[s]}
        splits[s] = [r for r in a.splits[s] if (r["key"], r["label"], r["digest"]) in same]
    info = {"digest": a.digest, "intersection_of": [a.source, b.source], "classes": a.summary.get("classes")}
    return write_manifest(out_dir, splits, info)
