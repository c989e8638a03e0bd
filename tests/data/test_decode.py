"""A frame asked for is the frame delivered, on every codec and backend; bad files fail cleanly."""

import json
import os
import time

import av
import numpy as np
import pytest
import torch
import torchcodec_child

from rs3d.data import decode as D
from rs3d.data.synthetic import render_video, write_video
from rs3d.data.video import container as C
from rs3d.data.video import pyav_reader

BACKENDS = ["decord", "pyav"]
CODECS = {  # B-frames in h264; mpeg4 in AVI; VP9 in WebM; h264 in Matroska (no frame count)
    "h264_bframes.mp4": ("libx264", {"bf": "3", "g": "12", "preset": "veryfast"}),
    "mpeg4.avi": ("mpeg4", {"g": "10", "qscale": "3"}),
    "vp9.webm": ("libvpx-vp9", {"g": "10", "deadline": "realtime", "cpu-used": "8"}),
    "h264.mkv": ("libx264", {"bf": "2", "g": "16", "preset": "veryfast"}),
    # Open GOPs: B-frames after a keyframe are shown before it and refer to the previous GOP.
    "h264_opengop.mp4": ("libx264", {"bf": "3", "g": "12", "x264-params": "open-gop=1:b-pyramid=normal"}),
}


def full_decode(path):
    """Reference: every frame of a plain sequential PyAV decode."""
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.fixture(scope="module")
def coded_videos(tmp_path_factory):
    out = tmp_path_factory.mktemp("codecs")
    frames = render_video(2, np.random.default_rng(3), 64, 80, 75)  # sideways motion: frames differ
    paths = {}
    for name, (codec, opts) in CODECS.items():
        paths[name] = out / name
        write_video(str(paths[name]), frames, 24, codec, opts)
    return paths


def assert_frames_exact(got, idx, ref):
    assert got.dtype == torch.uint8 and tuple(got.shape[1:]) == ref.shape[1:]
    for k, i in enumerate(idx):
        g = got[k].numpy().astype(np.int16)
        err = np.abs(g - ref[i]).mean()
        assert err < 0.5, f"frame {i}: mean abs diff {err:.2f}"
        for j in (i - 1, i + 1):  # and not a neighbour
            if 0 <= j < len(ref) and not np.array_equal(ref[j], ref[i]):
                assert np.abs(g - ref[j]).mean() > err


def _check_exact(path, backend):
    ref = full_decode(path)
    rng = np.random.default_rng(0)
    asked = np.concatenate([[len(ref) - 1, 0], rng.integers(0, len(ref), 12), [5, 5, 1]])
    got, idx, length = D.read_frames(str(path), lambda n: asked, backend=backend)
    assert length == len(ref)
    assert idx.tolist() == asked.tolist()
    assert_frames_exact(got, idx, ref)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CODECS))
def test_frame_exact_on_codecs(coded_videos, name, backend):
    _check_exact(coded_videos[name], backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["bikes", "carphone"])
