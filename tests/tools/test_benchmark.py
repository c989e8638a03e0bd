"""python -m benchmarks (benchmarks/run.py): what the tables and JSON say, and the arithmetic behind them.

Speed itself is not asserted (the machine may be shared); what is asserted is that every printed
figure is what its definition says (clips/s = batch / step time, a ratio = the median of the
per-round quotients, TFLOP/s from the FLOP count), checked on real runs at a tiny size and on
hand-made rows and fake clocks where the numbers must be exact.
"""

import json
import statistics
import sys

import helpers
import pytest
import torch

if str(helpers.ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout, run from its root
    sys.path.insert(0, str(helpers.ROOT))

import rs3d  # noqa: E402
from benchmarks.e2e import TimedLoader, summarize  # noqa: E402
from benchmarks.measure import interleaved_median  # noqa: E402
from benchmarks.models import ratios  # noqa: E402
from rs3d.models.stats import count_flops, count_parameters  # noqa: E402


def load_tool():
    from benchmarks import run

    return run


def fake_clock(durations):
    """A clock whose consecutive (start, stop) readings are ``durations`` apart."""
    readings = []
    t = 0.0
    for d in durations:
        readings += [t, t + d]
        t += d + 100.0
    it = iter(readings)
    return lambda: next(it)


# ----------------------------------------------------------------------------- model
def test_model_rs3d_slow_r50_against_pytorchvideo(tmp_path, capsys):
    out = tmp_path / "model.json"
    assert (
        load_tool().main(
            [
                "model",
                "--models",
                "slow_r50",
                "--frames",
                "8",
                "--res",
                "32",
                "--batch",
                "2",
                "--variants",
                "base",
                "--rounds",
                "3",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["device_type"] == "cpu" and data["rounds"] == 3
    rows = {r["model"]: r for r in data["rows"]}
    assert set(rows) == {"slow_r50", "ptv:slow_r50"}  # the peer is added by default
    rs, ptv = rows["slow_r50"], rows["ptv:slow_r50"]
    for r in (rs, ptv):
        assert "error" not in r, r.get("error")
        assert len(r["train_times_s"]) == 3 and len(r["infer_times_s"]) == 3
        assert r["train_step_s"] == statistics.median(r["train_times_s"])
        assert r["train_clips_s"] == pytest.approx(2 / r["train_step_s"])
        assert r["infer_clips_s"] == pytest.approx(2 / r["infer_step_s"])
        assert r["train_tflops"] == pytest.approx(r["gflops"] * 2 * 3 * 2 / r["train_step_s"] / 1e3)
        # Memory: at least the parameters, their gradients and the input batch.
        assert r["train_peak_mem_gib"] * 2**30 >= (2 * r["params_m"] * 1e6 + 2 * 3 * 8 * 32 * 32) * 4
    # Same arithmetic: same parameter count and fvcore FLOPs, so time and memory ratios are fair.
    model = rs3d.create_model("slow_r50", num_classes=400)
    assert rs["params_m"] == ptv["params_m"] == count_parameters(model) / 1e6
    assert rs["gflops"] == pytest.approx(count_flops(model, 8, 32), rel=1e-9)
    assert ptv["gflops"] == pytest.approx(rs["gflops"], rel=1e-6)
    ratio = next(r for r in data["ratios"] if r["what"] == "rs3d slow_r50 / PTV slow_r50 (base)")
    per_round = [a / b for a, b in zip(rs["train_times_s"], ptv["train_times_s"])]
    assert ratio["train_step_ratio_rounds"] == pytest.approx(per_round)
    assert ratio["train_step_ratio"] == pytest.approx(statistics.median(per_round))
    assert ratio["train_mem_ratio"] == pytest.approx(rs["train_peak_mem_gib"] / ptv["train_peak_mem_gib"])
    # The printed ratios table shows the same figure.
    line = next(ln for ln in printed.splitlines() if ln.startswith("| rs3d slow_r50 / PTV slow_r50 (base)"))
    assert float(line.split("|")[4]) == pytest.approx(ratio["train_step_ratio"], abs=5e-4)


def test_ratio_is_the_median_of_paired_rounds_not_the_quotient_of_medians():
    def row(model, variant, times, mem):
        return {
            "model": model,
            "variant": variant,
            "frames": 8,
            "res": 32,
            "batch": 2,
            "train_step_s": statistics.median(times),
            "train_times_s": times,
            "train_peak_mem_gib": mem,
        }

    rows = [
        row("slow_r50", "base", [1.0, 4.0, 2.0], 3.0),
        row("ptv:slow_r50", "base", [2.0, 2.0, 8.0], 4.0),
        row("slow_r50", "cl", [0.5, 1.0, 1.0], 1.5),
    ]
    by_what = {r["what"]: r for r in ratios(rows)}
    assert set(by_what) == {"rs3d slow_r50 / PTV slow_r50 (base)", "slow_r50 cl / base"}
    peer = by_what["rs3d slow_r50 / PTV slow_r50 (base)"]
    # Per round 0.5, 2.0, 0.25 -> median 0.5; the medians alone (2.0 / 2.0) would say 1.0.
    assert peer["train_step_ratio_rounds"] == [0.5, 2.0, 0.25]
    assert peer["train_step_ratio"] == 0.5
    assert peer["train_mem_ratio"] == 0.75
    assert by_what["slow_r50 cl / base"]["train_step_ratio"] == 0.5  # 0.5, 0.25, 0.5
    assert by_what["slow_r50 cl / base"]["infer_step_ratio"] is None  # not measured: no figure


def test_model_variant_rows_and_ratio_against_base(tmp_path):
    out = tmp_path / "model.json"
    assert (
        load_tool().main(
            [
                "model",
                "--models",
                "resnet3d_rs26",
                "--width",
                "0.25",
                "--frames",
                "4",
                "--res",
                "32",
                "--batch",
                "2",
                "--variants",
                "base",
                "cl+bf16",
                "--rounds",
                "1",
                "--no-inference",
                "--peak-tflops",
                "2.0",
                "--threads",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert [(r["model"], r["variant"]) for r in data["rows"]] == [
        ("resnet3d_rs26", "base"),
        ("resnet3d_rs26", "cl+bf16"),
    ]
    for r in data["rows"]:
        assert "infer_clips_s" not in r
        assert r["mfu"] == pytest.approx(r["train_tflops"] / 2.0)
    assert data["peak_tflops"] == 2.0
    # --width reaches the model: the narrow network's own parameter count.
    narrow = rs3d.create_model("resnet3d_rs26", num_classes=400, width_multiplier=0.25)
    assert data["rows"][0]["params_m"] == count_parameters(narrow) / 1e6
    assert [r["what"] for r in data["ratios"]] == ["resnet3d_rs26 cl+bf16 / base"]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["model", "--models", "resnet3d_rs51"], "resnet3d_rs51"),
        (["model", "--models", "slow_r50", "--variants", "fp8"], "fp8"),
    ],
)
def test_model_bad_arguments_exit_2_naming_them(argv, needle, capsys):
    assert load_tool().main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_optim_compares_sgd_implementations(tmp_path):
    out = tmp_path / "optim.json"
    assert (
        load_tool().main(["optim", "--model", "resnet3d_rs26", "--rounds", "2", "--threads", "1", "--json", str(out)])
        == 0
    )
    rows = {r["mode"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"for-loop", "foreach", "fused"}
    model = rs3d.create_model("resnet3d_rs26", num_classes=400)
    assert rows["for-loop"]["params_m"] == count_parameters(model) / 1e6
    assert rows["for-loop"]["num_tensors"] == len(list(model.parameters()))
    base = rows["for-loop"]["times_s"]
    for mode in ("for-loop", "foreach"):
        r = rows[mode]
        assert r["step_s"] == statistics.median(r["times_s"])
        assert r["ratio_vs_for_loop"] == pytest.approx(statistics.median(a / b for a, b in zip(r["times_s"], base)))
    fused = rows["fused"]
    assert ("step_s" in fused) != ("error" in fused)  # measured, or the one-line reason it could not be


# ----------------------------------------------------------------------------- timing
def test_interleaved_rounds_rotate_the_order_and_report_medians():
    calls = []
    res = interleaved_median(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        rounds=3,
        device=torch.device("cpu"),
        clock=fake_clock([1.0, 7.0, 2.0, 5.0, 9.0, 3.0]),
    )
    assert calls == ["a", "b", "b", "a", "a", "b"]
    # Round 1 times a then b, round 2 b then a, round 3 a then b.
    assert res["a"]["times_s"] == [1.0, 5.0, 9.0] and res["a"]["median_s"] == 5.0
    assert res["b"]["times_s"] == [7.0, 2.0, 3.0] and res["b"]["median_s"] == 3.0


def test_calls_per_round_divide_the_round_time():
    res = interleaved_median(
        {"a": lambda: None}, rounds=2, device=torch.device("cpu"), calls_per_round=4, clock=fake_clock([8.0, 2.0])
    )
    assert res["a"]["times_s"] == [2.0, 0.5]


# ----------------------------------------------------------------------------- e2e
@pytest.mark.slow
def test_e2e_times_data_wait_and_compute_of_the_real_loop(tmp_path, synthetic_dataset):
    out = tmp_path / "e2e.json"
    assert (
        load_tool().main(
            [
                "e2e",
                "--dataset",
                str(synthetic_dataset),
                "--model",
                "resnet3d_rs26",
                "--width",
                "0.25",
                "--frames",
                "4",
                "--crop",
                "32",
                "--batch",
                "2",
                "--workers",
                "1",
                "--steps",
                "3",
                "--threads",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())["result"]
    assert res["optimizer_steps"] == 3 and res["iterations"] == 3 and len(res["records"]) == 3
    steady = res["records"][1:]
    wait, comp = sum(r["data_wait_s"] for r in steady), sum(r["compute_s"] for r in steady)
    assert res["data_wait_fraction"] == pytest.approx(wait / (wait + comp))
    assert res["clips_s"] == pytest.approx(2 * len(steady) / (wait + comp))
    assert res["limited_by"] == ("data" if res["data_wait_fraction"] > 0.2 else "compute")


def test_e2e_refuses_a_folder_without_train_csv(tmp_path, capsys):
    assert load_tool().main(["e2e", "--dataset", str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err


def test_timed_loader_records_every_batch_even_when_the_loop_breaks():
    loader = TimedLoader([{"x": i} for i in range(5)], torch.device("cpu"))
    for i, _ in enumerate(loader):
        if i == 2:
            break
    assert len(loader.records) == 3 and all("compute_s" in r for r in loader.records)
    assert [r["first_of_epoch"] for r in loader.records] == [True, False, False]


def test_summary_leaves_the_first_iteration_out():
    recs = [
        {"data_wait_s": 5.0, "compute_s": 1.0, "first_of_epoch": True},
        {"data_wait_s": 1.0, "compute_s": 3.0},
        {"data_wait_s": 1.0, "compute_s": 1.0},
        {"data_wait_s": 0.0, "compute_s": 2.0},
        {"data_wait_s": 9.0},
    ]  # the last never finished
    s = summarize(recs, batch=4)
    assert s["iterations"] == 4 and s["first_batch_wait_s"] == 5.0 and s["epoch_start_waits_s"] == [5.0]
    assert s["total_data_wait_s"] == 2.0 and s["total_compute_s"] == 6.0
    assert s["median_data_wait_s"] == 1.0 and s["median_compute_s"] == 2.0
    assert s["data_wait_fraction"] == 0.25 and s["limited_by"] == "data"
    assert s["clips_s"] == 4 * 3 / 8.0 and s["compute_only_clips_s"] == 2.0


# ----------------------------------------------------------------------------- data
@pytest.mark.slow
def test_data_loader_benchmark_and_decoders_side_by_side(tmp_path, synthetic_dataset):
    out = tmp_path / "data.json"
    assert (
        load_tool().main(
            [
                "data",
                "--num-videos",
                "1",
                "--seconds",
                "1",
                "--height",
                "64",
                "--width",
                "96",
                "--rounds",
                "1",
                "--backends",
                "decord",
                "pyav",
                "torchcodec",
                "--cache-dir",
                str(tmp_path / "cache"),
                "--json",
                str(out),
                "--loader-args",
                "--data-dir",
                str(synthetic_dataset),
                "--videos",
                "4",
                "--workers",
                "0",
                "--batch-size",
                "2",
                "--num-frames",
                "4",
                "--train-crop",
                "32",
                "--test-crop",
                "32",
                "--clips",
                "2",
                "--crops",
                "1",
                "--rss-reads",
                "0",
                "--skip-ptv",
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    loader = data["loader"]
    assert loader["videos"] == 4 and loader["rs3d_train"]["items"] == 4 and loader["rs3d_test"]["items"] == 4
    assert loader["ratios"]["floor / rs3d test (target <= 1.5)"] == pytest.approx(
        loader["floor_full_decode"]["per_s"] / loader["rs3d_test"]["per_s"], abs=0.006
    )
    rows = {(r["backend"], r["workload"]): r for r in data["decoders"]["rows"]}
    for b in ("decord", "pyav"):
        assert rows[(b, "clip")]["frames_per_round"] == 32
        assert rows[(b, "clip")]["mean_abs_diff_vs_pyav"] == 0.0  # the same frames, not just as many
    tc = rows[("torchcodec", "clip")]
    assert ("frames_s" in tc) != ("error" in tc)  # measured, or the reason it could not be


def test_data_refuses_missing_video(tmp_path, capsys):
    missing = str(tmp_path / "nope.mp4")
    assert load_tool().main(["data", "--no-loader", "--videos", missing]) == 2
    err = capsys.readouterr().err
    assert missing in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- estimate
def test_estimate_gpu_hours_from_flops(tmp_path):
    tool = load_tool()
    est = tool.estimate(gflops_per_clip=100.0, clips=1000, epochs=10, mfu=0.5, peak_tflops=600.0)
    # 100e9 x 6 x 1e4 = 6e15 FLOP at 3e14 FLOP/s = 20 s; 3e14 / 6e11 = 500 clips/s.
    assert est["gpu_hours"] == pytest.approx(20 / 3600)
    assert est["clips_per_s_per_gpu"] == pytest.approx(500)
    out = tmp_path / "est.json"
    assert (
        tool.main(
            [
                "estimate",
                "--gflops",
                "100",
                "--videos",
                "1000",
                "--epochs",
                "10",
                "--mfu",
                "0.5",
                "--peak-tflops",
                "600",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["gpu_hours"] == pytest.approx(20 / 3600)


def test_estimate_counts_the_models_flops_when_not_given(tmp_path):
    out = tmp_path / "est.json"
    assert (
        load_tool().main(["estimate", "--model", "slow_r50", "--frames", "8", "--res", "32", "--json", str(out)]) == 0
    )
    res = json.loads(out.read_text())
    assert res["gflops_per_clip"] == pytest.approx(count_flops(rs3d.create_model("slow_r50"), 8, 32))


# ----------------------------------------------------------------------------- worker split
def test_worker_split_leaves_the_warm_up_round_out_and_splits_cpu_time(tmp_path):
    from benchmarks.videos import make_kinetics_like_videos
    from benchmarks.worker_split import measure

    paths = make_kinetics_like_videos(str(tmp_path), 2, height=64, width=96, seconds=2)
    # Each clip reads the clock three times: start, decoded, augmented. Round 0 (warm-up) costs
    # 9 s a clip; the two timed clips 30 ms decode + 10 ms augmentation each.
    steps = iter([0, 9, 9] * 2 + [0, 0.030, 0.010] * 2)
    t = [0.0]

    def clock():
        t[0] += next(steps)
        return t[0]

    res = measure(paths, rounds=2, frames=8, crop=32, clock=clock)
    assert res["clips"] == 2
    assert res["decode_ms"] == pytest.approx(30.0) and res["augment_ms"] == pytest.approx(10.0)
    assert res["augment_share"] == pytest.approx(0.25) and res["decode_only_speedup"] == pytest.approx(1.33)


def test_worker_split_tool_runs_on_real_files(tmp_path):
    out = tmp_path / "split.json"
    assert (
        load_tool().main(
            ["worker-split", "--num-videos", "1", "--rounds", "2", "--cache-dir", str(tmp_path), "--json", str(out)]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert res["clips"] == 1
    assert res["augment_share"] == pytest.approx(res["augment_ms"] / (res["augment_ms"] + res["decode_ms"]), abs=0.002)
