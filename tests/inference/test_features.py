"""Feature extraction: what is written equals the model's own features, resumes, lists failures."""

import csv
import filecmp
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from inference_helpers import cli_opts

from rs3d.cli.extract_features import main as extract_main
from rs3d.cli.extract_features import videos_under
from rs3d.data import read_video_list, to_model_input, views_of
from rs3d.data.loader import multiview_dataset
from rs3d.inference.features import extract, extract_from_config, output_name
from rs3d.inference.layers import LayerTap, pool

ROOT = Path(__file__).resolve().parents[2]


def listed(cfg):
    return read_video_list(os.path.join(cfg.DATA.PATH_TO_DATA_DIR, "test.csv"), cfg.DATA.PATH_TO_DATA_DIR)


def model_views(cfg, record):
    """The test's views of one video as model input ``[V, 3, T, S, S]`` (clip-major)."""
    item = multiview_dataset(cfg, [record])[0]
    assert item["error"] == ""
    return to_model_input(views_of(item), cfg.DATA.MEAN, cfg.DATA.STD)


def pooled_forward_features(model, x):
    """``forward_features`` pooled as the classifier pools it (whether it returns a map or a vector)."""
    with torch.no_grad():
        return pool(model.forward_features(x))


def index_rows(out):
    return list(csv.DictReader(open(os.path.join(out, "index.csv"))))


