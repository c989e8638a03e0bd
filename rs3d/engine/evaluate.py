"""The multi-view test (``tools/test_net.py``): every test video once, on one process or many.

Flow of ``test(cfg)``::

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
"""
from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Optional, Sequence

import torch

from rs3d import io as rs3d_io
from rs3d.engine import distributed as du
from rs3d.engine.metrics import aggregate_views, compute_metrics, multilabel_metrics, topk_indices

logger = logging.getLogger(__name__)

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


from ..errors import EvaluationError  # noqa: F401  (re-exported)


# ----------------------------------------------------------------------------- weights
def resolve_checkpoint(checkpoint_path: str, output_dir: str) -> str:
    """The file to evaluate: the one given, else the newest checkpoint under ``output_dir``."""
    if checkpoint_path:  # a URL is downloaded when loaded, which then says why it fails
        if not rs3d_io.is_url(checkpoint_path) and not rs3d_io.isfile(checkpoint_path):
            raise EvaluationError(f"TEST.CHECKPOINT_FILE_PATH {checkpoint_path} does not exist")
        return checkpoint_path
    from rs3d.engine.checkpoint import find_latest_checkpoint

    path = find_latest_checkpoint(output_dir)
    if not path:
        raise EvaluationError(
            f"no checkpoint under {output_dir}/checkpoints; train first or set TEST.CHECKPOINT_FILE_PATH")
    return path


def is_rs3d_checkpoint(ckpt) -> bool:
    """rs3d checkpoints are dicts with a ``model`` state dict (PySlowFast uses ``model_state``)."""
    return isinstance(ckpt, Mapping) and isinstance(ckpt.get("model"), Mapping)


def load_weights(model: torch.nn.Module, path: str, use_ema: bool = True, inflate: bool = False,
                 inflate_mode: str = "center") -> str:
    """Load ``path`` into ``model``; returns which weights were used: "ema", "model" or the
    foreign format ("pytorchvideo", "pyslowfast", "2d").

    rs3d checkpoints give their EMA weights when ``use_ema`` and they hold one (the recipe
    evaluates the EMA model), else the raw weights, and must fit the model exactly. Anything else
    goes through ``rs3d.models.convert.load_pretrained``; its classifier must fit too, since a
    classifier left at random initialisation would publish chance-level numbers. Every file is
    read with ``weights_only=True`` first, so a pickle that would run code is refused before use.
    """
    from rs3d.engine.checkpoint import load_checkpoint
    from rs3d.models.convert import strip_wrapper_prefixes

    ckpt = load_checkpoint(path)
    if not is_rs3d_checkpoint(ckpt):
        from rs3d.models.convert import load_pretrained

        del ckpt
        before = [p.detach().clone() for p in model.get_classifier().parameters()]
        fmt = load_pretrained(model, path, inflate=inflate, inflate_mode=inflate_mode)
        after = list(model.get_classifier().parameters())
        if before and all(torch.equal(b, a) for b, a in zip(before, after)):
            raise EvaluationError(
                f"{path} ({fmt}): its classifier does not fit MODEL.NUM_CLASSES "
                f"{getattr(model, 'num_classes', '?')}; evaluating a random classifier is meaningless")
        return fmt
    which = "model"
    if use_ema:
        if isinstance(ckpt.get("ema"), Mapping):
            which = "ema"
        else:
            logger.warning("%s has no EMA weights; evaluating the raw model weights", path)
    try:
        result = model.load_state_dict(strip_wrapper_prefixes(ckpt[which]), strict=False)
    except RuntimeError as e:  # shape mismatches
        detail = " ".join(str(e).split())[:300]
        raise EvaluationError(f"{path}: weights do not fit MODEL.ARCH / MODEL.NUM_CLASSES: {detail}") from None
    if result.missing_keys or result.unexpected_keys:
        raise EvaluationError(
            f"{path}: weights do not fit MODEL.ARCH (missing {len(result.missing_keys)} keys, e.g. "
            f"{result.missing_keys[:3]}; unexpected {len(result.unexpected_keys)}, e.g. "
            f"{result.unexpected_keys[:3]}); is the config the one it was trained with?")
    return which


