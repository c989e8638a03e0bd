"""tools/timeline_accuracy.py scores each window against the class on screen at its centre, and
counts a window that straddles a cut only in the all-windows share."""

from helpers import load_tool

tool = load_tool("timeline_accuracy")


def window(start, end, top_class, raw_class=None):
    top = [{"class": top_class}]
    raw = [{"class": top_class if raw_class is None else raw_class}]
    return {"start_s": start, "end_s": end, "center_s": (start + end) / 2, "top": top, "top_raw": raw}


def test_windows_are_scored_at_their_centre_and_cuts_are_kept_apart():
    labels = [2, 0]  # 0-4 s class 2, 4-8 s class 0
    windows = [
        window(0.0, 1.5, 2),  # inside the first clip, right
        window(3.0, 4.5, 2),  # across the cut, centre 3.75 s -> class 2: right, not "inside"
        window(3.6, 5.1, 2),  # across the cut, centre 4.35 s -> class 0: wrong
        window(4.0, 5.5, 0, raw_class=2),  # inside the second clip (starts at the cut)
        window(6.5, 8.0, 1),  # ends exactly at the video's end, inside, wrong
    ]
    smoothed = tool.shares(windows, labels, 4.0, "top")
    assert smoothed["all"] == [True, True, False, True, False]
    assert smoothed["inside"] == [True, True, False]
    raw = tool.shares(windows, labels, 4.0, "top_raw")
    assert raw["inside"] == [True, False, False]
