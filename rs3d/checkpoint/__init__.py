"""Checkpoint files, one owner for reading and writing them, below both training and inference.

    files.py    names and positions, atomic save, ``weights_only`` load, newest-good lookup, pruning
    weights.py  the weights a trained model is used with: which file, EMA or not, must fit the model
    metadata.py what a checkpoint says about itself (config, classes, architecture, clip, version)
    own_config.py  the config a tool uses a checkpoint with: its stored one, overrides on top

Training (``rs3d.engine``) writes and resumes through these; the test, prediction and every
inference tool load through ``load_weights``.
"""

from .files import (
    best_checkpoint_path,
    checkpoint_dir,
    checkpoint_path,
    checkpoint_position,
    find_latest_checkpoint,
    latest_good_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    remove_stale_temporaries,
    save_checkpoint,
)
from .metadata import METADATA_KEY, checkpoint_metadata, read_description
from .own_config import load_model_config
from .weights import is_rs3d_checkpoint, load_weights, resolve_checkpoint

__all__ = [
    "METADATA_KEY",
    "checkpoint_metadata",
    "read_description",
    "load_model_config",
    "best_checkpoint_path",
    "checkpoint_dir",
    "checkpoint_path",
    "checkpoint_position",
    "find_latest_checkpoint",
    "is_rs3d_checkpoint",
    "latest_good_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_weights",
    "prune_checkpoints",
    "remove_stale_temporaries",
    "resolve_checkpoint",
    "save_checkpoint",
]
