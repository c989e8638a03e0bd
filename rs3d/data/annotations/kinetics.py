"""Kinetics-400/600/700 official CSVs -> rs3d's lists.

``train.csv``, ``validate.csv`` and ``test.csv`` with a header ``label,youtube_id,time_start,time_end,split``
(Kinetics-400 adds ``is_cc``; test files without public labels have no ``label`` column). Labels
are the train file's class names in sorted order (the order of rs3d's Kinetics-400 names); a
validation or test class not among them is an error naming ``file:line``.

A clip is found as ``<youtube_id>_<start:06d>_<end:06d>`` (the name the common download scripts
give it), else as ``<youtube_id>``, with any container, anywhere under the video folder (the
class folder of the label is preferred when a name is found twice). Writes ``train.csv``
(train), ``val.csv`` (validate) and ``test.csv`` (test when it has labels, else validate: a
warning says so, and the summary's ``test`` split names its ``source``) and ``classes.txt``.
"""

from __future__ import annotations

import csv
import logging
import os
from typing import Dict, List, Optional, Tuple

from ...errors import DataError
from .common import Collector, VideoIndex, write_dataset

logger = logging.getLogger(__name__)

_SOURCES = (("train.csv", "train"), ("validate.csv", "val"), ("test.csv", "test"))


def read_csv(path: str) -> Tuple[List[Tuple[int, Dict[str, str]]], bool]:
    """(line number, record) pairs and whether the file has a label column."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or ())
        if not {"youtube_id", "time_start", "time_end"} <= cols:
            raise DataError(
                f"{path}:1: expected a header with youtube_id, time_start, time_end (and label), "
                f"got {reader.fieldnames}"
            )
        rows = [(reader.line_num, row) for row in reader]
    return rows, "label" in cols


def clip_stem(youtube_id: str, start: str, end: str, where: str) -> str:
    """``abc``, ``14``, ``24`` -> ``abc_000014_000024``."""
    try:
        s, e = int(float(start)), int(float(end))
    except ValueError:
        raise DataError(f"{where}: time_start/time_end {start!r}, {end!r} are not numbers") from None
    return f"{youtube_id}_{s:06d}_{e:06d}"


def convert_kinetics(annotations: str, videos: str, out: str, strict: bool = False) -> dict:
    """Write ``out/{train,val,test}.csv`` and ``classes.txt``; returns the summary."""
    files = {split: os.path.join(annotations, name) for name, split in _SOURCES}
    for split in ("train", "val"):
        if not os.path.isfile(files[split]):
            raise DataError(f"{files[split]}: annotation file not found")
    read = {split: read_csv(path) for split, path in files.items() if os.path.isfile(path)}
    if not read["train"][1]:
        raise DataError(f"{files['train']}:1: the training list has no label column")
    classes = sorted({row["label"].strip() for _, row in read["train"][0]})
    lookup = {name: i for i, name in enumerate(classes)}
    index = VideoIndex(videos)
    collector = Collector(index, strict)
    test_source: Optional[str] = "test" if "test" in read and read["test"][1] else None
    if test_source is None:
        why = "has no label column (Kinetics does not publish test labels)" if "test" in read else "does not exist"
        logger.warning(
            "%s %s: test.csv lists the validation videos (%s), where Kinetics results are reported",
            files["test"],
            why,
            os.path.basename(files["val"]),
        )
    plan = [("train", ("train",)), ("val", ("val",) if test_source else ("val", "test"))]
    if test_source:
        plan.append(("test", ("test",)))
    for source, splits in plan:
        path = files[source]
        rows, _ = read[source]
        before = len(collector.split(splits[-1]).missing)
        for lineno, row in rows:
            where = f"{path}:{lineno}"
            name = (row.get("label") or "").strip()
            if name not in lookup:
                raise DataError(
                    f"{where}: class {name!r} is not among the {len(classes)} classes of "
                    f"{os.path.basename(files['train'])}"
                )
            ytid = (row.get("youtube_id") or "").strip()
            if not ytid:
                raise DataError(f"{where}: empty youtube_id")
            stem = clip_stem(ytid, row["time_start"], row["time_end"], where)
            found = index.find(stems=(stem, ytid), parent=name)
            for split in splits:
                collector.add(split, where, found, stem, str(lookup[name]))
        collector.warn_missing(path, before, splits[-1])
    sources = {"test": os.path.basename(files["val"] if test_source is None else files["test"])}
    return write_dataset(out, collector, classes, sources=sources)