# ----------------------------------------------------------------------------- inference
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
    from rs3d.data import num_views, prepare_views, to_model_input, views_of

    on_device = prepare_views(item, device)
    n = num_views(item)
    probs = []
    for start in range(0, n, chunk_size):
        x = to_model_input(views_of(on_device, start, min(start + chunk_size, n)), mean, std)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype != torch.float32):
            logits = model(x)
        logits = logits.float()
        probs.append((logits.sigmoid() if activation == "sigmoid" else logits.softmax(dim=1)).cpu())
    return torch.cat(probs)


def label_of(label):
    """A record's label: the class index, or for a multi-hot label (multi-label data) the sorted
    list of its classes."""
    if isinstance(label, torch.Tensor) and label.dim() == 1:
        return torch.nonzero(label).view(-1).tolist()
    return int(label)


def run_inference(model, loader, *, num_views: int, ensemble_method: str, mean, std,
                  chunk_size: int, device: torch.device, amp_dtype: torch.dtype = torch.float32,
                  log_period: int = 10, multi_label: bool = False) -> list[dict]:
    """One record per video of this rank's shard: index, path, label, scores (or error)."""
    from rs3d.data import num_views as views_in

    model.eval()
    records = []
    t0 = time.perf_counter()
    for batch in loader:
        for item in batch:
            rec = {"index": int(item["index"]), "path": str(item["path"]),
                   "label": label_of(item["label"]), "scores": None, "error": str(item["error"])}
            if not rec["error"]:
                if views_in(item) != num_views:
                    raise EvaluationError(
                        f"{rec['path']}: the loader gave {views_in(item)} views, expected {num_views}")
                probs = video_scores(model, item, mean, std, chunk_size, device, amp_dtype,
                                     activation="sigmoid" if multi_label else "softmax")
                rec["scores"] = aggregate_views(probs.double(), ensemble_method).numpy()
            records.append(rec)
        if log_period and len(records) % log_period == 0 and du.is_main_process():
            rate = len(records) / max(time.perf_counter() - t0, 1e-9)
            logger.info("rank 0: %d/%d videos, %.2f videos/s", len(records),
                        _shard_size(loader), rate)
    return records


def _shard_size(loader) -> int:
    try:
        return len(loader.sampler) if loader.sampler is not None else len(loader.dataset)
    except TypeError:
        return -1


def merge_records(per_rank: Sequence[Sequence[dict]], num_videos: int) -> list[dict]:
    """All ranks' records, each video once, in index order; raises unless every video is there.

    Duplicates (a sampler that pads shards) are dropped by index; a missing index means some
    video was never evaluated, and no number computed without it can be published.
    """
    by_index: dict[int, dict] = {}
    for records in per_rank:
        for rec in records:
            by_index.setdefault(rec["index"], rec)
    missing = sorted(set(range(num_videos)) - set(by_index))
    extra = sorted(set(by_index) - set(range(num_videos)))
    if missing or extra:
        raise EvaluationError(
            f"test set has {num_videos} videos but {len(missing)} were never evaluated "
            f"(e.g. indices {missing[:5]}) and {len(extra)} are unknown (e.g. {extra[:5]})")
    return [by_index[i] for i in range(num_videos)]


def _multi_hot(labels: Sequence[Sequence[int]], num_classes: int) -> torch.Tensor:
    out = torch.zeros(len(labels), num_classes, dtype=torch.bool)
    for i, classes in enumerate(labels):
        out[i, list(classes)] = True
    return out


def summarize(records: Sequence[dict], num_classes: int, multi_label: bool = False) -> dict:
    """Metrics of the merged records (decoded videos; failures counted separately)."""
    ok = [r for r in records if r["error"] == ""]
    if ok:
        scores = torch.stack([torch.as_tensor(r["scores"], dtype=torch.float64) for r in ok])
    else:
        scores = torch.zeros(0, num_classes, dtype=torch.float64)
    if multi_label:
        failed = [r["label"] for r in records if r["error"]]
        metrics = multilabel_metrics(scores, _multi_hot([r["label"] for r in ok], num_classes),
                                     _multi_hot(failed, num_classes))
        metrics["failed"] = [{"path": r["path"], "reason": r["error"]} for r in records if r["error"]]
        return metrics
    labels = torch.tensor([r["label"] for r in ok], dtype=torch.long)
    metrics = compute_metrics(scores, labels, num_failed=len(records) - len(ok), num_classes=num_classes)
    metrics["failed"] = [{"path": r["path"], "reason": r["error"]} for r in records if r["error"]]
    return metrics


