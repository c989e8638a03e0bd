"""tools/test_net.py end to end: real encoded videos, a real checkpoint file, real processes.

One test list mixes the synthetic videos with every kind of broken file; its size (15) is odd, so
a 2-rank run has unequal shards. The 1-process run is shared by the tests that read its outputs.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rs3d
from rs3d.data import kinetics400_class_names
from rs3d.data.synthetic import make_synthetic_dataset, write_broken_videos

ROOT = Path(__file__).resolve().parents[2]
TEST_NET = str(ROOT / "tools" / "test_net.py")
NUM_CLASSES = 3
FAILING = ("missing", "empty", "truncated", "not_a_video", "audio_only")
SERVED = ("overreported", "one_frame")  # decodable: a short/cut video is looped, not dropped
TIMING_KEYS = ("videos_per_second", "seconds", "world_size")


def tiny_model(seed):
    torch.manual_seed(seed)
    return rs3d.create_model("resnet3d_rs26", num_classes=NUM_CLASSES, width_multiplier=0.25)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Data dir with ``mixed.csv`` (8 good + 7 broken videos) and a checkpoint in OUTPUT_DIR."""
    root = tmp_path_factory.mktemp("testnet")
    data = root / "data"
    make_synthetic_dataset(
        str(data),
        num_classes=NUM_CLASSES,
        train_per_class=0,
        val_per_class=0,
        test_per_class=3,
        min_frames=20,
        max_frames=24,
        workers=1,
    )
    good = [line.split() for line in (data / "test.csv").read_text().splitlines() if line.strip()][:8]
    broken = write_broken_videos(str(data / "broken"))
    rows = [f"{data / p} {label}" for p, label in good]
    rows += [f"{path} {i % NUM_CLASSES}" for i, path in enumerate(broken.values())]
    assert len(rows) % 2 == 1
    (data / "mixed.csv").write_text("\n".join(rows) + "\n")
    out = root / "out"
    # EMA and raw weights differ, so the test shows which one was evaluated.
    raw, ema = tiny_model(1), tiny_model(2)
    with torch.no_grad():  # spread the logits so that videos get different predictions
        ema.fc.weight.mul_(50)
    (out / "checkpoints").mkdir(parents=True)
    torch.save(
        {"model": raw.state_dict(), "ema": ema.state_dict(), "epoch": 1, "iteration": 10, "cfg": ""},
        out / "checkpoints" / "checkpoint_epoch_00001.pyth",
    )
    return {"data": data, "out": out, "broken": broken, "num_videos": len(rows)}


def overrides(setup, out_dir):
    return [
        "MODEL.ARCH",
        "resnet3d_rs26",
        "MODEL.WIDTH_MULTIPLIER",
        "0.25",
        "MODEL.NUM_CLASSES",
        str(NUM_CLASSES),
        "DATA.PATH_TO_DATA_DIR",
        str(setup["data"]),
        "TEST.SPLIT",
        "mixed",
        "OUTPUT_DIR",
        str(out_dir),
        "TEST.CHECKPOINT_FILE_PATH",
        str(setup["out"] / "checkpoints" / "checkpoint_epoch_00001.pyth"),
        "DATA.NUM_FRAMES",
        "4",
        "DATA.SAMPLING_RATE",
        "2",
        "DATA.TEST_CROP_SIZE",
        "32",
        "TEST.NUM_ENSEMBLE_VIEWS",
        "2",
        "TEST.NUM_SPATIAL_CROPS",
        "3",
        "TEST.BATCH_SIZE",
        "4",
        "DATA_LOADER.NUM_WORKERS",
        "1",
        "DATA.DECODE_TIMEOUT_S",
        "30",
    ]


