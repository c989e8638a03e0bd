"""Grad-CAM: the map lies where the evidence for the class is, and its pictures open.

The localisation test needs a model whose evidence is known, so it is built by hand: a real
``resnet3d_rs26`` whose weights make res5 carry, at every place, (channels 0, 1) how much the
frames change there and (channel 2) how bright it is; its classifier reads "moving" from the
first and "bright" from the second. Grad-CAM must then put the "moving" map on the region that
moves and the "bright" map on the static bright patch of the same clip. A wrong layer, a
missing gradient weighting (plain activations would follow the brighter patch), a transposed or
flipped map, or a misplaced upsampling each fail it. What it does not show is that a trained
model looks at sensible places: that is a property of the model, not of Grad-CAM.
"""

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from inference_helpers import cli_opts
from PIL import Image

import rs3d
from rs3d.cli.visualize import main as visualize_main
from rs3d.errors import ConfigError
from rs3d.inference.gradcam import enlarge, grad_cam, overlay, resolve_class, write_gradcam
from rs3d.models.resnet3d import Bottleneck3D

SIZE, FRAMES = 128, 8
MOVING, BRIGHT = 0, 1


def motion_model():
    """See the module docstring. res5 of a 128x128 clip is a 4x4 map (cells of 32x32 pixels)."""
    model = rs3d.create_model(
        "resnet3d_rs26", num_classes=2, width_multiplier=0.25, shortcut="avg", drop_path_rate=0.0, dropout_rate=0.0
    ).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv3d):
                m.weight.zero_()
            elif isinstance(m, torch.nn.BatchNorm3d):  # identity in eval mode
                m.weight.fill_(1), m.bias.zero_(), m.running_mean.zero_(), m.running_var.fill_(1)
        first = model.conv1[0]  # [5, 3, 3] kernel, stride (2, 2, 2), padding (2, 1, 1)
        box = 1.0 / (3 * 9)  # mean over RGB and a 3x3 neighbourhood
        first.weight[0, :, 3] = box  # channel 0: frame 2t+1 - frame 2t (growing)
        first.weight[0, :, 2] = -box
        first.weight[1] = -first.weight[0]  # channel 1: the opposite sign; ReLU keeps each half
        first.weight[2, :, 2] = box  # channel 2: brightness of frame 2t
        for conv in (model.conv1[3], model.conv1[6]):
            for c in range(3):
                conv.weight[c, c, 0, 1, 1] = 1.0  # pass channels 0-2 on unchanged
        for block in model.modules():
            if isinstance(block, Bottleneck3D) and not isinstance(block.downsample, torch.nn.Identity):
                for c in range(3):
                    block.downsample[1].weight[c, c] = 1.0  # the shortcut carries them; branches are 0
        model.fc.weight.zero_(), model.fc.bias.zero_()
        model.fc.weight[MOVING, 0] = model.fc.weight[MOVING, 1] = 1.0
        model.fc.weight[BRIGHT, 2] = 1.0
    return model


def clip_with(moving_quadrant, bright_quadrant, seed=0):
    """[1, 3, T, S, S] in [0, 1]: a grey static background, a textured square moving 3 px a frame
    inside one quadrant and a static white patch in another; quadrants (row, col) in {0, 1}^2."""
    rng = np.random.default_rng(seed)
    x = np.full((3, FRAMES, SIZE, SIZE), 0.4, np.float32)
    (br, bc), half = bright_quadrant, SIZE // 2
    x[:, :, br * half + 16 : br * half + 48, bc * half + 16 : bc * half + 48] = 1.0
    texture = rng.random((3, 24, 24), dtype=np.float32)
    mr, mc = moving_quadrant
    for t in range(FRAMES):
        top, left = mr * half + 20, mc * half + 8 + 3 * t
        x[:, t, top : top + 24, left : left + 24] = texture
    return torch.from_numpy(x)[None]