# ----------------------------------------------------------------------------- outputs
def _write_atomic(path: str, text: str) -> None:
    rs3d_io.atomic_write_text(path, text)  # OUTPUT_DIR may be an object store


def write_predictions(path: str, records: Sequence[dict], class_names: Optional[Sequence[str]], k: int = 5) -> None:
    """CSV, one row per video in test-list order: path, label, top-k classes and scores, error."""
    import io

    def name(c):
        if isinstance(c, list):  # multi-label: every class of the video
            return ";".join(name(x) for x in c)
        return class_names[c] if class_names and 0 <= c < len(class_names) else ""

    buf = io.StringIO()
    w = csv.writer(buf)
    header = ["path", "label", "label_name"]
    for i in range(1, k + 1):
        header += [f"pred_{i}", f"name_{i}", f"score_{i}"]
    w.writerow(header + ["error"])
    for r in records:
        label = ",".join(map(str, r["label"])) if isinstance(r["label"], list) else r["label"]
        row = [r["path"], label, name(r["label"])]
        if r["scores"] is not None:
            scores = torch.as_tensor(r["scores"]).view(1, -1)
            top = topk_indices(scores, k)[0].tolist()
            for c in top:
                row += [c, name(c), f"{scores[0, c].item():.6f}"]
            row += ["", "", ""] * (k - len(top))
        else:
            row += ["", "", ""] * k
        w.writerow(row + [r["error"]])
    _write_atomic(path, buf.getvalue())


def plot_confusion_matrix(conf: torch.Tensor, path: str, class_names: Optional[Sequence[str]] = None,
                          num_failed: int = 0) -> None:
    """The test run's confusion matrix and per-class accuracy as one PNG (see rs3d.inference.confusion)."""
    from rs3d.inference.confusion import plot_confusion_and_accuracy

    plot_confusion_and_accuracy(conf, path, class_names, num_failed)


def class_names_for(data_dir: str, num_classes: int) -> Optional[list[str]]:
    """``classes.txt`` of the data folder, else the shipped Kinetics-400 names for 400 classes."""
    from rs3d.data import read_classes

    names = read_classes(data_dir) if data_dir else None
    if names is None and num_classes == 400:
        names = kinetics400_class_names()
    if names is not None and len(names) != num_classes:
        logger.warning("%d class names for %d classes; reporting class indices only", len(names), num_classes)
        return None
    return names


def kinetics400_class_names() -> list[str]:
    """The 400 Kinetics-400 classes in the standard (alphabetical) label order."""
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "k400_classes.txt")
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