def run(cmd, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1")  # torchrun's default: same kernels as the 2-rank run
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def single(setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    p = run([sys.executable, TEST_NET, *overrides(setup, out)])
    assert p.returncode == 0, p.stderr[-3000:]
    return out, p


def test_broken_videos_are_listed_and_the_rest_evaluated(setup, single):
    out, proc = single
    m = json.loads((out / "test_metrics.json").read_text())
    failed = {Path(f["path"]).name for f in m["failed"]}
    assert failed == {setup["broken"][k].name for k in FAILING}
    assert all(f["reason"] for f in m["failed"])
    assert m["num_videos"] == setup["num_videos"] == 15
    assert m["num_failed"] == len(FAILING) and m["num_evaluated"] == 15 - len(FAILING)
    for name in FAILING:
        assert str(setup["broken"][name]) in proc.stdout  # the console lists them too
    rows = list(csv.DictReader(open(out / "test_predictions.csv")))
    assert len(rows) == 15
    by_name = {Path(r["path"]).name: r for r in rows}
    for name in SERVED:
        assert by_name[setup["broken"][name].name]["error"] == ""
        assert by_name[setup["broken"][name].name]["pred_1"] != ""


def test_metrics_file_has_what_users_publish(setup, single):
    out, _ = single
    m = json.loads((out / "test_metrics.json").read_text())
    for key in (
        "top1",
        "top5",
        "mean_class_accuracy",
        "num_videos",
        "num_failed",
        "failed",
        "top1_counting_failures",
        "top5_counting_failures",
        "views_per_video",
        "ensemble_method",
        "checkpoint",
        "videos_per_second",
        "world_size",
    ):
        assert key in m, key
    assert m["views_per_video"] == 6 and m["ensemble_method"] == "mean" and m["weights"] == "ema"
    assert m["top5"] == 100.0  # 3 classes: every label is in the top 5
    # The JSON agrees with the per-video CSV.
    rows = [r for r in csv.DictReader(open(out / "test_predictions.csv")) if not r["error"]]
    top1 = 100.0 * sum(r["pred_1"] == r["label"] for r in rows) / len(rows)
    assert m["top1"] == pytest.approx(top1)
    assert m["top1_counting_failures"] == pytest.approx(top1 * len(rows) / 15)
    assert {r["label_name"] for r in rows} <= {"move_up", "move_down", "move_sideways"}
    with open(out / "test_confusion_matrix.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_two_ranks_give_the_same_metrics_as_one(setup, single, tmp_path):
    out1, _ = single
    p = run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",
            TEST_NET,
            *overrides(setup, tmp_path),
        ]
    )
    assert p.returncode == 0, p.stderr[-3000:]
    m1 = json.loads((out1 / "test_metrics.json").read_text())
    m2 = json.loads((tmp_path / "test_metrics.json").read_text())
    assert m2["world_size"] == 2 and m1["world_size"] == 1
    for k in TIMING_KEYS:
        m1.pop(k), m2.pop(k)
    assert m1 == m2
    assert (out1 / "test_predictions.csv").read_text() == (tmp_path / "test_predictions.csv").read_text()
    # The comparison means something: the model does not answer the same class for every video.
    rows = list(csv.DictReader(open(tmp_path / "test_predictions.csv")))
    assert len({r["pred_1"] for r in rows if not r["error"]}) > 1


def call_main(argv):
    """tools/test_net.py's main() in this process (cheaper than a subprocess)."""
    from helpers import load_tool

    return load_tool("test_net").main(argv)


def without(opts, *keys):
    out = []
    for k, v in zip(opts[0::2], opts[1::2]):
        if k not in keys:
            out += [k, v]
    return out


def test_newest_checkpoint_under_output_dir_is_the_default(setup, tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    old, new = tiny_model(5), tiny_model(6)
    for epoch, model in ((2, old), (10, new)):
        torch.save(
            {"model": model.state_dict(), "epoch": epoch, "iteration": epoch, "cfg": ""},
            out / "checkpoints" / f"checkpoint_epoch_{epoch:05d}.pyth",
        )
    # The synthetic test.csv has paths relative to the data folder: DATA.PATH_PREFIX joins them.
    opts = without(overrides(setup, out), "TEST.CHECKPOINT_FILE_PATH", "TEST.SPLIT") + [
        "TEST.SPLIT",
        "test",
        "DATA.PATH_PREFIX",
        str(setup["data"]),
        "TEST.USE_EMA",
        "False",
    ]
    assert call_main(opts) == 0
    m = json.loads((out / "test_metrics.json").read_text())
    assert m["checkpoint"].endswith("checkpoint_epoch_00010.pyth") and m["weights"] == "model"
    assert m["num_videos"] == 9 and m["num_failed"] == 0


def error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_config_and_checkpoint_mistakes_are_one_line_and_exit_2(setup, tmp_path, capsys):
    base = overrides(setup, tmp_path)
    assert call_main(base + ["TEST.NO_SUCH_KEY", "1"]) == 2
    assert "TEST.NO_SUCH_KEY" in error_line(capsys)
    assert call_main(base + ["DATA.PATH_TO_DATA_DIR", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in error_line(capsys)
    assert call_main(without(base, "TEST.CHECKPOINT_FILE_PATH")) == 2
    assert "no checkpoint under" in error_line(capsys)
    torch.save(
        {"model": tiny_model(0).state_dict() | {"fc.weight": torch.zeros(7, 256)}, "epoch": 1}, tmp_path / "other.pyth"
    )
    assert call_main(base + ["TEST.CHECKPOINT_FILE_PATH", str(tmp_path / "other.pyth")]) == 2
    assert "other.pyth" in error_line(capsys)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch /tmp/rs3d_test_net_pwned",))


def test_checkpoint_that_would_run_code_is_refused(setup, tmp_path):
    evil = tmp_path / "evil.pyth"
    torch.save({"model": tiny_model(0).state_dict(), "epoch": 1, "hook": _RunsCode()}, evil)
    p = run([sys.executable, TEST_NET, *overrides(setup, tmp_path), "TEST.CHECKPOINT_FILE_PATH", str(evil)])
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0] and str(evil) in lines[0], p.stderr
    assert not Path("/tmp/rs3d_test_net_pwned").exists()
    assert not (tmp_path / "test_metrics.json").exists()


def test_pytorchvideo_slow_r50_checkpoint_is_evaluated(setup, tmp_path):
    from pytorchvideo.models.hub import slow_r50

    torch.manual_seed(0)
    torch.save(slow_r50(pretrained=False).state_dict(), tmp_path / "SLOW_8x8_R50.pyth")
    # A 400-class data folder without classes.txt: names come from the shipped Kinetics-400 list.
    data = tmp_path / "k400like"
    data.mkdir()
    rows = (setup["data"] / "mixed.csv").read_text().splitlines()[:3]
    (data / "test.csv").write_text("\n".join(rows) + "\n")
    opts = without(
        overrides(setup, tmp_path / "out"),
        "MODEL.ARCH",
        "MODEL.WIDTH_MULTIPLIER",
        "MODEL.NUM_CLASSES",
        "DATA.PATH_TO_DATA_DIR",
        "TEST.SPLIT",
        "TEST.CHECKPOINT_FILE_PATH",
    )
    opts += [
        "MODEL.ARCH",
        "slow_r50",
        "MODEL.NUM_CLASSES",
        "400",
        "DATA.PATH_TO_DATA_DIR",
        str(data),
        "TEST.CHECKPOINT_FILE_PATH",
        str(tmp_path / "SLOW_8x8_R50.pyth"),
        "TEST.NUM_ENSEMBLE_VIEWS",
        "1",
        "TEST.NUM_SPATIAL_CROPS",
        "1",
    ]
    assert call_main(opts) == 0
    m = json.loads((tmp_path / "out" / "test_metrics.json").read_text())
    assert m["weights"] == "pytorchvideo" and m["num_videos"] == 3 and m["num_failed"] == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "test_predictions.csv")))
    names = kinetics400_class_names()
    assert rows[0]["label_name"] == names[int(rows[0]["label"])]
    assert rows[0]["name_1"] == names[int(rows[0]["pred_1"])]


