"""Who may write OUTPUT_DIR, and faults while writing it, with real training processes.

One run at a time (a lock with host and PID; a killed run's lock taken over and said so; another
machine's lock respected), never a new run over another run's checkpoints, and a file that cannot
be written (disk full, read-only) is one ``error:`` line naming it and what was kept.
The disk-full and read-only tests mount a small tmpfs, which needs root; elsewhere they are skipped.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rs3d.cli import train as train_cli
from rs3d.file_io.owner import this_host

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from test_train import tiny_opts  # noqa: E402  (the same tiny run as the training tests)


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def _train(opts, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "rs3d.cli.train", *opts],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        **kw,
    )


def _wait_for(predicate, proc=None, timeout=180):
    t0 = time.time()
    while not predicate():
        assert proc is None or proc.poll() is None, "the run ended before it was expected to"
        assert time.time() - t0 < timeout, "timed out"
        time.sleep(0.05)


def _lock_holder(out: Path):
    try:
        return json.loads((out / "rs3d.lock").read_text())
    except (OSError, ValueError):
        return None


def _opts(data, out, **extra):
    return tiny_opts(data, out, **{"TENSORBOARD.ENABLE": False, **extra})


@pytest.mark.slow
def test_a_second_run_into_one_output_dir_is_refused_while_the_first_holds_it(synthetic_dataset, tmp_path):
    """Run A is paused (SIGSTOP) while it holds the lock; run B into the same folder is refused in
    one line naming A's PID, writes nothing there; A then finishes untouched."""
    out = tmp_path / "run"
    a = _train(_opts(synthetic_dataset, out, **{"SOLVER.MAX_EPOCH": 1}))
    try:
        _wait_for(lambda: (_lock_holder(out) or {}).get("pid") == a.pid, a)
        a.send_signal(signal.SIGSTOP)
        log_before = (out / "log.txt").read_bytes() if (out / "log.txt").exists() else b""
        b = subprocess.run(
            [sys.executable, "-m", "rs3d.cli.train", *_opts(synthetic_dataset, out)],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=300,
        )
        assert b.returncode == 2, b.stdout + b.stderr
        err = b.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(
            f"error: OUTPUT_DIR {out} is in use by another run (PID {a.pid} on host {this_host()}"
        ), b.stderr
        assert (out / "log.txt").read_bytes() == log_before  # B wrote nothing into A's log
    finally:
        a.send_signal(signal.SIGCONT)
    _, stderr = a.communicate(timeout=300)
    assert a.returncode == 0, stderr
    assert (out / "checkpoints" / "checkpoint_epoch_00001.pyth").is_file()
    assert not (out / "rs3d.lock").exists()  # released when the run ended


