"""Run sweep points, each in its own OUTPUT_DIR, so that running the sweep again continues it.

A point runs three steps, each skipped when its output already exists:

    train    python -m rs3d.cli.train          (resumes from OUTPUT_DIR/checkpoints by itself)
    test     python -m rs3d.cli.test           -> test_metrics.json (30-view top-1/top-5, EMA weights)
    measure  python -m rs3d.cli.sweep_measure  -> model_stats.json (params, GFLOPs, latency, memory)

so a finished point is not run again and a half-trained one resumes from its newest checkpoint.
Each step is a separate process of the installed package (no checkout needed): a point that
crashes, diverges or runs out of memory is recorded as failed in ``sweep_point.json`` (with the
step and the last error line) and the sweep goes on.

Where points run is a :class:`Launcher`'s business. :class:`LocalLauncher` runs them here, one after
another. A cluster launcher (e.g. a SLURM job array through submitit) implements the same
``launch(job, points)`` and runs ``job(point)`` on other machines: ``job`` is a picklable
``functools.partial`` of :func:`run_point`, and everything a point writes is in its own folder.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from ..errors import ConfigError
from ..file_io.files import atomic_write_text
from .grid import Point

STATUS_FILE = "sweep_point.json"
METRICS_FILE = "test_metrics.json"
STATS_FILE = "model_stats.json"

Log = Callable[[str], None]


class PointFailed(Exception):
    """A step of one point did not succeed; the sweep records it and goes on."""

    def __init__(self, step: str, message: str):
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message


# ----------------------------------------------------------------------------- steps
def _last_error_line(log_path: Path, offset: int) -> str:
    """The last ``error:`` / exception line the run wrote to ``log_path`` after ``offset``."""
    try:
        with open(log_path, errors="replace") as f:
            f.seek(offset)
            lines = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
    except OSError:
        return ""
    for ln in reversed(lines):
        if ln.startswith("error:") or "Error" in ln.split(":")[0]:
            return ln
    return lines[-1] if lines else ""


def _exit_text(rc: int) -> str:
    return f"killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"


def _run_logged(cmd: List[str], log_path: Path, prefix: str, echo: bool) -> Tuple[int, str]:
    """Run ``cmd``, appending its output to ``log_path`` (and echoing it, prefixed, when asked).

    Returns the exit status and, when it is not 0, the run's last error line.
    """
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        offset = log.tell()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                log.write(line)
                if echo:
                    sys.stdout.write(f"{prefix}{line}")
                    sys.stdout.flush()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        rc = proc.wait()
    if rc == 0:
        return rc, ""
    return rc, f"{_exit_text(rc)}: {_last_error_line(log_path, offset)} (log: {log_path})"


@dataclass
class CommandStep:
    """A step that runs the command ``python -m <module>`` on the point's config, OUTPUT_DIR set
    to the point's folder, with ``args`` before the config (``{out_dir}`` in them: that folder)."""

    module: str
    step: str
    args: Tuple[str, ...] = ()
    output: str = ""  # a file the step must have written (checked after it succeeds)

    def __call__(self, point: Point, out_dir: str, echo: bool = True) -> None:
        args = [a.format(out_dir=out_dir) for a in self.args]
        cmd = [sys.executable, "-m", self.module, *args, "--cfg", point.cfg_file, *point.opts, "OUTPUT_DIR", out_dir]
        log = Path(out_dir) / f"sweep_{self.step}.log"
        rc, why = _run_logged(cmd, log, f"[{point.name}] ", echo)
        if rc != 0:
            raise PointFailed(self.step, f"{self.module} {why}")
        if self.output and not (Path(out_dir) / self.output).is_file():
            raise PointFailed(self.step, f"{self.module} wrote no {Path(out_dir) / self.output} (log: {log})")


def measure_step(batch_cap: int = 128, steps: int = 5) -> CommandStep:
    """The measure step with the sweep's measuring options (:mod:`rs3d.sweep.measure`)."""
    args = ("--json", os.path.join("{out_dir}", STATS_FILE), "--batch-cap", str(batch_cap), "--steps", str(steps))
    return CommandStep("rs3d.cli.sweep_measure", "measure", args, output=STATS_FILE)


