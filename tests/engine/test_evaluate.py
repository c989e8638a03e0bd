"""Pieces of the multi-view test, in one process: weights, view scoring, merging, outputs."""

import csv
import os
import pickle

import numpy as np
import pytest
import torch

import rs3d
from rs3d.checkpoint import load_weights, resolve_checkpoint
from rs3d.data import kinetics400_class_names, views_of
from rs3d.errors import CheckpointError, EvaluationError
from rs3d.evaluation.confusion import plot_confusion_and_accuracy as plot_confusion_matrix
from rs3d.evaluation.records import merge_records, summarize
from rs3d.evaluation.reports import write_predictions
from rs3d.inference.views import video_scores


def tiny(num_classes=4, seed=0):
    torch.manual_seed(seed)
    return rs3d.create_model("resnet3d_rs26", num_classes=num_classes, width_multiplier=0.25).eval()


def rec(index, label, scores=None, error=""):
    return {
        "index": index,
        "path": f"v{index}.mp4",
        "label": label,
        "scores": None if scores is None else np.asarray(scores, dtype=np.float64),
        "error": error,
    }


# ----------------------------------------------------------------------------- weights
def save_rs3d(path, model, ema=None):
    state = {"model": model.state_dict(), "epoch": 3, "iteration": 30, "cfg": "MODEL: {}\n"}
    if ema is not None:
        state["ema"] = ema.state_dict()
    torch.save(state, path)
    return str(path)


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_ema_weights_by_default_raw_weights_on_request(tmp_path):
    raw, ema = tiny(seed=1), tiny(seed=2)
    path = save_rs3d(tmp_path / "c.pyth", raw, ema)
    m = tiny(seed=3)
    assert load_weights(m, path, use_ema=True) == "ema" and same_weights(m, ema)
    assert load_weights(m, path, use_ema=False) == "model" and same_weights(m, raw)


def test_checkpoint_without_ema_falls_back_to_raw_weights(tmp_path):
    raw = tiny(seed=1)
    path = save_rs3d(tmp_path / "c.pyth", raw)
    m = tiny(seed=3)
    assert load_weights(m, path, use_ema=True) == "model" and same_weights(m, raw)


def test_ddp_prefixed_keys_load(tmp_path):
    raw = tiny(seed=1)
    torch.save({"model": {"module." + k: v for k, v in raw.state_dict().items()}, "epoch": 1}, tmp_path / "c.pyth")
    m = tiny(seed=3)
    load_weights(m, str(tmp_path / "c.pyth"), use_ema=False)
    assert same_weights(m, raw)


def test_checkpoint_of_another_model_is_one_clear_error(tmp_path):
    path = save_rs3d(tmp_path / "c.pyth", tiny(num_classes=7))
    with pytest.raises(EvaluationError, match="do not fit") as e:
        load_weights(tiny(num_classes=4), path)
    assert "\n" not in str(e.value)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pyth"
    with open(path, "wb") as f:
        pickle.dump({"model": _RunsCode()}, f)
    torch.save({"model": {"x": torch.zeros(1)}, "payload": _RunsCode()}, tmp_path / "evil2.pyth")
    for p in (path, tmp_path / "evil2.pyth"):
        with pytest.raises(CheckpointError) as e:
            load_weights(tiny(), str(p))
        assert "\n" not in str(e.value) and str(p) in str(e.value)
    with pytest.raises(CheckpointError, match="refused"):
        load_weights(tiny(), str(tmp_path / "evil2.pyth"))


def test_pytorchvideo_slow_r50_state_dict_loads_into_slow_r50(tmp_path):
    from pytorchvideo.models.hub import slow_r50

    torch.manual_seed(0)
    ptv = slow_r50(pretrained=False)
    path = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save(ptv.state_dict(), path)
    model = rs3d.create_model("slow_r50", num_classes=400)
    assert load_weights(model, str(path)) == "pytorchvideo"
    # The classifier and the last BN came across (not left at their initialisation).
    assert torch.equal(model.get_classifier().weight, ptv.blocks[5].proj.weight)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ptv.parameters())


def test_foreign_checkpoint_with_another_label_set_is_refused_for_testing(tmp_path):
    from pytorchvideo.models.hub import slow_r50

    torch.save(slow_r50(pretrained=False).state_dict(), tmp_path / "ptv.pyth")
    with pytest.raises(EvaluationError, match="classifier does not fit"):
        load_weights(rs3d.create_model("slow_r50", num_classes=10), str(tmp_path / "ptv.pyth"))


