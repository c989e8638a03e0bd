"""The command line: console scripts (the one name of every command), the two PySlowFast-style
tools/ shims, and one error path for all."""

import ast
import configparser
import importlib
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from helpers import load_tool

ROOT = Path(__file__).resolve().parents[1]
# console script -> package module
COMMANDS = {
    "rs3d-train": "rs3d.cli.train",
    "rs3d-test": "rs3d.cli.test",
    "rs3d-predict": "rs3d.cli.predict",
    "rs3d-demo": "rs3d.cli.demo",
    "rs3d-make-synthetic": "rs3d.cli.make_synthetic",
    "rs3d-prepare-kinetics": "rs3d.cli.prepare_kinetics",
    "rs3d-extract-features": "rs3d.cli.extract_features",
    "rs3d-visualize": "rs3d.cli.visualize",
    "rs3d-submit": "rs3d.cli.submit",
    "rs3d-sweep": "rs3d.cli.sweep",
    "rs3d-convert-annotations": "rs3d.cli.convert_annotations",
    "rs3d-make-directions": "rs3d.cli.make_directions",
    "rs3d-manifest": "rs3d.cli.manifest",
    "rs3d-timeline": "rs3d.cli.timeline",
    "rs3d-export": "rs3d.cli.export",
}
# tools/ keeps the two scripts PySlowFast users run (tools/train_net.py --cfg ...), as shims.
SHIMS = {"train_net": "rs3d.cli.train", "test_net": "rs3d.cli.test"}
# ... and developer utilities that are no command of the package.
DEV_TOOLS = {
    "check_open_gop.py",
    "model_stats.py",
    "gradcam_localisation.py",
    "timeline_accuracy.py",
    "device_wheels.sh",
    "gpu_benchmarks.sh",
}


def declared_scripts() -> dict:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


def test_setup_cfg_declares_every_command_and_the_install_has_them():
    declared = declared_scripts()
    assert {name: f"{module}:main" for name, module in COMMANDS.items()} == declared
    installed = {
        ep.name: ep.value for ep in metadata.entry_points(group="console_scripts") if ep.name.startswith("rs3d-")
    }
    assert installed == declared, "the installed entry points are stale: run `make install` again"
    for name, target in declared.items():
        module, func = target.split(":")
        assert module.startswith("rs3d.cli.") and callable(getattr(importlib.import_module(module), func)), name


@pytest.mark.parametrize("script", sorted(SHIMS))
def test_tools_script_is_a_shim_over_the_package_command(script):
    module = SHIMS[script]
    path = ROOT / "tools" / f"{script}.py"
    tree = ast.parse(path.read_text())
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert len(body) <= 3, f"{path} should only import and call {module}.main"
    imports = [n for n in body if isinstance(n, ast.ImportFrom)]
    assert [(n.module, [a.name for a in n.names]) for n in imports] == [(module, ["main"])]
    assert "sys.path" not in path.read_text()
    assert load_tool(script).main is importlib.import_module(module).main


def test_tools_holds_the_two_shims_and_developer_utilities_only():
    """Every other command has one name, its console script."""
    found = {p.name for p in (ROOT / "tools").iterdir() if p.is_file()}
    assert found <= {f"{s}.py" for s in SHIMS} | DEV_TOOLS, found - {f"{s}.py" for s in SHIMS} - DEV_TOOLS


