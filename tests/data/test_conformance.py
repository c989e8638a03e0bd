"""Files from the wild: every frame rs3d reads, with every backend, is the frame ffmpeg shows.

The files come from ``quirky_videos.py`` (rotation and mirror display matrices, two video
streams, cover art, leading packets that cannot decode, an edit list, VFR, open GOPs, 10-bit
H.264/HEVC, 4:4:4, gray, odd and tiny sizes, GIF, MJPEG, ProRes, absurd and zero frame-rate
headers, a raw H.264 stream). The reference is the ffmpeg binary of the ``imageio-ffmpeg`` wheel
(a test-only dependency): default stream, autorotation, ``-fps_mode passthrough``, rgb24.

Colour tolerance, measured on these files: 8-bit files of even size, and 10-bit 4:2:2 ProRes,
convert to exactly ffmpeg's RGB with decord and PyAV (mean |diff| 0; decord's older MPEG-4
decoder is off by at most 2 levels on a few pixels). 4:2:0 frames that libswscale cannot convert
on its direct path (10-bit, or odd sizes) are interpolated differently by the libswscale that
decord and PyAV call directly than by ffmpeg's scale filter: mean |diff| per frame at most 8.7
(10-bit H.264/HEVC) and 8.6 (35x19, decord; 4.0 PyAV) on this noisy pattern; torchcodec, which
goes through the filter, matches exactly. Neighbouring frames differ by 22 levels or more, so a
frame is accepted only within its tolerance *and* nearer to the right reference frame than to
either neighbour.
"""

import json
import os

import numpy as np
import pytest
import quirky_videos as Q
import torch
import torchcodec_child

from rs3d.data import decode as D
from rs3d.data.video import decord_reader, probe

FFMPEG = Q.ffmpeg_exe()
pytestmark = pytest.mark.skipif(
    FFMPEG is None, reason="imageio-ffmpeg is not installed (test-only: pip install imageio-ffmpeg)"
)

INTERPOLATED_CHROMA = {"h264_10bit.mp4", "hevc_10bit.mkv", "odd_size.mkv"}
ORIENTED = [n for n in Q.QUIRKS if n.startswith(("rot", "hflip", "vflip"))]


def tolerance(name: str) -> float:
    return 12.0 if name in INTERPOLATED_CHROMA else 0.5


@pytest.fixture(scope="module")
def quirky(tmp_path_factory):
    out = tmp_path_factory.mktemp("quirky")
    paths = Q.make_quirky_videos(out, FFMPEG)
    refs = {n: Q.ffmpeg_frames(FFMPEG, p) for n, p in paths.items()}
    return paths, refs


