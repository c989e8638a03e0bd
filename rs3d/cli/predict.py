"""``rs3d-predict``: top-k classes of video files with the test's view protocol (30 views by default).

    rs3d-predict --cfg configs/k400_rs50.yaml video1.mp4 clips/ \\
        TEST.CHECKPOINT_FILE_PATH out/rs50/checkpoints/checkpoint_best.pyth
    rs3d-predict --cfg configs/k400_rs50.yaml TEST.CHECKPOINT_FILE_PATH ckpt.pyth -- GOPR0001.MP4
    rs3d-predict --cfg configs/k400_rs50.yaml --window 4 --stride 1 long_video.mp4 TEST.CHECKPOINT_FILE_PATH ckpt.pyth

With ``--window SEC`` (and ``--stride SEC``, ``--smooth N``) a long video gets a timeline instead of
one label: scores per window, smoothed, written as JSON/CSV and drawn as a PNG, with the top
segments printed (see ``rs3d-timeline``, the same mode as its own command).

After the options come videos and
``KEY VALUE`` config overrides, told apart so that no file name is ever read as a key:

- every token after ``--`` is a video; every token after ``--opts`` is an override;
- a path that exists is a video, whatever its name looks like; a folder stands for every video file
  under it, subfolders included (sorted by path; a folder with none is refused);
- any other token shaped like a config key (``TEST.USE_EMA``) starts an override and takes the next
  token as its value; anything else is a video.

(The rules of every command that takes videos: ``rs3d.cli.args``.)

A video that does not exist is a mistake in the command: every missing one is named in one line and
the tool exits with status 2 before loading the model. A video that exists but cannot be decoded is
reported under its path and the others are still predicted (exit status 1).
Class names come from ``classes.txt`` in DATA.PATH_TO_DATA_DIR, or the shipped Kinetics-400 list
for 400-class models. Exit status: 0 all predicted, 1 some video could not be decoded or the model
gives NaN/inf scores, 2 a bad command, config, checkpoint or missing video.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from rs3d.checkpoint import load_model_config
from rs3d.errors import ConfigError
from rs3d.inference.predict import format_predictions, predict

from . import run_tool
from .args import add_timeline_options, command_parser, expand_videos, parse_command, timeline_requested
from .timeline import run_timelines

EXAMPLES = (
    "rs3d-predict --cfg configs/k400_rs50.yaml video1.mp4 clips/ TEST.CHECKPOINT_FILE_PATH ckpt.pyth",
    "rs3d-predict --cfg configs/k400_rs50.yaml TEST.CHECKPOINT_FILE_PATH ckpt.pyth -- GOPR0001.MP4",
    "rs3d-predict --cfg configs/k400_rs50.yaml --window 4 --stride 1 long_video.mp4 "
    "TEST.CHECKPOINT_FILE_PATH ckpt.pyth",
)


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "rs3d-predict",
        __doc__,
        examples=EXAMPLES,
        docs="docs/evaluation.md, docs/inference.md",
        videos=True,
        exit_statuses={
            1: "some video could not be decoded (listed; the others done), or the "
            "model gives NaN/inf scores (nothing predicted)"
        },
    )
    p.add_argument("--topk", type=int, default=5, help="classes to print per video")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of text")
    add_timeline_options(p, window_required=False)  # --window SEC: a timeline instead of one label
    return p


def _run(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_command(build_parser(), argv, videos=True)
    tokens, opts = args.videos, args.opts
    if not tokens:
        raise ConfigError("no video given (usage: rs3d-predict --cfg CONFIG VIDEO|FOLDER ... [KEY VALUE ...])")
    videos = expand_videos(tokens)
    cfg = load_model_config(args.cfg_file, opts)
    if timeline_requested(args):
        return run_timelines(cfg, videos, args, as_json=args.json)
    preds = predict(cfg, videos, k=args.topk)
    print(json.dumps(preds, indent=2) if args.json else format_predictions(preds))
    return 1 if any(p["error"] for p in preds) else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
