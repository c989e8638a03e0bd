"""The multi-view test (``rs3d-test``): every test video once, on one process or many.

Flow of ``run_test(cfg)``::

    checkpoint --load_weights--> model (eval, EMA weights by default)
    test loader (rank r of W gets a disjoint shard) --> per video: V views
        --video_scores--> softmax per view, aggregated over views --> one record per video
    all_gather_object(records) --> rank 0: dedupe by index, check each video exactly once
        --compute_metrics--> test_metrics.json, test_predictions.csv, test_confusion_matrix.png

Multi-label data (``DATA.MULTI_LABEL``): a sigmoid per view instead of the softmax, a record's
label is the list of its classes, and the metrics are mAP and per-class AP (``multilabel_metrics``).

Per-video scores depend only on the video and the weights (its views are cut into the same
chunks of ``TEST.BATCH_SIZE`` whatever the world size), so 1 process and N processes report the
same metrics. A video that cannot be decoded is a record with an ``error``, never an exception.
A model whose scores are NaN/inf (diverged or damaged weights) is refused: ``NonFiniteOutputError``,
nothing written.
"""

from __future__ import annotations

import logging
import os
import time

import torch

from .. import file_io
from ..data import build_loader
from ..engine import distributed as du
from ..inference.model import load_model
from ..inference.views import config_scoring, refuse_nonfinite_scores, run_inference
from .data_record import limited_test_dataset, record_test_set, with_counts
from .records import merge_records, summarize
from .reports import write_outputs

logger = logging.getLogger(__name__)


def run_test(cfg) -> dict:
    """Run the multi-view test described by ``cfg``; returns the metrics on every rank.

    Rank 0 writes ``OUTPUT_DIR/test_metrics.json``, ``test_predictions.csv`` and
    ``test_confusion_matrix.png`` (multi-label data: ``test_per_class_ap.csv`` instead). Works as a
    plain process or under torchrun.
    """
    owns_group = not du.is_dist()
    info = du.init_distributed(cfg.DEVICE, cfg.DIST_BACKEND, cfg.DIST_TIMEOUT_S)
    if info.device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(cfg.CUDNN_BENCHMARK)
    try:
        # bf16/fp16 autocast follows the training precision on GPU; on CPU it only slows the test.
        loaded = load_model(cfg, info.device)
        ckpt_path, weights = loaded.checkpoint, loaded.weights
        data_record = record_test_set(cfg, ckpt_path) if info.is_main else None  # fingerprint, leakage
        loader = build_loader(
            cfg,
            cfg.TEST.SPLIT,
            "test",
            batch_size=1,
            rank=info.rank,
            world_size=info.world_size,
            dataset=limited_test_dataset(cfg),
        )  # None: all; else TEST.SUBSET_MANIFEST's
        num_videos = len(loader.dataset)
        num_views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
        if info.is_main:
            logger.info(
                "testing %s (%s weights) on %d videos of %s.csv, %d views each, %d process(es)",
                ckpt_path,
                weights,
                num_videos,
                cfg.TEST.SPLIT,
                num_views,
                info.world_size,
            )
        t0 = time.perf_counter()
        records = run_inference(
            loaded.model,
            loader,
            num_views=num_views,
            device=info.device,
            amp_dtype=loaded.amp_dtype,
            log_period=cfg.LOG_PERIOD,
            multi_label=cfg.DATA.MULTI_LABEL,
            **config_scoring(cfg),
        )
        gathered = du.all_gather_object(records)
        elapsed = time.perf_counter() - t0
        merged = merge_records(gathered, num_videos)
        refuse_nonfinite_scores(merged, ckpt_path)  # every rank: all of them stop alike
        metrics = summarize(merged, cfg.MODEL.NUM_CLASSES, multi_label=cfg.DATA.MULTI_LABEL)
        conf = metrics.pop("confusion_matrix", None)  # none for multi-label data
        metrics.update(
            views_per_video=num_views,
            num_ensemble_views=cfg.TEST.NUM_ENSEMBLE_VIEWS,
            num_spatial_crops=cfg.TEST.NUM_SPATIAL_CROPS,
            ensemble_method=cfg.TEST.ENSEMBLE_METHOD,
            checkpoint=os.path.abspath(ckpt_path) if file_io.is_local(ckpt_path) else ckpt_path,
            weights=weights,
            arch=cfg.MODEL.ARCH,
            split=cfg.TEST.SPLIT,
            videos_per_second=num_videos / max(elapsed, 1e-9),
            seconds=elapsed,
            world_size=info.world_size,
        )
        if info.is_main:
            metrics["data_manifest"] = with_counts(data_record, metrics)
            write_outputs(cfg, metrics, merged, conf, loaded.class_names)
        du.barrier()
        return metrics
    finally:
        if owns_group:
            du.cleanup()
