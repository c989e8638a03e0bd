"""Helpers shared by tests (importable because setup.cfg puts tests/ on pytest's pythonpath)."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_tool(name: str):
    """Import ``tools/<name>.py`` as a module (the tools are scripts, not a package).

    It is registered in ``sys.modules`` so worker processes can unpickle the functions it defines.
    """
    module_name = f"rs3d_tool_{name}"
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


TF_GOLDEN = ROOT / "tests" / "fixtures" / "tf_golden.npz"


def tf_golden() -> dict:
    """The fixture from the authors' TF code (tools/tf_reference/make_golden.py wrote it), as a
    dict of arrays (an open npz would decompress an array again at every access)."""
    import numpy as np

    with np.load(TF_GOLDEN) as z:
        return {k: z[k] for k in z.files}


def ks_distance(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs."""
    import numpy as np

    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    x = np.concatenate([a, b])
    return float(
        np.abs(np.searchsorted(a, x, side="right") / len(a) - np.searchsorted(b, x, side="right") / len(b)).max()
    )


def tiny_run_opts(data_dir, out_dir, **extra) -> list:
    """KEY VALUE overrides of the engine tests' tiny run: 4 classes, 4x32x32 clips at width 1/8,
    3 optimizer steps per epoch, 3 epochs, validation every epoch, no loader workers, no
    TensorBoard; ``extra`` (``**{"KEY": value}``) changes or adds keys."""
    opts = {
        "DATA.PATH_TO_DATA_DIR": str(data_dir),
        "OUTPUT_DIR": str(out_dir),
        "DEVICE": "cpu",
        "MODEL.ARCH": "resnet3d_rs26",
        "MODEL.NUM_CLASSES": 4,
        "MODEL.WIDTH_MULTIPLIER": 0.125,
        "MODEL.DROPOUT_RATE": 0.5,
        "MODEL.DROP_PATH_RATE": 0.1,
        "DATA.NUM_FRAMES": 4,
        "DATA.SAMPLING_RATE": 2,
        "DATA.TRAIN_CROP_SIZE": 32,
        "DATA.TEST_CROP_SIZE": 32,
        "DATA.DECODING_BACKEND": "pyav",
        "DATA_LOADER.NUM_WORKERS": 0,
        "TRAIN.BATCH_SIZE": 4,
        "TRAIN.AMP_DTYPE": "float32",
        "TRAIN.EVAL_PERIOD": 1,
        "TRAIN.EMA_DECAY": 0.9,
        "SOLVER.BASE_LR": 0.1,
        "SOLVER.REFERENCE_BATCH_SIZE": 4,
        "SOLVER.WARMUP_EPOCHS": 1.0,
        "SOLVER.MAX_EPOCH": 3,
        "LOG_PERIOD": 1,
        "TENSORBOARD.ENABLE": False,
    }
    opts.update(extra)
    return [str(x) for kv in opts.items() for x in kv]
