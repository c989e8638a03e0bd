"""Video lists: PySlowFast-style ``{split}.csv`` files and the optional ``classes.txt``.

A bad line fails at start-up with ``file:line`` so that a typo in a 240k-line list is found in a
second, not as a crash hours into training.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional


from ..errors import DataError  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class VideoRecord:
    path: str
    label: int


def read_video_list(
    csv_path: str,
    path_prefix: str = "",
    separator: str = " ",
    num_classes: Optional[int] = None,
) -> List[VideoRecord]:
    """Parse ``path<sep>label`` lines; blank lines are skipped.

    The label is the last field, so a path may itself contain the separator (e.g. spaces in a
    Kinetics class folder). ``path_prefix`` is joined in front of every path.
    """
    if not os.path.isfile(csv_path):
        raise DataError(f"{csv_path}: video list not found")
    sep = separator if separator not in ("", None) else None
    records = []
    with open(csv_path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line:
                continue
            parts = line.rsplit(sep, 1) if sep is not None else line.rsplit(None, 1)
            if len(parts) != 2 or not parts[0].strip():
                raise DataError(
                    f"{csv_path}:{lineno}: expected 'path{separator!r}label', got {line!r}")
            path, label_s = parts[0].strip(), parts[1].strip()
            try:
                label = int(label_s)
            except ValueError:
                raise DataError(
                    f"{csv_path}:{lineno}: label {label_s!r} is not an integer") from None
            if label < 0 or (num_classes is not None and label >= num_classes):
                raise DataError(
                    f"{csv_path}:{lineno}: label {label} outside [0, {num_classes}) "
                    f"(MODEL.NUM_CLASSES)" if num_classes is not None else
                    f"{csv_path}:{lineno}: negative label {label}")
            records.append(VideoRecord(os.path.join(path_prefix, path) if path_prefix else path,
                                       label))
    if not records:
        raise DataError(f"{csv_path}: no videos listed")
    return records


def read_classes(data_dir: str) -> Optional[List[str]]:
    """Class names from ``data_dir/classes.txt`` (one a line, line i = label i), or None."""
    path = os.path.join(data_dir, "classes.txt")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f]
    while names and not names[-1]:
        names.pop()
    for i, name in enumerate(names, start=1):
        if not name:
            raise DataError(f"{path}:{i}: empty class name")
    return names
