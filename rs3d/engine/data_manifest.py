"""What data a training run used, from the config (``DATA.MANIFEST``) to
:mod:`rs3d.manifest.provenance`: the training split's fingerprint and counts into json_stats.log
and every checkpoint (``data_manifest``, with the hashes a test's leakage check reads)."""

from __future__ import annotations

from rs3d.manifest.listing import ListFormat
from rs3d.manifest.provenance import SplitProvenance, describe_split

CHECKPOINT_KEY = "data_manifest"


def split_provenance(cfg, split: str) -> SplitProvenance:
    d = cfg.DATA
    fmt = ListFormat(d.PATH_PREFIX or "", d.PATH_LABEL_SEPARATOR, d.MULTI_LABEL)
    return describe_split(d.PATH_TO_DATA_DIR, split, fmt, d.MANIFEST or "")


def training_set_entry(cfg, stats) -> dict:
    """The training split's provenance: written to ``stats`` (json_stats.log) now, and returned
    as the checkpoint entry (with the key and content hashes a test's leakage check reads)."""
    prov = split_provenance(cfg, "train")
    stats.write({"_type": CHECKPOINT_KEY, **prov.record()})
    return prov.checkpoint_entry()
