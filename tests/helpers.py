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