def test_frame_exact_on_real_footage(real_videos, name, backend):
    _check_exact(real_videos[name], backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_on_real_footage(real_videos, backend):
    # a 32x2 training clip from frame 100 of bikes (250 frames) is frames 100, 102, ..., 162
    ref = full_decode(real_videos["bikes"])
    got, idx, length = D.read_frames(
        str(real_videos["bikes"]), lambda n: D.clip_indices(100, 32, 2, n), backend=backend
    )
    assert length == 250 and idx.tolist() == list(range(100, 164, 2))
    assert got.shape == (32, 272, 640, 3)
    assert_frames_exact(got, idx, ref)


def _index(path):
    container, stream = C.open_video(str(path), 1)
    try:
        return C.index_packets(container, stream)
    finally:
        container.close()


def _seek_cases(path, ref_len):
    """Clips starting on, just before and just after every keyframe, and every 5th frame."""
    index = _index(path)
    key_ranks = [index.order.index(t) for t in index.keys]
    starts = {f for k in key_ranks for f in range(k - 3, k + 3)} | set(range(1, ref_len, 5))
    for first in sorted(f for f in starts if 0 < f < ref_len):
        yield np.unique(np.r_[first, np.arange(first, min(first + 24, ref_len), 3)])


def _seek_decode(path, uniq, index=None):
    """rs3d's PyAV seek path alone (None where it declines)."""
    container, stream = C.open_video(str(path), 1)
    try:
        return pyav_reader.seek_decode(container, stream, index or C.index_packets(container, stream), np.asarray(uniq))
    finally:
        container.close()


@pytest.mark.parametrize("name", list(CODECS) + ["bikes", "carphone"])
def test_pyav_seeks_to_the_keyframe_and_delivers_the_exact_frames(coded_videos, real_videos, name):
    """rs3d's PyAV path seeks (it does not fall back to decoding from frame 0) on every one of these
    files, for clips starting at any frame, and each frame equals the sequential decode's."""
    path = str(coded_videos[name] if name in coded_videos else real_videos[name])
    ref = full_decode(path)
    for uniq in _seek_cases(path, len(ref)):
        got = _seek_decode(path, uniq)
        assert got is not None, f"{name}: no exact seek for frames {uniq.tolist()}"
        for i in uniq.tolist():
            assert np.array_equal(got[i], ref[i]), f"{name}: frame {i} differs after seeking"


def test_open_gop_files_are_recognised_from_their_packets(coded_videos, real_videos):
    """decord corrupts frames next to open-GOP keyframes; such files must be recognised (and are
    then read with PyAV: ``test_frame_exact_on_codecs[h264_opengop.mp4-decord]``)."""
    assert D.has_open_gop(str(coded_videos["h264_opengop.mp4"]))
    closed = [n for n in coded_videos if n != "h264_opengop.mp4"]
    assert not any(D.has_open_gop(str(coded_videos[n])) for n in closed)
    assert not any(D.has_open_gop(str(p)) for p in real_videos.values())


def test_pyav_seeks_only_on_an_exact_packet_index(coded_videos, broken_videos):
    """The index is exact where it proves frame i is the i-th decoded frame; elsewhere there is no
    seek (the reader decodes from frame 0 and counts), never a guess."""
    path = coded_videos["h264_bframes.mp4"]
    index = _index(path)
    assert index.exact and index.length == 75
    assert _seek_decode(path, [30, 40], index) is not None
    index.exact = False
    assert _seek_decode(path, [30, 40], index) is None
    # the mp4 index lists 48 frames, the data holds fewer: not exact
    assert not _index(broken_videos["overreported"]).exact


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "kind, words",
    [
        ("missing", "file not found"),
        ("empty", "empty file"),
        ("truncated", "cannot open"),
        ("not_a_video", "cannot open"),
        ("audio_only", "no video stream"),
    ],
)
def test_broken_files_raise_one_line(broken_videos, backend, kind, words):
    with pytest.raises(D.DecodeError) as e:
        D.read_frames(str(broken_videos[kind]), lambda n: np.arange(4), backend=backend)
    assert words in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_overreported_frame_count_is_clamped(broken_videos, backend):
    """The mp4 index lists 48 frames but only the first ones decode: re-sample on the real length."""
    path = str(broken_videos["overreported"])
    with av.open(path) as c:
        assert c.streams.video[0].frames == 48
    real = full_decode_tolerant(path)
    assert 0 < len(real) < 48
    got, idx, length = D.read_frames(path, lambda n: np.array([0, n - 1]), backend=backend)
    assert length == len(real) and idx.tolist() == [0, len(real) - 1]
    assert_frames_exact(got, idx, real)


def full_decode_tolerant(path):
    frames = []
    try:
        with av.open(path) as c:
            for f in c.decode(video=0):
                frames.append(f.to_ndarray(format="rgb24"))
    except av.error.FFmpegError:
        pass
    return np.stack(frames)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_frame_video_loops(broken_videos, backend):
    got, idx, length = D.read_frames(
        str(broken_videos["one_frame"]), lambda n: D.clip_indices(0, 8, 2, n), backend=backend
    )
    assert length == 1 and idx.tolist() == [0] * 8 and got.shape[0] == 8
    assert all(torch.equal(got[0], g) for g in got)


def test_hanging_decode_times_out(monkeypatch, coded_videos):
    """A decoder that never returns costs DATA.DECODE_TIMEOUT_S, not the run."""

    def hang(*args, **kwargs):
        time.sleep(30)

    monkeypatch.setattr(D, "_read", hang)
    with pytest.raises(D.DecodeError, match="DECODE_TIMEOUT_S"):
        D.read_frames(str(coded_videos["mpeg4.avi"]), lambda n: np.arange(2), timeout_s=0.3)


def test_timeout_passes_results_and_errors_through(coded_videos):
    got, _, _ = D.read_frames(str(coded_videos["mpeg4.avi"]), lambda n: np.arange(2), timeout_s=30)
    assert got.shape[0] == 2
    with pytest.raises(D.DecodeError, match="file not found"):
        D.read_frames("/nonexistent.mp4", lambda n: np.arange(2), timeout_s=30)