# ----------------------------------------------------------------------------- entry point
def test(cfg) -> dict:
    """Run the multi-view test described by ``cfg``; returns the metrics on every rank.

    Rank 0 writes ``OUTPUT_DIR/test_metrics.json``, ``test_predictions.csv`` and
    ``test_confusion_matrix.png`` (multi-label data: ``test_per_class_ap.csv`` instead). Works as a
    plain process or under torchrun.
    """
    from rs3d.data import build_loader
    from rs3d.models import build_model

    owns_group = not du.is_dist()
    info = du.init_distributed(cfg.DEVICE, cfg.DIST_BACKEND, cfg.DIST_TIMEOUT_S)
    if info.device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(cfg.CUDNN_BENCHMARK)
    try:
        ckpt_path = resolve_checkpoint(cfg.TEST.CHECKPOINT_FILE_PATH, cfg.OUTPUT_DIR)
        model = build_model(cfg)
        weights = load_weights(model, ckpt_path, cfg.TEST.USE_EMA, inflate=cfg.TRAIN.CHECKPOINT_INFLATE,
                               inflate_mode=cfg.TRAIN.CHECKPOINT_INFLATE_MODE)
        model.to(info.device).eval()
        # bf16/fp16 autocast follows the training precision on GPU; on CPU it only slows the test.
        amp = AMP_DTYPES[cfg.TRAIN.AMP_DTYPE] if info.device.type == "cuda" else torch.float32
        loader = build_loader(cfg, cfg.TEST.SPLIT, "test", batch_size=1,
                              rank=info.rank, world_size=info.world_size)
        num_videos = len(loader.dataset)
        num_views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
        if info.is_main:
            logger.info("testing %s (%s weights) on %d videos of %s.csv, %d views each, %d process(es)",
                        ckpt_path, weights, num_videos, cfg.TEST.SPLIT, num_views, info.world_size)
        t0 = time.perf_counter()
        records = run_inference(
            model, loader, num_views=num_views, ensemble_method=cfg.TEST.ENSEMBLE_METHOD,
            mean=cfg.DATA.MEAN, std=cfg.DATA.STD, chunk_size=cfg.TEST.BATCH_SIZE,
            device=info.device, amp_dtype=amp, log_period=cfg.LOG_PERIOD,
            multi_label=cfg.DATA.MULTI_LABEL)
        gathered = du.all_gather_object(records)
        elapsed = time.perf_counter() - t0
        merged = merge_records(gathered, num_videos)
        metrics = summarize(merged, cfg.MODEL.NUM_CLASSES, multi_label=cfg.DATA.MULTI_LABEL)
        conf = metrics.pop("confusion_matrix", None)  # none for multi-label data
        metrics.update(
            views_per_video=num_views,
            num_ensemble_views=cfg.TEST.NUM_ENSEMBLE_VIEWS,
            num_spatial_crops=cfg.TEST.NUM_SPATIAL_CROPS,
            ensemble_method=cfg.TEST.ENSEMBLE_METHOD,
            checkpoint=os.path.abspath(ckpt_path) if rs3d_io.is_local(ckpt_path) else ckpt_path,
            weights=weights,
            arch=cfg.MODEL.ARCH,
            split=cfg.TEST.SPLIT,
            videos_per_second=num_videos / max(elapsed, 1e-9),
            seconds=elapsed,
            world_size=info.world_size,
        )
        if info.is_main:
            _write_outputs(cfg, metrics, merged, conf)
        du.barrier()
        return metrics
    finally:
        if owns_group:
            du.cleanup()


# pytest would collect a function named ``test`` imported into a test module; it is not a test.
test.__test__ = False


def _write_per_class_ap(path: str, metrics: dict, class_names: Optional[Sequence[str]]) -> None:
    """Multi-label test: one row per class (index, name, decoded videos with it, AP in percent or
    empty for a class without positives), in class order."""
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["class", "name", "positives", "ap"])
    for c, (ap, pos) in enumerate(zip(metrics["per_class_ap"], metrics["class_positives"])):
        w.writerow([c, class_names[c] if class_names else "", pos, "" if ap is None else f"{ap:.4f}"])
    _write_atomic(path, buf.getvalue())


def _write_outputs(cfg, metrics: dict, records: Sequence[dict], conf: Optional[torch.Tensor]) -> None:
    out = cfg.OUTPUT_DIR
    rs3d_io.mkdirs(out)
    names = class_names_for(cfg.DATA.PATH_TO_DATA_DIR, cfg.MODEL.NUM_CLASSES)
    _write_atomic(os.path.join(out, "test_metrics.json"), json.dumps(metrics, indent=2) + "\n")
    write_predictions(os.path.join(out, "test_predictions.csv"), records, names)
    if conf is None:
        _write_per_class_ap(os.path.join(out, "test_per_class_ap.csv"), metrics, names)
        logger.info("mAP %.2f%% over %d classes with positives (%d without), top-1 %.2f%%  (%d videos, "
                    "%d failed) -> %s", metrics["mAP"], metrics["classes_with_positives"],
                    metrics["classes_without_positives"], metrics["top1"], metrics["num_videos"],
                    metrics["num_failed"], os.path.join(out, "test_metrics.json"))
        return
    png = os.path.join(out, "test_confusion_matrix.png")
    if rs3d_io.is_local(out):
        plot_confusion_matrix(conf, png, names, metrics["num_failed"])
    else:  # matplotlib writes local files: plot here, then upload
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            plot_confusion_matrix(conf, os.path.join(tmp, "cm.png"), names, metrics["num_failed"])
            rs3d_io.upload(os.path.join(tmp, "cm.png"), png)
    logger.info("top-1 %.2f%%  top-5 %.2f%%  mean class %.2f%%  (%d videos, %d failed) -> %s",
                metrics["top1"], metrics["top5"], metrics["mean_class_accuracy"],
                metrics["num_videos"], metrics["num_failed"], os.path.join(out, "test_metrics.json"))
