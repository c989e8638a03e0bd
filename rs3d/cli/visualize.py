"""``rs3d-visualize``: pictures of what a trained model does.

    rs3d-visualize gradcam --gif TEST.CHECKPOINT_FILE_PATH model.pyth -- video.mp4
    rs3d-visualize gradcam --layer res4 --class "playing guitar" video.mp4 \\
        TEST.CHECKPOINT_FILE_PATH model.pyth
    rs3d-visualize confusion out/rs50            # from out/rs50/test_predictions.csv



``gradcam``: Grad-CAM of the test's centre clip and crop of each video on ``--layer`` (default
``auto``: the deepest stage whose map is at least 7x7 at the input size, else the largest; the
choice is printed) for the predicted class or ``--class`` (a class name or an index). The
checkpoint carries its config and class names (``--cfg`` only to override them). Under
``--out`` (default OUTPUT_DIR/gradcam): ``NAME.gradcam.mp4`` (and ``.gif`` with ``--gif``), the clip
with the map over it; ``NAME.gradcam.png``, a strip of frames with a colour bar;
``NAME.gradcam.json``, the class, scores and layer. Videos and ``KEY VALUE`` overrides follow the
options as for ``rs3d-predict``.

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
from typing import Optional, Sequence

from rs3d.checkpoint import load_model_config
from rs3d.errors import ConfigError, DataError
from rs3d.evaluation.confusion import confusion_from_predictions, plot_confusion_and_accuracy
from rs3d.inference.gradcam import gradcam_videos

from . import run_tool
from .args import OVERRIDES_HELP, add_shared_arguments, command_parser, expand_videos, parse_subcommand

EXAMPLES = (
    "rs3d-visualize gradcam --gif TEST.CHECKPOINT_FILE_PATH model.pyth -- video.mp4",
    "rs3d-visualize confusion out/rs50",
)


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """The command's parser and its subcommands' parsers (each parsed by ``parse_command``)."""
    p = command_parser(
        "rs3d-visualize",
        __doc__,
        config=False,
        overrides=False,
        examples=EXAMPLES,
        docs="docs/inference.md",
        exit_statuses={1: "some video could not be decoded (listed; the others done)"},
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{gradcam,confusion}")
    g = sub.add_parser(
        "gradcam",
        help="Grad-CAM of a video's centre clip",
        epilog=f"example: {EXAMPLES[0]}\n{OVERRIDES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_shared_arguments(g, videos=True)
    g.add_argument(
        "--layer",
        default="auto",
        help="auto (default: the deepest stage with a >= 7x7 map at "
        "the input size, else the largest; the choice is printed), res2..res5 or a module name",
    )
    g.add_argument("--class", dest="class_spec", default=None, help="class name or index (default: predicted)")
    g.add_argument("--out", default="", help="output folder (default OUTPUT_DIR/gradcam)")
    g.add_argument("--gif", action="store_true", help="also write a GIF")
    g.add_argument("--no-mp4", action="store_true", help="do not write the MP4")
    g.add_argument("--fps", type=int, default=8, help="frame rate of the MP4/GIF")
    c = sub.add_parser(
        "confusion", help="confusion matrix and per-class accuracy of a test run", epilog=f"example: {EXAMPLES[1]}"
    )
    c.add_argument("run", help="a test run's OUTPUT_DIR or its test_predictions.csv")
    c.add_argument("--out", default="", help="PNG to write (default: test_confusion_matrix.png beside the CSV)")
    c.add_argument("--classes", default="", help="classes.txt with the names (default: the CSV's names)")
    c.add_argument("--num-classes", type=int, default=0, help="classes of the model (default: from the CSV)")
    return p, {"gradcam": g, "confusion": c}


def _gradcam(args) -> int:
    tokens, opts = args.videos, args.opts
    if not tokens:
        raise ConfigError("no video given (usage: rs3d-visualize gradcam --cfg CONFIG VIDEO ... [KEY VALUE ...])")
    videos = expand_videos(tokens)
    if args.fps < 1:
        raise ConfigError(f"--fps must be >= 1, got {args.fps}")
    cfg = load_model_config(args.cfg_file, opts)
    records = gradcam_videos(
        cfg,
        videos,
        layer=args.layer,
        class_spec=args.class_spec,
        out_dir=args.out,
        fps=args.fps,
        mp4=not args.no_mp4,
        gif=args.gif,
    )
    for r in records:
        if r["error"]:
            print(f"{r['video']}\n  error: {r['error']}")
        else:
            print(
                f"{r['video']}\n  {r['score']:.4f}  {r['name']}  layer {r['layer_choice']}\n"
                f"  -> {', '.join(r['files'].values())}"
            )
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
    print(json.dumps({"png": out, "classes": int(conf.shape[0]), "videos": int(conf.sum()), "failed": failed}))
    return 0


def _run(argv: Optional[Sequence[str]] = None) -> int:
    parsed = parse_subcommand(*build_parser(), argv, videos=("gradcam",))
    if parsed is None:
        return 2
    name, args = parsed
    return _gradcam(args) if name == "gradcam" else _confusion(args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