def requests(n: int):
    """Index sets a loader asks for, each one read: everything shuffled with repeats, the two
    ends, short clips starting a third in and near the end (seeks past a keyframe)."""
    rng = np.random.default_rng(n)
    yield np.concatenate([rng.permutation(n), [n - 1, 0, 0]])
    yield np.array([n - 1, 0])
    for s in sorted({n // 3, max(n - 5, 0)}):
        yield D.clip_indices(s, 4, 2, n)


def assert_same_frames(name, got, idx, ref):
    tol = tolerance(name)
    assert got.dtype.is_floating_point is False and tuple(got.shape[1:]) == ref.shape[1:], (
        f"{name}: frames {tuple(got.shape[1:])}, ffmpeg shows {ref.shape[1:]}"
    )
    for k, i in enumerate(idx.tolist()):
        g = got[k].numpy().astype(np.int16)
        err = float(np.abs(g - ref[i]).mean())
        assert err <= tol, f"{name}: frame {i}: mean |diff| {err:.2f} > {tol}"
        for j in (i - 1, i + 1):
            if 0 <= j < len(ref):
                assert err < float(np.abs(g - ref[j]).mean()), f"{name}: frame {i} is nearer frame {j}"


def check_file(name, path, ref, backend, autorotate=True):
    if autorotate and name in Q.REFUSED:
        with pytest.raises(D.DecodeError) as e:
            D.read_frames(str(path), lambda n: np.arange(n), backend=backend)
        assert Q.REFUSED[name] in str(e.value) and "\n" not in str(e.value)
        return
    for asked in requests(len(ref)):
        got, idx, length = D.read_frames(
            str(path),
            lambda n, asked=asked: asked if n == len(ref) else np.arange(n),
            backend=backend,
            autorotate=autorotate,
        )
        assert length == len(ref), f"{name}: {length} frames, ffmpeg decodes {len(ref)}"
        assert idx.tolist() == asked.tolist()
        assert_same_frames(name, got, idx, ref)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_every_frame_is_the_frame_ffmpeg_shows(quirky, backend, monkeypatch):
    paths, refs = quirky
    served = []
    real = decord_reader.read

    def recording(path, *a, **k):
        result = real(path, *a, **k)
        if result is not None:
            served.append(os.path.basename(path))
        return result

    monkeypatch.setattr(decord_reader, "read", recording)
    for name, path in paths.items():
        check_file(name, path, refs[name][0], backend)
    if backend == "decord":  # the test exercises decord itself, not only its fallback
        assert "plain.mp4" in served


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_autorotate_off_gives_the_stored_frames(quirky, backend):
    paths, _ = quirky
    for name in ORIENTED:
        stored, _ = Q.ffmpeg_frames(FFMPEG, paths[name], autorotate=False)
        check_file(name, paths[name], stored, backend, autorotate=False)


def test_the_stream_read_is_the_one_ffmpeg_picks(quirky):
    paths, refs = quirky
    for name, path in paths.items():
        assert probe.probe_video(str(path)).stream == refs[name][1], name


_TORCHCODEC_CHILD = """
import json, os, sys
import numpy as np
from rs3d.data import decode as D
from rs3d.data.video import torchcodec_reader

served, real = [], torchcodec_reader.read
def recording(path, *a, **k):
    r = real(path, *a, **k)
    if r is not None:
        served.append(os.path.basename(path))
    return r
torchcodec_reader.read = recording
out = sys.argv[1]
for path in sys.argv[2:]:
    name = os.path.basename(path)
    try:
        got, idx, length = D.read_frames(path, lambda n: np.arange(n)[::-1], backend="torchcodec")
        np.savez(os.path.join(out, name + ".npz"), frames=got.numpy(), idx=idx, length=length)
    except D.DecodeError as e:
        open(os.path.join(out, name + ".err"), "w").write(str(e))
print("SERVED" + json.dumps(served))
"""


def test_torchcodec_backend_where_ffmpeg_libraries_are_found(quirky, tmp_path):
    """torchcodec needs FFmpeg's shared libraries; where only PyAV's wheel has them, the check runs
    in a child process that finds them there (as a user's system FFmpeg would)."""
    paths, refs = quirky
    env = torchcodec_child.env_or_skip(str(paths["plain.mp4"]))
    out = torchcodec_child.run(_TORCHCODEC_CHILD, [tmp_path, *paths.values()], env)
    served = json.loads(out.split("SERVED", 1)[1])
    assert "plain.mp4" in served
    for name in paths:
        ref = refs[name][0]
        if name in Q.REFUSED:
            assert Q.REFUSED[name] in (tmp_path / f"{name}.err").read_text()
            continue
        assert not (tmp_path / f"{name}.err").exists(), (tmp_path / f"{name}.err").read_text()
        r = np.load(tmp_path / f"{name}.npz")
        assert int(r["length"]) == len(ref), name
        assert r["idx"].tolist() == list(range(len(ref)))[::-1]
        assert_same_frames(name, torch.from_numpy(r["frames"]), r["idx"], ref)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_test_views_of_a_phone_video_are_cut_from_the_frames_as_shown(quirky, backend):
    """rot90.mp4 stores 64x48 frames and is shown 48 wide, 64 high: the test geometry (short side
    to the crop size, crops along the long side) works on the shown frames."""
    from rs3d.data import TestDataset, VideoRecord, views_of
    from rs3d.data import transforms as T

    paths, refs = quirky
    ds = TestDataset([VideoRecord(str(paths["rot90.mp4"]), 0)], 4, 2, 32, num_clips=1, num_crops=3, backend=backend)
    item = ds[0]
    assert item["error"] == ""
    assert item["resized_hw"] == T.short_side_size(64, 48, 32) == (43, 32)
    assert item["crop_corners"].tolist() == [[0, 0], [5, 0], [11, 0]]  # down the rows
    shown = torch.from_numpy(refs["rot90.mp4"][0][ds.clip_indices(len(refs["rot90.mp4"][0]))[0]])
    want = T.short_side_crops(shown, 32, 3)
    assert torch.equal(views_of(item), want)


def test_data_autorotate_false_keeps_the_stored_orientation_in_the_loader(quirky, tmp_path):
    """DATA.AUTOROTATE reaches the datasets the loader builds: False gives the stored 64x48 frames."""
    from rs3d.config import load_config
    from rs3d.data.loader import build_dataset

    paths, _ = quirky
    (tmp_path / "test.csv").write_text(f"{paths['rot90.mp4']} 0\n")
    shapes = {}
    for autorotate in (True, False):
        cfg = load_config(
            None,
            [
                "DATA.PATH_TO_DATA_DIR",
                str(tmp_path),
                "MODEL.NUM_CLASSES",
                "2",
                "DATA.NUM_FRAMES",
                "4",
                "DATA.TEST_CROP_SIZE",
                "32",
                "TEST.NUM_ENSEMBLE_VIEWS",
                "1",
                "TEST.NUM_SPATIAL_CROPS",
                "1",
                "DATA.AUTOROTATE",
                str(autorotate),
            ],
        )
        item = build_dataset(cfg, "test", "test")[0]
        assert item["error"] == ""
        shapes[autorotate] = item["resized_hw"]
    assert shapes[True] == (43, 32) and shapes[False] == (32, 43)


def test_a_test_video_listed_twice_is_counted_once_and_training_keeps_both(quirky, tmp_path):
    from rs3d.config import load_config
    from rs3d.data.loader import build_dataset

    paths, _ = quirky
    line = f"{paths['rot90.mp4']} 0\n"
    for split in ("train", "test"):
        (tmp_path / f"{split}.csv").write_text(line + line)
    cfg = load_config(None, ["DATA.PATH_TO_DATA_DIR", str(tmp_path), "MODEL.NUM_CLASSES", "2"])
    assert len(build_dataset(cfg, "test", "test")) == 1
    assert len(build_dataset(cfg, "train", "train")) == 2


# ----------------------------------------------------------------------------- the other readers
def test_the_fps_survey_reads_the_stream_ffmpeg_picks(quirky):
    """DATA.TARGET_FPS and the recipe survey read the rate of the stream every reader decodes:
    default_small.mp4 is read at 10 fps (its default stream), not at the larger stream's 25."""
    import av

    from rs3d.data.fps import video_fps
    from rs3d.data.video.container import frame_rate

    paths, refs = quirky
    for name, path in paths.items():
        with av.open(str(path)) as c:
            want = frame_rate(c.streams[refs[name][1]])
        if not want:
            with pytest.raises(D.DecodeError, match="frame rate unknown"):
                video_fps(str(path))
        else:
            assert video_fps(str(path)) == want, name
    assert video_fps(str(paths["default_small.mp4"])) == 10.0


def test_the_timeline_reader_shows_every_frame_as_ffmpeg_does(quirky):
    """The sequential reader of ``rs3d-predict --window`` (and of re-encoding): same stream, same
    frames, same orientation as ffmpeg, as read_frames."""
    from rs3d.data.video.sequential import FrameStream

    paths, refs = quirky
    for name, path in paths.items():
        with FrameStream(str(path)) as source:
            if name in Q.REFUSED:
                with pytest.raises(D.DecodeError, match=Q.REFUSED[name]):
                    list(source)
                continue
            got = [source.rgb(f) for _, f in source]
        ref = refs[name][0]
        assert len(got) == len(ref), f"{name}: {len(got)} frames, ffmpeg decodes {len(ref)}"
        assert_same_frames(name, torch.from_numpy(np.stack(got)), np.arange(len(ref)), ref)


def _upright_copy(path, out):
    """``path`` as ffmpeg shows it (autorotated), stored losslessly with no display matrix."""
    Q._run(FFMPEG, ["-i", str(path), "-c:v", "ffv1", str(out)])
    return out


def test_a_phone_video_gives_the_timeline_of_its_upright_copy(quirky, tmp_path):
    """rot90.mp4 holds plain.mp4's frames with a display matrix: its timeline is the one of the
    same frames stored upright, not the one of the stored (sideways) frames."""
    from rs3d.inference.timeline import sliding_window_scores

    paths, _ = quirky
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(5))

    def timeline(path):
        return sliding_window_scores(
            model, str(path), window_s=0.4, stride_s=0.2, num_frames=4, crop_size=32, num_crops=3, batch_size=2
        ).scores

    phone = timeline(paths["rot90.mp4"])
    assert len(phone) == 5
    np.testing.assert_array_equal(phone, timeline(_upright_copy(paths["rot90.mp4"], tmp_path / "up.mkv")))
    assert np.abs(phone - timeline(paths["plain.mp4"])).max() > 1e-3  # sideways scores differ


# Measured on these files: the lossless (crf 0) 8-bit 4:2:0 copy differs from ffmpeg's frames of
# the source only by the conversion to 8-bit 4:2:0: mean |diff| 0 for 8-bit 4:2:0 sources, at
# most 6.5 for 10-bit, ProRes and MJPEG, 8.9 for turned files (through RGB once), 9.9 gray,
# 11.0 4:4:4, 13.7 GIF; neighbouring frames stay 22 levels or more apart.
STORAGE_TOLERANCE = 14.0


def test_storage_preparation_stores_the_frames_as_shown(quirky, tmp_path):
    """rs3d-prepare-kinetics' check and re-encode: every frame ffmpeg shows, in order, upright
    (the copy shows the same frames with autorotation off: no display matrix left)."""
    from rs3d.data.storage import Storage, prepare_video

    paths, refs = quirky
    storage = Storage(crf=0, gop=12)
    for name, path in paths.items():
        dst = tmp_path / (name + ".mp4")
        reason = prepare_video(str(path), str(dst), storage)
        if name in Q.REFUSED:
            assert Q.REFUSED[name] in reason and not dst.exists()
            continue
        assert reason == "", f"{name}: {reason}"
        ref = refs[name][0]
        copy, _ = Q.ffmpeg_frames(FFMPEG, dst, autorotate=False)
        assert copy.shape[0] == len(ref), f"{name}: copy has {copy.shape[0]} frames, source {len(ref)}"
        h, w = ref.shape[1:3]
        assert copy.shape[1:3] == (2 * round(h / 2), 2 * round(w / 2)), name  # 4:2:0 needs even sizes
        if (h, w) != copy.shape[1:3]:
            continue  # odd_size.mkv: scaled by a pixel, so compared by shape and count only
        for k in range(len(ref)):
            err = float(np.abs(copy[k].astype(np.int16) - ref[k]).mean())
            assert err <= STORAGE_TOLERANCE, f"{name}: frame {k}: mean |diff| {err:.2f}"
            for j in (k - 1, k + 1):
                if 0 <= j < len(ref):
                    assert err < float(np.abs(copy[k].astype(np.int16) - ref[j]).mean()), (name, k, j)


def test_predict_and_gradcam_read_a_phone_video_as_shown(quirky):
    """rs3d-predict's views and rs3d-visualize gradcam's clip come from the frames as shown: rot90.mp4
    gives what the upright frames ffmpeg shows give (the test's centre clip and crop)."""
    from rs3d.config import load_config
    from rs3d.data import transforms as T
    from rs3d.inference.gradcam import center_clip
    from rs3d.inference.predict import build_views_dataset

    paths, refs = quirky
    cfg = load_config(
        None,
        [
            "MODEL.NUM_CLASSES",
            "2",
            "DATA.NUM_FRAMES",
            "4",
            "DATA.TEST_CROP_SIZE",
            "32",
            "TEST.NUM_ENSEMBLE_VIEWS",
            "1",
            "TEST.NUM_SPATIAL_CROPS",
            "1",
            "DEVICE",
            "cpu",
        ],
    )
    item = build_views_dataset(cfg, [str(paths["rot90.mp4"])])[0]
    assert item["error"] == "" and item["resized_hw"] == (43, 32)  # shown 48 wide, 64 high
    _, frames = center_clip(cfg, str(paths["rot90.mp4"]))  # [T, S, S, 3]
    shown = refs["rot90.mp4"][0]
    clip = torch.from_numpy(shown[build_views_dataset(cfg, [str(paths["plain.mp4"])]).clip_indices(len(shown))[0]])
    want = T.short_side_crops(clip, 32, 1)[0].permute(1, 2, 3, 0).numpy()  # centre crop of the shown frames
    np.testing.assert_array_equal(frames, want)