@dataclass
class Steps:
    """The three steps of a point, each ``step(point, out_dir, echo)``; raise PointFailed on failure."""

    train: Callable = field(default_factory=lambda: CommandStep("rs3d.cli.train", "train"))
    test: Callable = field(default_factory=lambda: CommandStep("rs3d.cli.test", "test"))
    measure: Callable = field(default_factory=measure_step)


# ----------------------------------------------------------------------------- one point
def read_status(out_dir: str) -> Optional[dict]:
    try:
        with open(os.path.join(out_dir, STATUS_FILE)) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def write_json(path: str, data: dict) -> None:
    """``data`` as indented JSON at ``path``, atomically (a reader never sees half a file)."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def _write_status(out_dir: str, status: dict) -> None:
    write_json(os.path.join(out_dir, STATUS_FILE), status)


def check_resumable(points: Sequence[Point], root: str) -> None:
    """A folder of an earlier sweep must hold the same point (config file and overrides) to resume."""
    for p in points:
        old = read_status(os.path.join(root, p.name))
        if old is None:
            continue
        same_cfg = os.path.abspath(str(old.get("cfg_file"))) == os.path.abspath(p.cfg_file)
        if not same_cfg or old.get("opts") != list(p.opts):
            raise ConfigError(
                f"{os.path.join(root, p.name)} holds a run with other settings "
                f"({old.get('cfg_file')} {' '.join(map(str, old.get('opts', [])))}); "
                f"remove it or choose another --out"
            )


def run_point(point: Point, root: str, steps: Optional[Steps] = None, echo: bool = True, log: Log = print) -> dict:
    """Train, test and measure ``point`` in ``root/point.name``, skipping what is already there.

    Returns (and writes to ``sweep_point.json``) its status: ``done`` or ``failed`` with the step
    and the error. Never raises for a failing point (KeyboardInterrupt still stops the sweep).
    """
    steps = steps or Steps()
    out_dir = os.path.join(root, point.name)
    os.makedirs(out_dir, exist_ok=True)
    status = {
        "name": point.name,
        "label": point.label,
        "cfg_file": point.cfg_file,
        "opts": list(point.opts),
        "status": "running",
        "step": None,
        "error": None,
        "skipped": [],
        "started": time.time(),
    }
    _write_status(out_dir, status)
    plan = [
        ("train", steps.train, METRICS_FILE),
        ("test", steps.test, METRICS_FILE),
        ("measure", steps.measure, STATS_FILE),
    ]
    try:
        for name, step, output in plan:
            if os.path.isfile(os.path.join(out_dir, output)):
                status["skipped"].append(name)
                continue
            log(f"[sweep] {point.name}: {name}")
            status["step"] = name
            _write_status(out_dir, status)
            step(point, out_dir, echo)
        status.update(status="done", step=None)
    except PointFailed as e:
        status.update(status="failed", step=e.step, error=e.message)
        log(f"[sweep] {point.name}: FAILED at {e.step}: {e.message}")
    except Exception as e:  # a bug in a step must not lose the other points
        status.update(status="failed", error=f"{type(e).__name__}: {e}")
        log(f"[sweep] {point.name}: FAILED at {status['step']}: {status['error']}")
    status["seconds"] = time.time() - status.pop("started")
    _write_status(out_dir, status)
    return status


# ----------------------------------------------------------------------------- launchers
class Launcher:
    """Where points run: ``launch(job, points)`` calls ``job(point)`` for every point (in any order,
    anywhere) and returns the statuses in the order of ``points``. ``job`` is picklable."""

    def launch(self, job: Callable[[Point], dict], points: Sequence[Point]) -> List[dict]:
        raise NotImplementedError


class LocalLauncher(Launcher):
    """Every point in this process's machine, one after another."""

    def launch(self, job: Callable[[Point], dict], points: Sequence[Point]) -> List[dict]:
        return [job(p) for p in points]


def run_sweep(
    points: Sequence[Point],
    root: str,
    launcher: Optional[Launcher] = None,
    steps: Optional[Steps] = None,
    echo: bool = True,
    log: Log = print,
) -> List[dict]:
    """Run every point (resuming an earlier run of the same sweep in ``root``); return the statuses."""
    check_resumable(points, root)
    os.makedirs(root, exist_ok=True)
    write_json(os.path.join(root, "sweep.json"), {"points": [p.to_dict() for p in points]})
    job = functools.partial(run_point, root=root, steps=steps, echo=echo, log=log)
    return (launcher or LocalLauncher()).launch(job, points)
