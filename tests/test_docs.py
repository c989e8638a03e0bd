"""What README.md and docs/*.md tell a user to run exists and parses.

Every ``configs/...`` path and every ``tests/...`` test they cite exists; every command line they show (``rs3d-*``,
``python -m rs3d...``, ``tools/...``, under ``torchrun`` or not) names a command that exists, its
arguments pass the command's own argument parser (parsed, nothing run), and the ``KEY VALUE``
overrides on it load with the config it names. ``make TARGET`` names a Makefile target.
"""

from __future__ import annotations

import argparse
import configparser
import glob
import importlib
import re
import shlex
from pathlib import Path

import pytest
from helpers import load_tool

from rs3d.config import get_cfg, load_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

# "configs/..." not preceded by a path (official/vision/configs/... is the TF Model Garden's).
_CONFIG_REF = re.compile(r"(?<![\w/.-])configs/[\w./{},*-]*[\w}*]")
_TEST_REF = re.compile(r"(?<![\w/.-])(tests/[\w/.-]+\.py)(?:::(\w+))?")
_TOOLS_REF = re.compile(r"(?<![\w/.-])tools/[\w.-]+\.(?:py|sh)")
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
# Where a command starts inside a shell line: a console script, a module, or a file under tools/.
_COMMAND = re.compile(
    r"(?:^|\s)(rs3d-[a-z-]+|-m\s+rs3d(?:\.\w+)+|(?:bash\s+|python\s+)?tools/[\w.-]+\.(?:py|sh))"
    r"(?=\s|$)"
)
_SHELL_END = {"|", "||", "&&", ";", ">", ">>", "2>&1", "&"}
_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(?:\.[A-Z][A-Z0-9_]*)*$")


def _console_scripts() -> dict:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return {name.strip(): target.strip() for name, target in (line.split("=") for line in lines)}


def _brace_expand(ref: str) -> list:
    m = re.search(r"\{([^{}]*)\}", ref)
    if not m:
        return [ref]
    return [x for part in m.group(1).split(",") for x in _brace_expand(ref[: m.start()] + part + ref[m.end() :])]


def _where(doc: Path, text: str, index: int) -> str:
    return f"{doc.relative_to(ROOT)}:{text.count(chr(10), 0, index) + 1}"


def config_references() -> list:
    """(doc:line, path) for every configs/... path in the docs, braces expanded."""
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for m in _CONFIG_REF.finditer(text):
            out += [(_where(doc, text, m.start()), p) for p in _brace_expand(m.group(0).rstrip("."))]
    return out


def tools_references() -> list:
    out = []
    for doc in DOCS:
        text = doc.read_text()
        out += [(_where(doc, text, m.start()), m.group(0)) for m in _TOOLS_REF.finditer(text)]
    return out


def cited_tests() -> list:
    """(doc:line, test file, test name or None) for every tests/....py[::name] the docs cite."""
    out = []
    for doc in DOCS:
        text = doc.read_text()
        out += [(_where(doc, text, m.start()), m.group(1), m.group(2)) for m in _TEST_REF.finditer(text)]
    return out


def _shell_lines(doc: Path) -> list:
    """(doc:line, text) of every line of a fenced block (continuations joined, comments cut) and of
    every inline code span."""
    text = doc.read_text()
    out = []
    for block in _FENCE.finditer(text):
        start = block.start(1)
        joined, first = "", None
        for offset, line in _line_offsets(block.group(1)):
            first = start + offset if first is None else first
            stripped = line.rstrip()
            if stripped.endswith("\\"):
                joined += stripped[:-1] + " "
                continue
            out.append((_where(doc, text, first), joined + stripped))
            joined, first = "", None
    fenced = [(b.start(), b.end()) for b in _FENCE.finditer(text)]
    for m in _INLINE.finditer(text):
        if not any(a <= m.start() < b for a, b in fenced):
            out.append((_where(doc, text, m.start()), m.group(1)))
    return out


def _line_offsets(block: str):
    offset = 0
    for line in block.split("\n"):
        yield offset, line
        offset += len(line) + 1


def _strip_comment(line: str) -> str:
    return re.split(r"(?:^|\s)#\s", line, maxsplit=1)[0]


def command_lines() -> list:
    """(doc:line, command, argv) for every command shown in the docs."""
    out = []
    for doc in DOCS:
        for where, line in _shell_lines(doc):
            line = re.sub(r"\[(-[^\]]*)\]", r"\1", _strip_comment(line))  # "[--opt V]": optional, shown
            for m in _COMMAND.finditer(line):
                command = re.sub(r"^(?:bash|python)\s+|^-m\s+", "", m.group(1))
                rest = line[m.end() :]
                following = _COMMAND.search(rest)  # two commands in one span ("... then ...")
                if following:
                    rest = rest[: following.start()]
                try:
                    tokens = shlex.split(rest)
                except ValueError:
                    tokens = rest.split()
                argv = []
                for tok in tokens:
                    if tok in _SHELL_END or tok.startswith((">", "|")):
                        break
                    argv.append(tok)
                out.append((where, command, argv))
    return out


