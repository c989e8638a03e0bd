"""Config loading: _BASE_, overrides in both places, and one-line errors with exit status 2."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rs3d.config import ConfigError, get_cfg, load_config, parse_args

REPO = Path(__file__).resolve().parents[2]


def test_base_inheritance_and_overrides(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("SOLVER:\n  BASE_LR: 0.4\n  MAX_EPOCH: 7\nMODEL:\n  NUM_CLASSES: 10\n")
    child = tmp_path / "child.yaml"
    child.write_text("_BASE_: base.yaml\nSOLVER:\n  MAX_EPOCH: 9\n")
    args = parse_args(["--cfg", str(child), "MODEL.NUM_CLASSES", "12", "--opts", "SOLVER.BASE_LR", "1"])
    cfg = load_config(args)
    assert cfg.SOLVER.MAX_EPOCH == 9          # child wins over base
    assert cfg.MODEL.NUM_CLASSES == 12        # trailing KEY VALUE
    assert cfg.SOLVER.BASE_LR == 1.0          # after --opts; an int is accepted for a float key
    assert isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.SOLVER.WEIGHT_DECAY == get_cfg().SOLVER.WEIGHT_DECAY  # untouched default
    assert cfg.is_frozen()


@pytest.mark.parametrize("opts, needle", [
    (["MODEL.NOPE", "1"], "MODEL.NOPE"),
    (["SOLVER.BASE_LR", "fast"], "SOLVER.BASE_LR"),
    (["TRAIN.EMA", "1"], "TRAIN.EMA"),
    (["TRAIN.AMP_DTYPE", "fp8"], "TRAIN.AMP_DTYPE"),
    (["DATA.NUM_FRAMES", "0"], "DATA.NUM_FRAMES"),
    (["SOLVER.BASE_LR"], "KEY VALUE"),
])
def test_bad_values_name_the_key(opts, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(None, opts)


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("TRAIN:\n  BATCHSIZE: 8\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(f))
    assert "TRAIN.BATCHSIZE" in str(e.value) and str(f) in str(e.value)


def test_missing_data_dir_and_csv(tmp_path):
    with pytest.raises(ConfigError, match="DATA.PATH_TO_DATA_DIR"):
        load_config(None, ["DATA.PATH_TO_DATA_DIR", str(tmp_path / "nowhere")], splits=("train",))
    (tmp_path / "train.csv").write_text("a.mp4 0\n")
    load_config(None, ["DATA.PATH_TO_DATA_DIR", str(tmp_path)], splits=("train",))
    with pytest.raises(ConfigError, match="val.csv"):
        load_config(None, ["DATA.PATH_TO_DATA_DIR", str(tmp_path)], splits=("train", "val"))


def _run_tool(*argv):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, str(REPO / "tools" / "train_net.py"), *argv],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


@pytest.mark.parametrize("argv, needle", [
    (["SOLVER.NOT_A_KEY", "1"], "SOLVER.NOT_A_KEY"),
    (["SOLVER.MAX_EPOCH", "many"], "SOLVER.MAX_EPOCH"),
    (["DATA.PATH_TO_DATA_DIR", "/nonexistent/kinetics"], "/nonexistent/kinetics"),
])
def test_tool_prints_one_line_and_exits_2(argv, needle, tmp_path):
    p = _run_tool("--cfg", str(REPO / "configs" / "k400_rs50.yaml"), "OUTPUT_DIR", str(tmp_path / "o"), *argv)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "o").exists()  # stopped before any work


def test_tool_missing_config_file(tmp_path):
    p = _run_tool("--cfg", str(tmp_path / "missing.yaml"))
    assert p.returncode == 2 and p.stderr.startswith("error: config file not found")
