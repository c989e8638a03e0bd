"""Video lists: PySlowFast-style ``{split}.csv`` files and the optional ``classes.txt``.

A bad line fails at start-up with ``file:line`` so that a typo in a 240k-line list is found in a
second, not as a crash hours into training. What a list may hold (``read_video_list``):

- one ``path<sep>label`` per line, ``<sep>`` being ``DATA.PATH_LABEL_SEPARATOR`` (a space by
  default). The label is the last field, so a path may hold the separator itself, or commas,
  spaces and any unicode; blank lines are skipped.
- a UTF-8 byte-order mark at the start (spreadsheets write one); it is removed.
- a header line as the first line (``path label``, ``video,label``, ``filename<TAB>class``: words
  only, the last one a label column name such as ``label``, ``class`` or ``target``); it is skipped.
  Any other first line is data, so a header of another kind is an error naming ``file:1``.
- a line whose path and label are split by another separator than ``DATA.PATH_LABEL_SEPARATOR``
  (a tab or comma where a space is set, or the other way round) is an error naming the key and
  ``file:line``, never a guess.
- a video listed twice: in training (``duplicates="keep"``) every line stays a sample (repeating a
  line is a way to oversample) and one warning gives the count and the first duplicate's
  ``file:line``; in evaluation (``duplicates="drop"``) each video counts once, with its first
  line, and one warning says how many lines were dropped; a video listed with two different labels
  cannot be scored once and is an error naming both lines.
- multi-label lists (``multi_label=True``, ``DATA.MULTI_LABEL``): the last field lists the video's
  classes, ``path 3,17,42`` (joined by ``;`` instead when the separator is a comma:
  ``path,3;17;42``), or ``-`` for a video with none of the classes; a repeated index counts once.
  Anything else in that field is an error naming ``file:line``. The record's label is then a
  multi-hot bool tensor ``[num_classes]``, which batches into ``[B, num_classes]`` targets.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import torch

from .. import file_io  # lists and classes.txt may be URLs or object-store paths
from ..errors import DataError  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)

# Names a header line's last column may have (compared in lower case).
HEADER_LABEL_NAMES = frozenset(
    {"label", "labels", "label_id", "class", "class_id", "classes", "target", "category", "y"}
)
_HEADER_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FIELD_SPLIT = re.compile(r"[ \t,;]+")
# Separators a list is commonly written with; used only to explain a line that does not parse.
_COMMON_SEPARATORS = ("\t", ",", ";", " ")
DUPLICATE_MODES = ("keep", "drop")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class VideoRecord:
    path: str
    label: Union[int, torch.Tensor]  # class index; multi-hot bool [K] for multi-label lists


# A multi-label field that looks like a list where a single label was expected.
_LABEL_LIST = re.compile(r"^\d+([,;]\d+)+$")


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def is_header(line: str) -> bool:
    """True for a column-name line such as ``path label`` or ``video,label``."""
    fields = [f for f in _FIELD_SPLIT.split(line.strip()) if f]
    return len(fields) >= 2 and all(_HEADER_FIELD.match(f) for f in fields) and fields[-1].lower() in HEADER_LABEL_NAMES


def _other_separator(line: str, separator: Optional[str]) -> Optional[str]:
    """The separator that would split ``line`` into ``path label``, when it is not the one set."""
    for cand in _COMMON_SEPARATORS:
        if cand == separator or (separator is None and cand.isspace()):
            continue
        head, found, tail = line.rpartition(cand)
        if found and head.strip() and _is_int(tail.strip()):
            return cand
    return None


def _parse_line(line: str, sep: Optional[str], where: str, separator) -> Tuple[str, int]:
    parts = line.rsplit(sep, 1) if sep is not None else line.rsplit(None, 1)
    if len(parts) == 2 and parts[0].strip() and _is_int(parts[1].strip()):
        return parts[0].strip(), int(parts[1].strip())
    if len(parts) == 2 and _LABEL_LIST.match(parts[1].strip()):
        raise DataError(
            f"{where}: label {parts[1].strip()!r} is a list of classes; a multi-label list needs DATA.MULTI_LABEL True"
        )
    other = _other_separator(line, sep)
    if other is not None:
        raise DataError(
            f"{where}: path and label are separated by {other!r} but "
            f"DATA.PATH_LABEL_SEPARATOR is {separator!r} (got {line!r})"
        )
    if len(parts) != 2 or not parts[0].strip():
        raise DataError(
            f"{where}: expected a path and an integer label separated by {separator!r} "
            f"(DATA.PATH_LABEL_SEPARATOR), got {line!r}"
        )
    raise DataError(f"{where}: label {parts[1].strip()!r} is not an integer")


def _parse_multi_label(
    line: str, sep: Optional[str], where: str, separator, num_classes: int
) -> Tuple[str, Tuple[int, ...]]:
    """``path<sep>3,17,42`` (or ``-``) -> (path, sorted distinct class indices)."""
    parts = line.rsplit(sep, 1) if sep is not None else line.rsplit(None, 1)
    if len(parts) != 2 or not parts[0].strip():
        raise DataError(
            f"{where}: expected a path and its class indices separated by {separator!r} "
            f"(DATA.PATH_LABEL_SEPARATOR), got {line!r}"
        )
    path, field = parts[0].strip(), parts[1].strip()
    joiner = ";" if separator == "," else ","
    if separator == "," and re.search(r",\d+$", path):
        raise DataError(
            f"{where}: class indices seem joined by ','; with DATA.PATH_LABEL_SEPARATOR ',' "
            f"join them with ';' (path,3;17;42), got {line!r}"
        )
    if field == "-":
        return path, ()
    items = field.split(joiner)
    if not all(_is_int(x) and x.strip() == x and x for x in items):
        raise DataError(
            f"{where}: multi-label field {field!r} is not a list of class indices joined by "
            f"{joiner!r} such as 3{joiner}17{joiner}42, or '-' for none (DATA.MULTI_LABEL)"
        )
    labels = sorted({int(x) for x in items})
    bad = [c for c in labels if not 0 <= c < num_classes]
    if bad:
        raise DataError(f"{where}: class {bad[0]} outside [0, {num_classes}) (MODEL.NUM_CLASSES)")
    return path, tuple(labels)


def _multi_hot(labels: Tuple[int, ...], num_classes: int) -> torch.Tensor:
    out = torch.zeros(num_classes, dtype=torch.bool)
    out[list(labels)] = True
    return out


def read_video_list(
    csv_path: str,
    path_prefix: str = "",
    separator: str = " ",
    num_classes: Optional[int] = None,
    *,
    duplicates: str = "keep",
    multi_label: bool = False,
) -> List[VideoRecord]:
    """Parse a video list as the module docstring describes; ``DataError`` names ``file:line``.

    ``path_prefix`` is joined in front of every path. ``duplicates``: "keep" (training: every line
    is a sample) or "drop" (evaluation: each video once, with its first line's label).
    ``multi_label``: lines list class indices; needs ``num_classes`` (the multi-hot length).
    """
    if duplicates not in DUPLICATE_MODES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_MODES}, got {duplicates!r}")
    if multi_label and num_classes is None:
        raise ValueError("multi_label needs num_classes (the length of the multi-hot labels)")
    if not file_io.isfile(csv_path):
        raise DataError(f"{csv_path}: video list not found")
    sep = separator if separator not in ("", None) else None
    records: List[VideoRecord] = []
    seen: Dict[str, Tuple[int, object]] = {}  # normalised path -> (first line, label)
    dup_count, conflicts, first_dup = 0, 0, None
    first = True
    # Read as bytes and decode line by line, so that a non-UTF-8 byte is reported on its own line.
    with file_io.open(csv_path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{csv_path}:{lineno}"
            if lineno == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]  # spreadsheets write one; it is not part of the first path
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as e:
                raise DataError(f"{where}: not UTF-8 text ({e.reason} at byte {e.start})") from None
            if not line:
                continue
            if first:
                first = False
                if is_header(line):
                    logger.info("%s: header line %r skipped", where, line)
                    continue
            if multi_label:
                path, label = _parse_multi_label(line, sep, where, separator, num_classes)
            else:
                path, label = _parse_line(line, sep, where, separator)
            if not multi_label and (label < 0 or (num_classes is not None and label >= num_classes)):
                raise DataError(
                    f"{where}: label {label} outside [0, {num_classes}) (MODEL.NUM_CLASSES)"
                    if num_classes is not None
                    else f"{where}: negative label {label}"
                )
            full = os.path.join(path_prefix, path) if path_prefix else path
            key = os.path.normpath(full)
            if key in seen:
                first_line, first_label = seen[key]
                if duplicates == "drop" and label != first_label:
                    raise DataError(
                        f"{where}: {path} has label {label} here and {first_label} on "
                        f"line {first_line}; a video evaluated once needs one label"
                    )
                dup_count += 1
                conflicts += label != first_label
                if first_dup is None:
                    first_dup = (lineno, path, first_line)
                if duplicates == "drop":
                    continue
            else:
                seen[key] = (lineno, label)
            records.append(VideoRecord(full, _multi_hot(label, num_classes) if multi_label else label))
    if not records:
        raise DataError(f"{csv_path}: no videos listed")
    if dup_count:
        dup_line, dup_path, dup_first = first_dup
        if duplicates == "drop":
            outcome = "each video is evaluated once, with its first line"
        else:
            outcome = "every line is used as listed (a video listed twice is sampled twice)"
            if conflicts:
                outcome += f"; {conflicts} of them give the video another label"
        logger.warning(
            "%s:%d: %d duplicate line(s) in this list, the first here (%s, first on line %d); %s",
            csv_path,
            dup_line,
            dup_count,
            dup_path,
            dup_first,
            outcome,
        )
    return records


def read_classes(data_dir: str) -> Optional[List[str]]:
    """Class names from ``data_dir/classes.txt`` (one a line, line i = label i), or None."""
    path = file_io.join(data_dir, "classes.txt")
    if not file_io.isfile(path):
        return None
    with file_io.open(path, encoding="utf-8-sig") as f:
        names = [line.strip() for line in f]
    while names and not names[-1]:
        names.pop()
    for i, name in enumerate(names, start=1):
        if not name:
            raise DataError(f"{path}:{i}: empty class name")
    return names