def _main_of(command: str):
    """The ``main(argv)`` that runs ``command``, or None (a shell script)."""
    if command.startswith("rs3d-"):
        return importlib.import_module(_console_scripts()[command].split(":")[0]).main
    if command.startswith("rs3d."):
        return importlib.import_module(command).main
    if command.endswith(".py"):
        return load_tool(Path(command).stem).main
    return None


class _Parsed(Exception):
    def __init__(self, namespace):
        self.namespace = namespace


def _parse_only(monkeypatch):
    """Make the outermost argparse call stop the command right after parsing (nothing runs)."""
    depth = {"n": 0}
    for name in ("parse_args", "parse_known_args"):
        real = getattr(argparse.ArgumentParser, name)

        def wrapped(self, *a, _real=real, **k):
            depth["n"] += 1
            try:
                result = _real(self, *a, **k)
            finally:
                depth["n"] -= 1
            if depth["n"] == 0:
                raise _Parsed(result)
            return result

        monkeypatch.setattr(argparse.ArgumentParser, name, wrapped)


def _overrides(argv: list) -> list:
    """The KEY VALUE pairs of a command line (a key of the config followed by its value)."""
    defaults = get_cfg()
    pairs = []
    for key, value in zip(argv, argv[1:]):
        if _KEY.match(key) and (key in defaults or "." in key):
            pairs += [key, value]
    return pairs


def _config_arg(argv: list):
    for i, tok in enumerate(argv[:-1]):
        if tok == "--cfg":
            return argv[i + 1]
    return None


TEST_REFS = cited_tests()
CONFIG_REFS = config_references()
TOOLS_REFS = tools_references()
COMMANDS = command_lines()


def test_the_docs_show_commands_and_configs():
    """The extraction finds what is there (guards against a test that checks nothing)."""
    shown = {c for _, c, _ in COMMANDS}
    assert {"rs3d-train", "rs3d-test", "rs3d-predict", "rs3d-convert-annotations"} <= shown, shown
    assert len(COMMANDS) > 40 and len(CONFIG_REFS) > 20 and len(TEST_REFS) > 5
    assert ("README.md", "configs/k400_rs50.yaml") in {(w.split(":")[0], p) for w, p in CONFIG_REFS}


@pytest.mark.parametrize("where, path", CONFIG_REFS, ids=[f"{w} {p}" for w, p in CONFIG_REFS])
def test_every_named_config_exists(where, path):
    matches = glob.glob(str(ROOT / path)) if "*" in path else [p for p in [ROOT / path] if p.exists()]
    assert matches, f"{where}: {path} does not exist"


@pytest.mark.parametrize("where, path", TOOLS_REFS, ids=[f"{w} {p}" for w, p in TOOLS_REFS])
def test_every_named_tools_file_exists(where, path):
    assert (ROOT / path).is_file(), f"{where}: {path} does not exist"


@pytest.mark.parametrize("where, path, name", TEST_REFS, ids=[f"{w} {p} {n or ''}" for w, p, n in TEST_REFS])
def test_every_cited_test_exists(where, path, name):
    """A figure or a fault row that cites a test must cite one that is there to rerun."""
    assert (ROOT / path).is_file(), f"{where}: {path} does not exist"
    if name:
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), f"{where}: no test {name} in {path}"


def _expand_globs(argv: list) -> list:
    out = []
    for tok in argv:
        hits = sorted(glob.glob(str(ROOT / tok))) if "*" in tok and not tok.startswith("-") else []
        out += [str(Path(h).relative_to(ROOT)) for h in hits] or [tok]
    return out


@pytest.mark.parametrize("where, command, argv", COMMANDS, ids=[f"{w} {c} {' '.join(a)[:60]}" for w, c, a in COMMANDS])
def test_every_command_line_exists_and_parses(where, command, argv, monkeypatch):
    if command.startswith("rs3d-"):
        assert command in _console_scripts(), f"{where}: {command} is not a console script (setup.cfg)"
    elif command.startswith("rs3d."):
        assert importlib.util.find_spec(command), f"{where}: no module {command}"
    else:
        assert (ROOT / command).is_file(), f"{where}: {command} does not exist"
    if "..." in argv or not argv:  # a name in prose, or an elided line ("rs3d-submit ... --dry-run")
        return
    main = _main_of(command)
    if main is None:
        return
    monkeypatch.chdir(ROOT)
    _parse_only(monkeypatch)
    try:
        status = main(_expand_globs(argv))
    except _Parsed:
        status = None
    except SystemExit as e:  # argparse's error: usage and a message on stderr
        status = e.code
    assert status is None, f"{where}: `{command} {' '.join(argv)}` does not parse (status {status})"
    cfg = _config_arg(argv)
    pairs = _overrides(argv)
    if cfg is not None and not (ROOT / cfg).is_file():
        cfg = None  # a placeholder (CFG): the keys are checked against the defaults
    load_config(str(ROOT / cfg) if cfg else None, pairs)


@pytest.mark.parametrize(
    "target", sorted({m.group(1) for doc in DOCS for m in re.finditer(r"`make ([\w-]+)", doc.read_text())})
)
def test_every_make_target_exists(target):
    assert re.search(rf"^{re.escape(target)}:", (ROOT / "Makefile").read_text(), re.M), target
