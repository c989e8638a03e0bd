"""``rs3d-visualize``: pictures of what a trained model does.

    rs3d-visualize gradcam --cfg configs/k400_rs50.yaml --gif video.mp4 \\
        TEST.CHECKPOINT_FILE_PATH out/rs50/checkpoints/checkpoint_best.pyth
    rs3d-visualize gradcam --cfg CFG --layer res4 --class "playing guitar" video.mp4 ...
    rs3d-visualize confusion out/rs50            # from out/rs50/test_predictions.csv

(``python tools/visualize.py ...`` is the same command.)

``gradcam``: Grad-CAM of the test's centre clip and crop of each video on ``--layer`` (res5 by
default) for the predicted class or ``--class`` (a name from classes.txt or an index). Under
``--out`` (default OUTPUT_DIR/gradcam): ``NAME.gradcam.mp4`` (and ``.gif`` with ``--gif``), the clip
with the map over it; ``NAME.gradcam.png``, a strip of frames; ``NAME.gradcam.json``, the class and
scores. Videos and ``KEY VALUE`` overrides follow the options as for ``rs3d-predict``.

``confusion``: the confusion matrix and per-class accuracy of a test run, as one PNG, from the
run's ``test_predictions.csv`` (a run folder or the file); written beside it as
``test_confusion_matrix.png`` unless ``--out`` says otherwise.

Exit status: 0 done, 1 some video could not be decoded (listed, the others done), 2 a bad
command, config, checkpoint, layer, class or missing video/file.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional, Sequence

from rs3d.config import load_config
from rs3d.errors import ConfigError, DataError
from rs3d.evaluation.confusion import confusion_from_predictions, plot_confusion_and_accuracy
from rs3d.inference.gradcam import gradcam_videos

from . import run_tool
from .args import expand_videos, split_at_dashdash, split_videos_and_overrides


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rs3d-visualize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="{gradcam,confusion}")
    g = sub.add_parser("gradcam", help="Grad-CAM of a video's centre clip")
    g.add_argument("--cfg", dest="cfg_file", default="", help="YAML config of the model (may use _BASE_)")
    g.add_argument("--layer", default="res5", help="res2..res5 or a module name (e.g. layer3.1)")
    g.add_argument("--class", dest="class_spec", default=None, help="class name or index (default: predicted)")
    g.add_argument("--out", default="", help="output folder (default OUTPUT_DIR/gradcam)")
    g.add_argument("--gif", action="store_true", help="also write a GIF")
    g.add_argument("--no-mp4", action="store_true", help="do not write the MP4")
    g.add_argument("--fps", type=int, default=8, help="frame rate of the MP4/GIF")
    g.add_argument("rest", nargs=argparse.REMAINDER, help="VIDEO|FOLDER ... [KEY VALUE ...] [-- VIDEO ...]")
    c = sub.add_parser("confusion", help="confusion matrix and per-class accuracy of a test run")
    c.add_argument("run", help="a test run's OUTPUT_DIR or its test_predictions.csv")
    c.add_argument("--out", default="", help="PNG to write (default: test_confusion_matrix.png beside the CSV)")
    c.add_argument("--classes", default="", help="classes.txt with the names (default: the CSV's names)")
    c.add_argument("--num-classes", type=int, default=0, help="classes of the model (default: from the CSV)")
    return p


def _gradcam(args, after: List[str]) -> int:
    tokens, opts = split_videos_and_overrides(list(args.rest) + ["--"] + after)
    if not tokens:
        raise ConfigError("no video given (usage: rs3d-visualize gradcam --cfg CONFIG VIDEO ... [KEY VALUE ...])")
    videos = expand_videos(tokens)
    if args.fps < 1:
        raise ConfigError(f"--fps must be >= 1, got {args.fps}")
    cfg = load_config(args.cfg_file, opts)
    records = gradcam_videos(cfg, videos, layer=args.layer, class_spec=args.class_spec, out_dir=args.out,
                             fps=args.fps, mp4=not args.no_mp4, gif=args.gif)
    for r in records:
        if r["error"]:
            print(f"{r['video']}\n  error: {r['error']}")
        else:
            print(f"{r['video']}\n  {r['score']:.4f}  {r['name']}  -> {', '.join(r['files'].values())}")
    return 1 if any(r["error"] for r in records) else 0


def _confusion(args) -> int:
    csv_path = os.path.join(args.run, "test_predictions.csv") if os.path.isdir(args.run) else args.run
    if not os.path.isfile(csv_path):
        raise DataError(f"{csv_path}: not found (run the test first: rs3d-test)")
    conf, names, failed = confusion_from_predictions(csv_path, args.num_classes or None)
    if args.classes:
        if not os.path.isfile(args.classes):
            raise DataError(f"{args.classes}: not found")
        with open(args.classes, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) != conf.shape[0]:
            raise DataError(f"{args.classes}: {len(names)} names for {conf.shape[0]} classes (--num-classes)")
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(csv_path)), "test_confusion_matrix.png")
    plot_confusion_and_accuracy(conf, out, names, failed)
    print(json.dumps({"png": out, "classes": int(conf.shape[0]), "videos": int(conf.sum()),
                      "failed": failed}))
    return 0


def _run(argv: Optional[Sequence[str]] = None) -> int:
    argv, after = split_at_dashdash(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.command == "gradcam":
        return _gradcam(args, after)
    if after:
        raise ConfigError("'--' is only for the videos of gradcam")
    return _confusion(args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
