"""Fixtures of the sweep tests: stand-in train / test / measure steps that write what the real tools
write, instantly, and the demo config as a small base for grids."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest
from helpers import ROOT as REPO

from rs3d.sweep.runner import METRICS_FILE, STATS_FILE, PointFailed, Steps


def write_checkpoint(out_dir: str, epoch: int) -> None:
    ckpt = Path(out_dir) / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / f"checkpoint_epoch_{epoch:05d}.pyth").write_text("fake")


def last_epoch(out_dir: str) -> int:
    ckpt = Path(out_dir) / "checkpoints"
    epochs = [int(p.stem.split("_")[-1]) for p in ckpt.glob("checkpoint_epoch_*.pyth")] if ckpt.is_dir() else []
    return max(epochs, default=0)


class FakeRun:
    """Records every step call; ``fail`` = {(point name, step)} that fail; metrics per point name."""

    def __init__(
        self,
        fail: Optional[Set[Tuple[str, str]]] = None,
        metrics: Optional[Dict[str, dict]] = None,
        crash: Optional[Set[Tuple[str, str]]] = None,
    ):
        self.calls: List[Tuple[str, str, int]] = []  # (point, step, epoch it started from)
        self.fail = fail or set()
        self.crash = crash or set()
        self.metrics = metrics or {}

    def steps(self) -> Steps:
        return Steps(train=self.train, test=self.test, measure=self.measure)

    def _check(self, point, step):
        if (point.name, step) in self.crash:
            raise RuntimeError(f"{step} crashed")
        if (point.name, step) in self.fail:
            raise PointFailed(step, f"fake {step} failure of {point.name}")

    def train(self, point, out_dir, echo=True):
        start = last_epoch(out_dir)
        self.calls.append((point.name, "train", start))
        self._check(point, "train")
        for epoch in range(start + 1, int(point.info["epochs"]) + 1):
            write_checkpoint(out_dir, epoch)

    def test(self, point, out_dir, echo=True):
        self.calls.append((point.name, "test", last_epoch(out_dir)))
        self._check(point, "test")
        m = self.metrics.get(point.name, {"top1": 50.0, "top5": 90.0})
        with open(os.path.join(out_dir, METRICS_FILE), "w") as f:
            json.dump({"num_videos": 8, "num_failed": 0, "weights": "ema", "views_per_video": 6, **m}, f)

    def measure(self, point, out_dir, echo=True):
        self.calls.append((point.name, "measure", last_epoch(out_dir)))
        self._check(point, "measure")
        with open(os.path.join(out_dir, STATS_FILE), "w") as f:
            json.dump(
                {
                    "params_m": 1.0,
                    "gflops": 0.5,
                    "latency_ms_per_clip": 10.0,
                    "peak_mem_gib": 0.1,
                    "device": "cpu (fake)",
                    "measure_batch": 4,
                    "step_s": 0.04,
                },
                f,
            )

    def steps_of(self, name: str) -> List[str]:
        return [s for n, s, _ in self.calls if n == name]

    write_checkpoint = staticmethod(write_checkpoint)
    last_epoch = staticmethod(last_epoch)


@pytest.fixture
def fake_run():
    """``fake_run(fail=..., metrics=..., crash=...)`` -> a FakeRun."""
    return FakeRun


@pytest.fixture
def demo_cfg() -> str:
    return str(REPO / "configs" / "demo.yaml")
