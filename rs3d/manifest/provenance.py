"""What a training run and a test record about their data, and the subset a test may be limited to.

A split's provenance is its fingerprint (the same value ``rs3d-manifest build`` gives that split)
with its counts, computed cheaply at start-up in one of two ways (``DATA.MANIFEST``):

* a manifest is given (a folder from ``rs3d-manifest build``, or one ``{split}.csv.gz``): each
  listed video is looked up there by key and only its size is checked (one ``stat`` per file);
  a video the manifest lacks, or whose size changed, is an error naming it (rebuild the manifest).
* none is given: the fast digest (size + first and last MiB) of every listed file is computed, on
  threads (up to 2 MiB read per file); at Kinetics scale a manifest built once is the cheaper way.

The record keeps, besides the counts, a 64-bit hash of every key and content digest (sorted
tensors, 16 bytes a video) so that a test can tell whether a checkpoint's training set shares
videos with the test set (by key, and by content when both used the same digest kind).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set

import torch

from ..data.csv import read_classes
from ..errors import DataError
from .digest import content_digest
from .fingerprint import fingerprint, short
from .keys import match_key, video_key
from .listing import PLAIN_LISTS, Listed, ListFormat, dataset_root, list_split
from .table import pick_split, read_manifest

logger = logging.getLogger(__name__)

DIGEST_THREADS = 8


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def _hashes(values: Sequence[str]) -> torch.Tensor:
    return torch.tensor(sorted({_hash64(v) for v in values if v}), dtype=torch.int64)


@dataclass
class SplitProvenance:
    split: str
    fingerprint: str
    digest: str  # "fast" or "full"
    listed: int  # videos the list names (each once)
    missing: int  # of them, files not found
    source: str  # the manifest it came from, or "fast digest of the listed files"
    rows: List[tuple]  # (key, label, content digest) per listed video, in list order
    paths: List[str]  # their files

    @property
    def keys(self) -> List[str]:
        return [r[0] for r in self.rows]

    @property
    def digests(self) -> List[str]:
        return [r[2] for r in self.rows]

    def record(self) -> dict:
        """The small dict that goes into json_stats, test_metrics.json and checkpoints."""
        return {
            "split": self.split,
            "fingerprint": self.fingerprint,
            "digest": self.digest,
            "listed": self.listed,
            "missing": self.missing,
            "source": self.source,
        }

    def subset_record(self, keys: Set[str], manifest: str) -> dict:
        """The videos of this split that ``keys`` (a subset manifest's) hold: count and fingerprint."""
        kept = [r for r, keep in zip(self.rows, in_subset(self.paths, keys)) if keep]
        return {"manifest": manifest, "videos": len(kept), "fingerprint": fingerprint(kept)}

    def checkpoint_entry(self) -> dict:
        """:meth:`record` plus the key and content hashes a later test checks for leakage."""
        return {**self.record(), "key_hashes": _hashes(self.keys), "digest_hashes": _hashes(self.digests)}


def _from_files(videos: Sequence[Listed], root: str) -> List[tuple]:
    def one(v: Listed) -> tuple:
        try:
            digest = content_digest(v.path)
        except FileNotFoundError:
            digest = ""
        return video_key(v.path, root), v.label, digest

    with ThreadPoolExecutor(DIGEST_THREADS) as pool:  # reading and hashing release the GIL
        return list(pool.map(one, videos))


def _from_manifest(videos: Sequence[Listed], manifest_path: str, split: str) -> tuple:
    m = read_manifest(manifest_path)
    rows = pick_split(m, split if split in m.splits or len(m.splits) != 1 else None)
    by_key: Dict[str, dict] = {}
    for r in rows:
        by_key.setdefault(r["key"], r)
    out, absent = [], []
    for v in videos:
        key = match_key(v.path, by_key)
        if key is None:
            absent.append(v.path)
            continue
        row = by_key[key]
        try:
            size: Optional[int] = os.stat(v.path).st_size
        except FileNotFoundError:
            size = None
        if (size is None) != (row["digest"] == "") or (size is not None and size != row["bytes"]):
            raise DataError(
                f"{v.path}: {'missing' if size is None else f'{size} bytes'} here but "
                f"{row['bytes']} bytes in DATA.MANIFEST {manifest_path}; rebuild the manifest"
            )
        out.append((key, v.label, row["digest"]))
    if absent:
        raise DataError(
            f"DATA.MANIFEST {manifest_path}: {len(absent)} listed video(s) of {split} are not in "
            f"it (first: {absent[0]}); rebuild it with rs3d-manifest build"
        )
    return out, m.digest or "fast"


def describe_split(data_dir: str, split: str, fmt: ListFormat = PLAIN_LISTS, manifest: str = "") -> SplitProvenance:
    """The provenance of ``data_dir/{split}.csv`` (see the module docstring)."""
    t0 = time.perf_counter()
    videos = list_split(data_dir, split, fmt, read_classes(data_dir))
    if manifest:
        rows, kind = _from_manifest(videos, manifest, split)
        source = f"manifest {manifest}"
    else:
        rows, kind = _from_files(videos, dataset_root(data_dir, fmt, {split: videos})), "fast"
        source = "fast digest of the listed files"
    prov = SplitProvenance(
        split,
        fingerprint(rows),
        kind,
        len(rows),
        sum(1 for r in rows if not r[2]),
        source,
        rows,
        [v.path for v in videos],
    )
    logger.info(
        "%s: %d videos (%d missing), fingerprint %s (%s, %.1f s)",
        split,
        prov.listed,
        prov.missing,
        short(prov.fingerprint),
        source,
        time.perf_counter() - t0,
    )
    return prov


def leakage(train_entry: Optional[dict], test: SplitProvenance) -> Optional[dict]:
    """How many test videos the checkpoint's training set also held, by key and by content (None
    when the checkpoint records no training set); logs a warning when any."""
    if not train_entry or "key_hashes" not in train_entry:
        return None
    test_keys = set(_hashes(test.keys).tolist())
    by_key = len(test_keys & set(train_entry["key_hashes"].tolist()))
    by_content = None
    if train_entry.get("digest") == test.digest:
        by_content = len(set(_hashes(test.digests).tolist()) & set(train_entry["digest_hashes"].tolist()))
    result = {"train_fingerprint": train_entry.get("fingerprint"), "by_key": by_key, "by_content": by_content}
    if by_key or by_content:
        logger.warning(
            "LEAKAGE: %d of the %d test videos share a key and %s share content with the "
            "checkpoint's training set (fingerprint %s)",
            by_key,
            test.listed,
            "?" if by_content is None else by_content,
            short(train_entry.get("fingerprint", "")),
        )
    return result


def subset_keys(path: str, split: str) -> Set[str]:
    """The keys of ``split`` (or the only split) in the manifest at ``path``."""
    m = read_manifest(path)
    return {r["key"] for r in pick_split(m, split if split in m.splits or len(m.splits) != 1 else None)}


def in_subset(paths: Sequence[str], keys: Set[str]) -> List[bool]:
    """For each path, whether its video is among ``keys`` (matched as :func:`match_key` does)."""
    return [match_key(p, keys) is not None for p in paths]


def matched_keys(paths: Sequence[str], keys: Set[str]) -> Set[str]:
    """The keys among ``keys`` that ``paths`` name."""
    return {k for k in (match_key(p, keys) for p in paths) if k is not None}
