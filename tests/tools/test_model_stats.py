"""tools/model_stats.py: the zoo table's numbers, as a user runs the tool."""

import json
import subprocess
import sys

import helpers
import pytest

import rs3d
from rs3d.models.stats import count_flops, count_parameters


def load_tool():
    return helpers.load_tool("model_stats")


def test_slow_r50_gflops_match_pytorchvideo_model_zoo(tmp_path, capsys):
    out = tmp_path / "stats.json"
    assert (
        load_tool().main(["--models", "slow_r50", "--frames", "8", "--res", "224", "--no-measure", "--json", str(out)])
        == 0
    )
    row = json.loads(out.read_text())["rows"][0]
    # docs/reference.md: PyTorchVideo's slow_r50 is 32.45 M parameters and 41.9 GFLOPs at 8x224x224 (fvcore).
    assert row["params_m"] == pytest.approx(32.45, abs=0.005)
    assert row["gflops"] == pytest.approx(41.9, abs=0.05)
    assert "train_step_s" not in row  # --no-measure
    assert "| slow_r50 | 8x224 | 32.45 | 41.9 | - | - |" in capsys.readouterr().out


@pytest.mark.slow
def test_measured_row_in_a_subprocess_per_model(tmp_path):
    out = tmp_path / "stats.json"
    p = subprocess.run(
        [
            sys.executable,
            str(helpers.ROOT / "tools" / "model_stats.py"),
            "--models",
            "resnet3d_rs26",
            "--frames",
            "4",
            "--res",
            "32",
            "--steps",
            "1",
            "--device",
            "cpu",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert "error" not in row, row["error"]
    model = rs3d.create_model("resnet3d_rs26", num_classes=400)
    assert row["params_m"] == count_parameters(model) / 1e6
    assert row["gflops"] == pytest.approx(count_flops(model, 4, 32), rel=1e-9)
    # The training step holds at least the gradients and the momentum buffers (one copy of the
    # parameters each) beyond what was resident before it.
    assert row["peak_mem_gib"] * 2**30 >= 2 * count_parameters(model) * 4
    printed = (
        f"| resnet3d_rs26 | 4x32 | {row['params_m']:.2f} | {row['gflops']:.1f} | "
        f"{row['train_step_s']:.3f} | {row['peak_mem_gib']:.2f} |"
    )
    assert printed in p.stdout


def test_unknown_model_is_refused(capsys):
    assert load_tool().main(["--models", "resnet3d_rs51", "--no-measure"]) == 2
    err = capsys.readouterr().err
    assert "resnet3d_rs51" in err and len(err.strip().splitlines()) == 1
