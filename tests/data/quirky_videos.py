"""Tiny video files with the quirks of files from the wild, and ffmpeg's own decode of each.

Made with the ffmpeg binary of the ``imageio-ffmpeg`` wheel (a test-only dependency, never used
by rs3d itself) and PyAV. Each file is a few dozen frames of ffmpeg's ``testsrc2`` pattern, whose
content changes every frame, so a wrong frame cannot pass for the right one.

:func:`ffmpeg_frames` is the reference every rs3d reader is held to: the default stream ffmpeg
picks, autorotated as ffmpeg shows it, every decoded frame once (``-fps_mode passthrough``), as
raw ``rgb24`` through a pipe.
"""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

# name -> what makes the file odd (the conformance test runs every one that could be made here)
QUIRKS = {
    "plain.mp4": "h264 with B-frames, closed GOPs (the control)",
    "rot90.mp4": "display matrix: rotate 90 (a phone held upright)",
    "rot180.mp4": "display matrix: rotate 180",
    "rot270.mp4": "display matrix: rotate 270",
    "hflip.mp4": "display matrix: mirrored left-right",
    "vflip.mp4": "display matrix: mirrored top-bottom",
    "rot90_hflip.mp4": "display matrix: rotate 90 and mirror",
    "rot270_hflip.mp4": "display matrix: rotate 270 and mirror (a transpose)",
    "two_streams.mp4": "a 10-frame 32x24 stream first, the 64x48 main stream second, both default",
    "default_small.mp4": "a 64x48 25 fps stream, then a 32x24 10 fps one marked default (ffmpeg picks it)",
    "cover_art.mp4": "a 96x96 PNG attached picture, larger than the 64x48 video",
    "leading_nonkey.mp4": "20 packets that cannot decode before the first keyframe",
    "edit_list.mp4": "cut with -c copy mid-GOP: an edit list hides the first decoded frames",
    "vfr.mp4": "variable frame rate (gaps between frames grow)",
    "open_gop.mp4": "h264 open GOPs: leading B-frames refer to the previous GOP",
    "hevc_open_gop.mp4": "HEVC CRA keyframes with RASL leading pictures (x265's default)",
    "h264_10bit.mp4": "h264 High 10, yuv420p10le",
    "hevc_10bit.mkv": "HEVC Main 10, yuv420p10le, in Matroska",
    "yuv444.mp4": "h264 High 4:4:4",
    "gray.mp4": "h264 monochrome (4:0:0)",
    "bt709.mp4": "h264 tagged BT.709, limited range (what cameras write)",
    "odd_size.mkv": "35x19 FFV1 (odd width and height)",
    "tiny.mp4": "16x16",
    "animated.gif": "GIF (palette, no codec timestamps beyond 1/100 s)",
    "mjpeg.avi": "Motion JPEG in AVI, full-range yuvj",
    "prores.mov": "ProRes 422, yuv422p10le",
    "fps_absurd.mp4": "a 1,000,000 fps time base",
    "fps_tiny.mkv": "one frame every 100 s",
    "fps_zero.avi": "AVI whose rate and frame duration headers are 0",
    "raw.h264": "an H.264 elementary stream: no container, no timestamps, B-frames",
    "rot45.mp4": "display matrix: rotate 45 (not a multiple of 90: rs3d refuses it)",
}

# Files rs3d refuses by design (DecodeError), with words the one-line reason must contain.
REFUSED = {"rot45.mp4": "rotat"}


