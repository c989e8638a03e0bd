"""What every converter shares: finding the listed videos, and writing rs3d's lists.

Output (``write_dataset``): ``{split}.csv`` with one ``path label`` line per video (the path
relative to the video folder; multi-label lists write ``path 3,17,42`` or ``path -``),
``video_root.txt`` naming that folder (absolute, then relative to the output folder: the lists
survive a move of the output folder alone or of both together; ``rs3d.data.video_root``),
``classes.txt`` (line i = the name of label i), and, when videos were missing,
``missing_videos.tsv`` (``split``, ``source`` = ``file:line`` of the annotation, ``video``; one
row per annotation line, its splits joined by commas when one line feeds several).
Everything is checked before anything is written: a converter that fails writes nothing.

A listed video that is not under the video folder is skipped and counted (Kinetics downloads
always miss some); one warning per annotation file gives the count and the first ``file:line``.
``strict=True`` makes the first missing video a ``DataError`` naming that ``file:line`` instead.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ...errors import DataError
from ...file_io import atomic_write_text
from ..video_root import VIDEO_ROOT_FILE, video_root_lines

logger = logging.getLogger(__name__)

# Files the index treats as videos (a frame folder is found as a directory instead).
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".flv", ".mpg", ".mpeg", ".3gp", ".wmv", ".ogv"}
)


class VideoIndex:
    """Finds an annotation's video under ``root``: at the official relative path first, else by
    its name without extension anywhere below ``root`` (re-encoded to another container, a flat
    folder, a frame folder). The tree is walked once, and only if an official path is missing."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        if not os.path.isdir(self.root):
            raise DataError(f"{root}: video folder not found")
        self._by_stem: Optional[Dict[str, List[str]]] = None

    def _index(self) -> Dict[str, List[str]]:
        if self._by_stem is None:
            found: Dict[str, List[str]] = {}
            for dirpath, dirnames, filenames in os.walk(self.root):
                dirnames.sort()
                for name in sorted(filenames):
                    stem, ext = os.path.splitext(name)
                    if ext.lower() in VIDEO_EXTENSIONS:
                        found.setdefault(stem, []).append(os.path.join(dirpath, name))
                for name in dirnames:  # frame folders, after any video file of the same name
                    found.setdefault(name, []).append(os.path.join(dirpath, name))
            self._by_stem = found
        return self._by_stem

    def find(self, relative: str = "", stems: Sequence[str] = (), parent: str = "") -> Optional[str]:
        """Absolute path of the video, or None.

        ``relative``: its official path under ``root``; ``stems``: names without extension to look
        for (default: ``relative``'s); ``parent``: the folder name preferred among several matches.
        """
        if relative:
            exact = os.path.join(self.root, relative)
            if os.path.exists(exact):
                return exact
            stems = stems or (Path(relative).stem,)
            parent = parent or Path(relative).parent.name
        index = self._index()
        for stem in stems:
            candidates = index.get(stem)
            if candidates:
                for c in candidates:
                    if parent and os.path.basename(os.path.dirname(c)) == parent:
                        return c
                return candidates[0]
        return None


@dataclass
class Split:
    """One output list being collected from one or more annotation files."""

    name: str
    rows: List[Tuple[str, str]] = field(default_factory=list)  # (absolute video path, label field)
    missing: List[Tuple[str, str]] = field(default_factory=list)  # (file:line, video)


class Collector:
    """Rows of every split, the missing videos, and the strict/lenient policy for them."""

    def __init__(self, videos: VideoIndex, strict: bool = False):
        self.videos, self.strict = videos, strict
        self.splits: Dict[str, Split] = {}

    def split(self, name: str) -> Split:
        return self.splits.setdefault(name, Split(name))

    def add(self, split: str, where: str, video: Optional[str], wanted: str, label: str) -> None:
        """Record ``wanted`` (found at ``video``, or None) with ``label``, listed at ``where``."""
        s = self.split(split)
        if video is None:
            if self.strict:
                raise DataError(f"{where}: {wanted} not found under {self.videos.root}")
            s.missing.append((where, wanted))
            return
        s.rows.append((video, label))

    def warn_missing(self, source: str, before: int, split: str) -> None:
        """One warning for the videos of ``source`` missing since ``before`` missing ones."""
        missing = self.split(split).missing[before:]
        if missing:
            logger.warning(
                "%s: %d listed video(s) not found under %s (first %s: %s); skipped, listed in missing_videos.tsv",
                source,
                len(missing),
                self.videos.root,
                missing[0][0],
                missing[0][1],
            )


