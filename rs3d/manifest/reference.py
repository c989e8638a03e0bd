"""Official annotation files as reference entries, read with the converters' own readers.

One file (or, for HMDB51, a folder of its split files) is read as a list of entries: the split it
belongs to (``train``, ``val``, ``test``; Kinetics' ``validate`` is ``val``), the names the video
may have in a copy, its class name, and the ``file:line`` it comes from. The format is told from
the file's name and header:

    Kinetics   train.csv / validate.csv / test.csv   header youtube_id,time_start,time_end[,label,split]
    UCF101     trainlist0N.txt / testlist0N.txt      class from the video's folder (classInd.txt beside)
    HMDB51     <class>_test_splitN.txt (or their folder; --fold picks N)   id 1 train, 2 test
    SSv2       train.json / validation.json          class from the template (labels.json beside)
    Charades   Charades_v1_train.csv / _test.csv      classes from the actions (Charades_v1_classes.txt)
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ..data.annotations import charades, hmdb51, kinetics, ssv2, ucf101
from ..data.annotations.common import read_lines
from ..errors import DataError
from .keys import kinetics_key


@dataclass(frozen=True)
class Entry:
    split: str
    keys: Tuple[str, ...]  # keys the video has in a manifest, best first
    stems: Tuple[str, ...]  # file names without extension it may have in a copy
    label: Optional[str]  # class name(s) joined by "|"; None where the file gives no label
    where: str  # file:line


_SPLIT_NAMES = {"validate": "val", "validation": "val", "valid": "val", "training": "train", "testing": "test"}


def _split_name(text: str) -> str:
    t = text.strip().lower()
    return _SPLIT_NAMES.get(t, t)


def _split_from_name(path: str, default: str) -> str:
    name = os.path.basename(path).lower()
    for word, split in (("train", "train"), ("validat", "val"), ("val", "val"), ("test", "test")):
        if word in name:
            return split
    return default


def read_kinetics(path: str) -> List[Entry]:
    rows, _ = kinetics.read_csv(path)
    out = []
    for lineno, row in rows:
        where = f"{path}:{lineno}"
        ytid = (row.get("youtube_id") or "").strip()
        if not ytid:
            raise DataError(f"{where}: empty youtube_id")
        stem = kinetics.clip_stem(ytid, row["time_start"], row["time_end"], where)
        split = _split_name(row["split"]) if row.get("split") else _split_from_name(path, "train")
        label = (row.get("label") or "").strip() or None
        out.append(Entry(split, (kinetics_key(stem) or stem,), (stem, ytid), label, where))
    return out


def read_ucf101(path: str) -> List[Entry]:
    ind = os.path.join(os.path.dirname(path), "classInd.txt")
    classes = ucf101.read_class_index(ind) if os.path.isfile(ind) else None
    lookup = {name: i for i, name in enumerate(classes)} if classes else None
    split = "train" if "train" in os.path.basename(path).lower() else "test"
    out = []
    for lineno, text in read_lines(path):
        where = f"{path}:{lineno}"
        video = text.split()[0].replace("\\", "/")
        if lookup is not None:
            label = classes[ucf101.class_of(video, lookup, where)]
        else:
            label = video.split("/")[0] if "/" in video else None
        out.append(Entry(split, (video,), (os.path.splitext(os.path.basename(video))[0],), label, where))
    return out


def read_hmdb51(path: str, fold: int = 1) -> List[Entry]:
    if os.path.isdir(path):
        files = hmdb51.split_files(path)
        if fold not in files:
            raise DataError(f"{path}: no *_test_split{fold}.txt files")
        paths = [files[fold][c] for c in sorted(files[fold])]
    else:
        paths = [path]
    out = []
    for p in paths:
        m = hmdb51.SPLIT_FILE.match(os.path.basename(p))
        if not m:
            raise DataError(f"{p}: not an HMDB51 split file (<class>_test_split<N>.txt)")
        cls = m.group("cls")
        for lineno, text in read_lines(p):
            parts = text.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DataError(f"{p}:{lineno}: expected '<video> <0|1|2>', got {text!r}")
            if parts[1] == "0":
                continue
            out.append(
                Entry(
                    "train" if parts[1] == "1" else "test",
                    (f"{cls}/{parts[0]}",),
                    (os.path.splitext(parts[0])[0],),
                    cls,
                    f"{p}:{lineno}",
                )
            )
    return out


def read_ssv2(path: str) -> List[Entry]:
    entries = ssv2.read_json(path)
    if not isinstance(entries, list):
        raise DataError(f"{path}: expected a list of videos")
    split = _split_from_name(path, "train")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "id" not in entry:
            raise DataError(f"{path}: entry {i}: expected an object with 'id', got {str(entry)[:80]}")
        vid = str(entry["id"])
        label = ssv2.template_class(str(entry["template"])) if "template" in entry else None
        out.append(Entry(split, (f"{vid}.webm", vid), (vid,), label, f"{path}: entry {i}"))
    return out


def read_charades(path: str) -> List[Entry]:
    classes_file = os.path.join(os.path.dirname(path), "Charades_v1_classes.txt")
    ids, names = charades.read_classes(classes_file) if os.path.isfile(classes_file) else ([], [])
    lookup = {cid: i for i, cid in enumerate(ids)}
    split = _split_from_name(path, "train")
    out = []
    for where, vid, actions in charades.read_rows(path):
        label = None
        if lookup:
            found = charades.parse_actions(actions or "", lookup, where)
            label = "|".join(names[i] for i in found) or "-"
        out.append(Entry(split, (f"{vid}.mp4", vid), (vid,), label, where))
    return out


def _csv_header(path: str) -> List[str]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return next(csv.reader(f), [])


def read_reference(path: str, fold: int = 1) -> Tuple[str, List[Entry]]:
    """``(dataset name, entries)`` of an official annotation file (see the module docstring)."""
    if not os.path.exists(path):
        raise DataError(f"{path}: reference file not found")
    name = os.path.basename(path.rstrip("/"))
    if os.path.isdir(path) or re.match(r".+_test_split\d+\.txt$", name):
        return "hmdb51", read_hmdb51(path, fold)
    if re.match(r"(train|test)list\d+\.txt$", name, re.I):
        return "ucf101", read_ucf101(path)
    if name.endswith(".json"):
        return "ssv2", read_ssv2(path)
    if name.endswith(".csv"):
        header = set(_csv_header(path))
        if {"youtube_id", "time_start", "time_end"} <= header:
            return "kinetics", read_kinetics(path)
        if {"id", "actions"} <= header:
            return "charades", read_charades(path)
    raise DataError(
        f"{path}: not an annotation file rs3d knows (Kinetics train/validate/test CSV, UCF101 "
        "train/testlist, HMDB51 split files, SSv2 train/validation JSON, Charades CSV)"
    )