# One mistake per command, each a different kind of error; each must give one line and status 2.
MISTAKES = {
    "rs3d-train": (lambda tmp: ["--cfg", str(tmp / "missing.yaml")], "config file not found"),
    "rs3d-test": (lambda tmp: ["TEST.NO_SUCH_KEY", "1"], "TEST.NO_SUCH_KEY"),
    "rs3d-predict": (lambda tmp: ["--", str(tmp / "GOPR0001.MP4")], "GOPR0001.MP4: video not found"),
    "rs3d-demo": (
        lambda tmp: ["MODEL.NUM_CLASSES", "7", "DATA.PATH_TO_DATA_DIR", str(tmp / "none")],
        "the synthetic set has 4 classes",
    ),
    "rs3d-make-synthetic": (lambda tmp: ["--out", str(tmp / "s"), "--num-classes", "1"], "num_classes"),
    "rs3d-prepare-kinetics": (lambda tmp: [str(tmp / "nowhere"), "--out", str(tmp / "o")], "not a folder"),
    "rs3d-extract-features": (
        lambda tmp: ["--folder", str(tmp / "nowhere"), "--out", str(tmp / "o")],
        "no such folder",
    ),
    "rs3d-visualize": (lambda tmp: ["confusion", str(tmp / "nowhere")], "not found"),
    "rs3d-submit": (lambda tmp: ["--cfg", str(tmp / "missing.yaml"), "--dry-run"], "config file not found"),
    "rs3d-convert-annotations": (
        lambda tmp: ["ucf101", str(tmp / "nowhere"), "--videos", str(tmp / "nowhere"), "--out", str(tmp / "o")],
        "nowhere",
    ),
    "rs3d-make-directions": (lambda tmp: ["--out", str(tmp / "s"), "--num-classes", "1"], "num_classes"),
    "rs3d-manifest": (
        lambda tmp: ["build", str(tmp / "nowhere"), "--out", str(tmp / "o")],
        "nowhere: dataset folder not found",
    ),
    "rs3d-timeline": (lambda tmp: ["--window", "1", "--", str(tmp / "GOPR0001.MP4")], "GOPR0001.MP4: video not found"),
    "rs3d-export": (
        lambda tmp: ["--out", str(tmp / "o"), "TEST.CHECKPOINT_FILE_PATH", str(tmp / "nope.pyth")],
        "nope.pyth does not exist",
    ),
    "rs3d-sweep": (
        lambda tmp: ["--cfg", str(tmp / "missing.yaml"), "--grid", "depth=26,50", "--out", str(tmp / "s")],
        "missing.yaml",
    ),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_turns_a_mistake_into_one_line_and_status_2(name, tmp_path, capsys):
    argv, needle = MISTAKES[name]
    main = importlib.import_module(COMMANDS[name]).main
    assert main(argv(tmp_path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert not (tmp_path / "o").exists() and not (tmp_path / "s").exists()


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@pytest.mark.parametrize("how", ["console script", "python -m", "tools/ shim"])
def test_the_three_ways_to_run_a_command_agree(how, tmp_path):
    """Run from another folder: the installed package is found without any sys.path edit."""
    argv = {
        "console script": [_script("rs3d-train")],
        "python -m": [sys.executable, "-m", "rs3d.cli.train"],
        "tools/ shim": [sys.executable, str(ROOT / "tools" / "train_net.py")],
    }[how]
    p = subprocess.run(
        argv + ["SOLVER.MAX_EPOCH", "many", "OUTPUT_DIR", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and "SOLVER.MAX_EPOCH" in p.stderr
    assert p.stderr.startswith("error: ") and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_demo_trains_and_tests_in_child_processes_on_a_given_dataset(synthetic_dataset, tmp_path):
    out = tmp_path / "out"
    p = subprocess.run(
        [
            _script("rs3d-demo"),
            "DATA.PATH_TO_DATA_DIR",
            str(synthetic_dataset),
            "OUTPUT_DIR",
            str(out),
            "SOLVER.MAX_EPOCH",
            "1",
            "TRAIN.EVAL_PERIOD",
            "0",
            "TRAIN.BATCH_SIZE",
            "4",
            "DATA.NUM_FRAMES",
            "4",
            "TEST.NUM_ENSEMBLE_VIEWS",
            "1",
            "TEST.NUM_SPATIAL_CROPS",
            "1",
            "DATA_LOADER.NUM_WORKERS",
            "0",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    assert f"[demo] using the dataset in {synthetic_dataset}" in p.stdout
    assert "[demo] rs3d-train --cfg " in p.stdout and "[demo] rs3d-test --cfg " in p.stdout
    assert (out / "checkpoints" / "checkpoint_epoch_00001.pyth").is_file()
    assert "    num_videos: 8" in p.stdout and (out / "test_metrics.json").is_file()


# ----------------------------------------------------------------------------- one convention (rs3d.cli.args)
DOC_PAGES = {
    "rs3d-train": "docs/training.md",
    "rs3d-test": "docs/evaluation.md",
    "rs3d-prepare-kinetics": "docs/data.md",
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_help_names_the_console_script_with_an_example_exit_statuses_and_docs(name, capsys):
    main = importlib.import_module(COMMANDS[name]).main
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {name} ")
    assert f"examples:\n  {name} " in out or f"examples:\n  {name}\n" in out
    assert "exit status:\n    0  done\n" in out and "\n    2  a mistake" in out
    assert "\ndocumentation: docs/" in out and DOC_PAGES.get(name, "docs/") in out
    assert "--version" in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_prints_the_package_version(name, capsys):
    import rs3d

    main = importlib.import_module(COMMANDS[name]).main
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"{name} (rs3d) {rs3d.__version__}"


def test_options_may_follow_the_overrides(tmp_path, capsys):
    # --cfg after KEY VALUE pairs is still the option (it used to be swallowed as an override).
    main = importlib.import_module("rs3d.cli.train").main
    assert main(["OUTPUT_DIR", str(tmp_path / "o"), "--cfg", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err.strip() == f"error: config file not found: {tmp_path / 'missing.yaml'}"


def test_after_dashdash_and_opts_come_overrides_for_a_command_without_videos(tmp_path, capsys):
    main = importlib.import_module("rs3d.cli.test").main
    assert main(["--", "TEST.NO_SUCH_KEY", "1"]) == 2
    assert "TEST.NO_SUCH_KEY" in capsys.readouterr().err
    assert main(["--opts", "TEST.OTHER_KEY", "1"]) == 2
    assert "TEST.OTHER_KEY" in capsys.readouterr().err


def test_a_command_without_overrides_refuses_tokens_after_dashdash(tmp_path, capsys):
    main = importlib.import_module("rs3d.cli.make_synthetic").main
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path / "s"), "--", "X.Y", "1"])
    assert e.value.code == 2 and "takes no config overrides" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
