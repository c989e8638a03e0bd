"""The measure step: appendix I's batch halving and latency normalisation, and one real measurement."""
import json
import os
import types

import pytest

from rs3d.config import load_config
from rs3d.cli.sweep_measure import main
from rs3d.sweep.measure import measure_point
from helpers import ROOT as REPO

DEMO = str(REPO / "configs" / "demo.yaml")


def _stub_stats(fits_up_to: int, seconds_per_clip: float, calls: list):
    def measure_train_step(model, batch, frames, res, steps, device, **kw):
        calls.append(batch)
        if batch > fits_up_to:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return seconds_per_clip * batch, 1000 * batch * 2**20

    return types.SimpleNamespace(count_parameters=lambda m: 1_234_567, count_flops=lambda m, f, r: 0.75,
                                 measure_train_step=measure_train_step)


def test_batch_is_halved_until_it_fits_and_latency_normalised_to_the_config_batch():
    cfg = load_config(DEMO, ["TRAIN.BATCH_SIZE", "64", "DEVICE", "cpu", "TRAIN.AMP_DTYPE", "float32"])
    calls = []
    out = measure_point(cfg, batch_cap=32, stats=_stub_stats(fits_up_to=8, seconds_per_clip=0.01, calls=calls))
    assert calls == [32, 16, 8]                    # starts at the cap, halves while out of memory
    assert out["measure_batch"] == 8 and out["batch"] == 64
    assert out["step_s"] == pytest.approx(0.08)
    assert out["latency_ms_per_clip"] == pytest.approx(10.0)
    assert out["latency_s_per_batch"] == pytest.approx(0.64)   # 0.08 s at 8 clips -> 64 clips
    assert out["peak_mem_gib"] == pytest.approx(8000 / 1024)
    assert (out["params"], out["gflops"], out["gflops_at"]) == (1_234_567, 0.75, "1x8x32x32")


def test_other_errors_are_not_taken_for_out_of_memory():
    cfg = load_config(DEMO, ["DEVICE", "cpu", "TRAIN.AMP_DTYPE", "float32"])

    def broken(*a, **k):
        raise RuntimeError("shape mismatch")

    stats = types.SimpleNamespace(count_parameters=lambda m: 1, count_flops=lambda m, f, r: 0.0,
                                  measure_train_step=broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        measure_point(cfg, stats=stats)


def test_real_measurement_of_a_tiny_point(tmp_path):
    path = tmp_path / "stats.json"
    rc = main(["--cfg", DEMO, "--json", str(path), "--batch-cap", "2", "--steps", "1",
               "DEVICE", "cpu", "DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "16"])
    assert rc == 0
    stats = json.loads(path.read_text())
    assert stats["measure_batch"] == 2 and stats["batch"] == 16
    from rs3d.models import build_model
    from rs3d.models.stats import count_flops, count_parameters

    model = build_model(load_config(DEMO, ["DEVICE", "cpu"]))
    assert stats["params"] == count_parameters(model)
    assert stats["gflops"] == pytest.approx(count_flops(model, 4, 16))
    assert stats["step_s"] > 0 and stats["device"].startswith("cpu")
    assert stats["latency_s_per_batch"] == pytest.approx(stats["step_s"] * 8)


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc/stat")
def test_other_work_counts_other_processes_not_this_one():
    import subprocess
    import sys
    import time

    from rs3d.sweep.measure import OtherWork

    def spin(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    with OtherWork() as mine:
        spin(1.0)  # this process's own work is the measurement, not other work
    assert mine.cores is not None and mine.cores < 0.5
    child = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.5)  # the child is up and spinning
        with OtherWork() as other:
            time.sleep(1.0)
    finally:
        child.kill()
        child.wait()
    assert other.cores > 0.6  # about one core
