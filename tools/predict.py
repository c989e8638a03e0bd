#!/usr/bin/env python
"""Top-5 classes of video files with the test's view protocol (30 views by default).

    python tools/predict.py --cfg configs/k400_rs50.yaml video1.mp4 video2.mp4 \\
        TEST.CHECKPOINT_FILE_PATH out/rs50/checkpoints/checkpoint_best.pyth

Config overrides (``KEY VALUE``) may follow the videos or ``--opts``; a token like ``TEST.X`` that
is not an existing file starts an override. Class names come from ``classes.txt`` in
DATA.PATH_TO_DATA_DIR, or the shipped Kinetics-400 list for 400-class models.
Exit status: 0 all predicted, 1 some video could not be decoded, 2 bad command/config/checkpoint.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$")


def split_videos_and_overrides(tokens):
    """``[v1, v2, KEY, VALUE, ...]`` -> ``([v1, v2], [KEY, VALUE, ...])``."""
    videos, opts, i = [], [], 0
    while i < len(tokens):
        t = tokens[i]
        if t == "--opts":
            opts += tokens[i + 1:]
            break
        if _KEY.match(t) and not os.path.exists(t):
            opts += tokens[i:i + 2]
            i += 2
            continue
        videos.append(t)
        i += 1
    return videos, opts


def main(argv=None) -> int:
    from rs3d.config import ConfigError, load_config
    from rs3d.data.csv import DataError
    from rs3d.engine.checkpoint import CheckpointError
    from rs3d.engine.evaluate import EvaluationError
    from rs3d.engine.predict import format_predictions, predict
    from rs3d.models.convert import CheckpointError as ConvertError

    p = argparse.ArgumentParser(description=__doc__.split("\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", dest="cfg_file", default="", help="YAML config of the model (may use _BASE_)")
    p.add_argument("--topk", type=int, default=5, help="classes to print per video")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of text")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="VIDEO [VIDEO ...] [KEY VALUE ...]")
    args = p.parse_args(argv)
    videos, opts = split_videos_and_overrides(args.rest)
    if not videos:
        print("error: no video given (usage: predict.py --cfg CONFIG VIDEO [VIDEO ...])", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.cfg_file, opts)
        preds = predict(cfg, videos, k=args.topk)
    except (ConfigError, DataError, CheckpointError, ConvertError, EvaluationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(preds, indent=2) if args.json else format_predictions(preds))
    return 1 if any(p["error"] for p in preds) else 0


if __name__ == "__main__":
    sys.exit(main())
