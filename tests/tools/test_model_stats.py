"""tools/model_stats.py: the zoo table's numbers."""
import helpers

import pytest



def load_tool():
    return helpers.load_tool("model_stats")


def test_slow_r50_gflops_match_pytorchvideo_model_zoo(tmp_path, capsys):
    tool = load_tool()
    out = tmp_path / "stats.json"
    assert tool.main(["--models", "slow_r50", "--frames", "8", "--res", "224", "--no-measure",
                      "--json", str(out)]) == 0
    import json
    row = json.loads(out.read_text())["rows"][0]
    # REFERENCE.md: PyTorchVideo's slow_r50 is 32.45 M parameters and 41.9 GFLOPs at 8x224x224 (fvcore).
    assert row["params_m"] == pytest.approx(32.45, abs=0.005)
    assert row["gflops"] == pytest.approx(41.9, abs=0.05)
    assert "| slow_r50 | 8x224 | 32.45 | 41.9 |" in capsys.readouterr().out


def test_training_step_measurement_runs():
    tool = load_tool()
    result = tool.measure_train_step("resnet3d_rs26", frames=4, res=32, batch=2, device="cpu", steps=1,
                                     channels_last=True)
    assert result["train_step_s"] > 0 and result["peak_mem_gib"] >= 0


def test_unknown_model_is_refused(capsys):
    assert load_tool().main(["--models", "resnet3d_rs51", "--no-measure"]) == 2
    assert "resnet3d_rs51" in capsys.readouterr().err
