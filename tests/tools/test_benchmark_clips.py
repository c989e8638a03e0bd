"""The training-clips-per-core benchmark (``python -m benchmarks clips``) on two small files: every path
measured in the same rounds, each rs3d path's clips exact against a sequential decode, the new paths'
worker memory read, the storage table filled."""

import sys

import helpers
import pytest

if str(helpers.ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout, run from its root
    sys.path.insert(0, str(helpers.ROOT))

from benchmarks import train_clips  # noqa: E402
from benchmarks.videos import make_kinetics_like_videos  # noqa: E402


@pytest.mark.slow
def test_clips_benchmark_measures_every_path_and_checks_exactness(tmp_path):
    sources = make_kinetics_like_videos(
        str(tmp_path / "src"), 2, height=64, width=86, seconds=2.0, fps=(30, 24), gop=250
    )
    storage = "256 15fps gop16 fastdecode"
    by_name = {p.name: p for p in train_clips.default_paths(storage)}
    wanted = [
        "default (decord)",
        "crop in decoder (PyAV)",
        "2 clips per video",
        f"storage {storage} (PyAV)",
        f"{storage} + PyAV + crop in decoder + 2 clips per video",
        "RandAugment 2 ops, magnitude 15",
        "MixUp/CutMix of each batch (CPU, float)",
        "PyTorchVideo decord loader",
    ]
    res = train_clips.run(
        str(tmp_path / "cache"),
        videos=4,
        rounds=2,
        batch=4,
        workers=0,
        rss_reads=30,
        exact_items=2,
        paths=[by_name[n] for n in wanted],
        sources=sources,
        frames=8,
        crop=32,
        log=lambda m: None,
    )
    rows = {r["path"]: r for r in res["rows"]}
    assert list(rows) == wanted and not [r for r in rows.values() if "error" in r], [
        r.get("error") for r in rows.values()
    ]
    for name in wanted:
        r = rows[name]
        assert r["clips_per_round"] == 4  # 4 videos of 1 clip, or 2 videos of 2 clips
        assert len(r["rounds_clips_per_cpu_s"]) == 2 and r["clips_per_cpu_s"] > 0
        assert r["cores_per_gpu"] == pytest.approx(res["gpu_clips_s"] / r["clips_per_cpu_s"])
        if not r["ptv"]:
            assert r["exactness"]["exact"] and r["exactness"]["reads"] == 2, (name, r["exactness"])
    assert rows[wanted[0]]["vs_default"] == 1.0
    for name in ("crop in decoder (PyAV)", "2 clips per video", f"storage {storage} (PyAV)"):
        mem = rows[name]["worker_memory"]
        assert mem["reads"] == 30 and set(mem["rss_mib_after_reads"]) >= {1, 10, 30}
    fmts = {f["format"]: f for f in res["formats"]}
    assert set(fmts) == {"source", storage}
    assert fmts[storage]["prepare"] == "--short-side 256 --fps 15 --gop 16 --tune fastdecode"
    assert fmts[storage]["mb_per_10s"] > 0 and fmts["source"]["psnr_y_db"] is None
    table = train_clips.format_tables(res)
    for name in wanted:
        assert f"| {name} |" in table
