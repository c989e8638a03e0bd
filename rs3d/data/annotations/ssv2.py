"""Something-Something v2's official JSON files -> rs3d's lists.

    labels.json      ``{"Approaching something with your camera": "0", ...}``: the 174 classes
    train.json       ``[{"id": "78687", "label": "...", "template": "Holding [something] next to
    validation.json    [something]", "placeholders": [...]}, ...]``

An entry's class is its ``template`` with the brackets removed ("Holding something next to
something"), looked up in labels.json; one that is not there is an error naming the file and the
entry. Writes ``train.csv`` (train.json), ``val.csv`` and ``test.csv`` (both validation.json: the
test set's labels are not public) and ``classes.txt`` (labels.json's names in index order). Videos
are ``VIDEOS/<id>.webm`` as distributed (or ``<id>`` in any container or as a frame folder).
"""

from __future__ import annotations

import json
import os
from typing import List

from ...errors import DataError
from .common import Collector, VideoIndex, write_dataset


def read_json(path: str):
    if not os.path.isfile(path):
        raise DataError(f"{path}: annotation file not found")
    try:
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None


def read_labels(path: str) -> List[str]:
    """labels.json -> class names in label order (the indices must be 0..K-1, each once)."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: expected an object mapping class names to indices")
    names = {}
    for name, idx in data.items():
        try:
            i = int(idx)
        except (TypeError, ValueError):
            raise DataError(f"{path}: class {name!r} has index {idx!r}, not an integer") from None
        if i in names:
            raise DataError(f"{path}: index {i} given to both {names[i]!r} and {name!r}")
        names[i] = name
    if sorted(names) != list(range(len(names))):
        raise DataError(
            f"{path}: indices must run 0..{len(names) - 1}; missing {sorted(set(range(len(names))) - set(names))[:5]}"
        )
    return [names[i] for i in range(len(names))]


def template_class(template: str) -> str:
    """ "Putting [something] into [something]" -> "Putting something into something"."""
    return template.replace("[", "").replace("]", "")


def convert_ssv2(annotations: str, videos: str, out: str, strict: bool = False) -> dict:
    """Write ``out/{train,val,test}.csv`` and ``classes.txt``; returns the summary."""
    classes = read_labels(os.path.join(annotations, "labels.json"))
    lookup = {name: i for i, name in enumerate(classes)}
    index = VideoIndex(videos)
    collector = Collector(index, strict)
    for source, splits in (("train.json", ("train",)), ("validation.json", ("val", "test"))):
        path = os.path.join(annotations, source)
        entries = read_json(path)
        if not isinstance(entries, list):
            raise DataError(f"{path}: expected a list of videos")
        before = len(collector.split(splits[-1]).missing)
        for i, entry in enumerate(entries):
            where = f"{path}: entry {i}"
            if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
                raise DataError(f"{where}: expected an object with 'id' and 'template', got {str(entry)[:80]}")
            name = template_class(str(entry["template"]))
            if name not in lookup:
                raise DataError(f"{where} (id {entry['id']}): class {name!r} is not in labels.json")
            vid = str(entry["id"])
            found = index.find(f"{vid}.webm", stems=(vid,))
            for split in splits:
                collector.add(split, f"{where} (id {vid})", found, f"{vid}.webm", str(lookup[name]))
        collector.warn_missing(path, before, splits[-1])
    return write_dataset(out, collector, classes)