def test_a_damaged_newest_checkpoint_is_skipped_by_name_and_the_previous_evaluated(setup, tmp_path, capsys):
    """4 KB overwritten inside the newest checkpoint: torch.load would read it; rs3d-test checks its
    CRCs, names the file it skips and why, and evaluates the previous one."""
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    for epoch, seed in ((10, 5), (11, 6)):
        torch.save(
            {"model": tiny_model(seed).state_dict(), "epoch": epoch, "iteration": epoch, "cfg": ""},
            out / "checkpoints" / f"checkpoint_epoch_{epoch:05d}.pyth",
        )
    newest = out / "checkpoints" / "checkpoint_epoch_00011.pyth"
    data = bytearray(newest.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 4096] = bytes(range(256)) * 16
    newest.write_bytes(bytes(data))
    opts = without(overrides(setup, out), "TEST.CHECKPOINT_FILE_PATH", "TEST.SPLIT") + [
        "TEST.SPLIT",
        "test",
        "DATA.PATH_PREFIX",
        str(setup["data"]),
        "TEST.USE_EMA",
        "False",
    ]
    assert call_main(opts) == 0
    said = capsys.readouterr().out
    assert f"skipped a checkpoint that does not load: {newest} is damaged" in said and "CRC" in said, said
    m = json.loads((out / "test_metrics.json").read_text())
    assert m["checkpoint"].endswith("checkpoint_epoch_00010.pyth")


