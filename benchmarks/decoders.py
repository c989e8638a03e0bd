"""decord vs PyAV vs torchcodec on the same files: frames/s for a training clip and a full decode.

Two workloads, each timed in interleaved rounds over all backends (median of the rounds):

* ``clip``: 32 frames at stride 2 from a random start, a fresh reader per clip (what a training
  sample costs: open, seek to the keyframe before the start, decode to the last frame, convert);
* ``sequential``: every frame of the video in order, converted to RGB.

Each backend runs single-threaded (decord ``num_threads=1``, PyAV ``thread_count=1``, torchcodec
``num_ffmpeg_threads=1``), so wall frames/s and frames per CPU-second are per-core rates; data
loading scales them by worker processes. decord and PyAV also go through rs3d's own
``read_frames`` (the path the loader takes) as ``rs3d-decord`` / ``rs3d-pyav``; note that
``rs3d-pyav`` lets FFmpeg choose its thread count.

torchcodec needs FFmpeg's shared libraries (4 to 8) on the system; where there are none, this
module can run in a child process whose ``LD_LIBRARY_PATH`` points at PyAV's bundled FFmpeg
(:func:`torchcodec_env`).

    python -m benchmarks.decoders --json out.json VIDEO [VIDEO ...]     # from the repository root
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

CLIP_FRAMES, CLIP_STRIDE = 32, 2
BACKENDS = ("decord", "pyav", "torchcodec", "torchcodec-approx", "rs3d-decord", "rs3d-pyav", "rs3d-torchcodec")


# ----------------------------------------------------------------------------- torchcodec availability
def _probe(env: Optional[dict], path: str) -> Optional[str]:
    """None if torchcodec decodes ``path`` in a child process with ``env``; else the reason.

    (Importing is not enough: torchcodec loads its FFmpeg-linked library on first use.)
    """
    code = (
        "import sys; from torchcodec.decoders import VideoDecoder; "
        "print(VideoDecoder(sys.argv[1]).get_frames_at([0]).data.shape)"
    )
    p = subprocess.run([sys.executable, "-c", code, path], env=env, capture_output=True, text=True, timeout=300)
    if p.returncode == 0:
        return None
    text = p.stderr
    if "No module named 'torchcodec'" in text:
        return "torchcodec is not installed (pip install torchcodec)"
    libs = sorted(set(re.findall(r"(lib\w+\.so(?:\.\d+)?): cannot open shared object file", text)))
    if libs:
        return f"FFmpeg shared libraries not found ({', '.join(libs[:3])}...): torchcodec needs FFmpeg 4-8 installed"
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else f"exit code {p.returncode}"


def pyav_ffmpeg_dir() -> Optional[str]:
    """A temporary folder of ``libav*.so.N`` links to PyAV's bundled FFmpeg, or None."""
    import av

    libs = os.path.join(os.path.dirname(os.path.dirname(av.__file__)), "av.libs")
    if not os.path.isdir(libs):
        return None
    out = os.path.join(tempfile.gettempdir(), f"rs3d_pyav_ffmpeg_{os.getuid()}")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(libs):
        m = re.match(r"^(lib(?:av\w+|sw\w+))-[0-9a-f]{8}\.so\.(\d+)", name)
        if m:
            link = os.path.join(out, f"{m.group(1)}.so.{m.group(2)}")
            if not os.path.lexists(link):
                os.symlink(os.path.join(libs, name), link)
    return out


