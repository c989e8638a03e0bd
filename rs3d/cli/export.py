"""``rs3d-export``: a trained checkpoint as a folder other tools load (the Hugging Face layout).

    rs3d-export --out exported TEST.CHECKPOINT_FILE_PATH model.pyth
    rs3d-export --out exported --torchscript --onnx TEST.CHECKPOINT_FILE_PATH model.pyth

Writes ``config.json`` (architecture, constructor arguments, class names, preprocessing: frames,
sampling, crop size, pixel mean/std; single- or multi-label scoring), ``model.safetensors`` (the
weights the test uses: EMA unless ``TEST.USE_EMA False``) and ``classes.txt``. Load it with
``rs3d.load_model("exported")``, ``rs3d.create_model(ARCH, pretrained="exported")`` (a folder or
an http(s) URL to one) or ``torch.hub.load(REPO, ARCH, source="local", pretrained="exported")``.
``--torchscript`` / ``--onnx`` also write ``model.torchscript.pt`` / ``model.onnx`` carrying the
same config (TorchScript extra file / ONNX metadata entry ``rs3d_config``).
The checkpoint carries its config (``--cfg`` only to override it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

import torch

from rs3d import __version__
from rs3d.checkpoint import load_model_config
from rs3d.checkpoint.metadata import clip_spec
from rs3d.errors import ConfigError
from rs3d.inference.model import load_model
from rs3d.models.pretrained import export_onnx, export_torchscript, pretrained_config, save_pretrained

from . import run_tool
from .args import command_parser, parse_command

EXAMPLES = (
    "rs3d-export --out exported TEST.CHECKPOINT_FILE_PATH model.pyth",
    "rs3d-export --out exported --torchscript --onnx TEST.CHECKPOINT_FILE_PATH model.pyth",
)


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("rs3d-export", __doc__, examples=EXAMPLES, docs="docs/inference.md")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--torchscript", action="store_true", help="also write model.torchscript.pt")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx (needs onnx and onnxscript)")
    return p


def export_checkpoint(cfg, out: str, torchscript: bool = False, onnx: bool = False) -> dict:
    """Write ``out`` from ``cfg``'s model and test weights; returns the files written."""
    loaded = load_model(cfg, torch.device("cpu"))
    extra = dict(
        rs3d_version=__version__,
        multi_label=loaded.multi_label,
        activation=loaded.activation,
        ensemble_method=cfg.TEST.ENSEMBLE_METHOD,
        weights=loaded.weights,
        data_manifest=loaded.metadata.get("data_manifest"),
    )
    preprocessing = clip_spec(cfg)
    files = save_pretrained(loaded.model, out, loaded.class_names, preprocessing, **extra)
    config = pretrained_config(loaded.model, loaded.class_names, preprocessing, **extra)
    if torchscript:
        files["torchscript"] = export_torchscript(loaded.model, os.path.join(out, "model.torchscript.pt"), config)
    if onnx:
        d = cfg.DATA
        example = torch.zeros(1, 3, d.NUM_FRAMES, d.TEST_CROP_SIZE, d.TEST_CROP_SIZE)
        files["onnx"] = export_onnx(loaded.model, os.path.join(out, "model.onnx"), config, example)
    return files


def _run(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_command(build_parser(), argv)
    if not args.out:
        raise ConfigError("--out is empty")
    cfg = load_model_config(args.cfg_file, args.opts)
    print(json.dumps(export_checkpoint(cfg, args.out, args.torchscript, args.onnx), indent=2))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