@pytest.mark.slow
def test_the_lock_of_a_killed_run_is_taken_over_and_said_so(synthetic_dataset, tmp_path):
    out = tmp_path / "run"
    a = _train(_opts(synthetic_dataset, out, **{"SOLVER.MAX_EPOCH": 1}))
    _wait_for(lambda: (_lock_holder(out) or {}).get("pid") == a.pid, a)
    a.kill()
    a.wait()
    assert _lock_holder(out)["pid"] == a.pid  # a SIGKILL leaves the file behind
    b = subprocess.run(
        [sys.executable, "-m", "rs3d.cli.train", *_opts(synthetic_dataset, out, **{"SOLVER.MAX_EPOCH": 1})],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert b.returncode == 0, b.stderr
    said = f"took over the stale lock {out / 'rs3d.lock'} of PID {a.pid} on host {this_host()}"
    assert said in b.stdout and "that process is gone" in b.stdout, b.stdout
    assert said in (out / "log.txt").read_text()
    assert not (out / "rs3d.lock").exists()


def test_a_lock_written_on_another_machine_is_respected_with_how_to_remove_it(synthetic_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "rs3d.lock").write_text(json.dumps({"host": "some-other-machine", "pid": 1, "started": 0}))
    assert train_cli.main(_opts(synthetic_dataset, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "locked by a run on another machine (PID 1 on host some-other-machine" in err[0]
    assert err[0].endswith(f"if that run has ended, delete {out / 'rs3d.lock'}")
    assert sorted(os.listdir(out)) == ["rs3d.lock"]  # nothing written


def test_a_new_run_over_another_runs_checkpoints_is_refused_unless_resuming(synthetic_dataset, tmp_path, capsys):
    """An older run left epochs 2 and 3. A new run with TRAIN.AUTO_RESUME False used to save its
    epoch 1, prune it (by the number in the name) and leave rs3d-test the old run's epoch 3; now
    it is refused by name before it writes anything, and the old run's files stay as they were."""
    out = tmp_path / "run"
    ckdir = out / "checkpoints"
    ckdir.mkdir(parents=True)
    old = {name: os.urandom(64) for name in ("checkpoint_epoch_00002.pyth", "checkpoint_epoch_00003.pyth")}
    for name, data in old.items():
        (ckdir / name).write_bytes(data)
    (out / "config.yaml").write_text("# the old run's config\n")
    code = train_cli.main(
        _opts(synthetic_dataset, out, **{"TRAIN.AUTO_RESUME": False, "SOLVER.MAX_EPOCH": 1, "TRAIN.CHECKPOINT_KEEP": 2})
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0] == (
        f"error: OUTPUT_DIR {out} holds another run's checkpoints (checkpoint_epoch_00002.pyth, "
        "checkpoint_epoch_00003.pyth) and TRAIN.AUTO_RESUME is False: set TRAIN.AUTO_RESUME True "
        f"to continue that run, or choose another OUTPUT_DIR (or delete {ckdir}) to start a new one"
    )
    assert {n: (ckdir / n).read_bytes() for n in os.listdir(ckdir)} == old
    assert (out / "config.yaml").read_text() == "# the old run's config\n"
    assert sorted(os.listdir(out)) == ["checkpoints", "config.yaml"]


def test_resuming_where_no_checkpoint_loads_is_refused_naming_each(synthetic_dataset, tmp_path, capsys):
    """TRAIN.AUTO_RESUME True, but every checkpoint is damaged: starting afresh among them would
    number and prune the new run's files among files it did not write."""
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint_epoch_00003.pyth").write_bytes(b"PK\x03\x04 damaged")
    assert train_cli.main(_opts(synthetic_dataset, out, **{"SOLVER.MAX_EPOCH": 1})) == 2
    captured = capsys.readouterr()
    assert "skipped a checkpoint that does not load" in captured.out and "checkpoint_epoch_00003.pyth" in captured.out
    assert captured.err.strip() == (
        f"error: none of the checkpoints in {out / 'checkpoints'} loads (each is named "
        "above); move them away or choose another OUTPUT_DIR to start a new run"
    )
    assert captured.err.strip() in (out / "log.txt").read_text()


# ----------------------------------------------------------------------------- write faults
@pytest.fixture
def small_fs(tmp_path):
    """mount(size) -> a fresh tmpfs of ``size`` (needs root; skipped elsewhere)."""
    mounts = []

    def mount(size: str) -> Path:
        d = tmp_path / f"fs{len(mounts)}"
        d.mkdir()
        p = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], capture_output=True, text=True
        )
        if p.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {p.stderr.strip()}")
        mounts.append(d)
        return d

    yield mount
    for d in reversed(mounts):
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def _first_epoch(data, out):
    p = subprocess.run(
        [sys.executable, "-m", "rs3d.cli.train", *_opts(data, out, **{"SOLVER.MAX_EPOCH": 1})],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    good = out / "checkpoints" / "checkpoint_epoch_00001.pyth"
    return good, good.read_bytes()


@pytest.mark.slow
def test_disk_full_during_a_save_is_one_line_naming_the_file_and_what_is_kept(synthetic_dataset, small_fs):
    """A real full file system (tmpfs): epoch 2's save fails with ENOSPC. One `error:` line (also
    in log.txt), exit 1, no traceback; epoch 1's checkpoint whole; no temporary left."""
    fs = small_fs("32m")
    out = fs / "run"
    good, before = _first_epoch(synthetic_dataset, out)
    st = os.statvfs(fs)
    free = st.f_bavail * st.f_frsize
    (fs / "filler").write_bytes(b"\0" * (free - (1 << 20)))  # 1 MB left: the logs fit, a checkpoint does not
    p = subprocess.run(
        [sys.executable, "-m", "rs3d.cli.train", *_opts(synthetic_dataset, out)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    err = p.stderr.strip().splitlines()
    failed = out / "checkpoints" / "checkpoint_epoch_00002.pyth"
    assert err == [f"error: cannot write {failed}: No space left on device; kept: {good}"], p.stderr
    assert err[0] in (out / "log.txt").read_text()
    assert good.read_bytes() == before
    assert sorted(os.listdir(out / "checkpoints")) == ["checkpoint_best.pyth", "checkpoint_epoch_00001.pyth"]


@pytest.mark.slow
def test_a_read_only_output_dir_is_one_line_and_nothing_changes(synthetic_dataset, small_fs):
    fs = small_fs("32m")
    out = fs / "run"
    good, before = _first_epoch(synthetic_dataset, out)
    listing = sorted(os.listdir(out))
    subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
    p = subprocess.run(
        [sys.executable, "-m", "rs3d.cli.train", *_opts(synthetic_dataset, out)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr.strip().splitlines() == [
        f"error: cannot write in OUTPUT_DIR {out} ({out / 'rs3d.lock'}: Read-only file system); nothing was "
        "written and what it holds is kept"
    ], p.stderr
    assert good.read_bytes() == before and sorted(os.listdir(out)) == listing


@pytest.mark.slow
def test_a_read_only_checkpoints_folder_mid_run_is_one_line_also_in_the_log(synthetic_dataset, small_fs):
    """The folder stays writable (lock, logs) but its checkpoints/ becomes read-only (a bind mount):
    the save of epoch 2 fails: one line naming the file and the checkpoint kept, also in log.txt."""
    fs = small_fs("32m")
    out = fs / "run"
    good, before = _first_epoch(synthetic_dataset, out)
    ck = out / "checkpoints"
    subprocess.run(["mount", "--bind", str(ck), str(ck)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(ck)], check=True)
    try:
        p = subprocess.run(
            [sys.executable, "-m", "rs3d.cli.train", *_opts(synthetic_dataset, out)],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=300,
        )
    finally:
        subprocess.run(["umount", str(ck)], check=True)
    assert p.returncode == 1, p.stdout + p.stderr
    err = p.stderr.strip().splitlines()
    assert err == [f"error: cannot write {ck / 'checkpoint_epoch_00002.pyth'}: Read-only file system; kept: {good}"], (
        p.stderr
    )
    assert err[0] in (out / "log.txt").read_text()
    assert good.read_bytes() == before


_DENY_EPOCH_2 = """
import builtins, errno, runpy, sys
real_open = builtins.open
def guarded_open(file, *args, **kwargs):  # what a folder without write permission does (root ignores modes)
    if str(file).endswith(".tmp") and "checkpoint_epoch_00002" in str(file):
        raise PermissionError(errno.EACCES, "Permission denied", str(file))
    return real_open(file, *args, **kwargs)
builtins.open = guarded_open
sys.argv = ["rs3d-train", *sys.argv[1:]]
runpy.run_module("rs3d.cli.train", run_name="__main__")
"""


@pytest.mark.slow
def test_permission_denied_on_a_save_is_one_line_also_in_the_log(synthetic_dataset, tmp_path):
    """EACCES when epoch 2's checkpoint is created (injected: the tests may run as root, whom file
    modes do not stop): one line naming the checkpoint and the one kept, also in log.txt, exit 1."""
    out = tmp_path / "run"
    good, before = _first_epoch(synthetic_dataset, out)
    p = subprocess.run(
        [sys.executable, "-c", _DENY_EPOCH_2, *_opts(synthetic_dataset, out)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert p.returncode == 1, p.stdout + p.stderr
    err = p.stderr.strip().splitlines()
    assert err == [
        f"error: cannot write {out / 'checkpoints' / 'checkpoint_epoch_00002.pyth'}: Permission denied; kept: {good}"
    ], p.stderr
    assert err[0] in (out / "log.txt").read_text()
    assert good.read_bytes() == before