def torchcodec_env(path: str) -> dict:
    """``{"env": dict|None, "note": str, "error": str|None}`` for running torchcodec in a child.

    First the environment as it is; if torchcodec cannot load there, PyAV's bundled FFmpeg through
    ``LD_LIBRARY_PATH``.
    """
    env = dict(os.environ)
    reason = _probe(env, path)
    if reason is None:
        return {"env": env, "note": "system FFmpeg", "error": None}
    if "not installed" in reason:
        return {"env": env, "note": "", "error": reason}
    ff = pyav_ffmpeg_dir()
    if ff is not None:
        import av

        libs = os.path.join(os.path.dirname(os.path.dirname(av.__file__)), "av.libs")
        env2 = dict(
            env,
            LD_LIBRARY_PATH=os.pathsep.join(
                [ff, libs] + ([env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH") else [])
            ),
        )
        if _probe(env2, path) is None:
            return {
                "env": env2,
                "error": None,
                "note": f"no system FFmpeg ({reason}); loaded PyAV's bundled FFmpeg via LD_LIBRARY_PATH",
            }
    return {"env": env, "note": "", "error": reason}


# ----------------------------------------------------------------------------- readers (one thread each)
def _decord_clip(path: str, idx_fn) -> np.ndarray:
    import decord

    vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    try:
        return vr.get_batch(idx_fn(len(vr)).tolist()).asnumpy()
    finally:
        del vr


def _decord_seq(path: str) -> int:
    import decord

    vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    n = len(vr)
    for s in range(0, n, 32):
        vr.get_batch(list(range(s, min(s + 32, n)))).asnumpy()
    del vr
    return n


def _pyav_open(path: str):
    import av

    c = av.open(path)
    s = c.streams.video[0]
    s.thread_count = 1
    return c, s


def _pyav_len(c, s) -> int:
    return int(s.frames) if s.frames > 0 else sum(1 for p in c.demux(s) if p.size > 0)


def _pyav_clip(path: str, idx_fn) -> np.ndarray:
    c, s = _pyav_open(path)
    try:
        idx = idx_fn(_pyav_len(c, s))
    finally:
        c.close()
    c, s = _pyav_open(path)
    wanted, last, got = set(idx.tolist()), int(idx.max()), {}
    try:
        # Seek to the keyframe at or before the first wanted frame, then decode forward.
        first = int(idx.min())
        if first > 0 and s.average_rate:
            c.seek(int(first / float(s.average_rate) / s.time_base), stream=s, backward=True, any_frame=False)
        for f in c.decode(s):
            i = int(round(float(f.pts * s.time_base) * float(s.average_rate))) if f.pts is not None else -1
            if i in wanted:
                got[i] = f.to_ndarray(format="rgb24")
            if i >= last:
                break
    finally:
        c.close()
    return np.stack([got[i] for i in idx.tolist()])


def _pyav_seq(path: str) -> int:
    c, s = _pyav_open(path)
    n = 0
    try:
        for f in c.decode(s):
            f.to_ndarray(format="rgb24")
            n += 1
    finally:
        c.close()
    return n


def _torchcodec_decoder(path: str, seek_mode: str):
    from torchcodec.decoders import VideoDecoder

    return VideoDecoder(path, seek_mode=seek_mode, num_ffmpeg_threads=1, dimension_order="NHWC")


def _torchcodec_clip(path: str, idx_fn, seek_mode: str = "exact") -> np.ndarray:
    d = _torchcodec_decoder(path, seek_mode)
    return d.get_frames_at(idx_fn(d.metadata.num_frames).tolist()).data.numpy()


def _torchcodec_seq(path: str, seek_mode: str = "exact") -> int:
    d = _torchcodec_decoder(path, seek_mode)
    n = d.metadata.num_frames
    for s in range(0, n, 32):
        _ = d.get_frames_in_range(s, min(s + 32, n)).data
    return n


def _rs3d_clip(path: str, idx_fn, backend: str) -> np.ndarray:
    from rs3d.data import read_frames

    return read_frames(path, idx_fn, backend=backend, num_threads=1)[0].numpy()


def readers(backend: str) -> tuple:
    """(clip reader, sequential reader or None) of a backend name in :data:`BACKENDS`."""
    if backend == "decord":
        return _decord_clip, _decord_seq
    if backend == "pyav":
        return _pyav_clip, _pyav_seq
    if backend == "torchcodec":
        return (lambda p, f: _torchcodec_clip(p, f, "exact")), (lambda p: _torchcodec_seq(p, "exact"))
    if backend == "torchcodec-approx":
        return (lambda p, f: _torchcodec_clip(p, f, "approximate")), (lambda p: _torchcodec_seq(p, "approximate"))
    if backend == "rs3d-decord":
        return (lambda p, f: _rs3d_clip(p, f, "decord")), None
    if backend == "rs3d-pyav":
        return (lambda p, f: _rs3d_clip(p, f, "pyav")), None
    if backend == "rs3d-torchcodec":
        return (lambda p, f: _rs3d_clip(p, f, "torchcodec")), None
    raise ValueError(f"unknown decoder backend {backend!r}; choose from {list(BACKENDS)}")


def clip_index_fn(rng_seed: int) -> Callable[[int], np.ndarray]:
    """The training clip's indices for a video of length L: 32 at stride 2 from a uniform start."""
    from rs3d.data.decode import clip_indices, random_clip_start

    def fn(length: int) -> np.ndarray:
        rng = np.random.default_rng(rng_seed)
        return clip_indices(random_clip_start(length, CLIP_FRAMES, CLIP_STRIDE, rng), CLIP_FRAMES, CLIP_STRIDE, length)

    return fn


# ----------------------------------------------------------------------------- benchmark
def compare(paths: Sequence[str], backends: Sequence[str], rounds: int = 3) -> dict:
    """Interleaved rounds; per backend and workload the median frames/s (wall) and frames/CPU-s."""
    import torch

    torch.set_num_threads(1)
    usable, errors = [], {}
    for b in backends:
        try:
            clip_fn, _ = readers(b)
            clip_fn(paths[0], clip_index_fn(0))
            usable.append(b)
        except Exception as e:  # an import or decoding failure: reported, others go on
            errors[b] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"
    samples: Dict[tuple, List[tuple]] = {}
    for r in range(rounds):
        k = r % max(len(usable), 1)
        for b in usable[k:] + usable[:k]:
            clip_fn, seq_fn = readers(b)
            w, c0 = time.perf_counter(), time.process_time()
            frames = 0
            for i, p in enumerate(paths):
                frames += len(clip_fn(p, clip_index_fn(1000 * r + i)))
            samples.setdefault((b, "clip"), []).append((frames, time.perf_counter() - w, time.process_time() - c0))
            if seq_fn is not None:
                w, c0 = time.perf_counter(), time.process_time()
                frames = sum(seq_fn(p) for p in paths)
                samples.setdefault((b, "sequential"), []).append(
                    (frames, time.perf_counter() - w, time.process_time() - c0)
                )
    rows = []
    for (b, workload), s in samples.items():
        fps = [f / w for f, w, _ in s]
        cpu_fps = [f / c for f, _, c in s if c > 0]
        row = {
            "backend": b,
            "workload": workload,
            "frames_per_round": s[0][0],
            "frames_s": statistics.median(fps),
            "frames_per_cpu_s": statistics.median(cpu_fps) if cpu_fps else None,
            "rounds_frames_s": fps,
        }
        if workload == "clip":
            row["clips_s"] = row["frames_s"] / CLIP_FRAMES
            row["clips_per_cpu_s"] = (row["frames_per_cpu_s"] / CLIP_FRAMES) if row["frames_per_cpu_s"] else None
        rows.append(row)
    for row in rows:  # paired per round against decord (both ran in the same round)
        ref = samples.get(("decord", row["workload"]))
        if ref and row["backend"] != "decord":
            mine = samples[(row["backend"], row["workload"])]
            row["cpu_speed_vs_decord"] = statistics.median(
                (f / c) / (rf / rc) for (f, _, c), (rf, _, rc) in zip(mine, ref) if c > 0 and rc > 0
            )
    for b, e in errors.items():
        rows.append({"backend": b, "workload": "clip", "error": e})
    agreement = _agreement(paths[0], usable)
    for row in rows:
        if row["backend"] in agreement and row["workload"] == "clip":
            row["mean_abs_diff_vs_pyav"] = agreement[row["backend"]]
    return {"rows": rows, "num_videos": len(paths), "rounds": rounds}


def _agreement(path: str, backends: Sequence[str]) -> Dict[str, float]:
    """Mean absolute pixel difference of one clip against PyAV's (0 = the very same frames)."""
    ref = _pyav_seq_frames(path)
    idx = clip_index_fn(7)(len(ref))
    out = {}
    for b in backends:
        try:
            clip = readers(b)[0](path, clip_index_fn(7))
            out[b] = float(np.abs(clip.astype(np.int16) - ref[idx].astype(np.int16)).mean())
        except Exception:
            continue
    return out


def _pyav_seq_frames(path: str) -> np.ndarray:
    c, s = _pyav_open(path)
    try:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(s)])
    finally:
        c.close()


