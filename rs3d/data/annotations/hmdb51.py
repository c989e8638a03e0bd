"""HMDB51's official split files (``testTrainMulti_7030_splits/``) -> rs3d's lists, one folder per split.

One file per class and split, ``<class>_test_split<N>.txt``, one ``<video>.avi <id>`` line per
video of the class: id 1 = training, 2 = testing, 0 = not used in that split. Labels are the
class names in sorted order (51 classes). Writes ``OUT/splitN/`` with ``train.csv`` (id 1),
``val.csv`` and ``test.csv`` (both id 2; HMDB51 has no separate validation set) and
``classes.txt``. Videos are looked up as ``VIDEOS/<class>/<video>`` (the official archive's layout).
"""

from __future__ import annotations

import os
import re
from typing import Dict, Sequence

from ...errors import DataError
from .common import Collector, VideoIndex, read_lines, write_official_splits

SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<n>\d+)\.txt$")


def split_files(annotations: str) -> Dict[int, Dict[str, str]]:
    """{split number: {class: file}} of the split files in ``annotations``."""
    if not os.path.isdir(annotations):
        raise DataError(f"{annotations}: folder of HMDB51 split files not found")
    found: Dict[int, Dict[str, str]] = {}
    for name in sorted(os.listdir(annotations)):
        m = SPLIT_FILE.match(name)
        if m:
            found.setdefault(int(m.group("n")), {})[m.group("cls")] = os.path.join(annotations, name)
    if not found:
        raise DataError(f"{annotations}: no <class>_test_split<N>.txt files")
    return found


def convert_hmdb51(
    annotations: str, videos: str, out: str, splits: Sequence[int] = (1, 2, 3), strict: bool = False
) -> dict:
    """Write ``out/split{N}/`` for every N in ``splits``; returns ``{"split1": summary, ...}``."""
    files = split_files(annotations)
    classes = sorted(files[min(files)])
    for n in splits:
        if n not in files:
            raise DataError(f"{annotations}: no *_test_split{n}.txt files")
        if sorted(files[n]) != classes:
            other = sorted(set(files[n]) ^ set(classes))
            raise DataError(f"{annotations}: split {n} has other classes than split {min(files)} (e.g. {other[:3]})")
    index = VideoIndex(videos)
    collectors = {}
    for n in splits:
        collector = collectors[n] = Collector(index, strict)
        for label, cls in enumerate(classes):
            path = files[n][cls]
            before = {s: len(collector.split(s).missing) for s in ("train", "test")}
            for lineno, text in read_lines(path):
                where = f"{path}:{lineno}"
                parts = text.split()
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise DataError(f"{where}: expected '<video> <0|1|2>', got {text!r}")
                if parts[1] == "0":
                    continue
                relative = f"{cls}/{parts[0]}"
                found = index.find(relative)
                for split in ("train",) if parts[1] == "1" else ("val", "test"):
                    collector.add(split, where, found, relative, str(label))
            for s in ("train", "test"):
                collector.warn_missing(path, before[s], s)
    return write_official_splits(out, collectors, classes)