def peak_quadrant(cam):
    _, y, x = np.unravel_index(np.argmax(cam), cam.shape)
    return int(y >= SIZE // 2), int(x >= SIZE // 2)


@pytest.mark.parametrize("moving,bright", [((0, 1), (1, 0)), ((1, 0), (0, 1)), ((1, 1), (0, 0))])
def test_the_map_peaks_where_the_region_moves_and_the_bright_map_on_the_patch(moving, bright):
    model = motion_model()
    clip = clip_with(moving, bright)
    for layer in ("res5", "res4"):
        m = grad_cam(model, clip, layer=layer, class_index=MOVING)
        assert m.cam.shape == (FRAMES, SIZE, SIZE) and m.cam.max() == pytest.approx(1.0)
        assert peak_quadrant(m.cam) == moving, layer
        b = grad_cam(model, clip, layer=layer, class_index=BRIGHT)
        assert peak_quadrant(b.cam) == bright, layer
    assert grad_cam(model, clip).layer_map.shape == (4, 4, 4)  # T/2 (stem), S/32
    # The gradient weighting is what separates them: the plain res5 activations peak on the patch.
    act = model.forward_stages(clip)["res5"][0].sum(0)
    y, x = np.unravel_index(int(act.amax(0).argmax()), act.shape[1:])
    assert (int(y >= 2), int(x >= 2)) == bright


def test_the_predicted_class_by_default_and_a_class_by_name():
    model = motion_model()
    clip = clip_with((0, 1), (1, 0))
    with torch.no_grad():
        predicted = int(model(clip).argmax())
        expected = float(model(clip).softmax(1)[0, predicted])
    r = grad_cam(model, clip)
    assert r.class_index == predicted and r.score == pytest.approx(expected)
    assert resolve_class("bright", ["moving", "bright"], 2) == 1 and resolve_class("0", None, 2) == 0
    assert resolve_class(None, ["a"], 1) is None
    with pytest.raises(ConfigError, match="'walking' is not a class"):
        resolve_class("walking", ["moving", "bright"], 2)
    with pytest.raises(ConfigError, match="out of range"):
        resolve_class("7", None, 2)
    with pytest.raises(ConfigError, match="not logits"):
        grad_cam(model, clip, layer="logits")
    with pytest.raises(ConfigError, match="'res7' is not a layer"):
        grad_cam(model, clip, layer="res7")


def test_the_pictures_open(tmp_path):
    model = motion_model()
    clip = clip_with((0, 1), (1, 0))
    r = grad_cam(model, clip, class_index=MOVING)
    frames = (clip[0].permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)
    files = write_gradcam(r, frames, str(tmp_path / "clip"), ["moving", "bright"], fps=4, gif=True)
    with av.open(files["mp4"]) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == FRAMES and decoded[0].shape == (256, 256, 3)  # enlarged to >= 224, even
    # The video holds the overlay (up to the codec's loss), frame for frame.
    expected = enlarge(overlay(frames, r.cam))
    errors = [np.abs(d.astype(int) - e.astype(int)).mean() for d, e in zip(decoded, expected)]
    assert max(errors) < 6, errors
    assert np.abs(decoded[0].astype(int) - enlarge(frames)[0].astype(int)).mean() > 3 * max(errors)
    gif = Image.open(files["gif"])
    assert gif.n_frames == FRAMES and gif.size == (256, 256)
    strip = Image.open(files["png"])
    strip.load()
    assert strip.format == "PNG" and strip.size[0] > strip.size[1]
    info = json.loads(open(files["json"]).read())
    assert info["name"] == "moving" and info["layer"] == "res5" and info["layer_map_shape"] == [4, 4, 4]


def test_the_tool_on_a_video_with_a_real_checkpoint(cfg, broken_videos, tmp_path, capsys):
    from rs3d.cli import visualize as tool

    video = sorted(Path(cfg.DATA.PATH_TO_DATA_DIR, "videos", "test").glob("*.mp4"))[0]
    out = tmp_path / "out"
    argv = [
        "gradcam",
        "--gif",
        "--class",
        "rotate",
        "--out",
        str(out),
        str(video),
        str(broken_videos["not_a_video"]),
    ] + cli_opts(cfg)
    assert tool.main(argv) == 1  # the broken file is listed, the video done
    printed = capsys.readouterr().out
    assert f"{broken_videos['not_a_video']}\n  error: " in printed and "rotate" in printed
    stem = out / video.stem
    with av.open(f"{stem}.gradcam.mp4") as c:
        n = sum(1 for _ in c.decode(video=0))
    assert n == cfg.DATA.NUM_FRAMES
    assert Image.open(f"{stem}.gradcam.gif").n_frames == cfg.DATA.NUM_FRAMES
    assert json.loads(open(f"{stem}.gradcam.json").read())["name"] == "rotate"


def test_tool_mistakes_are_one_line_and_exit_2(cfg, tmp_path, capsys):
    video = str(sorted(Path(cfg.DATA.PATH_TO_DATA_DIR, "videos", "test").glob("*.mp4"))[0])
    for extra, expected in (
        (["--layer", "res9"], "'res9' is not a layer"),
        (["--class", "juggling"], "'juggling' is not a class"),
        ([], "nope.mp4"),
    ):
        target = str(tmp_path / "nope.mp4") if not extra else video
        assert visualize_main(["gradcam", *extra, "--out", str(tmp_path), target] + cli_opts(cfg)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
