"""``rs3d-manifest build``: a manifest of every listed video of a dataset folder.

Files are probed in parallel processes (``workers``), a bounded number of chunks in flight, and
each finished row is appended at once to ``OUT/.partial/{split}.jsonl``. A build that is
interrupted (Ctrl-C, a killed job, a full disk) is resumed by running the same command again:
rows already there are kept when the file's size and modification time are unchanged, a torn last
line is dropped, and only the rest is probed. The output does not depend on the number of
processes or the order they finish in (rows are sorted when written), and ``.partial`` is removed
once the manifest is complete. Memory holds the rows (a few hundred bytes per video), never more
than ``workers * IN_FLIGHT_PER_WORKER`` chunks of work.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ..data.csv import read_classes
from ..errors import DataError
from .listing import PLAIN_LISTS, Listed, ListFormat, dataset_root, list_dataset
from .probe import manifest_row
from .progress import Progress
from .table import write_manifest

logger = logging.getLogger(__name__)

PARTIAL = ".partial"
CHUNK = 8  # videos per task sent to a process
IN_FLIGHT_PER_WORKER = 4  # tasks queued per process (bounds memory and what an interrupt loses)
_STAMP = ("_size", "_mtime_ns")

Task = Tuple[str, str, str]  # absolute path, label, label index (set per split at the end)


def _stamp(path: str) -> Tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return -1, -1
    return st.st_size, st.st_mtime_ns


def probe_chunk(tasks: Sequence[Task], root: str, full: bool) -> List[dict]:
    """The row of each task, with the stamp a resume checks; runs in a worker process."""
    out = []
    for path, label, index in tasks:
        size, mtime = _stamp(path)
        row = manifest_row(path, root, label, index, full)
        row["_size"], row["_mtime_ns"], row["_abs"] = size, mtime, path
        out.append(row)
    return out


def _read_partial(path: str) -> Dict[str, dict]:
    """Rows of an earlier run by path; a torn last line is cut off so appends stay line-aligned."""
    rows: Dict[str, dict] = {}
    if not os.path.isfile(path):
        return rows
    good = 0
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                row = json.loads(raw)
            except ValueError:
                break
            rows[row["_abs"]] = row
            good += len(raw)
    if good != os.path.getsize(path):
        with open(path, "r+b") as f:
            f.truncate(good)
    return rows


def _check_settings(partial: str, settings: dict) -> None:
    path = os.path.join(partial, "settings.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            before = json.load(f)
        if before != settings:
            changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
            raise DataError(
                f"{partial}: an unfinished build with other settings ({', '.join(changed)}) is "
                "here; rerun it with the same ones, or remove this folder to start afresh"
            )
        return
    os.makedirs(partial, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(settings, f, sort_keys=True)


def _pending(listed: Dict[str, List[Listed]], done: Dict[str, Dict[str, dict]]) -> Dict[str, List[str]]:
    """``{path: splits still needing its row}``, each file once (UCF101's and HMDB51's val and test
    lists name the same videos; one probe serves both)."""
    need: Dict[str, List[str]] = {}
    for split in sorted(listed):
        for v in listed[split]:
            row = done[split].get(v.path)
            if row is None or (row["_size"], row["_mtime_ns"]) != _stamp(v.path):
                need.setdefault(v.path, []).append(split)
    return need


def _chunks(tasks: Iterable[Task], n: int) -> Iterator[List[Task]]:
    chunk: List[Task] = []
    for t in tasks:
        chunk.append(t)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _pool(workers: int) -> ProcessPoolExecutor:
    """Processes forked from a clean server (never from this process, whose threads a fork would
    copy mid-state), with the probe imported once there."""
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["rs3d.manifest.probe"])
    return ProcessPoolExecutor(workers, mp_context=ctx)


def _run(chunks: Iterator[List[Task]], root: str, full: bool, workers: int, sink) -> None:
    """Probe every chunk on ``workers`` processes (this one for 1), ``sink`` taking the rows."""
    if workers <= 1:
        for chunk in chunks:
            sink(probe_chunk(chunk, root, full))
        return
    with _pool(workers) as pool:
        try:
            running = set()
            for chunk in chunks:
                running.add(pool.submit(probe_chunk, chunk, root, full))
                if len(running) >= workers * IN_FLIGHT_PER_WORKER:
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        sink(fut.result())
            for fut in running:
                sink(fut.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def build_manifest(
    data_dir: str,
    out_dir: str,
    splits: Optional[Sequence[str]] = None,
    fmt: ListFormat = PLAIN_LISTS,
    full: bool = False,
    workers: int = 0,
    root: Optional[str] = None,
    show_progress: bool = True,
) -> dict:
    """Write the manifest of ``data_dir``'s lists to ``out_dir``; returns its summary.

    ``workers``: processes (0: one per CPU core; 1: this process). ``root``: the folder keys of
    non-Kinetics names are relative to (default :func:`~rs3d.manifest.listing.dataset_root`).
    """
    listed = list_dataset(data_dir, splits, fmt)
    root = os.path.abspath(root) if root else dataset_root(data_dir, fmt, listed)
    info = {
        "digest": "full" if full else "fast",
        "root": root,
        "data_dir": os.path.abspath(data_dir),
        "classes": read_classes(data_dir),
    }
    partial = os.path.join(out_dir, PARTIAL)
    _check_settings(
        partial,
        {
            "digest": info["digest"],
            "root": root,
            "path_prefix": fmt.path_prefix,
            "separator": fmt.separator,
            "multi_label": fmt.multi_label,
        },
    )
    done = {s: _read_partial(os.path.join(partial, f"{s}.jsonl")) for s in listed}
    labels = {v.path: (v.label, v.label_index) for s in sorted(listed) for v in listed[s]}
    need = _pending(listed, done)
    total = len(labels)
    progress = Progress(total, "manifest", total - len(need), sys.stderr) if show_progress else None
    if need and total != len(need):
        logger.info("resuming: %d of %d videos were done by an earlier run", total - len(need), total)
    files = {s: open(os.path.join(partial, f"{s}.jsonl"), "a", encoding="utf-8") for s in listed}
    try:

        def sink(results: List[dict]) -> None:
            for row in results:
                for split in need[row["_abs"]]:
                    files[split].write(json.dumps(row, sort_keys=True) + "\n")
                    done[split][row["_abs"]] = row
            for f in files.values():
                f.flush()
            if progress:
                progress.update(len(results))

        tasks = ((path, *labels[path]) for path in need)
        workers = min(workers or os.cpu_count() or 1, max(1, len(need) // CHUNK + 1))
        _run(_chunks(tasks, CHUNK), root, full, workers, sink)
    finally:
        for f in files.values():
            f.close()
        if progress:
            progress.close()
    rows = {}
    for split, videos in listed.items():
        rows[split] = []
        for v in videos:  # the current list's labels (a resumed build may follow an edited list)
            row = {k: x for k, x in done[split][v.path].items() if k not in _STAMP and k != "_abs"}
            row.update(label=v.label, label_index=v.label_index)
            rows[split].append(row)
    summary = write_manifest(out_dir, rows, info)
    shutil.rmtree(partial, ignore_errors=True)
    return summary
