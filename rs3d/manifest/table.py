"""The manifest folder: one gzip CSV per split and a summary.

    manifest.json     format, digest kind, classes, and per split: file, fingerprint, counts
    {split}.csv.gz    one row per listed video, sorted by key (then path), columns ``FIELDS``

The split files are byte-for-byte the same for the same data (rows sorted, gzip without a time
stamp), so two builds can be compared with ``cmp`` as well as with ``rs3d-manifest diff``;
``manifest.json`` adds the folders the build read, and no dates.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..errors import DataError
from .fingerprint import fingerprint

FORMAT = "rs3d-manifest/1"
SUMMARY = "manifest.json"
SUFFIX = ".csv.gz"
FIELDS = (
    "key",
    "path",
    "label",
    "label_index",
    "bytes",
    "digest",
    "decodable",
    "reason",
    "width",
    "height",
    "fps",
    "duration",
    "frames",
    "frames_exact",
)
_INTS = ("bytes", "width", "height", "frames")
_FLOATS = ("fps", "duration")
_BOOLS = ("decodable", "frames_exact")


@dataclass
class Manifest:
    """A manifest read back: the summary and the rows of each split."""

    source: str
    summary: dict
    splits: Dict[str, List[dict]] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.summary.get("digest", "")


def _cell(row: dict, name: str) -> str:
    value = row.get(name, "")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def sort_rows(rows: List[dict]) -> List[dict]:
    return sorted(rows, key=lambda r: (r["key"], r["path"]))


def split_fingerprint(rows: List[dict]) -> str:
    return fingerprint((r["key"], r["label"], r["digest"]) for r in rows)


def split_summary(name: str, rows: List[dict]) -> dict:
    keys = [r["key"] for r in rows]
    return {
        "file": name + SUFFIX,
        "fingerprint": split_fingerprint(rows),
        "videos": len(rows),
        "decodable": sum(1 for r in rows if r["decodable"]),
        "undecodable": sum(1 for r in rows if not r["decodable"] and r["reason"] != "file not found"),
        "missing": sum(1 for r in rows if r["reason"] == "file not found"),
        "bytes": sum(int(r["bytes"] or 0) for r in rows),
        "duplicate_keys": len(keys) - len(set(keys)),
    }


def write_split(path: str, rows: List[dict]) -> None:
    """Rows (sorted here) as a reproducible gzip CSV, written atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FIELDS)
    for r in sort_rows(rows):
        w.writerow([_cell(r, f) for f in FIELDS])
    tmp = path + ".tmp"
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buf.getvalue().encode("utf-8"))
    os.replace(tmp, path)


def write_manifest(out_dir: str, splits: Dict[str, List[dict]], info: dict) -> dict:
    """Write every split and ``manifest.json`` (``info`` + per-split summaries); returns the summary."""
    os.makedirs(out_dir, exist_ok=True)
    summary = {"format": FORMAT, **info, "splits": {}}
    for name in sorted(splits):
        write_split(os.path.join(out_dir, name + SUFFIX), splits[name])
        summary["splits"][name] = split_summary(name, splits[name])
    tmp = os.path.join(out_dir, SUMMARY + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, os.path.join(out_dir, SUMMARY))
    return summary


def _typed(row: dict, where: str) -> dict:
    try:
        for k in _INTS:
            row[k] = int(row[k]) if row[k] != "" else 0
        for k in _FLOATS:
            row[k] = float(row[k]) if row[k] != "" else 0.0
        for k in _BOOLS:
            row[k] = row[k] == "1"
    except (KeyError, ValueError) as e:
        raise DataError(f"{where}: not a manifest row ({e})") from None
    return row


def read_split(path: str) -> List[dict]:
    """The rows of one ``{split}.csv.gz`` (``DataError`` naming the file for anything else)."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: manifest file not found")
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = set(FIELDS) - set(reader.fieldnames or ())
            if missing:
                raise DataError(f"{path}:1: not an rs3d manifest (columns {sorted(missing)} missing)")
            return [_typed(row, f"{path}:{reader.line_num}") for row in reader]
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read as a gzip CSV manifest ({e})") from None


def read_manifest(path: str) -> Manifest:
    """A manifest folder (``manifest.json`` + splits), or one ``{split}.csv.gz`` file as that split."""
    if os.path.isfile(path) and path.endswith(SUFFIX):
        name = os.path.basename(path)[: -len(SUFFIX)]
        rows = read_split(path)
        digests = {r["digest"].partition(":")[0] for r in rows if r["digest"]}
        summary = {
            "format": FORMAT,
            "digest": digests.pop() if len(digests) == 1 else "",
            "splits": {name: split_summary(name, rows)},
        }
        return Manifest(path, summary, {name: rows})
    summary_path = os.path.join(path, SUMMARY)
    if not os.path.isfile(summary_path):
        raise DataError(f"{path}: not a manifest folder ({SUMMARY} not found) nor a *{SUFFIX} file")
    try:
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{summary_path}:{e.lineno}: invalid JSON ({e.msg})") from None
    if summary.get("format") != FORMAT:
        raise DataError(f"{summary_path}: format {summary.get('format')!r}, expected {FORMAT!r}")
    splits = {name: read_split(os.path.join(path, s["file"])) for name, s in summary["splits"].items()}
    return Manifest(path, summary, splits)


def pick_split(manifest: Manifest, split: Optional[str]) -> List[dict]:
    """The rows of ``split``, or of the only split; ``DataError`` naming what there is otherwise."""
    names = sorted(manifest.splits)
    if split is None:
        if len(names) != 1:
            raise DataError(f"{manifest.source}: holds splits {names}; say which one")
        return manifest.splits[names[0]]
    if split not in manifest.splits:
        raise DataError(f"{manifest.source}: no split {split!r} (it holds {names})")
    return manifest.splits[split]
