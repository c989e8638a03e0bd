"""Print the item table of docs/reference.md: rs3d's two conventions against the authors' TF code.

    python tools/tf_reference/compare.py [--fixture tests/fixtures/tf_golden.npz]

Runs in rs3d's environment (no TensorFlow): it reads the fixture that make_golden.py wrote from
the Model Garden's own objects and measures, item by item, how far rs3d's PyTorch convention and
its TF option are from it. tests/*/test_tf_reference_*.py assert the same comparisons.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rs3d.data import transforms as T  # noqa: E402
from rs3d.data.temporal import TemporalSampling  # noqa: E402
from rs3d.engine.ema import ModelEma  # noqa: E402
from rs3d.engine.losses import build_loss  # noqa: E402
from rs3d.engine.optim import build_optimizer  # noqa: E402
from rs3d.engine.schedule import Schedule, lr_at, run_steps  # noqa: E402
from rs3d.layers import SelfGating3d  # noqa: E402
from rs3d.models import create_model  # noqa: E402
from rs3d.models.resnet3d import Bottleneck3D  # noqa: E402


def ks(a, b) -> float:
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    x = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, x, "right") / len(a) - np.searchsorted(b, x, "right") / len(b)).max())


def crops(z, mode: str) -> str:
    h, w = (int(v) for v in z["crop_frame_hw"])
    sampler = T.sample_tf_area_box if mode == "tf" else T.sample_area_box
    rng = np.random.default_rng(0)
    ours = np.array([sampler(h, w, rng, (0.08, 1.0), (0.5, 2.0)) for _ in range(len(z["crop_boxes"]))])
    tf = z["crop_boxes"].astype(np.int64)
    area = lambda b: b[:, 2] * b[:, 3] / (h * w)  # noqa: E731
    aspect = lambda b: b[:, 3] / b[:, 2]  # noqa: E731
    y, x = np.mgrid[0:h, 0:w]
    frame = torch.from_numpy(
        np.stack(
            [(x * 3 + y * 5 + (x * y) % 37) % 256, (x * x + 7 * y) % 251, ((x // 4 + y // 4) % 2) * 255], -1
        ).astype(np.uint8)
    )[None]
    levels = np.mean(
        [
            (
                T.crop_resize_flip(frame, tuple(int(v) for v in b), 32, False, mode == "tf")[:, 0]
                .permute(1, 2, 0)
                .int()
                - torch.from_numpy(o).int()
            )
            .abs()
            .float()
            .mean()
            .item()
            for b, o in zip(z["resize_boxes"], z["resize_out"])
        ]
    )
    return (
        f"KS area {ks(area(ours), area(tf)):.3f}, aspect {ks(aspect(ours), aspect(tf)):.3f}; area median "
        f"{np.median(area(ours)):.3f} (TF {np.median(area(tf)):.3f}), min {area(ours).min():.3f} "
        f"(TF {area(tf).min():.3f}); resize {levels:.2f} grey levels from TF's"
    )


def init(z, mode: str) -> str:
    """std ratios to TF's per role: convs and SE against TF's sqrt(1 / fan_in) (VarianceScaling),
    self-gating and classifier against the fixture's; the last BN of a block."""
    torch.manual_seed(0)
    model = create_model("resnet3d_rs50", num_classes=400, init=mode)
    gating = {id(m.fc) for m in model.modules() if isinstance(m, SelfGating3d)}
    fan_in_std = {"conv": [], "se": []}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv3d) and id(m) not in gating:
            fan_in_std["se" if ".se." in name else "conv"].append(
                float(m.weight.detach().std()) * math.sqrt(m.weight[0].numel())
            )
    tf_std = {"gating": [], "classifier": []}
    for n, st in zip(z["init_names"], z["init_stats"]):
        if n.endswith("kernel:0") and ("self_gating" in n or "dense" in n):
            tf_std["gating" if "self_gating" in n else "classifier"].append(st[1])
    gate = np.mean([float(m.fc.weight.detach().std()) for m in model.modules() if isinstance(m, SelfGating3d)])
    last_bn = np.mean([float(m.bn3.weight.detach().mean()) for m in model.modules() if isinstance(m, Bottleneck3D)])
    return (
        f"std / TF's: convs {np.median(fan_in_std['conv']):.2f}, SE {np.median(fan_in_std['se']):.2f}, "
        f"self-gating {gate / np.mean(tf_std['gating']):.2f}, classifier "
        f"{float(model.fc.weight.detach().std()) / np.mean(tf_std['classifier']):.2f}; "
        f"last BN scale {last_bn:.0f} (TF 1)"
    )


def run_length(z, mode: str) -> str:
    n, b = int(z["run_num_examples"]), int(z["run_global_batch"])
    total = run_steps(350, n // b, "examples" if mode == "tf" else "epochs", n, b)
    ours = np.array([lr_at(int(s), 0.8, total, 1050) for s in z["lr_steps"]])
    return f"{total} steps (TF {int(z['run_train_steps'])}); max |lr - TF's| {np.abs(ours - z['lr_values']).max():.2g}"


class TinyNet(nn.Module):
    def __init__(self, bn_momentum):
        super().__init__()
        self.block = Bottleneck3D(
            8,
            4,
            16,
            temporal_kernel=3,
            se_ratio=0.25,
            self_gating="last_before_se",
            norm_layer=lambda c: nn.BatchNorm3d(c, eps=1e-5, momentum=bn_momentum),
        )
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.block(x).mean((2, 3, 4)))


