"""Weights for a model to evaluate or use: which file, and loading it so that it must fit.

One owner for the rule every user of a trained model follows (the test, ``rs3d-predict``,
features, timelines, Grad-CAM): ``TEST.CHECKPOINT_FILE_PATH`` or the newest good checkpoint under
``OUTPUT_DIR``; EMA weights when asked and present; foreign formats through
``rs3d.models.convert``; a classifier that does not fit is an error, never a random head.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch

from .. import file_io
from ..errors import EvaluationError
from ..models.convert import fit_hint, load_pretrained, strip_wrapper_prefixes
from .files import find_latest_checkpoint, load_checkpoint

logger = logging.getLogger(__name__)


def resolve_checkpoint(checkpoint_path: str, output_dir: str) -> str:
    """The file to evaluate: the one given, else the newest checkpoint under ``output_dir``."""
    if checkpoint_path:  # a URL is downloaded when loaded, which then says why it fails
        if not file_io.is_url(checkpoint_path) and not file_io.isfile(checkpoint_path):
            raise EvaluationError(f"TEST.CHECKPOINT_FILE_PATH {checkpoint_path} does not exist")
        return checkpoint_path
    path = find_latest_checkpoint(output_dir)
    if not path:
        raise EvaluationError(
            f"no checkpoint under {output_dir}/checkpoints; train first or set TEST.CHECKPOINT_FILE_PATH"
        )
    return path


def is_rs3d_checkpoint(ckpt) -> bool:
    """rs3d checkpoints are dicts with a ``model`` state dict (PySlowFast uses ``model_state``)."""
    return isinstance(ckpt, Mapping) and isinstance(ckpt.get("model"), Mapping)


def load_weights(
    model: torch.nn.Module, path: str, use_ema: bool = True, inflate: bool = False, inflate_mode: str = "center"
) -> str:
    """Load ``path`` into ``model``; returns which weights were used: "ema", "model" or the
    foreign format ("pytorchvideo", "pyslowfast", "2d").

    rs3d checkpoints give their EMA weights when ``use_ema`` and they hold one (the recipe
    evaluates the EMA model), else the raw weights, and must fit the model exactly. Anything else
    goes through ``rs3d.models.convert.load_pretrained``; its classifier must fit too, since a
    classifier left at random initialisation would publish chance-level numbers. Every file is
    read with ``weights_only=True`` first, so a pickle that would run code is refused before use.
    """
    ckpt = load_checkpoint(path)
    if not is_rs3d_checkpoint(ckpt):
        del ckpt
        before = [p.detach().clone() for p in model.get_classifier().parameters()]
        fmt = load_pretrained(model, path, inflate=inflate, inflate_mode=inflate_mode)
        after = list(model.get_classifier().parameters())
        if before and all(torch.equal(b, a) for b, a in zip(before, after)):
            raise EvaluationError(
                f"{path} ({fmt}): its classifier does not fit MODEL.NUM_CLASSES "
                f"{getattr(model, 'num_classes', '?')}; evaluating a random classifier is meaningless"
            )
        return fmt
    which = "model"
    if use_ema:
        if isinstance(ckpt.get("ema"), Mapping):
            which = "ema"
        else:
            logger.warning("%s has no EMA weights; evaluating the raw model weights", path)
    sd = strip_wrapper_prefixes(ckpt[which])
    try:
        result = model.load_state_dict(sd, strict=False)
    except RuntimeError as e:  # shape mismatches
        detail = " ".join(str(e).split())[:300]
        raise EvaluationError(
            f"{path}: weights do not fit MODEL.ARCH / MODEL.NUM_CLASSES: {fit_hint(sd)}. Detail: {detail}"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise EvaluationError(
            f"{path}: weights do not fit MODEL.ARCH (missing {len(result.missing_keys)} keys, e.g. "
            f"{result.missing_keys[:3]}; unexpected {len(result.unexpected_keys)}, e.g. "
            f"{result.unexpected_keys[:3]}); {fit_hint(sd)}"
        )
    return which
