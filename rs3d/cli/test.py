"""``rs3d-test``: the multi-view test of a trained model on every video of ``TEST.SPLIT``.csv.

    rs3d-test --cfg configs/k400_rs50.yaml OUTPUT_DIR out/rs50          # newest checkpoint there
    rs3d-test --cfg configs/k400_rs50.yaml TEST.CHECKPOINT_FILE_PATH ckpt.pyth
    torchrun --nproc_per_node 8 -m rs3d.cli.test --cfg configs/k400_rs50.yaml OUTPUT_DIR out/rs50

(``python tools/test_net.py ...``, PySlowFast's name, is the same command.) Metrics go to OUTPUT_DIR and, as JSON, to
stdout; videos that could not be decoded are listed as ``failed: PATH: REASON``. A mistake in the
command, the config, the data list or the checkpoint prints one line ``error: ...``, exit status 2.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Optional, Sequence

from rs3d.checkpoint import load_model_config
from rs3d.config import check_data_dir
from rs3d.engine.logs import setup_logging
from rs3d.evaluation import run_test

from . import run_tool
from .args import command_parser, parse_command
from .signals import terminate_cleanly

EXAMPLES = (
    "rs3d-test --cfg configs/k400_rs50.yaml OUTPUT_DIR out/rs50",
    "rs3d-test --cfg configs/k400_rs50.yaml TEST.CHECKPOINT_FILE_PATH ckpt.pyth",
)


def build_parser():
    return command_parser(
        "rs3d-test",
        __doc__,
        examples=EXAMPLES,
        docs="docs/evaluation.md",
        exit_statuses={
            1: "the model gives NaN/inf scores (diverged or damaged weights); nothing scored",
            143: "stopped by SIGTERM (loader workers ended, nothing written)",
        },
    )


def _run(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_command(build_parser(), argv)
    setup_logging()
    cfg = load_model_config(args.cfg_file, args.opts)
    check_data_dir(cfg, [cfg.TEST.SPLIT])
    with terminate_cleanly():
        metrics = run_test(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        summary = {k: v for k, v in metrics.items() if k != "failed"}
        print(json.dumps(summary, indent=2))
        for f in metrics["failed"]:
            print(f"failed: {f['path']}: {f['reason']}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
