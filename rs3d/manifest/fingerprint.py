"""A split's fingerprint: one digest that two people can compare to know they hold the same data.

SHA-256 of the lines ``key<TAB>label<TAB>content digest``, sorted, one per listed video: the
same whatever order the videos were listed or probed in, on any machine; any added, removed or
relabelled video, or any changed content (as the digest sees it), changes it.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Tuple

PREFIX = "sha256:"


def fingerprint(rows: Iterable[Tuple[str, str, str]]) -> str:
    """``sha256:<hex>`` of the sorted (key, label, content digest) rows."""
    h = hashlib.sha256()
    for key, label, digest in sorted(rows):
        for field in (key, label, digest):
            if "\t" in field or "\n" in field:
                raise ValueError(f"a fingerprint field may not hold a tab or newline: {field!r}")
        h.update(f"{key}\t{label}\t{digest}\n".encode("utf-8"))
    return PREFIX + h.hexdigest()


def short(fp: str) -> str:
    """The first 16 hex digits, for log lines (the full value goes into files)."""
    return fp[len(PREFIX) : len(PREFIX) + 16] if fp.startswith(PREFIX) else fp[:16]