def ffmpeg_exe() -> Optional[str]:
    """The imageio-ffmpeg wheel's ffmpeg binary, or None when the wheel is not installed."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        return None


def _run(ffmpeg: str, args: List[str]) -> None:
    p = subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if p.returncode:
        raise RuntimeError(f"ffmpeg {' '.join(args)}: {p.stderr.strip()[-500:]}")


def _src(size: str = "64x48", frames: int = 30, rate: str = "25") -> List[str]:
    # Temporal noise on the moving pattern: every frame differs clearly from its neighbours.
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate},noise=alls=40:allf=t,trim=end_frame={frames}"]


_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-threads", "1"]
_GOP = ["-g", "12", "-keyint_min", "12", "-sc_threshold", "0", "-bf", "3"]


def _has_encoder(ffmpeg: str, name: str) -> bool:
    p = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=60)
    return re.search(rf"^\s*\S+\s+{re.escape(name)}\s", p.stdout, re.M) is not None


def _rotated(ffmpeg: str, out: Path, source: Path, flags: List[str]) -> None:
    """``source`` with a display matrix set by the demuxer-side options ``flags`` (no re-encode)."""
    _run(ffmpeg, [*flags, "-i", str(source), "-c", "copy", str(out)])


def _leading_nonkey(ffmpeg: str, out: Path, tmp: Path) -> None:
    """81 frames with keyframes at 0 and 21, the first packet dropped: 20 P-frames lead, 60 decode."""
    import av

    src = tmp / "_lead_src.mp4"
    _run(
        ffmpeg, [*_src(frames=81), *_X264, "-g", "21", "-keyint_min", "21", "-sc_threshold", "0", "-bf", "0", str(src)]
    )
    with av.open(str(src)) as inp, av.open(str(out), "w") as dst:
        s_in = inp.streams.video[0]
        s_out = dst.add_stream_from_template(s_in)
        for i, packet in enumerate(inp.demux(s_in)):
            if packet.size == 0 or i == 0:
                continue
            packet.stream = s_out
            dst.mux(packet)
    src.unlink()


def _zero_fps_avi(ffmpeg: str, out: Path) -> None:
    """An AVI whose main header frame duration and stream header rate are both 0."""
    _run(ffmpeg, [*_src(frames=24), "-c:v", "mpeg4", "-q:v", "3", "-g", "8", str(out)])
    data = bytearray(out.read_bytes())
    avih = data.find(b"avih")
    struct.pack_into("<I", data, avih + 8, 0)  # dwMicroSecPerFrame
    strh = data.find(b"strh")
    struct.pack_into("<I", data, strh + 8 + 24, 0)  # dwRate (after type, handler, flags, ...)
    out.write_bytes(bytes(data))


# Files that are one ffmpeg encode: name -> arguments before the output path.
_X265 = ["-c:v", "libx265", "-x265-params", "keyint=12:min-keyint=12:bframes=3:log-level=error:pools=1:frame-threads=1"]
_ENCODED = {
    "plain.mp4": [*_src(), *_X264, *_GOP],
    "two_streams.mp4": [
        *_src("32x24", 10),
        *_src("64x48", 30),
        "-map",
        "0",
        "-map",
        "1",
        *_X264,
        "-disposition:v:0",
        "default",
        "-disposition:v:1",
        "default",
    ],
    "default_small.mp4": [
        *_src(),
        *_src("32x24", 12, "10"),
        "-map",
        "0",
        "-map",
        "1",
        *_X264,
        "-disposition:v:0",
        "0",
        "-disposition:v:1",
        "default",
    ],
    "cover_art.mp4": [
        *_src("96x96", 1),
        *_src(),
        "-map",
        "0",
        "-map",
        "1",
        "-c:v:0",
        "png",
        "-disposition:v:0",
        "attached_pic",
        "-c:v:1",
        "libx264",
        "-preset",
        "veryfast",
        "-threads",
        "1",
    ],
    "vfr.mp4": [*_src(), "-vf", "setpts='(N+N*N/20)/(25*TB)'", "-fps_mode", "passthrough", *_X264, *_GOP],
    "open_gop.mp4": [*_src(frames=40), *_X264, *_GOP, "-x264-params", "open-gop=1:b-pyramid=normal"],
    "h264_10bit.mp4": [*_src(), *_X264, *_GOP, "-pix_fmt", "yuv420p10le"],
    "yuv444.mp4": [*_src(), *_X264, *_GOP, "-pix_fmt", "yuv444p"],
    "gray.mp4": [*_src(), *_X264, *_GOP, "-pix_fmt", "gray"],
    "bt709.mp4": [
        *_src(),
        "-vf",
        "scale=out_color_matrix=bt709:out_range=tv",
        *_X264,
        *_GOP,
        "-colorspace",
        "bt709",
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
    ],
    "odd_size.mkv": [*_src("36x20"), "-vf", "format=rgb24,crop=35:19:0:0", "-c:v", "ffv1", "-pix_fmt", "yuv420p"],
    "tiny.mp4": [*_src("16x16", 20), *_X264, *_GOP],
    "animated.gif": [*_src(frames=20), "-c:v", "gif"],
    "mjpeg.avi": [*_src(frames=20), "-c:v", "mjpeg", "-q:v", "3"],
    "fps_absurd.mp4": [*_src(rate="1000000"), *_X264, *_GOP],
    "fps_tiny.mkv": [*_src(frames=20, rate="1/100"), *_X264, *_GOP],
    "raw.h264": [*_src(), *_X264, *_GOP, "-f", "h264"],
    "hevc_open_gop.mp4": [*_src(frames=40), *_X265, "-tag:v", "hvc1"],
    "hevc_10bit.mkv": [*_src(), *_X265, "-pix_fmt", "yuv420p10le"],
    "prores.mov": [*_src(frames=16), "-c:v", "prores_ks", "-profile:v", "2"],
}
_NEEDS = {"hevc_open_gop.mp4": "libx265", "hevc_10bit.mkv": "libx265", "prores.mov": "prores_ks"}

# plain.mp4 with a display matrix (demuxer options, no re-encode): name -> options.
_TURNED = {
    "rot90.mp4": ["-display_rotation", "90"],
    "rot180.mp4": ["-display_rotation", "180"],
    "rot270.mp4": ["-display_rotation", "270"],
    "hflip.mp4": ["-display_hflip"],
    "vflip.mp4": ["-display_vflip"],
    "rot90_hflip.mp4": ["-display_rotation", "90", "-display_hflip"],
    "rot270_hflip.mp4": ["-display_rotation", "270", "-display_hflip"],
    "rot45.mp4": ["-display_rotation", "45"],
}


def _makers(ffmpeg: str, tmp: Path) -> Dict[str, Callable[[Path], None]]:
    plain = tmp / "plain.mp4"  # made first: the turned files and the edit list copy it
    m: Dict[str, Callable[[Path], None]] = {}
    for name, args in _ENCODED.items():
        if name not in _NEEDS or _has_encoder(ffmpeg, _NEEDS[name]):
            m[name] = lambda o, args=args: _run(ffmpeg, [*args, str(o)])
    for name, flags in _TURNED.items():
        m[name] = lambda o, flags=flags: _rotated(ffmpeg, o, plain, flags)
    m["edit_list.mp4"] = lambda o: _run(ffmpeg, ["-ss", "0.3", "-i", str(plain), "-c", "copy", str(o)])
    m["leading_nonkey.mp4"] = lambda o: _leading_nonkey(ffmpeg, o, tmp)
    m["fps_zero.avi"] = lambda o: _zero_fps_avi(ffmpeg, o)
    return m


def make_quirky_videos(out_dir, ffmpeg: str) -> Dict[str, Path]:
    """Write every kind in :data:`QUIRKS` that this ffmpeg can encode; ``{name: path}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, make in _makers(ffmpeg, out).items():
        path = out / name
        make(path)
        paths[name] = path
    return paths


def ffmpeg_frames(ffmpeg: str, path, autorotate: bool = True) -> Tuple[np.ndarray, int]:
    """``(frames uint8 [N, H, W, 3], index of the input stream ffmpeg chose)``: ffmpeg's decode."""
    args = [ffmpeg, "-nostdin", "-hide_banner", "-v", "info"]
    if not autorotate:
        args.append("-noautorotate")
    args += [
        "-i",
        str(path),
        "-an",
        "-sn",
        "-dn",
        "-fps_mode",
        "passthrough",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
    ]
    p = subprocess.run(args, capture_output=True, timeout=120)
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode:
        raise RuntimeError(f"ffmpeg cannot decode {path}: {err.strip()[-500:]}")
    stream = int(re.search(r"Stream #0:(\d+)(?:\[\w+\])? -> #0:0", err).group(1))
    out = err[err.index("Output #0") :]
    w, h = map(int, re.search(r"Video: rawvideo.*?, (\d+)x(\d+)", out).groups())
    data = np.frombuffer(p.stdout, np.uint8)
    if data.size % (w * h * 3):
        raise RuntimeError(f"ffmpeg output of {path} is not a whole number of {w}x{h} frames")
    return data.reshape(-1, h, w, 3), stream
