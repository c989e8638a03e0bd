"""UCF101's official split files (``ucfTrainTestlist/``) -> rs3d's lists, one folder per split.

    classInd.txt      ``1 ApplyEyeMakeup``: 1-based class index and name, one class a line
    trainlist0N.txt   ``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``: video and its class index
    testlist0N.txt    ``ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi``: video only

A video's class is its folder's (the first path component), looked up in classInd.txt; a
trainlist index that disagrees is an error naming ``file:line``. Writes ``OUT/splitN/`` with
``train.csv`` (trainlist0N), ``val.csv`` and ``test.csv`` (both testlist0N: UCF101 has no separate
validation set, and results are reported on the test list) and ``classes.txt`` (0-based labels in
classInd order). Videos are looked up under the folder of the official ``UCF-101`` archive.
"""

from __future__ import annotations

import os
from typing import Dict, List, Sequence

from ...errors import DataError
from .common import Collector, VideoIndex, read_lines, write_official_splits


def read_class_index(path: str) -> List[str]:
    """classInd.txt -> class names in label order (its indices must run 1..N)."""
    names: List[str] = []
    for lineno, text in read_lines(path):
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{path}:{lineno}: expected '<index> <class name>', got {text!r}")
        if int(parts[0]) != len(names) + 1:
            raise DataError(f"{path}:{lineno}: class index {parts[0]} out of order (expected {len(names) + 1})")
        names.append(parts[1])
    if not names:
        raise DataError(f"{path}: no classes listed")
    return names


def class_of(video: str, lookup: Dict[str, int], where: str) -> int:
    folder = video.replace("\\", "/").split("/")[0]
    if folder in lookup:
        return lookup[folder]
    lower = {k.lower(): v for k, v in lookup.items()}
    if folder.lower() in lower:  # the official lists spell "HandStandPushups" both ways
        return lower[folder.lower()]
    raise DataError(f"{where}: class folder {folder!r} of {video} is not in classInd.txt")


def convert_ucf101(
    annotations: str, videos: str, out: str, splits: Sequence[int] = (1, 2, 3), strict: bool = False
) -> dict:
    """Write ``out/split{N}/`` for every N in ``splits``; returns ``{"split1": summary, ...}``."""
    classes = read_class_index(os.path.join(annotations, "classInd.txt"))
    lookup = {name: i for i, name in enumerate(classes)}
    for n in splits:  # every file of every split asked for, before any is read or written
        for name in (f"trainlist0{n}.txt", f"testlist0{n}.txt"):
            if not os.path.isfile(os.path.join(annotations, name)):
                raise DataError(
                    f"{os.path.join(annotations, name)}: annotation file not found (split {n}; "
                    f"--splits chooses the splits to write)"
                )
    index = VideoIndex(videos)
    collectors = {}
    for n in splits:
        collector = collectors[n] = Collector(index, strict)
        train = os.path.join(annotations, f"trainlist0{n}.txt")
        for lineno, text in read_lines(train):
            where = f"{train}:{lineno}"
            parts = text.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise DataError(f"{where}: expected '<class>/<video> <class index>', got {text!r}")
            label = class_of(parts[0], lookup, where)
            if int(parts[1]) != label + 1:
                raise DataError(
                    f"{where}: class index {parts[1]} but {parts[0]} is in folder "
                    f"{classes[label]!r} (index {label + 1} in classInd.txt)"
                )
            collector.add("train", where, index.find(parts[0]), parts[0], str(label))
        collector.warn_missing(train, 0, "train")
        test = os.path.join(annotations, f"testlist0{n}.txt")
        for lineno, text in read_lines(test):
            where = f"{test}:{lineno}"
            parts = text.split()
            if len(parts) != 1:
                raise DataError(f"{where}: expected '<class>/<video>', got {text!r}")
            label = class_of(parts[0], lookup, where)
            found = index.find(parts[0])
            for split in ("val", "test"):
                collector.add(split, where, found, parts[0], str(label))
        collector.warn_missing(test, 0, "test")
    return write_official_splits(out, collectors, classes)
