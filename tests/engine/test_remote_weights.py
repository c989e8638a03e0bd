"""Checkpoints served over HTTP (a real http.server on 127.0.0.1): tools/test_net.py evaluates
``TEST.CHECKPOINT_FILE_PATH http://...`` to the same metrics as the local file, a URL that fails is
one line and exit 2, and ``TRAIN.CHECKPOINT_FILE_PATH http://...`` starts a fine-tuning run from it."""

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def small_opts(data_dir, out_dir, **extra):
    opts = {
        "DATA.PATH_TO_DATA_DIR": str(data_dir),
        "OUTPUT_DIR": str(out_dir),
        "DEVICE": "cpu",
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
        "TRAIN.EVAL_PERIOD": 0,
        "SOLVER.REFERENCE_BATCH_SIZE": 4,
        "SOLVER.MAX_EPOCH": 1,
        "TENSORBOARD.ENABLE": False,
        "TEST.NUM_ENSEMBLE_VIEWS": 1,
        "TEST.NUM_SPATIAL_CROPS": 1,
    }
    opts.update(extra)
    return [str(x) for kv in opts.items() for x in kv]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(synthetic_dataset, tmp_path_factory):
    """A trained 1-epoch checkpoint, and the base URL of a server whose root is its folder."""
    from rs3d.config import load_config
    from rs3d.engine.train import train

    out = tmp_path_factory.mktemp("trained")
    torch.set_num_threads(1)
    train(load_config(None, small_opts(synthetic_dataset, out)))
    folder = out / "checkpoints"
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield folder / "checkpoint_epoch_00001.pyth", f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _test_net(data, out, ckpt, cache):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", FVCORE_CACHE=str(cache))
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "test_net.py"),
            *small_opts(data, out, **{"TEST.CHECKPOINT_FILE_PATH": ckpt}),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.slow
def test_a_checkpoint_url_evaluates_like_the_local_file(synthetic_dataset, tmp_path, served):
    local, base = served
    url = f"{base}/{local.name}"
    p = _test_net(synthetic_dataset, tmp_path / "by_url", url, tmp_path / "cache")
    assert p.returncode == 0, p.stderr[-3000:]
    q = _test_net(synthetic_dataset, tmp_path / "by_file", str(local), tmp_path / "cache")
    assert q.returncode == 0, q.stderr[-3000:]
    by_url = json.loads((tmp_path / "by_url" / "test_metrics.json").read_text())
    by_file = json.loads((tmp_path / "by_file" / "test_metrics.json").read_text())
    assert by_url["checkpoint"] == url and by_file["checkpoint"] == str(local)
    assert by_url["weights"] == "ema" and by_url["num_videos"] == 8
    for k in ("top1", "top5", "mean_class_accuracy"):
        assert by_url[k] == by_file[k], k
    assert (tmp_path / "by_url" / "test_predictions.csv").read_text() == (
        tmp_path / "by_file" / "test_predictions.csv"
    ).read_text()
    cached = list((tmp_path / "cache").rglob(local.name))
    assert len(cached) == 1 and cached[0].read_bytes() == local.read_bytes()  # downloaded once, whole


@pytest.mark.slow
def test_a_failing_url_is_one_line_and_exit_2(synthetic_dataset, tmp_path, served):
    _, base = served
    p = _test_net(synthetic_dataset, tmp_path / "o", f"{base}/missing.pyth", tmp_path / "cache")
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2, p.stdout + p.stderr
    assert len(err) == 1 and err[0] == (
        f"error: cannot load checkpoint: cannot download {base}/missing.pyth: HTTP 404 File not found"
    ), p.stderr
    assert not (tmp_path / "o" / "test_metrics.json").exists()


def test_unreachable_server_and_fine_tuning_from_a_url(synthetic_dataset, tmp_path, served, monkeypatch):
    from rs3d.checkpoint import load_checkpoint
    from rs3d.config import load_config
    from rs3d.engine.builder import build_training
    from rs3d.engine.distributed import DistInfo
    from rs3d.errors import CheckpointError

    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(
        CheckpointError,
        match=r"^cannot load checkpoint: cannot download "
        r"http://127.0.0.1:9/x.pyth: .*refused",
    ):
        load_checkpoint("http://127.0.0.1:9/x.pyth")
    local, base = served
    cfg = load_config(
        None, small_opts(synthetic_dataset, tmp_path / "ft", **{"TRAIN.CHECKPOINT_FILE_PATH": f"{base}/{local.name}"})
    )
    parts = build_training(cfg, DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu")))
    want = torch.load(local, weights_only=True)["ema"]  # fine-tuning starts from the EMA weights
    got = parts.state.model.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_a_bad_download_is_evicted_from_the_cache_so_a_fixed_server_helps(tmp_path, monkeypatch):
    """A server that sent something that is not a checkpoint: the error says the cached copy was
    removed, and once the server is fixed the next load downloads the good file."""
    from rs3d.checkpoint import load_checkpoint
    from rs3d.errors import CheckpointError

    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "www"
    root.mkdir()
    (root / "w.pyth").write_text("<html>503 Service Unavailable</html>")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/w.pyth"
        with pytest.raises(CheckpointError, match=r"is not a checkpoint.*removed from the cache") as e:
            load_checkpoint(url)
        assert url in str(e.value) and "\n" not in str(e.value)
        torch.save({"model": {"w": torch.ones(3)}, "epoch": 1}, root / "w.pyth")  # the server is fixed
        assert torch.equal(load_checkpoint(url)["model"]["w"], torch.ones(3))
    finally:
        srv.shutdown()
        srv.server_close()
