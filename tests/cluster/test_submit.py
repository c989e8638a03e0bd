"""rs3d-submit: the job a 4-node x 8-GPU submission would be (dry run), one-line refusals, and
the env:// rendezvous each task derives from SLURM's variables."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rs3d.cli.submit import main

REPO = Path(__file__).resolve().parents[2]


def test_dry_run_of_a_4_node_8_gpu_job(synthetic_dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(
        [
            "--cfg",
            str(REPO / "configs" / "k400_rs50.yaml"),
            "--nodes",
            "4",
            "--gpus-per-node",
            "8",
            "--partition",
            "gpu",
            "--account",
            "vision",
            "--time",
            "3-00:00:00",
            "--cpus-per-task",
            "10",
            "--mem",
            "480G",
            "--constraint",
            "a100",
            "--signal-delay",
            "180",
            "--dry-run",
            "DATA.PATH_TO_DATA_DIR",
            str(synthetic_dataset),
            "OUTPUT_DIR",
            "out/rs50",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    lines = out.splitlines()
    # Resources: one task per GPU.
    assert lines[0].startswith("job rs3d: 4 node(s) x 8 task(s) per node = 32 process(es); 8 GPU(s) per node")
    for flag in (
        "--nodes=4",
        "--ntasks-per-node=8",
        "--gpus-per-node=8",
        "--cpus-per-task=10",
        "--mem=480G",
        "--partition=gpu",
        "--account=vision",
        "--constraint=a100",
        "--time=4320",
        "--signal=USR2@180",
        "--requeue",
    ):
        assert f"#SBATCH {flag}" in lines, flag
    # The command every task runs, with the relative OUTPUT_DIR made absolute.
    absolute = str(tmp_path / "out" / "rs50")
    assert (
        f"  {sys.executable} -m rs3d.cli.train --cfg {REPO}/configs/k400_rs50.yaml "
        f"DATA.PATH_TO_DATA_DIR {synthetic_dataset} OUTPUT_DIR out/rs50" in lines
    )
    assert f"  OUTPUT_DIR {absolute} (checkpoints; the job resumes there after a requeue)" in lines
    srun = [x for x in lines if x.startswith("srun ")]
    assert len(srun) == 1 and srun[0].endswith(f"-m submitit.core._submit {absolute}/submitit/%j")
    # The rendezvous.
    assert "rendezvous: env:// from SLURM's variables, one task per GPU (rs3d.cluster.rendezvous)" in lines
    assert "  WORLD_SIZE=32 (= $SLURM_NTASKS: 4 nodes x 8 tasks)" in lines
    assert "  RANK=$SLURM_PROCID (0-31)  LOCAL_RANK=$SLURM_LOCALID (0-7)  LOCAL_WORLD_SIZE=8" in lines
    assert "  MASTER_ADDR=<first host of $SLURM_JOB_NODELIST>" in lines
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


@pytest.mark.parametrize(
    "args, message",
    [
        (["--time", "3 days"], "--time '3 days': use minutes"),
        (["--mem", "lots"], "--mem 'lots': use e.g. 480G"),
        (["--nodes", "0"], "--nodes must be >= 1"),
        (["--cluster", "local", "--nodes", "2"], "--cluster local runs one node"),
        ([], "cannot submit to SLURM from here"),  # no srun on this machine, and not a dry run
    ],
)
def test_bad_submissions_are_one_line_exit_2(synthetic_dataset, tmp_path, capsys, args, message):
    if message.startswith("cannot submit") and any(
        os.access(os.path.join(d, "srun"), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep)
    ):
        pytest.skip("this machine has srun")
    rc = main([*args, "DATA.PATH_TO_DATA_DIR", str(synthetic_dataset), "OUTPUT_DIR", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_missing_data_and_a_remote_output_without_folder_are_refused(tmp_path, capsys, synthetic_dataset):
    assert main(["DATA.PATH_TO_DATA_DIR", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--dry-run", "DATA.PATH_TO_DATA_DIR", str(synthetic_dataset), "OUTPUT_DIR", "s3://b/run"]) == 2
    assert "give --folder" in capsys.readouterr().err


def test_the_module_runs_the_command():
    p = subprocess.run([sys.executable, "-m", "rs3d.cli.submit", "--help"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "--gpus-per-node" in p.stdout and "--dry-run" in p.stdout


def test_rendezvous_from_slurm_variables(monkeypatch):
    """Task 13 of a 4 x 8 job: the env:// variables every rank computes alike from SLURM's."""
    from rs3d.cluster import export_torch_env

    slurm = {
        "SUBMITIT_EXECUTOR": "slurm",
        "SLURM_JOB_ID": "4242",
        "SLURM_NTASKS": "32",
        "SLURM_JOB_NUM_NODES": "4",
        "SLURM_NODEID": "1",
        "SLURM_PROCID": "13",
        "SLURM_LOCALID": "5",
        "SLURM_JOB_NODELIST": "gpu[003-005],gpu010",
        # left over from the submitting shell: must be replaced
        "MASTER_ADDR": "stale",
        "RANK": "0",
        "WORLD_SIZE": "1",
    }
    for k, v in slurm.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    for k in ("LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    env = export_torch_env()
    assert {k: env[k] for k in ("MASTER_ADDR", "WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE")} == {
        "MASTER_ADDR": "gpu003",
        "WORLD_SIZE": "32",
        "RANK": "13",
        "LOCAL_RANK": "5",
        "LOCAL_WORLD_SIZE": "8",
    }
    port = int(env["MASTER_PORT"])
    assert 20000 <= port <= 60000 and os.environ["MASTER_PORT"] == env["MASTER_PORT"]
    monkeypatch.setenv("SLURM_PROCID", "0")  # another task of the same job: the same port
    monkeypatch.delenv("MASTER_PORT")
    assert export_torch_env()["MASTER_PORT"] == str(port)


def test_a_dry_run_needs_no_data_and_warns(tmp_path, capsys):
    """The job is shown from a machine without the data (it lives where the job runs), with a warning."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("a.mp4 0\n")  # val.csv missing
    rc = main(
        [
            "--dry-run",
            "--cluster",
            "local",
            "--gpus-per-node",
            "0",
            "DATA.PATH_TO_DATA_DIR",
            str(data),
            "OUTPUT_DIR",
            str(tmp_path / "o"),
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0 and "local job" in captured.out, captured
    assert "warning: " in captured.err and "has no val.csv" in captured.err
    assert (
        main(
            [
                "--dry-run",
                "DATA.PATH_TO_DATA_DIR",
                str(tmp_path / "nope"),
                "OUTPUT_DIR",
                str(tmp_path / "o"),
                "--cluster",
                "local",
                "--gpus-per-node",
                "0",
            ]
        )
        == 0
    )
    assert "does not exist" in capsys.readouterr().err


def test_every_problem_is_listed_at_once(tmp_path, capsys):
    rc = main(
        [
            "--nodes",
            "0",
            "--mem",
            "lots",
            "--time",
            "3 days",
            "DATA.PATH_TO_DATA_DIR",
            str(tmp_path / "nope"),
            "OUTPUT_DIR",
            "s3://b/run",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    for piece in ("--nodes must be >= 1", "--mem 'lots'", "--time '3 days'", "give --folder", "does not exist"):
        assert piece in err[0], (piece, err[0])
