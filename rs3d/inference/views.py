"""A trained model's scores for test items: every view of a video, aggregated into one record.

Used by ``rs3d-predict`` (``rs3d.inference.predict``) and the multi-view test
(``rs3d.evaluation.multiview``), so a video's prediction equals its row of ``test_predictions.csv``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Sequence

import torch

from ..data import num_views as views_in
from ..data import prepare_views, to_model_input, views_of
from ..engine import distributed as du
from ..engine.batches import end_iterator_workers
from ..engine.metrics import aggregate_views
from ..engine.precision import autocast
from ..errors import EvaluationError, NonFiniteOutputError

logger = logging.getLogger(__name__)


@torch.inference_mode()
def video_scores(
    model: torch.nn.Module,
    item: Mapping,
    mean: Sequence[float],
    std: Sequence[float],
    chunk_size: int,
    device: torch.device,
    amp_dtype: torch.dtype = torch.float32,
    activation: str = "softmax",
) -> torch.Tensor:
    """Softmax probabilities ``[V, K]`` (float32, CPU) of one test item's views (``TestDataset``);
    per-class sigmoids with ``activation="sigmoid"`` (multi-label data).

    The item's uint8 frames go to the device once (and are resized there if the loader left that
    to the device); the views are cut there (``rs3d.data.views_of``), ``chunk_size`` at a time, and
    normalised on the device.
    """

    def probabilities(logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid() if activation == "sigmoid" else logits.softmax(dim=1)

    return map_views(model, item, mean, std, chunk_size, device, amp_dtype, probabilities)


def map_views(
    run,
    item: Mapping,
    mean: Sequence[float],
    std: Sequence[float],
    chunk_size: int,
    device: torch.device,
    amp_dtype: torch.dtype,
    finish,
) -> torch.Tensor:
    """``finish(run(views).float())`` over a test item's views, ``chunk_size`` at a time, on the CPU.

    The one way views reach a model: the item's uint8 frames go to the device once (resized there
    if the loader left that to the device), the views are cut there (``rs3d.data.views_of``) and
    normalised there; the test's scores and the features cut them alike.
    """
    on_device = prepare_views(item, device)
    n = views_in(item)
    out = []
    for start in range(0, n, chunk_size):
        x = to_model_input(views_of(on_device, start, min(start + chunk_size, n)), mean, std)
        with autocast(device, amp_dtype):
            y = run(x)
        out.append(finish(y.float()).cpu())
    return torch.cat(out)


def label_of(label):
    """A record's label: the class index, or for a multi-hot label (multi-label data) the sorted
    list of its classes."""
    if isinstance(label, torch.Tensor) and label.dim() == 1:
        return torch.nonzero(label).view(-1).tolist()
    return int(label)


@dataclass(frozen=True)
class _Scoring:
    """How :func:`run_inference` scores each video (its keyword arguments)."""

    num_views: int
    ensemble_method: str
    mean: Sequence[float]
    std: Sequence[float]
    chunk_size: int
    device: torch.device
    amp_dtype: torch.dtype
    log_period: int
    multi_label: bool


def config_scoring(cfg) -> dict:
    """The :func:`run_inference` arguments a config sets (view ensemble, normalisation, views per
    forward): one rule for ``rs3d-test`` and ``rs3d-predict``."""
    return dict(
        ensemble_method=cfg.TEST.ENSEMBLE_METHOD, mean=cfg.DATA.MEAN, std=cfg.DATA.STD, chunk_size=cfg.TEST.BATCH_SIZE
    )


def run_inference(
    model,
    loader,
    *,
    num_views: int,
    ensemble_method: str,
    mean,
    std,
    chunk_size: int,
    device: torch.device,
    amp_dtype: torch.dtype = torch.float32,
    log_period: int = 10,
    multi_label: bool = False,
) -> list[dict]:
    """One record per video of this rank's shard: index, path, label, scores (or error)."""
    scoring = _Scoring(num_views, ensemble_method, mean, std, chunk_size, device, amp_dtype, log_period, multi_label)
    model.eval()
    records = []
    t0 = time.perf_counter()
    batches = iter(loader)
    try:
        _score_batches(model, batches, records, loader, t0, scoring)
    finally:
        # Loader workers end now, also when an error (or SIGTERM, rs3d.cli.signals) stops the loop,
        # rather than when the iterator is collected or the workers notice their parent is gone.
        end_iterator_workers(batches, loader)
    return records


def _score_batches(model, batches, records: list, loader, t0: float, s: _Scoring) -> None:
    for batch in batches:
        for item in batch:
            rec = {
                "index": int(item["index"]),
                "path": str(item["path"]),
                "label": label_of(item["label"]),
                "scores": None,
                "error": str(item["error"]),
            }
            if not rec["error"]:
                if views_in(item) != s.num_views:
                    raise EvaluationError(
                        f"{rec['path']}: the loader gave {views_in(item)} views, expected {s.num_views}"
                    )
                activation = "sigmoid" if s.multi_label else "softmax"
                probs = video_scores(
                    model, item, s.mean, s.std, s.chunk_size, s.device, s.amp_dtype, activation=activation
                )
                rec["scores"] = aggregate_views(probs.double(), s.ensemble_method).numpy()
            records.append(rec)
        if s.log_period and len(records) % s.log_period == 0 and du.is_main_process():
            rate = len(records) / max(time.perf_counter() - t0, 1e-9)
            logger.info("rank 0: %d/%d videos, %.2f videos/s", len(records), _shard_size(loader), rate)


def refuse_nonfinite_scores(records: Sequence[dict], checkpoint: str) -> None:
    """``NonFiniteOutputError`` when any video's scores hold NaN/inf: a diverged or damaged model,
    whose NaN scores would otherwise tie and all go to class 0 (the top-1 becoming that class's share)."""
    scored = [r for r in records if r["scores"] is not None]
    bad = [r for r in scored if not torch.isfinite(torch.as_tensor(r["scores"])).all()]
    if bad:
        raise NonFiniteOutputError(
            f"the model gives non-finite (NaN/inf) scores for {len(bad)} of {len(scored)} videos (e.g. "
            f"{bad[0]['path']}); nothing was scored: the weights of {checkpoint} are diverged or damaged"
        )


def _shard_size(loader) -> int:
    try:
        return len(loader.sampler) if loader.sampler is not None else len(loader.dataset)
    except TypeError:
        return -1
