"""Which label a horizontally flipped training clip gets (``DATA.FLIP_LABEL_MAP``).

A flip turns "moving left to right" into "moving right to left": keeping the label teaches the
model the opposite of the truth. Something-Something v2 practice is to swap such labels when a
clip is flipped. A map is a permutation of the labels (``map[label]`` is the label of the flipped
clip), built from

- ``"auto"``: class names (``classes.txt``) that become each other when left and right (and
  clockwise and counterclockwise) are swapped, word for word: "Pushing something from left to
  right" <-> "Pushing something from right to left";
- explicit pairs of labels, ``"86:87,93:94"``.

Names holding such a word but without a mirror partner ("Turning left" with no "Turning right")
are *mirror-sensitive and unpaired*: a flip map cannot fix them, so the safe choice is no flip.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence

from ..errors import ConfigError, DataError

# Word -> its mirror image (applied to whole lower-case words).
MIRROR_WORDS = {
    "left": "right",
    "right": "left",
    "leftward": "rightward",
    "rightward": "leftward",
    "leftwards": "rightwards",
    "rightwards": "leftwards",
    "clockwise": "counterclockwise",
    "counterclockwise": "clockwise",
}
_SPELLINGS = [(re.compile(r"\b(?:counter|anti)[\s_-]?clockwise\b"), "counterclockwise")]
_WORD = re.compile(r"[a-z0-9]+")


def _words(name: str) -> tuple:
    text = name.lower()
    for pattern, repl in _SPELLINGS:
        text = pattern.sub(repl, text)
    return tuple(_WORD.findall(text))


def is_mirror_sensitive(name: str) -> bool:
    """Whether a flip could change what ``name`` describes (it says left/right or (counter)clockwise)."""
    return any(w in MIRROR_WORDS for w in _words(name))


def auto_pairs(names: Sequence[str]) -> Dict[int, int]:
    """``{label: mirrored label}`` for names that become each other with left/right swapped."""
    index = {}
    for i, name in enumerate(names):
        index.setdefault(_words(name), i)
    pairs = {}
    for i, name in enumerate(names):
        words = _words(name)
        mirrored = tuple(MIRROR_WORDS.get(w, w) for w in words)
        j = index.get(mirrored)
        if mirrored != words and j is not None and j != i:
            pairs[i] = j
    return pairs


def unpaired_sensitive(names: Sequence[str], pairs: Dict[int, int]) -> List[str]:
    """Mirror-sensitive names that ``pairs`` leaves as they are."""
    return [n for i, n in enumerate(names) if is_mirror_sensitive(n) and i not in pairs]


def parse_pairs(text: str, num_classes: int, key: str = "DATA.FLIP_LABEL_MAP") -> Dict[int, int]:
    """``"86:87, 93:94"`` -> ``{86: 87, 87: 86, 93: 94, 94: 93}``; :class:`ConfigError` on a bad pair."""
    pairs: Dict[int, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        halves = [h.strip() for h in part.split(":")]
        try:
            a, b = (int(h) for h in halves)
        except ValueError:
            raise ConfigError(f"{key}: {part!r} is not a pair of labels 'a:b' (or use 'auto')") from None
        for label in (a, b):
            if not 0 <= label < num_classes:
                raise ConfigError(f"{key}: label {label} in {part!r} outside [0, {num_classes}) (MODEL.NUM_CLASSES)")
        if a == b or a in pairs or b in pairs:
            raise ConfigError(f"{key}: {part!r}: each label may appear in one pair only, with another label")
        pairs[a], pairs[b] = b, a
    if not pairs:
        raise ConfigError(f"{key}: {text!r} names no pair of labels")
    return pairs


def flip_label_map(
    spec: Optional[str], num_classes: int, names: Optional[Sequence[str]], classes_file: str = "classes.txt"
) -> Optional[List[int]]:
    """``DATA.FLIP_LABEL_MAP`` -> the permutation (a list, ``map[label]``), or None for no map."""
    if spec is None or spec.strip() == "":
        return None
    if spec.strip().lower() == "auto":
        if names is None:
            raise DataError(f"DATA.FLIP_LABEL_MAP auto needs the class names: {classes_file} not found")
        pairs = auto_pairs(names)
    else:
        pairs = parse_pairs(spec, num_classes)
    return [pairs.get(i, i) for i in range(num_classes)]


def flip_warning(random_flip: bool, spec: Optional[str], names: Optional[Sequence[str]]) -> Optional[str]:
    """The start-up warning for flipped clips whose label may be wrong, or None."""
    if not random_flip or not names:
        return None
    auto = spec is not None and spec.strip().lower() == "auto"
    if spec is not None and spec.strip() and not auto:
        return None  # the user gave the pairs
    pairs = auto_pairs(names) if auto else {}
    left = unpaired_sensitive(names, pairs)
    if not left:
        return None
    shown = ", ".join(repr(n) for n in left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
    if auto:
        return (
            f"DATA.RANDOM_FLIP is on and {len(left)} class name(s) look mirror-sensitive but have no "
            f"mirror partner in classes.txt ({shown}): their flipped clips keep their label; "
            "set DATA.RANDOM_FLIP False or list the pairs in DATA.FLIP_LABEL_MAP"
        )
    hint = (
        f"DATA.FLIP_LABEL_MAP auto would pair {len(auto_pairs(names))} of them"
        if auto_pairs(names)
        else "DATA.FLIP_LABEL_MAP cannot pair them"
    )
    return (
        f"DATA.RANDOM_FLIP is on and {len(left)} class name(s) look mirror-sensitive ({shown}): a "
        f"flipped clip keeps its label; {hint}, or set DATA.RANDOM_FLIP False"
    )
