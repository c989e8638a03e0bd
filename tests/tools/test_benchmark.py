"""tools/benchmark.py: every sub-command runs at a tiny size and writes the JSON a user reads.

No timings are asserted (the machine is shared); the checks are on what the output must contain
and on the facts a comparison depends on (the PyTorchVideo peer really is the same arithmetic).
"""
import helpers
import json

import pytest



def load_tool():
    return helpers.load_tool("benchmark")


def test_model_rs3d_slow_r50_against_pytorchvideo(tmp_path, capsys):
    out = tmp_path / "model.json"
    assert load_tool().main(["model", "--models", "slow_r50", "--frames", "8", "--res", "32", "--batch", "1",
                             "--variants", "base", "--rounds", "1", "--device", "cpu", "--threads", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["device_type"] == "cpu" and data["versions"]["torch"] and data["date_utc"]
    rows = {r["model"]: r for r in data["rows"]}
    assert set(rows) == {"slow_r50", "ptv:slow_r50"}  # the peer is added by default
    rs, ptv = rows["slow_r50"], rows["ptv:slow_r50"]
    for r in (rs, ptv):
        assert "error" not in r, r.get("error")
        for key in ("train_step_s", "train_clips_s", "infer_clips_s", "train_peak_mem_gib", "train_tflops",
                    "warmup_s"):
            assert r[key] > 0, key
        assert len(r["train_times_s"]) == 1
    # Same arithmetic: same parameter count and fvcore FLOPs, so time and memory ratios are fair.
    assert rs["params_m"] == pytest.approx(ptv["params_m"], abs=1e-9)
    assert rs["gflops"] == pytest.approx(ptv["gflops"], rel=1e-6)
    ratio = next(r for r in data["ratios"] if r["what"].startswith("rs3d slow_r50 / PTV slow_r50"))
    # One round: the paired per-round ratio is the plain ratio of the two times.
    assert ratio["train_step_ratio"] == pytest.approx(rs["train_step_s"] / ptv["train_step_s"])
    assert "rs3d slow_r50 / PTV slow_r50 (base)" in capsys.readouterr().out


def test_model_variant_rows_and_ratio_against_base(tmp_path):
    out = tmp_path / "model.json"
    assert load_tool().main(["model", "--models", "resnet3d_rs26", "--width", "0.25", "--frames", "4",
                             "--res", "32", "--batch", "2", "--variants", "base", "cl+bf16", "--rounds", "1",
                             "--no-inference", "--peak-tflops", "1.0", "--threads", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [(r["model"], r["variant"]) for r in data["rows"]] == [("resnet3d_rs26", "base"),
                                                                  ("resnet3d_rs26", "cl+bf16")]
    assert all("mfu" in r and "infer_clips_s" not in r for r in data["rows"])
    assert data["peak_tflops"] == 1.0
    assert [r["what"] for r in data["ratios"]] == ["resnet3d_rs26 cl+bf16 / base"]


@pytest.mark.parametrize("argv, needle", [
    (["model", "--models", "resnet3d_rs51"], "resnet3d_rs51"),
    (["model", "--models", "slow_r50", "--variants", "fp8"], "fp8"),
])
def test_model_bad_arguments_exit_2_naming_them(argv, needle, capsys):
    assert load_tool().main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_optim_compares_sgd_implementations(tmp_path):
    out = tmp_path / "optim.json"
    assert load_tool().main(["optim", "--model", "resnet3d_rs26", "--rounds", "1", "--threads", "1", "--json", str(out)]) == 0
    rows = {r["mode"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"for-loop", "foreach", "fused"}
    assert rows["for-loop"]["ratio_vs_for_loop"] == 1.0
    assert rows["foreach"]["step_s"] > 0
    assert "step_s" in rows["fused"] or rows["fused"]["error"]  # fused SGD may not exist on a device


@pytest.mark.slow
def test_e2e_times_data_wait_and_compute_of_the_real_loop(tmp_path, synthetic_dataset):
    out = tmp_path / "e2e.json"
    assert load_tool().main(["e2e", "--dataset", str(synthetic_dataset), "--model", "resnet3d_rs26",
                             "--width", "0.25", "--frames", "4", "--crop", "32", "--batch", "2", "--workers", "1",
                             "--steps", "3", "--threads", "1", "--json", str(out)]) == 0
    res = json.loads(out.read_text())["result"]
    assert res["optimizer_steps"] == 3 and res["iterations"] == 3
    assert len(res["records"]) == 3
    assert all(r["data_wait_s"] >= 0 and r["compute_s"] > 0 for r in res["records"])
    assert res["limited_by"] in ("data", "compute")
    assert 0 <= res["data_wait_fraction"] <= 1


def test_e2e_refuses_a_folder_without_train_csv(tmp_path, capsys):
    assert load_tool().main(["e2e", "--dataset", str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err


@pytest.mark.slow
def test_data_loader_benchmark_and_decoders_side_by_side(tmp_path, synthetic_dataset):
    out = tmp_path / "data.json"
    assert load_tool().main(["data", "--num-videos", "1", "--seconds", "1", "--height", "64", "--width", "96",
                             "--rounds", "1", "--backends", "decord", "pyav", "torchcodec",
                             "--cache-dir", str(tmp_path / "cache"), "--json", str(out),
                             "--loader-args", "--data-dir", str(synthetic_dataset), "--videos", "4",
                             "--workers", "0", "--batch-size", "2", "--num-frames", "4", "--train-crop", "32",
                             "--test-crop", "32", "--clips", "2", "--crops", "1", "--rss-reads", "0",
                             "--skip-ptv"]) == 0
    data = json.loads(out.read_text())
    if "skipped" not in data["loader"]:  # tools/benchmark_data.py belongs to the data pipeline
        assert data["loader"]["rs3d_train"]["per_s"] > 0 and data["loader"]["videos"] == 4
    rows = {(r["backend"], r["workload"]): r for r in data["decoders"]["rows"]}
    for b in ("decord", "pyav"):
        assert rows[(b, "clip")]["frames_s"] > 0 and rows[(b, "sequential")]["frames_s"] > 0
        assert rows[(b, "clip")]["frames_per_round"] == 32
        assert rows[(b, "clip")]["mean_abs_diff_vs_pyav"] == 0.0  # the same frames, not just as many
    tc = rows[("torchcodec", "clip")]
    assert tc.get("frames_s", 0) > 0 or tc["error"]  # measured, or the reason it could not be


def test_data_refuses_missing_video(tmp_path, capsys):
    missing = str(tmp_path / "nope.mp4")
    assert load_tool().main(["data", "--no-loader", "--videos", missing]) == 2
    assert missing in capsys.readouterr().err


def test_estimate_gpu_hours_from_flops(tmp_path):
    tool = load_tool()
    est = tool.estimate(gflops_per_clip=100.0, clips=1000, epochs=10, mfu=0.5, peak_tflops=600.0)
    # 100e9 x 6 x 1e4 = 6e15 FLOP at 3e14 FLOP/s = 20 s; 3e14 / 6e11 = 500 clips/s.
    assert est["gpu_hours"] == pytest.approx(20 / 3600)
    assert est["clips_per_s_per_gpu"] == pytest.approx(500)
    out = tmp_path / "est.json"
    assert tool.main(["estimate", "--gflops", "100", "--videos", "1000", "--epochs", "10", "--mfu", "0.5",
                      "--peak-tflops", "600", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["gpu_hours"] == pytest.approx(20 / 3600)


def test_timed_loader_records_every_batch_even_when_the_loop_breaks():
    import torch

    from rs3d.benchmark.e2e import TimedLoader, summarize

    loader = TimedLoader([{"x": i} for i in range(5)], torch.device("cpu"))
    for i, _ in enumerate(loader):
        if i == 2:
            break
    assert len(loader.records) == 3 and all("compute_s" in r for r in loader.records)
    s = summarize(loader.records, batch=4)
    assert s["iterations"] == 3 and s["limited_by"] in ("data", "compute")


def test_interleaved_rounds_rotate_the_order():
    import torch

    from rs3d.benchmark.measure import interleaved_median

    calls = []
    res = interleaved_median({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3,
                             device=torch.device("cpu"))
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert len(res["a"]["times_s"]) == 3 and res["a"]["median_s"] >= 0


def test_worker_split_reports_decode_and_augment_time(tmp_path):
    from rs3d.benchmark.videos import make_kinetics_like_videos

    tool = helpers.load_tool("benchmark_worker_split")
    paths = make_kinetics_like_videos(str(tmp_path), 2, height=64, width=96, seconds=2)
    res = tool.measure(paths, rounds=2, frames=8, crop=32)
    assert res["clips"] == 2 and res["decode_ms"] > 0 and res["augment_ms"] > 0
    assert 0 < res["augment_share"] < 1
    assert res["decode_only_speedup"] == pytest.approx(1 / (1 - res["augment_share"]), rel=0.02)