def test_non_finite_scores_are_refused_in_one_line_exit_1(setup, tmp_path, capsys):
    """A diverged model (NaN weights): every score is NaN, which would tie and all go to class 0.
    The test refuses to score it and writes no metrics."""
    model = tiny_model(3)
    with torch.no_grad():
        model.fc.bias.fill_(float("nan"))
    bad = tmp_path / "diverged.pyth"
    torch.save({"model": model.state_dict(), "ema": model.state_dict(), "epoch": 1, "cfg": ""}, bad)
    out = tmp_path / "o"
    assert call_main(overrides(setup, out) + ["TEST.CHECKPOINT_FILE_PATH", str(bad)]) == 1
    err = error_line(capsys)
    assert err.startswith("error: the model gives non-finite (NaN/inf) scores for 10 of 10 videos (e.g. "), err
    assert str(bad) in err
    assert not (out / "test_metrics.json").exists() and not (out / "test_predictions.csv").exists()


def _children(pid):
    """PIDs whose parent is ``pid`` (the loader workers of a test process)."""
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append(int(d))
    return kids


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_sigterm_ends_the_loader_workers_before_the_test_process_exits(setup, tmp_path):
    """SIGTERM to rs3d-test (as a scheduler sends it): its loader workers are ended by the time the
    process itself has exited (they used to outlive it for seconds), one line, status 143."""
    import signal
    import time

    long = setup["data"] / "long"  # distinct files (hard links), enough to take a while
    long.mkdir(exist_ok=True)
    rows = []
    for i, line in enumerate((setup["data"] / "test.csv").read_text().splitlines() * 60):
        path, label = line.split()
        if not (long / f"{i}.mp4").exists():
            os.link(setup["data"] / path, long / f"{i}.mp4")
        rows.append(f"long/{i}.mp4 {label}")
    (setup["data"] / "long.csv").write_text("\n".join(rows) + "\n")
    opts = without(overrides(setup, tmp_path), "TEST.SPLIT", "DATA_LOADER.NUM_WORKERS") + [
        "TEST.SPLIT",
        "long",
        "DATA.PATH_PREFIX",
        str(setup["data"]),
        "DATA_LOADER.NUM_WORKERS",
        "2",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # Output to files, not pipes: the workers inherit them, and reading a pipe to its end would
    # wait for the workers too.
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        p = subprocess.Popen([sys.executable, TEST_NET, *opts], stdout=out, stderr=err, env=env, cwd=ROOT)
    t0 = time.time()
    while len(_children(p.pid)) < 2:
        assert p.poll() is None, (tmp_path / "stderr").read_text()[-3000:]
        assert time.time() - t0 < 240
        time.sleep(0.05)
    time.sleep(1.0)  # the workers are decoding
    workers = _children(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)
    left = [w for w in workers if _running(w)]  # checked the moment the test process is gone
    assert not left, f"loader workers {left} outlived the test process"
    stderr = (tmp_path / "stderr").read_text()
    assert p.returncode == 143, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == "error: stopped by SIGTERM; nothing was written", stderr[-3000:]
    assert "Traceback" not in stderr
    assert not (tmp_path / "test_metrics.json").exists()
