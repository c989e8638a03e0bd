"""``rs3d-train``: train a model described by a config.

    rs3d-train --cfg configs/k400_rs50.yaml DATA.PATH_TO_DATA_DIR /data/k400 OUTPUT_DIR out/rs50
    torchrun --nproc_per_node 8 -m rs3d.cli.train --cfg configs/k400_rs50.yaml OUTPUT_DIR out/rs50

(``python tools/train_net.py ...``, PySlowFast's name, is the same command.) Multi-node: add ``--nnodes N --node_rank R
--rdzv_endpoint HOST:PORT`` to torchrun on each machine. A mistake in the command, the config or the
data lists, or an OUTPUT_DIR in use by another run or holding another run's checkpoints, prints one line
``error: ...`` and exits with status 2; a NaN/inf loss or a file that cannot be written exits with status 1.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from rs3d.config import check_data_dir, load_config
from rs3d.engine import distributed
from rs3d.engine.train import train

from . import run_tool
from .args import command_parser, parse_command

EXAMPLES = (
    "rs3d-train --cfg configs/k400_rs50.yaml DATA.PATH_TO_DATA_DIR /data/k400 OUTPUT_DIR out/rs50",
    "torchrun --nproc_per_node 8 -m rs3d.cli.train --cfg configs/k400_rs50.yaml OUTPUT_DIR out/rs50",
)


def build_parser():
    return command_parser(
        "rs3d-train",
        __doc__,
        examples=EXAMPLES,
        docs="docs/training.md",
        exit_statuses={
            1: "the run failed on its own (a NaN/inf training or validation loss, "
            "or a file it cannot write: disk full, read-only, permission)",
            75: "stopped by a signal after a checkpoint (resume by running it again)",
        },
    )


def _run(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_command(build_parser(), argv)
    cfg = load_config(args.cfg_file, args.opts)
    # The data folder is checked before any process group or output folder exists.
    check_data_dir(cfg, ("train", "val") if cfg.TRAIN.EVAL_PERIOD > 0 else ("train",))
    try:
        train(cfg)
    finally:
        distributed.cleanup()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
