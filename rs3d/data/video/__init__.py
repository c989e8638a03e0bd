"""Video files to frames, exactly as ffmpeg shows them; :mod:`rs3d.data.decode` dispatches.

    sampling.py           which frame indices a clip uses (pure functions)
    container.py          PyAV's view of a file: the stream ffmpeg picks, the packet index
    orientation.py        the display matrix as a transpose and flips, applied to frames
    sequential.py         every frame in one pass, as shown (readers of whole videos: timeline, re-encode)
    selection.py          requested indices -> distinct frames to decode, and back
    pyav_reader.py        the exact reader (seeks where the index proves it safe)
    crop_scale.py         a training crop cut and scaled by FFmpeg while converting to RGB
    decord_reader.py      decord, for the files the probe shows it reads exactly
    torchcodec_reader.py  torchcodec, likewise
    probe.py              per-file facts deciding that (remembered); backend availability
    guard.py              a time limit on one decode; one-line decoder messages

Nothing here imports the rest of rs3d but :mod:`rs3d.errors`.
"""
