"""What a test records about its data (``DATA.MANIFEST``, ``TEST.SUBSET_MANIFEST``): the test
split's fingerprint and counts into test_metrics.json (``data_manifest``), a leakage check against
the training set the checkpoint records, and the subset of videos a test may be limited to."""

from __future__ import annotations

import logging
import os
from typing import Optional

import torch

from .. import file_io
from ..checkpoint import load_checkpoint
from ..data.loader import build_dataset, multiview_dataset
from ..engine.data_manifest import CHECKPOINT_KEY, split_provenance
from ..errors import EvaluationError
from ..manifest.provenance import in_subset, leakage, subset_keys

logger = logging.getLogger(__name__)


def checkpoint_entry(path: str) -> Optional[dict]:
    """The ``data_manifest`` entry of a checkpoint, or None (another format, an older file).
    A local file is memory-mapped, so only the entry is read, not the weights."""
    try:
        if file_io.is_local(path):
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        else:
            ckpt = load_checkpoint(path)
    except Exception as e:  # the weights were loaded already; an unreadable entry is only missing
        logger.warning("%s: training data record not readable (%s); no leakage check", path, e)
        return None
    entry = ckpt.get(CHECKPOINT_KEY) if isinstance(ckpt, dict) else None
    return entry if isinstance(entry, dict) else None


def limited_test_dataset(cfg):
    """The multi-view test dataset of ``TEST.SPLIT``, limited to the videos ``TEST.SUBSET_MANIFEST``
    also lists when it is set (None when it is not: the loader builds the whole split)."""
    if not cfg.TEST.SUBSET_MANIFEST:
        return None
    records = build_dataset(cfg, cfg.TEST.SPLIT, "test").records
    keys = subset_keys(cfg.TEST.SUBSET_MANIFEST, cfg.TEST.SPLIT)
    kept = [r for r, keep in zip(records, in_subset([r.path for r in records], keys)) if keep]
    if not kept:
        raise EvaluationError(
            f"TEST.SUBSET_MANIFEST {cfg.TEST.SUBSET_MANIFEST}: none of the {len(records)} videos "
            f"of {cfg.TEST.SPLIT}.csv is in it"
        )
    logger.info(
        "TEST.SUBSET_MANIFEST %s: evaluating %d of the %d test videos (the manifest lists %d)",
        cfg.TEST.SUBSET_MANIFEST,
        len(kept),
        len(records),
        len(keys),
    )
    return multiview_dataset(cfg, kept)


def record_test_set(cfg, ckpt_path: str) -> dict:
    """test_metrics.json's ``data_manifest`` before the test runs (so that a manifest that does not
    fit fails at once, not after hours): the test split's provenance, the subset when there is one,
    and the leakage check against the checkpoint's training set. :func:`with_counts` completes it."""
    prov = split_provenance(cfg, cfg.TEST.SPLIT)
    rec = prov.record()
    if cfg.TEST.SUBSET_MANIFEST:
        rec["subset"] = prov.subset_record(
            subset_keys(cfg.TEST.SUBSET_MANIFEST, cfg.TEST.SPLIT), os.path.abspath(cfg.TEST.SUBSET_MANIFEST)
        )
    rec["leakage"] = leakage(checkpoint_entry(ckpt_path), prov)
    return rec


def with_counts(record: dict, metrics: dict) -> dict:
    """``record`` with the videos the test evaluated, decoded and could not decode."""
    return {
        **record,
        "evaluated": metrics["num_videos"],
        "decoded": metrics["num_evaluated"],
        "failed": metrics["num_failed"],
    }
