"""The import rules of docs/architecture.md, checked on the source (so a violation fails CI).

Read statically with ``ast`` (every ``import`` and ``from ... import``, also inside functions), so a
lazy import inside a function counts as much as one at the top of a module.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rs3d"

# package -> rs3d packages it must never import (directly, at any depth of the module).
FORBIDDEN = {
    "rs3d.layers": ("rs3d.models", "rs3d.data", "rs3d.engine", "rs3d.config", "rs3d.cli", "rs3d.sweep"),
    "rs3d.models": ("rs3d.data", "rs3d.engine", "rs3d.config", "rs3d.cli", "rs3d.sweep"),
    "rs3d.data": ("rs3d.engine", "rs3d.cli", "rs3d.sweep"),
    "rs3d.config": ("rs3d.engine", "rs3d.cli", "rs3d.sweep"),
    "rs3d.engine": ("rs3d.cli", "rs3d.sweep", "rs3d.cluster"),
    "rs3d.io": ("rs3d.layers", "rs3d.models", "rs3d.data", "rs3d.config", "rs3d.engine", "rs3d.cli",
                "rs3d.sweep", "rs3d.cluster", "rs3d.inference"),
    "rs3d.inference": ("rs3d.cli", "rs3d.sweep", "rs3d.cluster"),
    "rs3d.sweep": ("rs3d.cluster",),  # the SLURM launcher plugs into the sweep's seam, not the reverse
}
# Nothing installed may import these top-level folders (they are not installed).
NOT_INSTALLED = ("tools", "benchmarks", "tests")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def _library_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_scan_resolves_relative_imports():
    # The checker must see relative imports (zoo.py uses `from .resnet3d import ...`), or it checks nothing.
    fake = PACKAGE / "models" / "zoo.py"
    names = [name for _, name in _imports(fake)]
    assert any(_within(n, "rs3d.models") for n in names), names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layering(package):
    violations = []
    for path in _library_files():
        if not _within(_module_name(path), package):
            continue
        for line, name in _imports(path):
            for banned in FORBIDDEN[package]:
                if _within(name, banned):
                    violations.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not violations, "\n".join(violations)


def test_the_library_never_imports_tools_benchmarks_or_tests():
    violations = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                  for path in _library_files() for line, name in _imports(path)
                  if name.split(".")[0] in NOT_INSTALLED]
    assert not violations, "\n".join(violations)


def test_the_library_never_imports_pytorchvideo():
    # PyTorchVideo is a benchmark peer and a conversion source, not a dependency of the library.
    violations = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                  for path in _library_files() for line, name in _imports(path)
                  if name.split(".")[0] == "pytorchvideo"]
    assert not violations, "\n".join(violations)
