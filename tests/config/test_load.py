"""Config loading: _BASE_, overrides in both places, and one-line errors with exit status 2."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rs3d.cli.args import parse_command
from rs3d.cli.train import build_parser
from rs3d.config import ConfigError, get_cfg, load_config

REPO = Path(__file__).resolve().parents[2]


def test_base_inheritance_and_overrides(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("SOLVER:\n  BASE_LR: 0.4\n  MAX_EPOCH: 7\nMODEL:\n  NUM_CLASSES: 10\n")
    child = tmp_path / "child.yaml"
    child.write_text("_BASE_: base.yaml\nSOLVER:\n  MAX_EPOCH: 9\n")
    # Overrides before the option, and after --opts (rs3d.cli.args, the convention of every command).
    args = parse_command(
        build_parser(), ["MODEL.NUM_CLASSES", "12", "--cfg", str(child), "--opts", "SOLVER.BASE_LR", "1"]
    )
    cfg = load_config(args)
    assert cfg.SOLVER.MAX_EPOCH == 9  # child wins over base
    assert cfg.MODEL.NUM_CLASSES == 12  # trailing KEY VALUE
    assert cfg.SOLVER.BASE_LR == 1.0  # after --opts; an int is accepted for a float key
    assert isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.SOLVER.WEIGHT_DECAY == get_cfg().SOLVER.WEIGHT_DECAY  # untouched default
    assert cfg.is_frozen()


@pytest.mark.parametrize(
    "opts, needle",
    [
        (["MODEL.NOPE", "1"], "MODEL.NOPE"),
        (["SOLVER.BASE_LR", "fast"], "SOLVER.BASE_LR"),
        (["TRAIN.EMA", "1"], "TRAIN.EMA"),
        (["TRAIN.AMP_DTYPE", "fp8"], "TRAIN.AMP_DTYPE"),
        (["DATA.NUM_FRAMES", "0"], "DATA.NUM_FRAMES"),
        (["SOLVER.BASE_LR"], "KEY VALUE"),
    ],
)
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
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / "train_net.py"), *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["SOLVER.NOT_A_KEY", "1"], "SOLVER.NOT_A_KEY"),
        (["SOLVER.MAX_EPOCH", "many"], "SOLVER.MAX_EPOCH"),
        (["DATA.PATH_TO_DATA_DIR", "/nonexistent/kinetics"], "/nonexistent/kinetics"),
    ],
)
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


def test_unset_keys_take_their_type_or_null_from_file_and_command_line(tmp_path):
    """A key whose default is None accepts a value of its declared type, and null/None again."""
    cfg = load_config(None, ["TRAIN.MICRO_BATCH_SIZE", "8", "TRAIN.CLIP_GRAD_NORM", "1", "DEVICE", "cpu"])
    assert (cfg.TRAIN.MICRO_BATCH_SIZE, cfg.TRAIN.CLIP_GRAD_NORM, cfg.DEVICE) == (8, 1.0, "cpu")
    assert isinstance(cfg.TRAIN.CLIP_GRAD_NORM, float)
    f = tmp_path / "c.yaml"
    f.write_text("DEVICE: cpu\nTRAIN:\n  MICRO_BATCH_SIZE: 4\nMODEL:\n  WIDTH_MULTIPLIER: 1\n")
    cfg = load_config(str(f), ["DEVICE", "None", "TRAIN.MICRO_BATCH_SIZE", "null"])
    assert cfg.DEVICE is None and cfg.TRAIN.MICRO_BATCH_SIZE is None and cfg.MODEL.WIDTH_MULTIPLIER == 1.0
    f.write_text("TRAIN:\n  CHECKPOINT_FILE_PATH: null\n")
    assert load_config(str(f)).TRAIN.CHECKPOINT_FILE_PATH is None
    # The merged config written next to a run's outputs loads back to the same values.
    cfg = load_config(None, ["TRAIN.MICRO_BATCH_SIZE", "8"])
    (tmp_path / "run.yaml").write_text(cfg.dump())
    assert load_config(str(tmp_path / "run.yaml")) == cfg


@pytest.mark.parametrize(
    "opts, needle",
    [
        (["TRAIN.MICRO_BATCH_SIZE", "eight"], "TRAIN.MICRO_BATCH_SIZE expects int or null"),
        (["TRAIN.MICRO_BATCH_SIZE", "0"], "TRAIN.MICRO_BATCH_SIZE must be > 0"),
        (["TRAIN.CLIP_GRAD_NORM", "0"], "TRAIN.CLIP_GRAD_NORM must be > 0"),
        (["MODEL.STEM_TYPE", "wide"], "MODEL.STEM_TYPE must be one of 'plain', 'deep'"),
        (["MODEL.SE_RATIO", "-1"], "MODEL.SE_RATIO must be >= 0"),
        (["OUTPUT_DIR", "None"], "OUTPUT_DIR expects str"),  # only the keys that default to None are nullable
    ],
)
def test_bad_values_of_unset_keys_name_the_key(opts, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.").replace("(", r"\(")):
        load_config(None, opts)


@pytest.mark.parametrize("key", ["NUM_GPUS", "TRAIN.ENABLE", "TEST.ENABLE", "SOLVER.LR_POLICY"])
def test_removed_keys_are_named_with_the_reason(key, tmp_path):
    from rs3d.config.defaults import REMOVED_KEYS

    section, _, name = key.rpartition(".")
    f = tmp_path / "old.yaml"
    f.write_text(f"{section}:\n  {name}: 1\n" if section else f"{name}: 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(f))
    assert f"{key} was removed" in str(e.value) and str(f) in str(e.value) and REMOVED_KEYS[key] in str(e.value)
    with pytest.raises(ConfigError, match=f"{key.replace('.', '[.]')} was removed"):
        load_config(None, [key, "1"])
    assert key not in _flat(get_cfg())


def _flat(cfg, prefix=""):
    out = {}
    for k, v in cfg.items():
        if hasattr(v, "items"):
            out.update(_flat(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def test_none_defaults_and_their_types_agree():
    from rs3d.config.defaults import NONE_DEFAULT_TYPES

    unset = {k for k, v in _flat(get_cfg()).items() if v is None}
    assert unset == set(NONE_DEFAULT_TYPES)


def test_choices_are_the_modules_own_constants():
    """The allowed values come from the code that acts on them, so the two cannot drift apart."""
    from rs3d.config.load import choices
    from rs3d.data.decode import BACKENDS
    from rs3d.data.temporal import VIEW_POSITIONS
    from rs3d.data.transforms import JITTER_MODES
    from rs3d.engine.ema import EMA_FORMS
    from rs3d.engine.metrics import ENSEMBLE_METHODS
    from rs3d.engine.optim import MOMENTUM_FORMS, OPTIMIZERS
    from rs3d.engine.precision import AMP_DTYPES
    from rs3d.engine.schedule import RUN_LENGTHS
    from rs3d.models.resnet3d import DROP_PATH_MODES, INITS, STEM_TYPES

    c = choices()
    assert c["MODEL.STEM_TYPE"] is STEM_TYPES and c["MODEL.DROP_PATH_MODE"] is DROP_PATH_MODES
    assert c["DATA.DECODING_BACKEND"] is BACKENDS
    # The config may not import the engine: these are written twice and checked here.
    assert c["SOLVER.OPTIMIZING_METHOD"] == OPTIMIZERS
    assert c["TRAIN.AMP_DTYPE"] == tuple(AMP_DTYPES)
    assert c["TEST.ENSEMBLE_METHOD"] == tuple(ENSEMBLE_METHODS)
    assert c["SOLVER.RUN_LENGTH"] == RUN_LENGTHS
    assert c["SOLVER.MOMENTUM_FORM"] == MOMENTUM_FORMS
    assert c["TRAIN.EMA_FORM"] == EMA_FORMS
    assert c["MODEL.INIT"] is INITS
    assert c["DATA.TRAIN_JITTER_MODE"] == JITTER_MODES
    assert c["TEST.VIEW_POSITIONS"] == VIEW_POSITIONS
    defaults = _flat(get_cfg())
    for key, allowed in c.items():
        assert defaults[key] is None or defaults[key] in allowed, key


def test_every_key_in_defaults_has_a_comment():
    """Each ``_C.X = ...`` line follows a comment, directly or through the keys of its group."""
    lines = (REPO / "rs3d" / "config" / "defaults.py").read_text().splitlines()
    missing = []
    for i, line in enumerate(lines):
        if line.startswith("_C.") and "CfgNode()" not in line:
            j = i - 1
            while j >= 0 and lines[j].startswith("_C.") and "CfgNode()" not in lines[j]:
                j -= 1
            if not lines[j].lstrip().startswith("#"):
                missing.append(line)
    assert not missing, missing


def _numeric_keys():
    from rs3d.config.defaults import NONE_DEFAULT_TYPES

    out = []
    for key, v in _flat(get_cfg()).items():
        values = v if isinstance(v, (list, tuple)) else [v]
        kind = NONE_DEFAULT_TYPES.get(key) if v is None else None
        if kind in (int, float) or (
            values and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values) and v is not None
        ):
            out.append(key)
    return out


def test_every_numeric_key_has_a_range_or_a_reason_for_none():
    """A new numeric key cannot skip validation: it needs an interval (or a reason any value works)."""
    from rs3d.config.load import ANY_NUMBER, RANGES

    keys = _numeric_keys()
    assert "SOLVER.BASE_LR" in keys and "DATA.TRAIN_JITTER_SCALES" in keys and "DATA.TARGET_FPS" in keys
    assert not [k for k in keys if k not in RANGES and k not in ANY_NUMBER]
    assert not set(RANGES) & set(ANY_NUMBER)


@pytest.mark.parametrize(
    "opts, needle",
    [
        (["DATA.TRAIN_JITTER_SCALES", "[40, 32]"], "DATA.TRAIN_JITTER_SCALES is [low, high]"),
        (["DATA.TRAIN_JITTER_SCALES", "[0, 32]"], "DATA.TRAIN_JITTER_SCALES must be > 0"),
        (["DATA.TRAIN_JITTER_SCALES", "[256]"], "DATA.TRAIN_JITTER_SCALES must hold 2 values"),
        (["DATA.TRAIN_JITTER_AREA", "[0.5, 0.2]"], "DATA.TRAIN_JITTER_AREA is [low, high]"),
        (["DATA.TRAIN_JITTER_AREA", "[0.5, 1.5]"], "DATA.TRAIN_JITTER_AREA must be in (0, 1]"),
        (["DATA.TRAIN_JITTER_AREA", "[0.0, 1.0]"], "DATA.TRAIN_JITTER_AREA must be in (0, 1]"),
        (["DATA.TRAIN_JITTER_ASPECT", "[2.0, 0.5]"], "DATA.TRAIN_JITTER_ASPECT is [low, high]"),
        (["DATA.TRAIN_JITTER_ASPECT", "[-1.0, 2.0]"], "DATA.TRAIN_JITTER_ASPECT must be > 0"),
        (["MODEL.DROPOUT_RATE", "1.0"], "MODEL.DROPOUT_RATE must be in [0, 1)"),
        (["SOLVER.MOMENTUM", "1.5"], "SOLVER.MOMENTUM must be in [0, 1)"),
        (["TRAIN.FREEZE_STAGES", "6"], "TRAIN.FREEZE_STAGES must be in [0, 5]"),
        (["DATA.TARGET_FPS", "0"], "DATA.TARGET_FPS must be > 0, or null"),
        (["DATA_LOADER.PREFETCH_FACTOR", "0"], "DATA_LOADER.PREFETCH_FACTOR must be >= 1"),
        (["BN.EPSILON", "0"], "BN.EPSILON must be > 0"),
        (["SOLVER.BASE_LR", "1e999"], "SOLVER.BASE_LR must be a finite number"),
        (["DATA.STD", "[1.0, 1e999, 1.0]"], "DATA.STD must be a finite number"),
    ],
)
def test_ranges_and_ordered_pairs_are_checked(opts, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_config(None, opts)


@pytest.mark.parametrize(
    "text",
    [
        "SOLVER:\n  BASE_LR: .nan\n",
        "SOLVER:\n  BASE_LR: .inf\n",
        "SOLVER:\n  WEIGHT_DECAY: -.inf\n",
        "DATA:\n  MEAN: [0.0, .nan, 0.0]\n",
    ],
)
def test_nan_and_inf_are_refused_from_yaml_as_from_the_command_line(text, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=f"{f}: .* must be a finite number"):
        load_config(str(f))


def test_a_base_cycle_is_named_in_one_line(tmp_path):
    (tmp_path / "a.yaml").write_text("_BASE_: b.yaml\nSOLVER:\n  MAX_EPOCH: 3\n")
    (tmp_path / "b.yaml").write_text("_BASE_: a.yaml\n")
    (tmp_path / "self.yaml").write_text("_BASE_: self.yaml\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(tmp_path / "a.yaml"))
    assert "include each other" in str(e.value) and "a.yaml -> " in str(e.value) and "b.yaml" in str(e.value)
    with pytest.raises(ConfigError, match="self.yaml -> .*self.yaml"):
        load_config(str(tmp_path / "self.yaml"))
    p = subprocess.run(
        [sys.executable, "-m", "rs3d.cli.train", "--cfg", str(tmp_path / "self.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr[-2000:]
    assert p.stderr.startswith("error: ") and "include each other" in p.stderr


def test_a_base_shared_by_two_files_is_no_cycle_and_bases_merge_as_before(tmp_path):
    """A diamond (two bases sharing one) is allowed; a list of bases merges in order, the file wins."""
    (tmp_path / "root.yaml").write_text("SOLVER:\n  MAX_EPOCH: 3\n  BASE_LR: 0.1\n")
    (tmp_path / "left.yaml").write_text("_BASE_: root.yaml\nSOLVER:\n  BASE_LR: 0.2\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "right.yaml").write_text(
        "_BASE_: ../root.yaml\nSOLVER:\n  BASE_LR: 0.3\n  WEIGHT_DECAY: 0.01\n"
    )
    (tmp_path / "top.yaml").write_text("_BASE_: [left.yaml, sub/right.yaml]\nSOLVER:\n  WEIGHT_DECAY: 0.02\n")
    cfg = load_config(str(tmp_path / "top.yaml"))
    assert (cfg.SOLVER.MAX_EPOCH, cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY) == (3, 0.3, 0.02)
    (tmp_path / "bad.yaml").write_text("_BASE_: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="_BASE_ file not found: .*nowhere.yaml"):
        load_config(str(tmp_path / "bad.yaml"))
