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
