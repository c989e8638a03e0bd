"""Top-k predictions for a few video files with the test protocol (``rs3d-predict``).

Same views, same softmax-then-aggregate rule and same weights resolution as the multi-view test
(``rs3d.engine.evaluate``), so a video's prediction here equals its row of ``test_predictions.csv``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from rs3d.engine.evaluate import (
    AMP_DTYPES,
    class_names_for,
    load_weights,
    resolve_checkpoint,
    run_inference,
)
from rs3d.engine.metrics import topk_indices


def build_views_dataset(cfg, paths: Sequence[str]):
    """A test-mode dataset over ``paths`` (label unknown: 0), decoding exactly as ``TEST.SPLIT`` does."""
    from rs3d.data import VideoRecord
    from rs3d.data.loader import multiview_dataset

    return multiview_dataset(cfg, [VideoRecord(str(p), 0) for p in paths])


def top_classes(scores, k: int, class_names: Optional[Sequence[str]]) -> list[dict]:
    """``[{class, name, score}]`` for the k best classes of one video's scores, best first."""
    s = torch.as_tensor(scores, dtype=torch.float64).view(1, -1)
    return [{"class": c, "name": class_names[c] if class_names else str(c), "score": float(s[0, c])}
            for c in topk_indices(s, k)[0].tolist()]


def predict(cfg, paths: Sequence[str], k: int = 5, device: str = "") -> list[dict]:
    """``[{path, top: [{class, name, score}], error}]`` for each of ``paths``, in order.

    Weights: ``TEST.CHECKPOINT_FILE_PATH`` or the newest checkpoint under ``OUTPUT_DIR`` (EMA
    unless ``TEST.USE_EMA`` is False). A video that cannot be decoded gets ``error`` and no ``top``.
    """
    from rs3d.models import build_model

    dev = torch.device(device or cfg.DEVICE or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = build_model(cfg)
    load_weights(model, resolve_checkpoint(cfg.TEST.CHECKPOINT_FILE_PATH, cfg.OUTPUT_DIR),
                 cfg.TEST.USE_EMA, inflate=cfg.TRAIN.CHECKPOINT_INFLATE,
                 inflate_mode=cfg.TRAIN.CHECKPOINT_INFLATE_MODE)
    model.to(dev).eval()
    dataset = build_views_dataset(cfg, paths)
    batches = ([dataset[i]] for i in range(len(dataset)))
    amp = AMP_DTYPES[cfg.TRAIN.AMP_DTYPE] if dev.type == "cuda" else torch.float32
    records = run_inference(
        model, batches, num_views=cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS,
        ensemble_method=cfg.TEST.ENSEMBLE_METHOD, mean=cfg.DATA.MEAN, std=cfg.DATA.STD,
        chunk_size=cfg.TEST.BATCH_SIZE, device=dev, amp_dtype=amp, log_period=0)
    names = class_names_for(cfg.DATA.PATH_TO_DATA_DIR, cfg.MODEL.NUM_CLASSES)
    return [{"path": r["path"], "error": r["error"],
             "top": top_classes(r["scores"], k, names) if r["scores"] is not None else []}
            for r in records]


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
