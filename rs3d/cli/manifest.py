"""``rs3d-manifest``: which videos a dataset copy holds, and how it compares to others.

    rs3d-manifest build DATA_DIR --out MANIFEST                 # every listed video of every split
    rs3d-manifest coverage MANIFEST --reference kinetics400/validate.csv --out coverage
    rs3d-manifest diff MANIFEST_A MANIFEST_B [--intersection COMMON]
    rs3d-manifest rescore out/test_predictions.csv --subset COMMON

build: per video its key (``<youtube_id>_<start>_<end>`` for Kinetics-style names, else the path
relative to the folder the videos share), label, size, content digest (size + first and last MiB;
``--full``: every byte) and what rs3d's probe sees; ``MANIFEST/{split}.csv.gz`` and
``manifest.json`` with each split's fingerprint. Parallel (``--workers``), with progress and ETA;
rerun the same command after an interruption to resume. coverage: against an official annotation
file, per split and class, with the missing videos, label disagreements, undecodable files and a
per-class PNG. diff: added / removed / relabelled / changed-content videos per split, exit status 0
when identical, 1 when they differ. rescore: a test's metrics on the videos of a manifest, from
the per-video predictions it wrote. Bad input: one ``error:`` line, exit status 2.
"""

from __future__ import annotations

import json
import os
import sys
from typing import List, Optional, Sequence

from rs3d.engine.logs import setup_logging
from rs3d.evaluation.rescore import rescore_predictions
from rs3d.manifest import coverage as cov
from rs3d.manifest.build import build_manifest
from rs3d.manifest.diff import KINDS, diff_manifests, write_intersection
from rs3d.manifest.fingerprint import short
from rs3d.manifest.listing import ListFormat
from rs3d.manifest.provenance import in_subset, subset_keys
from rs3d.manifest.reference import read_reference
from rs3d.manifest.table import read_manifest

from . import run_tool
from .args import command_parser, parse_subcommand


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def _build(a) -> int:
    fmt = ListFormat(a.path_prefix, a.separator, a.multi_label)
    summary = build_manifest(
        a.data_dir, a.out, a.splits, fmt, full=a.full, workers=a.workers, root=a.root, show_progress=not a.quiet
    )
    for name, s in summary["splits"].items():
        print(
            f"{name}: {s['videos']} videos ({s['decodable']} decodable, {s['undecodable']} undecodable, "
            f"{s['missing']} missing), {_size(s['bytes'])}, fingerprint {s['fingerprint']}"
        )
    print(f"-> {os.path.join(a.out, 'manifest.json')}")
    return 0