def test_resolve_checkpoint(tmp_path):
    with pytest.raises(EvaluationError, match="no checkpoint under"):
        resolve_checkpoint("", str(tmp_path))
    with pytest.raises(EvaluationError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "nope.pyth"), str(tmp_path))
    ckdir = tmp_path / "checkpoints"
    ckdir.mkdir()
    for epoch in (2, 10):
        save_rs3d(ckdir / f"checkpoint_epoch_{epoch:05d}.pyth", tiny())
    assert resolve_checkpoint("", str(tmp_path)).endswith("checkpoint_epoch_00010.pyth")


# ----------------------------------------------------------------------------- scoring
def test_video_scores_are_per_view_softmax_and_independent_of_chunking():
    model = tiny()
    # A compact test item: 9 resized 32x40 frames, 2 clips of 4 frames, 3 crops of 32.
    item = dict(
        frames=torch.randint(0, 256, (9, 32, 40, 3), dtype=torch.uint8),
        clip_frames=torch.tensor([[0, 2, 4, 6], [5, 6, 7, 8]]),
        crop_corners=torch.tensor([[0, 0], [0, 4], [0, 8]]),
        crop_size=32,
        resized_hw=(32, 40),
    )
    views = views_of(item)
    assert views.shape == (6, 3, 4, 32, 32)
    assert torch.equal(views[4], item["frames"][[5, 6, 7, 8], :, 4:36].permute(3, 0, 1, 2))
    mean, std = [0.45, 0.45, 0.45], [0.225, 0.225, 0.225]
    probs = video_scores(model, item, mean, std, chunk_size=4, device=torch.device("cpu"))
    assert probs.shape == (6, 4) and probs.dtype == torch.float32
    assert torch.allclose(probs.sum(1), torch.ones(6))
    with torch.no_grad():
        x = (views.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1, 1)
        expected = model(x).softmax(1)
    assert torch.allclose(probs, expected, atol=1e-5)
    one_by_one = video_scores(model, item, mean, std, chunk_size=1, device=torch.device("cpu"))
    assert torch.allclose(probs, one_by_one, atol=1e-5)


# ----------------------------------------------------------------------------- merging
def test_merge_keeps_each_video_once_in_index_order():
    rank0 = [rec(0, 0, [1, 0]), rec(2, 1, [0, 1]), rec(4, 0, [1, 0])]
    rank1 = [rec(1, 1, [0, 1]), rec(3, 0, error="truncated"), rec(0, 0, [1, 0])]  # 0 padded twice
    merged = merge_records([rank0, rank1], num_videos=5)
    assert [r["index"] for r in merged] == [0, 1, 2, 3, 4]


def test_merge_refuses_a_missing_video():
    with pytest.raises(EvaluationError, match="1 were never evaluated"):
        merge_records([[rec(0, 0, [1, 0])], [rec(2, 0, [1, 0])]], num_videos=3)


def test_summarize_counts_failures_both_ways():
    records = [rec(0, 0, [0.7, 0.3]), rec(1, 1, [0.6, 0.4]), rec(2, 1, error="empty file"), rec(3, 1, [0.1, 0.9])]
    m = summarize(records, num_classes=2)
    assert m["num_videos"] == 4 and m["num_failed"] == 1
    assert m["top1"] == pytest.approx(200 / 3)
    assert m["top1_counting_failures"] == pytest.approx(50.0)
    assert m["mean_class_accuracy"] == pytest.approx(75.0)  # class 0: 1/1, class 1: 1/2
    assert m["failed"] == [{"path": "v2.mp4", "reason": "empty file"}]


# ----------------------------------------------------------------------------- outputs
def test_predictions_csv_rows(tmp_path):
    names = ["a", "b", "c"]
    records = [rec(0, 2, [0.1, 0.3, 0.6]), rec(1, 0, error="not a video")]
    path = tmp_path / "p.csv"
    write_predictions(str(path), records, names, k=5)
    rows = list(csv.DictReader(open(path)))
    assert rows[0]["path"] == "v0.mp4" and rows[0]["label_name"] == "c"
    assert [rows[0][f"name_{i}"] for i in (1, 2, 3)] == ["c", "b", "a"]
    assert float(rows[0]["score_1"]) == pytest.approx(0.6)
    assert rows[0]["pred_4"] == "" and rows[0]["error"] == ""
    assert rows[1]["pred_1"] == "" and rows[1]["error"] == "not a video"


def test_confusion_png_is_written(tmp_path):
    conf = torch.tensor([[3, 1], [0, 2]])
    plot_confusion_matrix(conf, str(tmp_path / "c.png"), ["walking", "running"])
    plot_confusion_matrix(torch.eye(400, dtype=torch.long), str(tmp_path / "k400.png"), kinetics400_class_names())
    for name in ("c.png", "k400.png"):
        with open(tmp_path / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_kinetics400_names_ship_with_the_package():
    names = kinetics400_class_names()
    assert len(names) == 400 and len(set(names)) == 400 and names == sorted(names)
    assert names[:2] == ["abseiling", "air drumming"] and names[-1] == "zumba"
