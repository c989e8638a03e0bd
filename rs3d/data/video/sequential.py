"""Every frame of a video in one sequential pass, as ffmpeg shows it: for readers of whole videos.

A reader of a whole long video (the timeline, a re-encode) decodes it once from the start rather
than seeking clip by clip. It reads the stream ffmpeg picks (:func:`open_video`), counts frames as
a full decode does (frame ``i`` is the ``i``-th decoded frame, the indexing of ``read_frames``),
and turns every frame by the display matrix as ffmpeg does (``autorotate``), so that a phone
video comes out upright here as it does from ``read_frames``. Frames are converted only when the
caller asks (:meth:`FrameStream.rgb`), one single-threaded reformatter per stream (see
``pyav_reader._Got`` for why not the frame's own).
"""

from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np
import torch

from ...errors import DecodeError
from .container import frame_rate, open_video
from .file_kind import unreadable_reason
from .guard import short
from .orientation import UPRIGHT, Orientation, display_matrix, orientation_of


class FrameStream:
    """``for i, frame in FrameStream(path)``: decoded PyAV frames in order; :meth:`rgb` shows one.

    Opening fails with a :class:`DecodeError` naming ``path``. A packet that does not decode ends
    the iteration early with :attr:`warning` set (the frames before it are kept, as ``read_frames``
    keeps them); :attr:`decoded` counts the frames yielded.
    """

    def __init__(self, path: str, autorotate: bool = True, threads: int = 0):
        reason = unreadable_reason(path)  # before opening: a FIFO would block the reader
        if reason:
            raise DecodeError(f"{path}: {reason}")
        try:
            self.container, self.stream = open_video(path, threads)
        except DecodeError as e:
            raise DecodeError(f"{path}: {e}") from None
        self.path = path
        self.fps = frame_rate(self.stream)
        self.header_frames = int(self.stream.frames or 0)  # what the container claims (may be 0)
        self.autorotate = autorotate
        self.orientation: Optional[Orientation] = None if autorotate else UPRIGHT
        self.decoded = 0
        self.warning = ""
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()

    def __iter__(self) -> Iterator[Tuple[int, object]]:
        frames = self.container.decode(self.stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                return
            except Exception as e:  # a broken packet: what decoded so far stands
                self.warning = f"decoding stopped at frame {self.decoded}: {short(e)}"
                return
            if self.orientation is None:
                try:
                    self.orientation = orientation_of(display_matrix(frame))
                except DecodeError as e:
                    raise DecodeError(f"{self.path}: {e}") from None
            self.decoded += 1
            yield self.decoded - 1, frame

    def shown_size(self, width: int, height: int) -> Tuple[int, int]:
        """``(width, height)`` of a stored frame as shown (known after the first frame)."""
        return (height, width) if self.orientation is not None and self.orientation.transpose else (width, height)

    def rgb(self, frame) -> np.ndarray:
        """``frame`` as uint8 ``[H, W, 3]``, turned as ffmpeg shows it."""
        try:
            rgb = self._reformatter.reformat(frame, format="rgb24", threads=1).to_ndarray()
        except TypeError:  # PyAV before the threads option
            rgb = self._reformatter.reformat(frame, format="rgb24").to_ndarray()
        turn = self.orientation or UPRIGHT
        return rgb if turn.identity else turn.apply(torch.from_numpy(rgb)[None])[0].numpy()

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "FrameStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