def test_unknown_backend(coded_videos):
    with pytest.raises(ValueError, match="DECODING_BACKEND"):
        D.read_frames(str(coded_videos["mpeg4.avi"]), lambda n: np.arange(2), backend="opencv")


def test_decord_torch_bridge_set_by_another_library(coded_videos):
    """PyTorchVideo switches decord's global bridge to torch; rs3d must still read frames."""
    import decord

    decord.bridge.set_bridge("torch")
    try:
        got, _, _ = D.read_frames(str(coded_videos["h264_bframes.mp4"]), lambda n: np.arange(3))
    finally:
        decord.bridge.set_bridge("native")
    ref = full_decode(coded_videos["h264_bframes.mp4"])
    assert_frames_exact(got, np.arange(3), ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_resident_memory_stays_flat_over_many_reads(synthetic_dataset, backend):
    """decord grows memory when readers are kept alive; rs3d opens and frees one per read.
    After a warm-up, 300 more reads must not grow the process by more than a few MiB."""
    paths = sorted(str(p) for p in (synthetic_dataset / "videos").rglob("*.*"))

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def read(i):
        D.read_frames(paths[i % len(paths)], lambda n: np.arange(0, n, 3), backend=backend)

    for i in range(60):
        read(i)
    before = rss_mib()
    for i in range(300):
        read(i)
    assert rss_mib() - before < 16


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_forked_loader_worker_can_collect_what_reads_left(coded_videos, backend):
    """Loader workers are forked from a process that has decoded (a test run, a val pass). The
    garbage collector of a worker must not free a threaded decoder or swscale context inherited
    from the parent: it would wait forever for threads that were not forked."""
    import gc
    import signal

    gc.disable()  # keep whatever cycles the reads leave, as a busy parent would between collections
    try:
        for p in coded_videos.values():
            D.read_frames(str(p), lambda n: np.arange(0, n, 7), backend=backend, timeout_s=30)
        pid = os.fork()
        if pid == 0:  # the child: collect, then leave without running pytest's teardown
            gc.collect()
            os._exit(0)
    finally:
        gc.enable()
    deadline = time.time() + 30
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung in gc.collect()")


# ----------------------------------------------------------------------------- torchcodec
_TORCHCODEC_CHILD = """
import json, sys
import av, numpy as np
from rs3d.data import decode as D

def no_fallback(*a, **k):
    raise AssertionError("fell back to PyAV")

D._pyav_read = no_fallback
out = {}
for path in sys.argv[1:]:
    with av.open(path) as c:
        ref = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    asked = np.array([len(ref) - 1, 0, 7, 3, 3, len(ref) // 2, 1])
    got, idx, length = D.read_frames(path, lambda n: asked, backend="torchcodec")
    err = [float(np.abs(got[k].numpy().astype(np.int16) - ref[i]).mean()) for k, i in enumerate(asked)]
    out[path] = dict(length=length, ref_length=len(ref), max_err=max(err), idx=idx.tolist())
print("RESULT" + json.dumps(out))
"""


def test_torchcodec_backend_is_frame_exact_where_ffmpeg_is_found(coded_videos, real_videos):
    """torchcodec needs FFmpeg's shared libraries; this machine has them only inside PyAV's wheel,
    so the check runs in a child process that finds them there (as a user's system FFmpeg would)."""
    paths = [str(p) for p in coded_videos.values()] + [str(real_videos["carphone"])]
    env = torchcodec_child.env_or_skip(paths[0])
    out = torchcodec_child.run(_TORCHCODEC_CHILD, paths, env)
    result = json.loads(out.split("RESULT", 1)[1])
    for path, r in result.items():
        assert r["length"] == r["ref_length"], path
        assert r["max_err"] < 0.5, (path, r["max_err"])
        assert r["idx"][:2] == [r["ref_length"] - 1, 0]


def test_unusable_decoding_backend_is_refused_at_start_up(data_cfg):
    from rs3d.data import DataError, build_dataset

    assert D.backend_unavailable("decord") is None and D.backend_unavailable("pyav") is None
    assert "DATA.DECODING_BACKEND" in D.backend_unavailable("ffmpeg-cli")
    reason = D.backend_unavailable("torchcodec")
    if reason is None:
        pytest.skip("torchcodec decodes in this process (FFmpeg libraries found)")
    assert reason.startswith("DATA.DECODING_BACKEND torchcodec") and "\n" not in reason
    data_cfg.DATA.DECODING_BACKEND = "torchcodec"
    with pytest.raises(DataError, match="DATA.DECODING_BACKEND torchcodec"):
        build_dataset(data_cfg, "train", "train")