def _write_lines(path: str, header: str, lines: List[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join([header] + lines) + "\n")


def _coverage(a) -> int:
    manifest = read_manifest(a.manifest)
    dataset, entries = read_reference(a.reference, a.fold)
    result = cov.coverage(manifest, entries, a.split)
    os.makedirs(a.out, exist_ok=True)
    rep = {
        "reference": os.path.abspath(a.reference),
        "dataset": dataset,
        "manifest": os.path.abspath(a.manifest),
        **cov.report(result),
    }
    with open(os.path.join(a.out, "coverage.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(rep, indent=2, sort_keys=True) + "\n")
    _write_lines(os.path.join(a.out, "missing.tsv"), "split\tkey\tclass\tsource", cov.missing_lines(result))
    _write_lines(
        os.path.join(a.out, "label_disagreements.tsv"),
        "split\tkey\treference_class\tcopy_class\tsource",
        cov.disagreement_lines(result),
    )
    _write_lines(os.path.join(a.out, "undecodable.tsv"), "split\tkey\tpath\treason", cov.undecodable_lines(result))
    cov.plot_per_class(result, os.path.join(a.out, "coverage_per_class.png"))
    for split, c in rep["splits"].items():
        print(
            f"{split}: {c['found']} of {c['reference']} reference videos ({c['coverage_percent']:.2f}%), "
            f"{c['missing']} missing, {c['label_disagreements']} label disagreements, {c['undecodable']} "
            f"undecodable (against {c['compared_against']})"
        )
    print(f"-> {a.out}/coverage.json, missing.tsv, label_disagreements.tsv, undecodable.tsv, coverage_per_class.png")
    return 0


def _diff(a) -> int:
    ma, mb = read_manifest(a.a), read_manifest(a.b)
    result = diff_manifests(ma, mb)
    for split, d in result.items():
        fa = ma.summary["splits"].get(split, {}).get("fingerprint", "-")
        fb = mb.summary["splits"].get(split, {}).get("fingerprint", "-")
        counts = d.counts()
        print(
            f"{split}: " + ", ".join(f"{counts[k]} {k}" for k in KINDS) + f", {counts['same']} same "
            f"(fingerprints {short(fa)} / {short(fb)})"
        )
        for kind in KINDS:
            keys = getattr(d, kind)
            shown = keys if a.max_keys == 0 else keys[: a.max_keys]
            for key in shown:
                print(f"  {kind}\t{split}\t{key}")
            if len(shown) < len(keys):
                print(f"  ... {len(keys) - len(shown)} more {kind} in {split} (--max-keys 0 shows all)")
    if a.intersection:
        s = write_intersection(ma, mb, a.intersection)
        for split, x in s["splits"].items():
            print(f"intersection {split}: {x['videos']} videos, fingerprint {x['fingerprint']}")
        print(f"-> {os.path.join(a.intersection, 'manifest.json')}")
    return 0 if all(d.identical for d in result.values()) else 1


def _rescore(a) -> int:
    keys = subset_keys(a.subset, a.split)
    metrics = rescore_predictions(a.predictions, lambda path: in_subset([path], keys)[0])
    metrics["subset"] = {
        "manifest": os.path.abspath(a.subset),
        "videos_in_subset": len(keys),
        "evaluated_of_them": metrics["num_videos"],
    }
    print(json.dumps(metrics, indent=2))
    return 0


EXAMPLES = (
    "rs3d-manifest build datasets/kinetics400 --out manifests/k400",
    "rs3d-manifest coverage manifests/k400 --reference kinetics400/validate.csv --out coverage",
    "rs3d-manifest diff manifests/ours manifests/theirs --intersection manifests/common",
    "rs3d-manifest rescore out/rs50/test_predictions.csv --subset manifests/common",
)


def build_parser() -> tuple:
    """The command's parser and its subcommands' parsers (each parsed by ``parse_command``)."""
    p = command_parser(
        "rs3d-manifest",
        __doc__,
        config=False,
        overrides=False,
        examples=EXAMPLES,
        docs="docs/datasets.md",
        exit_statuses={1: "diff: the manifests differ"},
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{build,coverage,diff,rescore}")
    b = sub.add_parser("build", help="a manifest of a dataset folder's lists", epilog=f"example: {EXAMPLES[0]}")
    b.add_argument("data_dir", help="folder with {train,val,test}.csv (and classes.txt)")
    b.add_argument("--out", required=True, help="manifest folder to write (resumed when unfinished)")
    b.add_argument("--splits", nargs="+", help="lists to read (default: train, val, test, those present)")
    b.add_argument("--full", action="store_true", help="digest every byte (default: size + first and last MiB)")
    b.add_argument("--workers", type=int, default=0, help="processes (default: one per CPU core)")
    b.add_argument("--path-prefix", default="", help="folder relative paths are under (DATA.PATH_PREFIX)")
    b.add_argument("--separator", default=" ", help="path/label separator (DATA.PATH_LABEL_SEPARATOR)")
    b.add_argument("--multi-label", action="store_true", help="lists of class indices (DATA.MULTI_LABEL)")
    b.add_argument(
        "--root", help="folder keys of non-Kinetics names are relative to (default: the one all listed videos share)"
    )
    b.add_argument("--quiet", action="store_true", help="no progress line")
    c = sub.add_parser(
        "coverage", help="a manifest against an official annotation file", epilog=f"example: {EXAMPLES[1]}"
    )
    c.add_argument("manifest", help="manifest folder (or one {split}.csv.gz)")
    c.add_argument("--reference", required=True, help="official annotation file (or HMDB51 split folder)")
    c.add_argument("--split", help="manifest split to compare with (default: the reference's own)")
    c.add_argument("--fold", type=int, default=1, help="HMDB51 split number, for a folder of split files")
    c.add_argument("--out", default="coverage", help="report folder (default: ./coverage)")
    d = sub.add_parser(
        "diff",
        help="two manifests: added, removed, relabelled, changed (exit 1 if they differ)",
        epilog=f"example: {EXAMPLES[2]}",
    )
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("--intersection", help="write the videos both hold alike as a manifest here")
    d.add_argument("--max-keys", type=int, default=20, help="keys shown per kind and split (0: all)")
    r = sub.add_parser(
        "rescore",
        help="test metrics on a manifest's videos from test_predictions.csv",
        epilog=f"example: {EXAMPLES[3]}",
    )
    r.add_argument("predictions", help="test_predictions.csv of a test run")
    r.add_argument("--subset", required=True, help="manifest folder or {split}.csv.gz")
    r.add_argument("--split", default="test", help="split of the manifest (default: test, or its only one)")
    return p, {"build": (b, _build), "coverage": (c, _coverage), "diff": (d, _diff), "rescore": (r, _rescore)}


def _run(argv: Optional[Sequence[str]] = None) -> int:
    parser, commands = build_parser()
    parsed = parse_subcommand(parser, {name: sub for name, (sub, _) in commands.items()}, argv)
    if parsed is None:
        return 2
    name, a = parsed
    fn = commands[name][1]
    setup_logging(stream=sys.stderr)
    return fn(a)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