def test_features_equal_the_models_forward_features_on_the_same_views(cfg, tiny_checkpoint, tmp_path):
    _, model = tiny_checkpoint
    records = listed(cfg)[:3]
    out = tmp_path / "f"
    summary = extract_from_config(cfg, records, str(out), root=cfg.DATA.PATH_TO_DATA_DIR, per_clip=True)
    assert summary["computed"] == 3 and summary["failed"] == []
    embeddings = []
    for r in records:
        x = model_views(cfg, r)
        expected = pooled_forward_features(model, x)  # [V, C]
        name = output_name(r.path, cfg.DATA.PATH_TO_DATA_DIR)
        emb = np.load(out / "features" / f"{name}.npy")
        clips = np.load(out / "features" / f"{name}.clips.npy")
        assert emb.dtype == np.float32 and emb.shape == (model.num_features,)
        assert clips.shape == (2, 3, model.num_features)  # clips x crops x C
        np.testing.assert_allclose(clips.reshape(6, -1), expected.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(emb, expected.mean(0).numpy(), rtol=1e-4, atol=1e-5)
        embeddings.append(emb)
    # The comparison means something: the embeddings differ from video to video.
    assert np.abs(embeddings[0] - embeddings[1]).max() > 1e-2
    rows = index_rows(out)
    assert [r["path"] for r in rows] == [r.path for r in records]
    assert all(r["file"].startswith("features/videos/test/") and r["error"] == "" for r in rows)


def test_other_layers_and_the_logits(cfg, tiny_checkpoint, tmp_path):
    _, model = tiny_checkpoint
    (record,) = listed(cfg)[:1]
    x = model_views(cfg, record)
    name = output_name(record.path, cfg.DATA.PATH_TO_DATA_DIR)
    with torch.no_grad():
        stages = model.forward_stages(x)
        logits = model(x)
    for layer, expected in (("res3", pool(stages["res3"])), ("layer3.1", pool(stages["res4"])), ("logits", logits)):
        out = tmp_path / layer
        extract_from_config(cfg, [record], str(out), root=cfg.DATA.PATH_TO_DATA_DIR, layer=layer)
        emb = np.load(out / "features" / f"{name}.npy")
        np.testing.assert_allclose(emb, expected.mean(0).numpy(), rtol=1e-4, atol=1e-5)
    assert np.load(tmp_path / "res3" / "features" / f"{name}.npy").shape == (model.feature_info[1]["num_chs"],)


def test_an_unknown_layer_is_one_line_and_exit_2(cfg, tmp_path, capsys):
    argv = [
        "--folder",
        str(Path(cfg.DATA.PATH_TO_DATA_DIR) / "videos" / "test"),
        "--out",
        str(tmp_path),
        "--layer",
        "res9",
    ] + cli_opts(cfg)
    assert extract_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: layer 'res9' is not a layer") and "res5" in err[0]
    assert not (tmp_path / "features").exists()


def test_broken_and_missing_videos_are_listed_and_the_rest_written(cfg, broken_videos, tmp_path, capsys):
    good = listed(cfg)[:2]
    lines = [f"{r.path} {r.label}" for r in good]
    lines.insert(1, f"{broken_videos['missing']} 0")
    lines.append(f"{broken_videos['not_a_video']} 1")
    (tmp_path / "list.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "f"
    argv = ["--csv", str(tmp_path / "list.csv"), "--out", str(out)] + cli_opts(cfg)
    assert extract_main(argv) == 1
    printed = capsys.readouterr().out
    rows = index_rows(out)
    assert [Path(r["path"]).name for r in rows] == [
        Path(good[0].path).name,
        "missing.mp4",
        Path(good[1].path).name,
        "not_a_video.mp4",
    ]
    assert rows[1]["error"] == "file not found" and rows[1]["file"] == ""
    assert rows[3]["error"] and rows[3]["file"] == ""
    for r in (rows[0], rows[2]):
        assert r["error"] == "" and np.load(out / r["file"]).shape == (512,)  # res5 of rs26 x 0.25
    assert f"failed: {broken_videos['missing']}: file not found" in printed


def test_folder_input_through_the_tool(cfg, tmp_path, capsys):
    from rs3d.cli import extract_features as tool

    folder = Path(cfg.DATA.PATH_TO_DATA_DIR) / "videos" / "test"
    out = tmp_path / "f"
    assert (
        tool.main(
            ["--folder", str(folder), "--out", str(out), "--format", "sharded", "--shard-size", "3"] + cli_opts(cfg)
        )
        == 0
    )
    records = videos_under(str(folder))
    assert len(records) == 8
    feats = [np.load(out / "shards" / f"features_{k:05d}.npy") for k in range(3)]
    assert [f.shape[0] for f in feats] == [3, 3, 2]
    rows = index_rows(out)
    assert [(int(r["shard"]), int(r["row"])) for r in rows] == [(i // 3, i % 3) for i in range(8)]
    assert [r["path"] for r in rows] == [r.path for r in records]
    # The same numbers as the per-video format.
    extract_from_config(cfg, records[3:5], str(tmp_path / "npy"), root=str(folder))
    for i in (3, 4):
        name = output_name(records[i].path, str(folder))
        np.testing.assert_array_equal(np.load(tmp_path / "npy" / "features" / f"{name}.npy"), feats[1][i - 3])


class Interrupt(Exception):
    pass


def _setup(cfg):
    from rs3d.inference.model import load_model

    loaded = load_model(cfg, torch.device("cpu"))
    requested = []

    def items(recs, stop_after=None):
        requested.extend(r.path for r in recs)
        for n, item in enumerate(multiview_dataset(cfg, recs)):
            if stop_after is not None and n == stop_after:
                raise Interrupt  # as a kill between two videos: nothing of this one is written
            yield item

    return LayerTap(loaded.model), items, requested


@pytest.mark.parametrize("fmt", ["npy", "sharded"])
def test_an_interrupted_extraction_resumes_without_recomputing(cfg, tmp_path, fmt):
    records = listed(cfg)[:5]
    tap, items, requested = _setup(cfg)
    kw = dict(root=cfg.DATA.PATH_TO_DATA_DIR, per_clip=True, fmt=fmt, shard_size=2)
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"
    extract(tap, records, str(clean), items, **kw)
    requested.clear()

    with pytest.raises(Interrupt):
        extract(tap, records, str(resumed), lambda recs: items(recs, stop_after=3), **kw)
    (resumed / "features").mkdir(exist_ok=True)
    (resumed / "features" / "half_written.npy.tmp123").write_bytes(b"\x93NUMPY")  # a crashed write
    requested.clear()
    summary = extract(tap, records, str(resumed), items, **kw)
    # npy: videos 0-2 were written before the interrupt; sharded: shard 0 (videos 0-1) was complete.
    first_todo = 3 if fmt == "npy" else 2
    assert requested == [r.path for r in records[first_todo:]]
    assert summary["skipped"] == first_todo and summary["computed"] == 5 - first_todo
    # The resumed folder holds what an uninterrupted run writes.
    sub = "features/videos/test" if fmt == "npy" else "shards"
    cmp = filecmp.dircmp(clean / sub, resumed / sub)
    assert sorted(os.listdir(clean / sub)) == sorted(os.listdir(resumed / sub)) and cmp.diff_files == []
    _, mismatch, errors = filecmp.cmpfiles(clean / sub, resumed / sub, os.listdir(clean / sub), shallow=False)
    assert mismatch == [] and errors == []
    assert (clean / "index.csv").read_text() == (resumed / "index.csv").read_text()

    requested.clear()
    again = extract(tap, records, str(resumed), items, **kw)
    assert requested == [] and again["skipped"] == 5


def test_resuming_with_other_settings_is_refused(cfg, tmp_path):
    from rs3d.errors import ConfigError

    records = listed(cfg)[:1]
    extract_from_config(cfg, records, str(tmp_path), root=cfg.DATA.PATH_TO_DATA_DIR)
    with pytest.raises(ConfigError, match="layer='res5'.*'res4'"):
        extract_from_config(cfg, records, str(tmp_path), root=cfg.DATA.PATH_TO_DATA_DIR, layer="res4")


def run(cmd, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1")  # torchrun's default: the same kernels in both runs
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["npy", "sharded"])
def test_one_and_two_ranks_write_the_same_files(cfg, broken_videos, tmp_path, fmt):
    good = listed(cfg)[:6]
    lines = [f"{r.path} {r.label}" for r in good] + [f"{broken_videos['truncated']} 0"]
    (tmp_path / "list.csv").write_text("\n".join(lines) + "\n")  # 7 videos: unequal shards
    args = ["--csv", str(tmp_path / "list.csv"), "--per-clip", "--format", fmt, "--shard-size", "2"]
    args += cli_opts(cfg) + ["DATA_LOADER.NUM_WORKERS", "1"]
    one = run([sys.executable, "-m", "rs3d.cli.extract_features", "--out", str(tmp_path / "one"), *args])
    assert one.returncode == 1, one.stderr[-3000:]  # 1: the truncated video is listed as failed
    two = run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",
            "-m",
            "rs3d.cli.extract_features",
            "--out",
            str(tmp_path / "two"),
            *args,
        ]
    )
    assert two.returncode == 1, two.stderr[-3000:]
    # The work was split: rank 0 did its share only (npy: 3 of 7 videos; sharded: 2 of 4 shards).
    assert "rank 0: 7/7 videos" in one.stdout
    assert ("rank 0: 3/3 videos" if fmt == "npy" else "rank 0: 4/4 videos") in two.stdout, two.stdout[-2000:]
    files = sorted(str(p.relative_to(tmp_path / "one")) for p in (tmp_path / "one").rglob("*") if p.is_file())
    files2 = sorted(str(p.relative_to(tmp_path / "two")) for p in (tmp_path / "two").rglob("*") if p.is_file())
    assert files == files2 and len(files) > 3
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "one", tmp_path / "two", files, shallow=False)
    assert mismatch == [] and errors == []
    rows = index_rows(tmp_path / "two")
    assert len(rows) == 7 and [bool(r["error"]) for r in rows] == [False] * 6 + [True]
