"""Manifest throughput: videos per CPU-second of ``rs3d-manifest build``, against two peers.

    python -m benchmarks manifest --videos 200 --rounds 3 --json manifest.json

On Kinetics-like files (:mod:`benchmarks.videos`: 256x340, 10 s at 30/25/30/24 fps, H.264), listed
under Kinetics names (``<youtube_id>_<start>_<end>.mp4``, links to the distinct files), one thread,
CPU time (``time.process_time``; child processes via ``RUSAGE_CHILDREN``), contenders interleaved
per round, the median round reported:

* ``manifest row``: what the build does per video (:func:`rs3d.manifest.probe.manifest_row`): the
  fast digest (size + first and last MiB) and rs3d's probe (packet index, first keyframe decoded,
  display matrix, rate and duration);
* ``PyAV open + stream info``: a plain ffprobe-style probe (open, read the stream's size, rate,
  duration and frame count from the header) and nothing else;
* ``ffmpeg -i`` (when imageio-ffmpeg's binary is there): the ffmpeg binary printing the stream
  info, one process per file, as a shell loop over ``ffprobe`` would;
* ``BLAKE2b of the whole file``: hashing every byte (what ``--full`` adds and what checksum lists do).

Then the whole command on one process (``build_manifest(workers=1)``: listing, probing, the
append-only partial file, sorting and writing), whose per-core rate gives the projection for a
Kinetics-size set on many cores: an extrapolation (the build parallelises over files, with no
shared state but the output), not a measurement on 16 cores. Files are read from the page cache
(warm); on cold storage the manifest reads 2 MiB per video and whole-file hashing the whole file.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import av

from rs3d.manifest.build import build_manifest
from rs3d.manifest.probe import manifest_row

from . import videos

TARGET_VIDEOS, TARGET_CORES, TARGET_SECONDS = 250_000, 16, 30 * 60


def make_dataset(cache: str, num_videos: int, num_files: int = 4) -> str:
    """A dataset folder listing ``num_videos`` Kinetics-named links to ``num_files`` distinct files."""
    files = videos.make_kinetics_like_videos(os.path.join(cache, "kinetics_like"), num_files, fps=(30, 25, 30, 24))
    d = Path(cache) / f"manifest_set_{num_videos}_{num_files}"
    if d.exists():
        shutil.rmtree(d)
    lines = []
    for i in range(num_videos):
        rel = f"videos/class_{i % 4}/{i:011d}_{i % 300:06d}_{i % 300 + 10:06d}.mp4"
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.abspath(files[i % num_files]), d / rel)
        lines.append(f"{rel} {i % 4}")
    (d / "train.csv").write_text("\n".join(lines) + "\n")
    (d / "classes.txt").write_text("".join(f"class_{i}\n" for i in range(4)))
    return str(d)


def _pyav_stream_info(path: str) -> None:
    with av.open(path) as c:
        s = c.streams.video[0]
        _ = (s.codec_context.width, s.codec_context.height, s.average_rate, s.duration, s.frames)


def _blake2b_whole(path: str) -> None:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while True:
            block = f.read(4 << 20)
            if not block:
                break
            h.update(block)


def _ffmpeg_info(exe: str) -> Callable[[str], None]:
    def run(path: str) -> None:
        subprocess.run([exe, "-hide_banner", "-i", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return run


def _cpu() -> float:
    """CPU seconds of this process and of its waited-for children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def contenders() -> Dict[str, Callable[[str], None]]:
    out = {
        "manifest row": lambda p: manifest_row(p, "", "x", "0"),
        "PyAV open + stream info": _pyav_stream_info,
        "BLAKE2b of the whole file": _blake2b_whole,
    }
    try:
        import imageio_ffmpeg

        out["ffmpeg -i (one process per file)"] = _ffmpeg_info(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        pass
    return out


def per_video_cpu(
    paths: List[str],
    rounds: int,
    fns: Optional[Dict[str, Callable[[str], None]]] = None,
    clock: Callable[[], float] = _cpu,
) -> Dict[str, float]:
    """Median over rounds of CPU seconds per video of each contender (interleaved every round)."""
    fns = fns or contenders()
    per_round: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = clock()
            for p in paths:
                fn(p)
            per_round[name].append((clock() - t0) / len(paths))
    return {k: statistics.median(v) for k, v in per_round.items()}


def build_once(data_dir: str, workers: int = 1) -> dict:
    """One whole build of ``data_dir``: CPU seconds (workers=1: this process) and wall seconds."""
    out = tempfile.mkdtemp(prefix="rs3d_manifest_bench_")
    try:
        c0, w0 = _cpu(), time.perf_counter()
        s = build_manifest(data_dir, out, workers=workers, show_progress=False)
        return {"videos": s["splits"]["train"]["videos"], "cpu_s": _cpu() - c0, "wall_s": time.perf_counter() - w0}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def project(videos_per_cpu_s: float, videos: int = TARGET_VIDEOS, cores: int = TARGET_CORES) -> dict:
    seconds = videos / (videos_per_cpu_s * cores)
    return {
        "videos": videos,
        "cores": cores,
        "minutes": seconds / 60,
        "under_target": seconds < TARGET_SECONDS,
        "note": "extrapolated from the one-process rate (files in the page cache), not measured on 16 cores",
    }


def run(cache: str, num_videos: int = 200, rounds: int = 3, build_rounds: int = 3) -> dict:
    data_dir = make_dataset(cache, num_videos)
    lines = Path(data_dir, "train.csv").read_text().split()
    paths = [os.path.join(data_dir, p) for p in lines[::2]]
    sizes = [os.path.getsize(p) for p in paths]
    for p in paths[:4]:  # warm the page cache and the imports: every contender then reads from memory
        _blake2b_whole(p)
        manifest_row(p, "", "x", "0")
    cpu = per_video_cpu(paths, rounds)
    builds = [build_once(data_dir) for _ in range(build_rounds)]
    build_cpu = statistics.median(b["cpu_s"] for b in builds) / num_videos
    rows = [
        {
            "contender": name,
            "cpu_ms_per_video": 1000 * s,
            "videos_per_cpu_s": 1 / s,
            "manifest_row_speed_vs": s / cpu["manifest row"],
        }
        for name, s in cpu.items()
    ]
    rows.append(
        {
            "contender": "rs3d-manifest build, 1 process (whole command)",
            "cpu_ms_per_video": 1000 * build_cpu,
            "videos_per_cpu_s": 1 / build_cpu,
            "manifest_row_speed_vs": None,
        }
    )
    return {
        "videos": num_videos,
        "distinct_files": 4,
        "mean_file_mb": sum(sizes) / len(sizes) / 1e6,
        "rounds": rounds,
        "rows": rows,
        "builds": builds,
        "projection": project(1 / build_cpu),
    }


def format_table(res: dict) -> str:
    lines = [
        "| contender | CPU ms per video | videos per CPU-s | manifest row's rate / this rate |",
        "|---|---|---|---|",
    ]
    for r in res["rows"]:
        ratio = "-" if r["manifest_row_speed_vs"] is None else f"{r['manifest_row_speed_vs']:.2f}x"
        lines.append(f"| {r['contender']} | {r['cpu_ms_per_video']:.2f} | {r['videos_per_cpu_s']:.1f} | {ratio} |")
    p = res["projection"]
    lines.append("")
    lines.append(
        f"projection (extrapolated from the 1-process rate, not measured): {p['videos']} videos on "
        f"{p['cores']} cores: {p['minutes']:.1f} min (target under 30 min: "
        f"{'met' if p['under_target'] else 'NOT met'})"
    )
    return "\n".join(lines)
