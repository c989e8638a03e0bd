"""Charades' official annotations (``Charades/``) -> rs3d's multi-label lists.

    Charades_v1_classes.txt   ``c000 Holding some clothes``: class id and name, 157 lines
    Charades_v1_train.csv     a header line, then one video per record; the ``actions`` field
    Charades_v1_test.csv        lists ``c092 11.90 21.20;c147 0.00 12.60`` (class, start s, end s)

A video's labels are every class among its actions (video-level labels, as the Charades
classification task scores them); a video with no action is written with ``-`` (no class) so
that it still counts as a negative for every class. An action that is not ``cNNN start end`` with
a known class is an error naming ``file:line``. Writes ``train.csv``, ``val.csv`` and ``test.csv``
(both Charades_v1_test.csv) and ``classes.txt``; train with ``DATA.MULTI_LABEL True``. Videos are
``VIDEOS/<id>.mp4`` (``Charades_v1_480/``).
"""

from __future__ import annotations

import csv
import os
import re
from typing import Iterator, List, Optional, Tuple

from ...errors import DataError
from .common import Collector, VideoIndex, label_field, read_lines, write_dataset

_ACTION = re.compile(r"^(c\d{3})\s+(\d+(?:\.\d*)?)\s+(\d+(?:\.\d*)?)$")


def read_classes(path: str) -> Tuple[List[str], List[str]]:
    """Charades_v1_classes.txt -> (class ids, names) in label order."""
    ids, names = [], []
    for lineno, text in read_lines(path):
        cid, _, name = text.partition(" ")
        if not re.match(r"^c\d{3}$", cid) or not name.strip():
            raise DataError(f"{path}:{lineno}: expected 'cNNN <class name>', got {text!r}")
        ids.append(cid)
        names.append(name.strip())
    if not ids:
        raise DataError(f"{path}: no classes listed")
    return ids, names


def parse_actions(field: str, lookup: dict, where: str) -> List[int]:
    """``c092 11.90 21.20;c147 0.00 12.60`` -> sorted distinct label indices."""
    labels = set()
    for item in filter(None, (x.strip() for x in field.split(";"))):
        m = _ACTION.match(item)
        if not m:
            raise DataError(f"{where}: action {item!r} is not 'cNNN start end' (actions field {field!r})")
        if m.group(1) not in lookup:
            raise DataError(f"{where}: class {m.group(1)} is not in Charades_v1_classes.txt")
        labels.add(lookup[m.group(1)])
    return sorted(labels)


def read_rows(path: str) -> Iterator[Tuple[str, str, Optional[str]]]:
    """``(where, video id, actions field or None)`` of each row of a Charades annotation CSV
    (``where`` = ``path:line``); DataError for a file without the ``id`` and ``actions`` columns."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"id", "actions"} <= set(reader.fieldnames):
            raise DataError(f"{path}:1: expected a header with 'id' and 'actions' columns, got {reader.fieldnames}")
        for row in reader:
            yield f"{path}:{reader.line_num}", (row.get("id") or "").strip(), row.get("actions")


def convert_charades(annotations: str, videos: str, out: str, strict: bool = False) -> dict:
    """Write ``out/{train,val,test}.csv`` (multi-label) and ``classes.txt``; returns the summary."""
    ids, names = read_classes(os.path.join(annotations, "Charades_v1_classes.txt"))
    lookup = {cid: i for i, cid in enumerate(ids)}
    index = VideoIndex(videos)
    collector = Collector(index, strict)
    for source, splits in (("Charades_v1_train.csv", ("train",)), ("Charades_v1_test.csv", ("val", "test"))):
        path = os.path.join(annotations, source)
        if not os.path.isfile(path):
            raise DataError(f"{path}: annotation file not found")
        before = len(collector.split(splits[-1]).missing)
        for where, vid, actions in read_rows(path):
            if not vid or actions is None:
                raise DataError(f"{where}: a record without an id or actions field")
            label = label_field(parse_actions(actions, lookup, where))
            found = index.find(f"{vid}.mp4", stems=(vid,))
            for split in splits:
                collector.add(split, where, found, f"{vid}.mp4", label)
        collector.warn_missing(path, before, splits[-1])
    return write_dataset(out, collector, names)
