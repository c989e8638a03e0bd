"""The own-dataset recipe: sampling and flip chosen from a look at the data, not tuned by hand.

Two choices make or break a small motion dataset trained from scratch (both measured on
:mod:`rs3d.data.synthetic_directions`):

- *How much time a clip covers.* ``NUM_FRAMES`` consecutive frames see a few tenths of a second;
  classes that differ by where something goes, or how fast, need most of the video. The recipe
  reads the frame rate and duration of (up to 64, evenly spread) training videos and, when dense
  sampling at the file rate would cover less than ``COVER`` of the shorter videos (the
  ``QUANTILE`` of the durations), sets ``DATA.TARGET_FPS`` so that a clip lasts ``COVER`` of that
  duration: the stride is then counted in seconds, the same for 15 and 60 fps files, so speed is
  comparable across videos.
- *Whether a horizontal flip keeps the label.* Class names that say left/right (or clockwise) and
  have a mirror partner get ``DATA.FLIP_LABEL_MAP auto``; a mirror-sensitive name without a
  partner turns the flip off. Without ``classes.txt`` nothing is known and the flip stays.

Pure functions of plain values; :mod:`rs3d.cli.demo` reads the config and applies them.
"""

from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DecodeError
from .csv import read_classes, read_video_list
from .flip import auto_pairs, is_mirror_sensitive, unpaired_sensitive
from .fps import video_timing
from .frames import list_frames
from .video_root import resolve_video_root

COVER = 0.8  # share of the shorter videos' duration one clip spans
QUANTILE = 0.25  # "the shorter videos": this quantile of the durations
MAX_SURVEY = 64  # training videos looked at


def survey(
    paths: Sequence[str], frame_folder_fps: float = 30.0, max_videos: int = MAX_SURVEY
) -> List[Tuple[float, float]]:
    """``(fps, seconds)`` of up to ``max_videos`` of ``paths``, evenly spread over the list; videos
    that cannot be read, or do not say how long they are, are left out."""
    if not paths:
        return []
    picks = sorted(set(np.linspace(0, len(paths) - 1, min(max_videos, len(paths))).round().astype(int)))
    out = []
    for i in picks:
        path = paths[i]
        try:
            if os.path.isdir(path):
                out.append((frame_folder_fps, len(list_frames(path)) / frame_folder_fps))
            else:
                fps, seconds = video_timing(path)
                if seconds > 0:
                    out.append((fps, seconds))
        except (DecodeError, OSError):
            continue
    return out


def choose_target_fps(
    timings: Sequence[Tuple[float, float]], num_frames: int, rate: int, cover: float = COVER, quantile: float = QUANTILE
) -> Tuple[Optional[float], str]:
    """``(DATA.TARGET_FPS or None, why)`` for videos of these ``(fps, seconds)``."""
    if not timings:
        return None, "no training video could be surveyed: sampling kept as configured"
    fps = np.array([t[0] for t in timings])
    seconds = np.array([t[1] for t in timings])
    short = float(np.quantile(seconds, quantile))
    dense = num_frames * rate / float(np.median(fps))
    facts = (
        f"{len(timings)} videos surveyed: {seconds.min():.1f}-{seconds.max():.1f} s, {fps.min():g}-{fps.max():g} fps"
    )
    if dense >= cover * short:
        return None, f"{facts}; a clip of {num_frames}x{rate} frames already spans {dense:.2f} s"
    target = float(f"{num_frames * rate / (cover * short):.3g}")
    return target, (
        f"{facts}; clips of {num_frames * rate / target:.2f} s ({cover:.0%} of the "
        f"{quantile:.0%} quantile of the durations, {short:.2f} s) instead of {dense:.2f} s"
    )


def choose_flip(names: Optional[Sequence[str]]) -> Tuple[dict, str]:
    """``({key: value}, why)``: the flip settings for these class names."""
    if not names:
        return {}, "no classes.txt: the flip stays as configured (class names decide it)"
    sensitive = [n for n in names if is_mirror_sensitive(n)]
    if not sensitive:
        return {}, "no class name says left/right or clockwise: flip kept"
    pairs = auto_pairs(names)
    unpaired = unpaired_sensitive(names, pairs)
    if unpaired:
        return {"DATA.RANDOM_FLIP": False}, (
            f"{len(unpaired)} mirror-sensitive class name(s) without a mirror partner (e.g. {unpaired[0]!r}): flip off"
        )
    return {"DATA.FLIP_LABEL_MAP": "auto"}, (
        f"{len(pairs) // 2} mirror pair(s) of class names (e.g. {names[min(pairs)]!r} <-> "
        f"{names[pairs[min(pairs)]]!r}): a flipped clip swaps them"
    )


SAMPLING_KEYS = ("DATA.SAMPLING", "DATA.TARGET_FPS", "DATA.NUM_FRAMES", "DATA.SAMPLING_RATE")
FLIP_KEYS = ("DATA.RANDOM_FLIP", "DATA.FLIP_LABEL_MAP")


def own_dataset_overrides(cfg, explicit_keys: Sequence[str] = ()) -> Tuple[List[str], List[str]]:
    """``(KEY VALUE overrides, one note per choice)`` for the training list of ``cfg``.

    A choice the user made is kept: keys given on the command line (``explicit_keys``) or set away
    from the defaults in the config file (a non-dense ``DATA.SAMPLING``, a ``DATA.TARGET_FPS``, a
    flip map, the flip turned off) leave that part of the recipe out.
    """
    d = cfg.DATA
    explicit = set(explicit_keys)
    overrides: List[str] = []
    notes: List[str] = []
    if explicit & set(SAMPLING_KEYS) or d.SAMPLING != "dense" or d.TARGET_FPS is not None:
        notes.append("sampling: as configured (set in the config or on the command line)")
    else:
        records = read_video_list(
            os.path.join(d.PATH_TO_DATA_DIR, "train.csv"),
            resolve_video_root(d.PATH_TO_DATA_DIR, d.PATH_PREFIX)[0],
            d.PATH_LABEL_SEPARATOR,
        )
        target, why = choose_target_fps(
            survey([r.path for r in records], d.FRAME_FOLDER_FPS), d.NUM_FRAMES, d.SAMPLING_RATE
        )
        if target is not None:
            overrides += ["DATA.TARGET_FPS", str(target)]
        notes.append(f"sampling: {'DATA.TARGET_FPS ' + str(target) if target else 'dense, as configured'} ({why})")
    if explicit & set(FLIP_KEYS) or d.FLIP_LABEL_MAP is not None or not d.RANDOM_FLIP:
        notes.append("flip: as configured (set in the config or on the command line)")
    else:
        keys, why = choose_flip(read_classes(d.PATH_TO_DATA_DIR))
        for k, v in keys.items():
            overrides += [k, str(v)]
        shown = " ".join(f"{k} {v}" for k, v in keys.items()) or "kept"
        notes.append(f"flip: {shown} ({why})")
    return overrides, notes
