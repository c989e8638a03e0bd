"""Top-k predictions for a few video files with the test protocol (``rs3d-predict``).

Same views, same per-view activation (softmax, or a sigmoid per class with ``DATA.MULTI_LABEL``)
and ``TEST.ENSEMBLE_METHOD`` aggregation (``rs3d.inference.views``), and the same model and class
names (``rs3d.inference.model.load_model``) as the multi-view test (``rs3d.evaluation``), so a
video's prediction here equals its row of ``test_predictions.csv``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from ..data import VideoRecord
from ..data.loader import multiview_dataset
from ..engine.metrics import topk_indices
from .model import load_model
from .views import config_scoring, refuse_nonfinite_scores, run_inference


def build_views_dataset(cfg, paths: Sequence[str]):
    """A test-mode dataset over ``paths`` (label unknown: 0), decoding exactly as ``TEST.SPLIT`` does."""
    return multiview_dataset(cfg, [VideoRecord(str(p), 0) for p in paths])


def top_classes(scores, k: int, class_names: Optional[Sequence[str]]) -> list[dict]:
    """``[{class, name, score}]`` for the k best classes of one video's scores, best first."""
    s = torch.as_tensor(scores, dtype=torch.float64).view(1, -1)
    return [
        {"class": c, "name": class_names[c] if class_names else str(c), "score": float(s[0, c])}
        for c in topk_indices(s, k)[0].tolist()
    ]


def predict(cfg, paths: Sequence[str], k: int = 5, device: str = "") -> list[dict]:
    """``[{path, top: [{class, name, score}], error}]`` for each of ``paths``, in order.

    Weights: ``TEST.CHECKPOINT_FILE_PATH`` or the newest checkpoint under ``OUTPUT_DIR`` (EMA
    unless ``TEST.USE_EMA`` is False). A video that cannot be decoded gets ``error`` and no ``top``.
    NaN/inf scores (diverged or damaged weights) raise ``NonFiniteOutputError``: no top classes.
    """
    loaded = load_model(cfg, device)
    dataset = build_views_dataset(cfg, paths)
    batches = ([dataset[i]] for i in range(len(dataset)))
    records = run_inference(
        loaded.model,
        batches,
        num_views=cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS,
        device=loaded.device,
        amp_dtype=loaded.amp_dtype,
        log_period=0,
        multi_label=loaded.multi_label,
        **config_scoring(cfg),
    )
    refuse_nonfinite_scores(records, loaded.checkpoint)
    names = loaded.class_names
    return [
        {
            "path": r["path"],
            "error": r["error"],
            "top": top_classes(r["scores"], k, names) if r["scores"] is not None else [],
        }
        for r in records
    ]


def format_predictions(preds: Sequence[dict]) -> str:
    """Human-readable block per video: the path, then one ``rank. score  name`` line per class."""
    lines = []
    for p in preds:
        lines.append(p["path"])
        if p["error"]:
            lines.append(f"  error: {p['error']}")
        for i, t in enumerate(p["top"], 1):
            lines.append(f"  {i}. {t['score']:.4f}  {t['name']}")
    return "\n".join(lines)
