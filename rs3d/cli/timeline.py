"""``rs3d-timeline``: class scores over long videos, one clip per sliding window.

    rs3d-timeline --out tl TEST.CHECKPOINT_FILE_PATH model.pyth -- long.mp4
    rs3d-timeline --window 2.56 --stride 1 match.mp4 \\
        TEST.CHECKPOINT_FILE_PATH out/rs50/checkpoints/checkpoint_best.pyth

(``python -m rs3d.cli.timeline ...`` is the same command; another command gains the same mode
with ``rs3d.cli.args.add_timeline_options`` and :func:`run_timelines`.) The checkpoint carries its
config (``--cfg`` only to override it). Every window of ``--window`` seconds (default: the span of
the clips the model was trained on, ``DATA.NUM_FRAMES x DATA.SAMPLING_RATE / DATA.TARGET_FPS``; a
window that spaces the frames more than ~25% differently is warned about), moved by ``--stride``
seconds (half a window by default), gives one clip of ``DATA.NUM_FRAMES`` frames spread evenly
over it, scored by the model (softmax, or a sigmoid per class on multi-label data); the scores are smoothed
over ``--smooth`` windows. Per video, under ``--out`` (default OUTPUT_DIR/timeline):
``NAME.timeline.json`` (per-window top classes, segments of one top class, the top segments in
time order, ``warning``),
``NAME.timeline.csv`` (every window's smoothed score of every class) and ``NAME.timeline.png``
(the top classes over time, by name). The video is read in one pass and only the frames of the
windows in flight are held, so an hour-long video needs no more memory than a short one.

Videos and ``KEY VALUE`` overrides follow the options as for ``rs3d-predict``. Exit status: 0 all
done, 1 some video could not be decoded (listed, the others done), 2 a bad command, config,
checkpoint, missing video or a window longer than the video.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from rs3d.checkpoint import load_model_config
from rs3d.engine.logs import setup_logging
from rs3d.errors import ConfigError
from rs3d.inference.timeline import format_summary, run_timeline

from . import run_tool
from .args import add_timeline_options, command_parser, expand_videos, parse_command

EXAMPLES = (
    "rs3d-timeline --out tl TEST.CHECKPOINT_FILE_PATH model.pyth -- long.mp4",
    "rs3d-timeline --window 2.56 --stride 1 match.mp4 "
    "TEST.CHECKPOINT_FILE_PATH out/rs50/checkpoints/checkpoint_best.pyth",
)


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "rs3d-timeline",
        __doc__,
        examples=EXAMPLES,
        docs="docs/inference.md",
        videos=True,
        exit_statuses={1: "some video could not be decoded (listed; the others done)"},
    )
    p.add_argument("--topk", type=int, default=5, help="classes listed per window in the JSON")
    p.add_argument("--json", action="store_true", help="print the summaries as JSON")
    add_timeline_options(p, window_required=False)
    return p


def run_timelines(cfg, videos: Sequence[str], args, as_json: bool = False) -> int:
    """Run, print, and return the exit status (1 if some video failed); shared with rs3d-predict."""
    summaries = run_timeline(
        cfg,
        videos,
        window_s=args.window,
        stride_s=args.stride,
        smooth_width=args.smooth,
        out_dir=args.out,
        topk=getattr(args, "topk", 5),
        plot_classes=args.plot_classes,
        num_crops=args.crops,
    )
    if as_json:
        print(json.dumps([{k: v for k, v in s.items() if k != "windows"} for s in summaries], indent=2))
    else:
        for s in summaries:
            print(f"{s['video']}\n  error: {s['error']}" if s["error"] else format_summary(s))
            if not s["error"]:
                print(f"  -> {s['files']['json']}")
    return 1 if any(s["error"] for s in summaries) else 0


def _run(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_command(build_parser(), argv, videos=True)
    tokens, opts = args.videos, args.opts
    if not tokens:
        raise ConfigError(
            "no video given (usage: rs3d-timeline [--window SEC] VIDEO ... "
            "TEST.CHECKPOINT_FILE_PATH CKPT [KEY VALUE ...])"
        )
    videos = expand_videos(tokens)
    setup_logging(stream=sys.stderr)  # stdout carries the summaries (--json)
    cfg = load_model_config(args.cfg_file, opts)
    return run_timelines(cfg, videos, args, as_json=args.json)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