def run_compare_in_child(paths: Sequence[str], backends: Sequence[str], rounds: int) -> dict:
    """:func:`compare` in a child process whose environment lets torchcodec load (see module doc)."""
    tc = (
        torchcodec_env(paths[0])
        if any("torchcodec" in b for b in backends)
        else {"env": dict(os.environ), "note": "", "error": None}
    )
    run = [b for b in backends if not ("torchcodec" in b and tc["error"])]
    env = dict(tc["env"])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout holding benchmarks/
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "dec.json")
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.decoders",
                "--json",
                out,
                "--rounds",
                str(rounds),
                "--backends",
                *run,
                "--",
                *paths,
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if p.returncode != 0:
            raise RuntimeError(f"decoder benchmark child failed: {p.stderr.strip().splitlines()[-1:]}")
        with open(out) as f:
            result = json.load(f)
    for b in backends:
        if "torchcodec" in b and tc["error"]:
            result["rows"].append({"backend": b, "workload": "clip", "error": tc["error"]})
    result["torchcodec_note"] = tc["note"]
    result["torchcodec_error"] = tc["error"]
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="decoder comparison (run by python -m benchmarks data)")
    p.add_argument("--json", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--backends", nargs="+", default=list(BACKENDS))
    p.add_argument("paths", nargs="+")
    args = p.parse_args(argv)
    result = compare(args.paths, args.backends, args.rounds)
    from .measure import versions

    result["versions"] = versions(("av", "decord", "torchcodec"))
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
