"""Numbers that say where they came from: the fingerprint training and the test record, the
leakage warning, a test limited to a manifest's videos, and rescoring its predictions."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from kinetics_copies import CLASSES, make_clips, write_copy

from rs3d.cli.manifest import main as cli
from rs3d.config import load_config
from rs3d.engine.train import train
from rs3d.errors import DataError
from rs3d.evaluation import run_test
from rs3d.evaluation.rescore import rescore_predictions
from rs3d.manifest.build import build_manifest
from rs3d.manifest.listing import ListFormat
from rs3d.manifest.provenance import describe_split
from rs3d.manifest.table import read_manifest, write_manifest

pytestmark = pytest.mark.slow  # trains a model and runs the test several times (about 15 s)

COMPARED = (
    "top1",
    "top5",
    "mean_class_accuracy",
    "num_videos",
    "num_evaluated",
    "num_failed",
    "top1_counting_failures",
    "top5_counting_failures",
)


def _opts(data, out, **extra):
    opts = {
        "DATA.PATH_TO_DATA_DIR": str(data),
        "OUTPUT_DIR": str(out),
        "DEVICE": "cpu",
        "MODEL.ARCH": "resnet3d_rs26",
        "MODEL.NUM_CLASSES": len(CLASSES),
        "MODEL.WIDTH_MULTIPLIER": 0.125,
        "DATA.NUM_FRAMES": 4,
        "DATA.SAMPLING_RATE": 1,
        "DATA.TRAIN_CROP_SIZE": 32,
        "DATA.TEST_CROP_SIZE": 32,
        "DATA.DECODING_BACKEND": "pyav",
        "DATA_LOADER.NUM_WORKERS": 0,
        "TRAIN.BATCH_SIZE": 3,
        "TRAIN.AMP_DTYPE": "float32",
        "TRAIN.EVAL_PERIOD": 0,
        "SOLVER.MAX_EPOCH": 1,
        "SOLVER.REFERENCE_BATCH_SIZE": 3,
        "TENSORBOARD.ENABLE": False,
        "TEST.NUM_ENSEMBLE_VIEWS": 2,
        "TEST.NUM_SPATIAL_CROPS": 1,
        **extra,
    }
    return [str(x) for kv in opts.items() for x in kv]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A copy (3 classes; 3 train, 1 val, 4 test clips per class; one test file broken), its
    manifest, and a checkpoint trained one epoch on it."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("prov")
    clips = make_clips({"train": 3, "val": 1, "test": 4}, seed=7)
    data = write_copy(tmp / "copy", clips)
    broken = [c for c in clips if c.split == "test"][5]
    (data / broken.rel).write_bytes((data / broken.rel).read_bytes()[:300])
    build_manifest(str(data), str(tmp / "manifest"), workers=1, show_progress=False)
    train(load_config(None, _opts(data, tmp / "run")))
    return tmp, data, clips


def test_training_records_the_fingerprint_a_build_gives(trained):
    tmp, data, _ = trained
    manifest = json.loads((tmp / "manifest" / "manifest.json").read_text())["splits"]
    stats = [json.loads(x) for x in (tmp / "run" / "json_stats.log").read_text().splitlines()]
    rec = [r for r in stats if r["_type"] == "data_manifest"]
    assert len(rec) == 1
    assert rec[0]["fingerprint"] == manifest["train"]["fingerprint"]  # fast digests computed at start-up
    assert rec[0]["split"] == "train" and rec[0]["listed"] == 9 and rec[0]["missing"] == 0
    ckpt = torch.load(tmp / "run" / "checkpoints" / "checkpoint_epoch_00001.pyth", weights_only=True)
    entry = ckpt["data_manifest"]
    assert entry["fingerprint"] == manifest["train"]["fingerprint"] and entry["listed"] == 9
    assert entry["key_hashes"].shape == (9,) and entry["digest_hashes"].shape == (9,)


def test_the_test_records_its_split_and_no_leakage(trained):
    tmp, data, _ = trained
    manifest = json.loads((tmp / "manifest" / "manifest.json").read_text())["splits"]
    out = tmp / "run"
    cfg = load_config(None, _opts(data, out, **{"DATA.MANIFEST": str(tmp / "manifest")}))
    metrics = run_test(cfg)
    written = json.loads((out / "test_metrics.json").read_text())["data_manifest"]
    assert written == json.loads(json.dumps(metrics["data_manifest"]))
    assert written["fingerprint"] == manifest["test"]["fingerprint"]
    assert written["source"] == f"manifest {tmp / 'manifest'}"
    assert (written["listed"], written["evaluated"], written["decoded"], written["failed"]) == (12, 12, 11, 1)
    assert written["leakage"] == {"train_fingerprint": manifest["train"]["fingerprint"], "by_key": 0, "by_content": 0}


def test_a_test_on_training_videos_warns_of_leakage(trained, caplog):
    tmp, data, _ = trained
    leaky = tmp / "leaky"
    shutil.copytree(data, leaky, symlinks=True)
    train_lines = (leaky / "train.csv").read_text().splitlines()
    (leaky / "test.csv").write_text("\n".join(train_lines[:4]) + "\n")
    cfg = load_config(
        None,
        _opts(
            leaky,
            tmp / "leaky_out",
            **{"TEST.CHECKPOINT_FILE_PATH": str(tmp / "run" / "checkpoints" / "checkpoint_epoch_00001.pyth")},
        ),
    )
    with caplog.at_level(logging.WARNING):
        metrics = run_test(cfg)
    assert metrics["data_manifest"]["leakage"]["by_key"] == 4
    assert metrics["data_manifest"]["leakage"]["by_content"] == 4
    assert any("LEAKAGE: 4 of the 4 test videos" in r.getMessage() for r in caplog.records)


def test_a_rescore_on_a_subset_equals_a_fresh_test_on_it(trained, capsys):
    tmp, data, clips = trained
    full_out = tmp / "full"
    run_test(
        load_config(
            None,
            _opts(
                data,
                full_out,
                **{"TEST.CHECKPOINT_FILE_PATH": str(tmp / "run" / "checkpoints" / "checkpoint_epoch_00001.pyth")},
            ),
        )
    )
    rows = read_manifest(str(tmp / "manifest")).splits["test"]
    subset = [r for i, r in enumerate(rows) if i % 3 != 1]  # 8 of the 12, the broken video among them
    assert any(not r["decodable"] for r in subset)
    write_manifest(str(tmp / "subset"), {"test": subset}, {"digest": "fast", "classes": CLASSES})

    sub_out = tmp / "sub"
    fresh = run_test(
        load_config(
            None,
            _opts(
                data,
                sub_out,
                **{
                    "TEST.SUBSET_MANIFEST": str(tmp / "subset"),
                    "TEST.CHECKPOINT_FILE_PATH": str(tmp / "run" / "checkpoints" / "checkpoint_epoch_00001.pyth"),
                },
            ),
        )
    )
    assert fresh["num_videos"] == 8 and fresh["num_failed"] == 1
    sub = fresh["data_manifest"]["subset"]
    assert (
        sub["videos"] == 8
        and sub["fingerprint"] == read_manifest(str(tmp / "subset")).summary["splits"]["test"]["fingerprint"]
    )
    rescored = rescore_predictions(
        str(full_out / "test_predictions.csv"), lambda p: any(p.endswith(r["path"]) for r in subset)
    )
    for k in COMPARED:
        assert rescored[k] == pytest.approx(fresh[k], abs=1e-9), k
    full = rescore_predictions(str(full_out / "test_predictions.csv"))
    assert full["num_videos"] == 12

    assert cli(["rescore", str(full_out / "test_predictions.csv"), "--subset", str(tmp / "subset")]) == 0
    printed = json.loads(capsys.readouterr().out)
    for k in COMPARED:
        assert printed[k] == pytest.approx(fresh[k], abs=1e-9), k
    assert printed["subset"]["videos_in_subset"] == 8


def test_a_manifest_that_no_longer_matches_the_files_is_an_error(trained, tmp_path):
    tmp, data, clips = trained
    changed = tmp_path / "changed"
    shutil.copytree(data, changed)
    video = changed / [c for c in clips if c.split == "train"][0].rel
    original = video.read_bytes()
    video.write_bytes(original + b"\0")
    with pytest.raises(DataError, match=rf"{video}: \d+ bytes here but \d+ bytes in DATA.MANIFEST"):
        describe_split(str(changed), "train", ListFormat(), str(tmp / "manifest"))
    video.write_bytes(original)
    assert describe_split(str(changed), "train", ListFormat(), str(tmp / "manifest")).listed == 9
    (changed / "train.csv").write_text((changed / "train.csv").read_text() + "videos/archery/x.mp4 2\n")
    with pytest.raises(DataError, match="1 listed video"):
        describe_split(str(changed), "train", ListFormat(), str(tmp / "manifest"))
