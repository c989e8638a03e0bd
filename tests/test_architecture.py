"""The package graph of docs/architecture.md, checked on the source (so a violation fails CI).

Every package of ``rs3d`` has a rank; a module may import its own package and packages of a lower
rank, nothing else. On top of that, the graph of modules must have no cycle. Imports are read
statically with ``ast`` (every ``import`` and ``from ... import``, also inside functions), so a lazy
import inside a function counts as much as one at the top of a module. The same checker runs on a
small fake package built in ``tmp_path`` with a planted upward import and a planted cycle, which it
must report, so it is shown to catch both.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rs3d"

# Lowest first. Packages in one row are independent (neither may import the other); a package may
# import every package of an earlier row. The most specific row wins (``rs3d.data.video`` is
# ranked apart from ``rs3d.data``). ``rs3d`` itself is the top-level facade (``rs3d.create_model``).
RANKS = (
    ("rs3d.errors", "rs3d.device"),  # the error hierarchy (+ run_tool); the default-device rule
    ("rs3d.file_io", "rs3d.layers"),  # paths and atomic writes; 3D building blocks
    ("rs3d.models",),  # ResNet3D, the zoo, weight conversion, model stats
    ("rs3d",),  # the facade: rs3d.create_model, rs3d.__version__
    ("rs3d.data.video",),  # video file -> frames exactly as ffmpeg shows them
    ("rs3d.data",),  # lists, datasets, transforms, loaders, class names
    ("rs3d.config", "rs3d.manifest"),  # defaults, loading, validation; dataset manifests, fingerprints
    ("rs3d.checkpoint",),  # checkpoint files: save, load, newest good, the weights to use
    ("rs3d.engine",),  # training: state, loop, validation, EMA, optimizer, distributed
    ("rs3d.inference",),  # using a trained model: load, views, predict, features, timeline
    ("rs3d.evaluation",),  # the multi-view test and its reports
    ("rs3d.sweep",),  # scaling sweeps and their tables and plots
    ("rs3d.cluster",),  # SLURM submission, the sweep's job-array launcher
    ("rs3d.cli",),  # the commands
)
# Nothing installed may import these top-level folders (they are not installed).
NOT_INSTALLED = ("tools", "benchmarks", "tests")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _raw_imports(path: Path, root: Path) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) for every import in ``path``; names are empty for
    ``import x.y``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name, [alias.name for alias in node.names]))
    return found


def module_graph(root: Path, package: str) -> dict[str, list[tuple[int, str]]]:
    """Module -> [(line, module it imports)] over every ``.py`` file of ``root/package``, imports
    of modules outside the package left out. ``from p import x`` is an import of ``p.x`` when that
    is a module, else of ``p``."""
    files = sorted((root / package).rglob("*.py"))
    modules = {_module_name(p, root): p for p in files}

    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, list[tuple[int, str]]] = {}
    for module, path in modules.items():
        edges = []
        for line, name, names in _raw_imports(path, root):
            if not (name == package or name.startswith(package + ".")):
                continue
            targets = [f"{name}.{n}" for n in names if f"{name}.{n}" in modules] or [resolve(name)]
            edges += [(line, t) for t in targets if t != module]
        graph[module] = edges
    return graph


def package_of(module: str, ranks) -> str:
    """The most specific ranked package holding ``module`` ('' if none does)."""
    best = ""
    for row in ranks:
        for pkg in row:
            if (module == pkg or module.startswith(pkg + ".")) and len(pkg) > len(best):
                best = pkg
    return best


def rank_violations(root: Path, package: str, ranks) -> list[str]:
    """Every import of a package that is not of a lower rank (nor the module's own package), and
    every module that belongs to no ranked package."""
    rank = {pkg: i for i, row in enumerate(ranks) for pkg in row}
    graph = module_graph(root, package)
    out = []
    for module, edges in sorted(graph.items()):
        mine = package_of(module, ranks)
        if not mine:
            out.append(f"{module}: in no ranked package (add a row for it)")
            continue
        for line, target in edges:
            theirs = package_of(target, ranks)
            if theirs != mine and rank[theirs] >= rank[mine]:
                out.append(
                    f"{module}:{line} imports {target} ({mine} rank {rank[mine]} may not "
                    f"import {theirs} rank {rank[theirs]})"
                )
    return out


def import_cycles(root: Path, package: str) -> list[list[str]]:
    """The module-level import cycles (strongly connected components of two or more modules)."""
    graph = {m: sorted({t for _, t in edges}) for m, edges in module_graph(root, package).items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm; the graphs are small
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


# ----------------------------------------------------------------------------- the tree itself
def test_every_package_is_ranked_and_imports_only_lower_ranks():
    violations = rank_violations(ROOT, "rs3d", RANKS)
    assert not violations, "\n".join(violations)


def test_there_is_no_import_cycle_between_modules():
    cycles = import_cycles(ROOT, "rs3d")
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)


def test_every_rank_row_names_a_package_that_exists():
    for row in RANKS:
        for pkg in row:
            path = ROOT.joinpath(*pkg.split("."))
            assert path.is_dir() or path.with_suffix(".py").is_file(), pkg


def test_the_scan_resolves_relative_imports():
    # The checker must see relative imports (zoo.py uses `from .resnet3d import ...`), or it checks nothing.
    graph = module_graph(ROOT, "rs3d")
    assert any(t == "rs3d.models.resnet3d" for _, t in graph["rs3d.models.zoo"]), graph["rs3d.models.zoo"]


def _all_imported_names() -> list[tuple[str, int, str]]:
    return [
        (str(path.relative_to(ROOT)), line, name)
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, name, _ in _raw_imports(path, ROOT)
    ]


def test_the_library_never_imports_tools_benchmarks_or_tests():
    violations = [
        f"{path}:{line} imports {name}"
        for path, line, name in _all_imported_names()
        if name.split(".")[0] in NOT_INSTALLED
    ]
    assert not violations, "\n".join(violations)


def test_the_library_never_imports_pytorchvideo():
    # PyTorchVideo is a benchmark peer and a conversion source, not a dependency of the library.
    violations = [
        f"{path}:{line} imports {name}"
        for path, line, name in _all_imported_names()
        if name.split(".")[0] == "pytorchvideo"
    ]
    assert not violations, "\n".join(violations)


# ----------------------------------------------------------------------------- the checker, shown to catch
FAKE_RANKS = (("fake.low",), ("fake.high",), ("fake",))  # "fake": its empty __init__


def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {
        "fake/__init__.py": "",
        "fake/low/__init__.py": "",
        "fake/high/__init__.py": "",
        **files,
    }.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_checker_passes_a_clean_fake_package(tmp_path):
    root = _fake_package(
        tmp_path, {"fake/low/a.py": "import os\n", "fake/high/b.py": "from fake.low import a\nfrom ..low.a import os\n"}
    )
    assert rank_violations(root, "fake", FAKE_RANKS) == []
    assert import_cycles(root, "fake") == []


def test_the_checker_reports_a_planted_upward_import(tmp_path):
    # Inside a function, relative: the kind of import a deny-list of top-level imports would miss.
    root = _fake_package(
        tmp_path, {"fake/low/a.py": "def f():\n    from ..high import b\n    return b\n", "fake/high/b.py": "X = 1\n"}
    )
    assert rank_violations(root, "fake", FAKE_RANKS) == [
        "fake.low.a:2 imports fake.high.b (fake.low rank 0 may not import fake.high rank 1)"
    ]


def test_the_checker_reports_a_planted_cycle(tmp_path):
    # Within one package (so no rank rule applies), one side imported lazily inside a function.
    root = _fake_package(
        tmp_path,
        {
            "fake/low/a.py": "from fake.low.b import g\n\ndef f():\n    return g()\n",
            "fake/low/b.py": "def g():\n    from fake.low import a\n    return a\n",
        },
    )
    assert rank_violations(root, "fake", FAKE_RANKS) == []
    assert import_cycles(root, "fake") == [["fake.low.a", "fake.low.b"]]


def test_the_checker_reports_a_module_in_no_ranked_package(tmp_path):
    root = _fake_package(tmp_path, {"fake/elsewhere.py": "import os\n"})
    ranks = (("fake.low",), ("fake.high",))  # no row for fake itself, so fake.elsewhere has none either
    assert rank_violations(root, "fake", ranks) == [
        "fake: in no ranked package (add a row for it)",
        "fake.elsewhere: in no ranked package (add a row for it)",
    ]


@pytest.mark.parametrize("row", RANKS, ids=lambda row: "+".join(row))
def test_each_rank_row_has_modules(row):
    # A row with no module behind it would rank nothing (a typo in a package name).
    graph = module_graph(ROOT, "rs3d")
    assert any(package_of(m, RANKS) in row for m in graph), row