def tiny_run(z, momentum_form="keras", decay_self_gating=False, ema_form="tf", bn_momentum=1.0):
    """(worst update error / update size, BN statistics relative error, EMA relative error) over 5 steps."""
    model = TinyNet(bn_momentum)
    init_w = {k.split("/", 1)[1]: torch.from_numpy(z[k]) for k in z if k.startswith("upd_w0/")}
    model.load_state_dict(init_w, strict=False)
    opt = build_optimizer(
        model, lr=0.0, weight_decay=4e-5, momentum_form=momentum_form, decay_self_gating=decay_self_gating
    )
    ema = ModelEma(model, 0.9999, form=ema_form)
    schedule, loss_fn = Schedule(0.8, 8, 2, 8), build_loss(0.1)
    params = {n for n, _ in model.named_parameters()}
    upd = buf = 0.0
    model.train()
    for k in range(1, 6):
        for g in opt.param_groups:
            g["lr"] = schedule(k - 1)
        loss_fn(model(torch.from_numpy(z[f"upd_x{k}"])), torch.from_numpy(z[f"upd_y{k}"])).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update(model, k - 1)
        for n, v in model.state_dict().items():
            if n not in init_w:
                continue
            now = torch.from_numpy(z[f"upd_w{k}/{n}"]).double()
            before = torch.from_numpy(z[f"upd_w{k - 1}/{n}"]).double()
            err = float((v.double() - now).abs().max())
            if n in params:
                slack = 2 * float(np.spacing(np.float32(now.abs().max())))
                upd = max(upd, max(err - slack, 0.0) / max(float((now - before).abs().max()), 1e-30))
            else:
                buf = max(buf, err / float(now.abs().max()))
    e = max(
        float(
            (v.double() - torch.from_numpy(z[f"upd_ema5/{n}"]).double()).abs().max()
            / max(float(np.abs(z[f"upd_ema5/{n}"]).max()), 1e-3)
        )
        for n, v in ema.module.state_dict().items()
        if n in init_w
    )
    return upd, buf, e


def views(z, mode: str) -> str:
    n, stride, clips, crop = (int(z[k]) for k in ("view_frames", "view_stride", "view_num_clips", "view_crop"))
    sampling = TemporalSampling(n, stride, view_positions=mode)
    bad_starts = sum(
        [int(c[0]) for c in sampling.test(int(L), None, clips)] != want.tolist()
        for L, want in zip(z["view_sweep_lengths"], z["view_sweep_starts"])
    )
    size = T.short_side_size_tf if mode == "tf" else T.short_side_size
    offsets = T.crop_offsets_tf if mode == "tf" else T.crop_offsets
    bad_views = 0
    for (w, h), hw, want in zip(z["view_sweep_sizes_wh"], z["view_sweep_hw"], z["view_sweep_crops3"]):
        rh, rw = size(int(h), int(w), crop)
        corners = [[o, 0] if rh > rw else [0, o] for o in offsets(max(rh, rw), crop, 3)]
        bad_views += [rh, rw] != hw.tolist() or corners != want.tolist()
    l300 = [int(c[0]) for c in sampling.test(300, None, clips)]
    return (
        f"L = 300 starts {l300[3:5] + l300[7:9]} (TF {z['view_starts_L300'][[3, 4, 7, 8]].tolist()}); "
        f"starts differ for {bad_starts} of {len(z['view_sweep_lengths'])} lengths, sizes or crops for "
        f"{bad_views} of {len(z['view_sweep_hw'])} frame sizes"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixture", default=str(ROOT / "tests" / "fixtures" / "tf_golden.npz"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    with np.load(args.fixture) as f:
        z = {k: f[k] for k in f.files}
    print(f"fixture: TF {z['tf_version']}, tf-keras {z['keras_version']}")
    tiny = {"pytorch": tiny_run(z, "pytorch", True, "pytorch", 0.1), "tf": tiny_run(z)}
    ablate = {
        "momentum": tiny_run(z, momentum_form="pytorch"),
        "decay": tiny_run(z, decay_self_gating=True),
        "ema": tiny_run(z, ema_form="pytorch"),
        "bn": tiny_run(z, bn_momentum=0.1),
    }
    rows = [
        ("1 training crops", lambda m: crops(z, m)),
        ("2 initialisation", lambda m: init(z, m)),
        (
            "3 self-gating decay",
            lambda m: (
                f"update {(ablate['decay'] if m == 'pytorch' else tiny['tf'])[0]:.2g} "
                "of its size from TF's (other options TF's)"
            ),
        ),
        ("4 run length", lambda m: run_length(z, m)),
        (
            "5 momentum form",
            lambda m: (
                f"update {(ablate['momentum'] if m == 'pytorch' else tiny['tf'])[0]:.2g} "
                "of its size from TF's (other options TF's)"
            ),
        ),
        ("6 BN statistics", lambda m: f"{(ablate['bn'] if m == 'pytorch' else tiny['tf'])[1]:.2g} relative"),
        (
            "7 EMA start and count",
            lambda m: f"EMA after 5 steps {(ablate['ema'] if m == 'pytorch' else tiny['tf'])[2]:.2g} relative",
        ),
        ("8 test views", lambda m: views(z, m)),
    ]
    for item, measure in rows:
        for mode in ("pytorch", "tf"):
            print(f"{item:24s} {mode:8s} {measure(mode)}")
    print(
        f"all options together, 5 steps: PyTorch convention update {tiny['pytorch'][0]:.2g}, "
        f"BN {tiny['pytorch'][1]:.2g}, "
        f"EMA {tiny['pytorch'][2]:.2g}; TF options update {tiny['tf'][0]:.2g}, BN {tiny['tf'][1]:.2g}, "
        f"EMA {tiny['tf'][2]:.2g}"
    )


if __name__ == "__main__":
    main()
