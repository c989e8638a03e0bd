"""Does a trained model's Grad-CAM fall on the moving object? Measured on synthetic clips whose
object box is known (``rs3d.data.synthetic.render_video(..., boxes=[])``).

    python tools/gradcam_localisation.py output/demo/checkpoints/checkpoint_epoch_00100.pyth --videos 40

For each of ``--videos`` new videos of the demo's motion classes (square, rendered at the model's
test crop size, as the demo's data: clutter 0.3, object half-size 0.2-0.28 of the side), one clip
is sampled as training sampled it (the checkpoint's frames and ``TARGET_FPS``), and the share of
the Grad-CAM map of each layer (``auto`` and res2..res5) inside the object's boxes is printed,
beside the share a map spread evenly would get (the boxes' area). A box's part that wraps around
the frame edge is not counted, so the shares are lower bounds. A developer check, not a command.
"""

import argparse
import json
import sys

import numpy as np
import torch

from rs3d.checkpoint import load_model_config
from rs3d.data import to_model_input
from rs3d.data.synthetic import FPS, render_video
from rs3d.inference.gradcam import AUTO_LAYER, choose_layer, grad_cam, mass_in_boxes
from rs3d.inference.model import load_model


def box_area_share(boxes, size: int) -> float:
    """Mean share of the frame the (clipped) boxes cover: what an even map would put inside."""
    areas = [(min(x1, size) - max(x0, 0)) * (min(y1, size) - max(y0, 0)) / size**2 for x0, y0, x1, y1 in boxes]
    return float(np.mean(areas))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--videos", type=int, default=40)
    p.add_argument("--seed", type=int, default=1000)
    args = p.parse_args(argv)
    cfg = load_model_config("", ["TEST.CHECKPOINT_FILE_PATH", args.checkpoint, "DEVICE", "cpu"])
    loaded = load_model(cfg)
    d = cfg.DATA
    size, frames_per_clip = d.TEST_CROP_SIZE, d.NUM_FRAMES
    layers = [AUTO_LAYER, "res2", "res3", "res4", "res5"]
    shares = {name: [] for name in layers}
    even, correct, chosen = [], 0, ""
    for i in range(args.videos):
        rng = np.random.default_rng(args.seed + i)
        label = i % cfg.MODEL.NUM_CLASSES
        fps = FPS[int(rng.integers(len(FPS)))]
        step = d.SAMPLING_RATE * (fps / d.TARGET_FPS if d.TARGET_FPS else 1.0)
        idx = [int(round(k * step)) for k in range(frames_per_clip)]
        boxes = []
        frames = render_video(label, rng, size, size, idx[-1] + 1, clutter=0.3, object_size=(0.2, 0.28), boxes=boxes)
        clip = to_model_input(torch.from_numpy(frames[idx]).permute(3, 0, 1, 2)[None], d.MEAN, d.STD)
        clip_boxes = [boxes[j] for j in idx]
        even.append(box_area_share(clip_boxes, size))
        for name in layers:
            layer = name
            if name == AUTO_LAYER:
                layer, chosen = choose_layer(loaded.model, clip)
            result = grad_cam(loaded.model, clip, layer, class_index=label, activation=loaded.activation)
            shares[name].append(mass_in_boxes(result.cam, clip_boxes))
        correct += int(result.probs.argmax() == label)
    report = {
        "checkpoint": args.checkpoint,
        "videos": args.videos,
        "auto_layer": chosen,
        "top1_on_these_clips": correct / args.videos,
        "share_of_map_on_object": {k: round(float(np.mean(v)), 3) for k, v in shares.items()},
        "share_an_even_map_would_get": round(float(np.mean(even)), 3),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