def _write_atomic(path: str, lines: Iterable[str]) -> None:
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def label_field(classes: Sequence[int]) -> str:
    """A multi-label field: ``3,17,42``, or ``-`` for none."""
    return ",".join(str(c) for c in sorted(set(classes))) if classes else "-"


def check_dataset(collector: Collector, classes: Sequence[str]) -> None:
    """What ``write_dataset`` would refuse, raised before anything is written."""
    for i, name in enumerate(classes, start=1):
        if not name.strip() or "\n" in name:
            raise DataError(f"class {i} has an empty or multi-line name {name!r}")
    for name, s in collector.splits.items():
        if not s.rows:
            raise DataError(
                f"{name} split: none of its {len(s.missing)} listed videos was found under "
                f"{collector.videos.root} (first: {s.missing[0][0]}: {s.missing[0][1]})"
                if s.missing
                else f"{name} split: no videos listed"
            )


def write_dataset(
    out_dir: str,
    collector: Collector,
    classes: Sequence[str],
    order: Sequence[str] = ("train", "val", "test"),
    sources: Optional[Dict[str, str]] = None,
) -> dict:
    """Check, then write the splits, ``video_root.txt``, ``classes.txt`` and ``missing_videos.tsv``;
    returns a summary dict ``{"out": dir, "video_root": folder, "classes": K, "splits": {name:
    {"videos": n, "missing": m[, "source": file]}}}`` (``sources``: the annotation file of a split,
    where it is not the obvious one)."""
    check_dataset(collector, classes)
    root = collector.videos.root
    os.makedirs(out_dir, exist_ok=True)
    _write_atomic(os.path.join(out_dir, "classes.txt"), classes)
    _write_atomic(os.path.join(out_dir, VIDEO_ROOT_FILE), video_root_lines(root, out_dir))
    summary = {"out": out_dir, "video_root": root, "classes": len(classes), "splits": {}}
    missing: Dict[Tuple[str, str], List[str]] = {}  # (file:line, video) -> splits, in order
    for name in list(order) + [n for n in collector.splits if n not in order]:
        s = collector.splits.get(name)
        if s is None:
            continue
        _write_atomic(
            os.path.join(out_dir, f"{name}.csv"), (f"{os.path.relpath(path, root)} {label}" for path, label in s.rows)
        )
        for where, video in s.missing:
            missing.setdefault((where, video), []).append(name)
        summary["splits"][name] = {"videos": len(s.rows), "missing": len(s.missing)}
        if sources and name in sources:
            summary["splits"][name]["source"] = sources[name]
    report = os.path.join(out_dir, "missing_videos.tsv")
    if missing:
        _write_atomic(
            report,
            ["split\tsource\tvideo"]
            + [f"{','.join(splits)}\t{where}\t{video}" for (where, video), splits in missing.items()],
        )
    elif os.path.exists(report):
        os.remove(report)  # from an earlier run with fewer videos
    return summary


def write_official_splits(out: str, collectors: Dict[int, Collector], classes: Sequence[str]) -> dict:
    """``out/split{N}/`` for each official split (UCF101, HMDB51), every split checked before any
    is written; returns ``{"split1": summary, ...}``."""
    for collector in collectors.values():
        check_dataset(collector, classes)
    return {f"split{n}": write_dataset(os.path.join(out, f"split{n}"), c, classes) for n, c in collectors.items()}


def read_lines(path: str) -> List[Tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines of a text annotation file."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: annotation file not found")
    out = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{lineno}: not UTF-8 text ({e.reason} at byte {e.start})") from None
            if text:
                out.append((lineno, text))
    return out
