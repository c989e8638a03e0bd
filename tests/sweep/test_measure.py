"""The measure step: appendix I's batch halving and latency normalisation, and one real measurement."""

import json
import os
import subprocess
import sys
import time
import types

import pytest
from helpers import ROOT as REPO

from rs3d.cli.sweep_measure import main
from rs3d.config import load_config
from rs3d.sweep.measure import measure_point

DEMO = str(REPO / "configs" / "demo.yaml")


def _stub_stats(fits_up_to: int, seconds_per_clip: float, calls: list):
    def measure_train_step(model, batch, frames, res, steps, device, **kw):
        calls.append(batch)
        if batch > fits_up_to:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return seconds_per_clip * batch, 1000 * batch * 2**20

    return types.SimpleNamespace(
        count_parameters=lambda m: 1_234_567, count_flops=lambda m, f, r: 0.75, measure_train_step=measure_train_step
    )


def test_batch_is_halved_until_it_fits_and_latency_normalised_to_the_config_batch():
    cfg = load_config(DEMO, ["TRAIN.BATCH_SIZE", "64", "DEVICE", "cpu", "TRAIN.AMP_DTYPE", "float32"])
    calls = []
    out = measure_point(cfg, batch_cap=32, stats=_stub_stats(fits_up_to=8, seconds_per_clip=0.01, calls=calls))
    assert calls == [32, 16, 8]  # starts at the cap, halves while out of memory
    assert out["measure_batch"] == 8 and out["batch"] == 64
    assert out["step_s"] == pytest.approx(0.08)
    assert out["latency_ms_per_clip"] == pytest.approx(10.0)
    assert out["latency_s_per_batch"] == pytest.approx(0.64)  # 0.08 s at 8 clips -> 64 clips
    assert out["peak_mem_gib"] == pytest.approx(8000 / 1024)
    assert (out["params"], out["gflops"], out["gflops_at"]) == (1_234_567, 0.75, "1x8x32x32")


def test_other_errors_are_not_taken_for_out_of_memory():
    cfg = load_config(DEMO, ["DEVICE", "cpu", "TRAIN.AMP_DTYPE", "float32"])

    def broken(*a, **k):
        raise RuntimeError("shape mismatch")

    stats = types.SimpleNamespace(
        count_parameters=lambda m: 1, count_flops=lambda m, f, r: 0.0, measure_train_step=broken
    )
    with pytest.raises(RuntimeError, match="shape mismatch"):
        measure_point(cfg, stats=stats)


def test_real_measurement_of_a_tiny_point(tmp_path):
    path = tmp_path / "stats.json"
    rc = main(
        [
            "--cfg",
            DEMO,
            "--json",
            str(path),
            "--batch-cap",
            "2",
            "--steps",
            "1",
            "DEVICE",
            "cpu",
            "DATA.NUM_FRAMES",
            "4",
            "DATA.TRAIN_CROP_SIZE",
            "16",
        ]
    )
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


def _cpu_s_of(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used, from ``/proc/PID/stat``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_TICK_S = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc/stat")
def test_other_work_excludes_this_process_on_a_machine_of_any_load():
    """Bounds that hold whatever else runs: other work <= the machine's CPU time less this
    process's. Counting this process too would put it at the machine's total."""
    from rs3d.sweep.measure import OtherWork, _busy_cpu_s

    machine0 = _busy_cpu_s()
    with OtherWork() as mine:
        own0 = time.process_time()
        while time.process_time() - own0 < 0.5:  # CPU time, not wall time: a busy machine only slows it
            pass
        own = time.process_time() - own0
    machine = _busy_cpu_s() - machine0  # at least the machine's CPU time within the block
    assert mine.cores is not None
    assert mine.cores * mine.wall_s <= machine - own + 4 * _TICK_S, (mine.cores, mine.wall_s, machine, own)


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc/stat")
def test_other_work_counts_another_process_on_a_machine_of_any_load():
    """A spinning child's CPU time during the block is part of other work, however much else runs
    (other processes add to it, never take from it); the block lasts until the child has had
    0.3 s of CPU, so a busy machine makes it longer, not wrong."""
    from rs3d.sweep.measure import OtherWork

    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with OtherWork() as other:
            child0 = _cpu_s_of(child.pid)
            while _cpu_s_of(child.pid) - child0 < 0.3:
                time.sleep(0.05)
            child_cpu = _cpu_s_of(child.pid) - child0
    finally:
        child.kill()
        child.wait()
    assert other.cores is not None
    # /proc/stat samples per clock tick, the child's own figure is exact: a few ticks apart at most.
    assert other.cores * other.wall_s >= 0.9 * child_cpu - 4 * _TICK_S, (other.cores, other.wall_s, child_cpu)


def test_other_work_is_machine_time_less_own_time_over_wall_time(monkeypatch):
    """The accounting itself, on given counters: 3 s of machine CPU, 1 s of it this process's,
    over 2 s of wall time = 1 core of other work."""
    from rs3d.sweep import measure

    def clock(*readings):
        readings = list(readings)
        return lambda: readings.pop(0) if len(readings) > 1 else readings[0]

    monkeypatch.setattr(measure, "_busy_cpu_s", clock(10.0, 13.0))
    monkeypatch.setattr(measure, "_own_cpu_s", clock(5.0, 6.0))
    monkeypatch.setattr(measure, "_wall_s", clock(100.0, 102.0))
    with measure.OtherWork() as other:
        pass
    assert other.cores == pytest.approx(1.0) and other.wall_s == pytest.approx(2.0)
