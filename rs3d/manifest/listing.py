"""The videos a dataset folder lists, read exactly as training and the test read them.

A dataset folder holds ``{split}.csv`` (``path label`` lines, see :mod:`rs3d.data.csv`) and
optionally ``classes.txt``. Relative paths are resolved as the loader resolves them
(:func:`rs3d.data.video_root.resolve_video_root`: the path prefix, else the folder
``video_root.txt`` names, else the data folder itself). A video listed twice counts once (the
test's rule). A row's ``label`` is its class name when ``classes.txt`` names the classes (so copies that number classes
differently still compare), else the index; multi-label rows join them with ``|`` (``-``: none).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch

from ..data.csv import read_classes, read_video_list
from ..data.video_root import resolve_video_root
from ..errors import DataError
from .keys import key_root

STANDARD_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Listed:
    path: str  # absolute path of the video
    label: str  # class name(s) or index(es), as fingerprinted
    label_index: str  # the list's label field: ``3``, or ``3,17`` / ``-`` for multi-label lists


@dataclass(frozen=True)
class ListFormat:
    """How the lists are written (``DATA.PATH_PREFIX``, ``DATA.PATH_LABEL_SEPARATOR``,
    ``DATA.MULTI_LABEL``)."""

    path_prefix: str = ""
    separator: str = " "
    multi_label: bool = False


PLAIN_LISTS = ListFormat()  # ``path label`` lines, space-separated, one label each


def _label_text(indices: Sequence[int], classes: Optional[List[str]], multi: bool) -> str:
    if multi and not indices:
        return "-"
    names = [classes[i] if classes and i < len(classes) else str(i) for i in indices]
    return "|".join(names)


def list_split(
    data_dir: str, split: str, fmt: ListFormat = PLAIN_LISTS, classes: Optional[List[str]] = None
) -> List[Listed]:
    """The videos of ``data_dir/{split}.csv``, each once, in list order."""
    csv_path = os.path.join(data_dir, f"{split}.csv")
    if fmt.multi_label and not classes:
        raise DataError(
            f"{csv_path}: a multi-label list needs {os.path.join(data_dir, 'classes.txt')} (the number of classes)"
        )
    root = resolve_video_root(data_dir, fmt.path_prefix or None)[0]  # the loader's rule
    records = read_video_list(
        csv_path, root, fmt.separator, len(classes) if classes else None, duplicates="drop", multi_label=fmt.multi_label
    )
    out = []
    for r in records:
        if isinstance(r.label, torch.Tensor):
            indices = [int(i) for i in torch.nonzero(r.label).flatten()]
            index_field = ",".join(map(str, indices)) or "-"
        else:
            indices, index_field = [int(r.label)], str(int(r.label))
        out.append(Listed(os.path.abspath(r.path), _label_text(indices, classes, fmt.multi_label), index_field))
    return out


def present_splits(data_dir: str) -> List[str]:
    """The standard splits whose list is in ``data_dir``."""
    return [s for s in STANDARD_SPLITS if os.path.isfile(os.path.join(data_dir, f"{s}.csv"))]


def list_dataset(
    data_dir: str, splits: Optional[Sequence[str]] = None, fmt: ListFormat = PLAIN_LISTS
) -> Dict[str, List[Listed]]:
    """``{split: videos}`` for ``splits`` (default: every standard split present)."""
    if not os.path.isdir(data_dir):
        raise DataError(f"{data_dir}: dataset folder not found")
    splits = list(splits) if splits else present_splits(data_dir)
    if not splits:
        raise DataError(f"{data_dir}: no {', '.join(s + '.csv' for s in STANDARD_SPLITS)} here")
    classes = read_classes(data_dir)
    return {s: list_split(data_dir, s, fmt, classes) for s in splits}


def dataset_root(data_dir: str, fmt: ListFormat = PLAIN_LISTS, listed: Optional[Dict[str, List[Listed]]] = None) -> str:
    """The folder relative-path keys are taken from: the deepest one holding every video of the
    standard splits present (so a build and a training or test run of one split agree).
    ``listed``: splits already read, not read again."""
    have = dict(listed or {})
    classes = read_classes(data_dir)
    for s in present_splits(data_dir):
        if s not in have:
            try:
                have[s] = list_split(data_dir, s, fmt, classes)
            except DataError:  # an empty or unreadable other list: its videos cannot move the root
                continue
    return key_root(v.path for videos in have.values() for v in videos)
