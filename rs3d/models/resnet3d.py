"""One bottleneck 3D ResNet covering 3D ResNet-RS, the plain R3D / SlowOnly baselines and their variants.

Every variant is a set of constructor arguments (see ``zoo.py``); nothing here reads a config.

Data flow (shapes for a 32x224x224 clip, RS-50 as released)::

    x [B,3,32,224,224]
    conv1 (stem: plain [k,7,7] conv, or ResNet-D: three 3x3 convs with temporal kernels [5,1,1])
    bn1, act1                         -> [B,64,16,112,112]
    maxpool (max pool | strided conv | none) -> [B,64,16,56,56]
    layer1 (res2) -> [B,256,16,56,56]    layer2 (res3) -> [B,512,16,28,28]
    layer3 (res4) -> [B,1024,16,14,14]   layer4 (res5) -> [B,2048,16,7,7]   <- forward_features
    global average pool over T,H,W -> dropout  -> [B,2048]     <- forward_head(x, pre_logits=True)
    fc -> logits [B,num_classes]                                 <- forward_head(x) = forward(clip)

The public API follows timm: ``forward_features`` / ``forward_head`` / ``get_classifier`` /
``reset_classifier``, ``num_features``, ``feature_info``; ``forward_stages`` gives res2..res5.

Attribute names follow timm / torchvision (``conv1``, ``bn1``, ``layer1..4``, ``fc``, and inside a
block ``conv1..3``, ``bn1..3``, ``se``, ``downsample``) so that 2D checkpoints map key for key.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence, Tuple, Union

import torch
from torch import nn

from ..layers import DropPath, SelfGating3d, SqueezeExcite3d

# Blocks per stage (c2..c5): paper Table 9 / appendix F; depth 26 as in timm's bottleneck resnet26.
BLOCKS_PER_DEPTH: Dict[int, Tuple[int, int, int, int]] = {
    26: (2, 2, 2, 2),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
    200: (3, 24, 36, 3),
    270: (4, 29, 53, 4),
    300: (4, 36, 54, 4),
    350: (4, 36, 72, 4),
    400: (6, 48, 72, 6),
    420: (4, 44, 87, 4),
}
STAGE_WIDTHS = (64, 128, 256, 512)
EXPANSION = 4

STEM_TYPES = ("plain", "deep")
STEM_POOLS = ("max", "conv", "none")
SELF_GATING = ("none", "last_before_se", "all_after_se")
DROP_PATH_MODES = ("stage", "linear")
INITS = ("pytorch", "tf")
# A truncated normal cut at +-2 sigma has this share of the untruncated sigma (Keras' constant).
_TRUNC_STD = 0.87962566103423978

TemporalKernels = Sequence[Union[int, Sequence[int]]]


def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {list(allowed)}")


def _scaled(channels: int, multiplier: float) -> int:
    return max(1, int(round(channels * multiplier)))


def stage_drop_path_rates(rate: float, blocks: Sequence[int], mode: str) -> List[List[float]]:
    """Drop probability of every block, stage by stage.

    "stage": the released code's ``rate * (i + 2) / 5`` for stage i=0..3 (0.04..0.10 at 0.1);
    "linear": timm's ramp from 0 at the first block to ``rate`` at the last.
    """
    _check_choice("drop_path_mode", mode, DROP_PATH_MODES)
    if mode == "stage":
        return [[rate * (i + 2) / 5.0] * n for i, n in enumerate(blocks)]
    total = sum(blocks)
    out, k = [], 0
    for n in blocks:
        out.append([rate * (k + j) / max(total - 1, 1) for j in range(n)])
        k += n
    return out


def _block_temporal_kernels(spec: TemporalKernels, blocks: Sequence[int]) -> List[List[int]]:
    """Expand per-stage (int) or per-block (sequence, repeated cyclically) temporal kernels."""
    if len(spec) != len(blocks):
        raise ValueError(f"temporal_kernels needs one entry per stage ({len(blocks)}), got {len(spec)}")
    out = []
    for stage_spec, n in zip(spec, blocks):
        pattern = [stage_spec] if isinstance(stage_spec, int) else list(stage_spec)
        if not pattern or any(int(k) < 1 or int(k) % 2 == 0 for k in pattern):
            raise ValueError(f"temporal_kernels must be odd positive integers, got {stage_spec!r}")
        out.append([int(pattern[i % len(pattern)]) for i in range(n)])
    return out


NormLayer = Callable[[int], nn.Module]
ShortcutLayer = Callable[[int, int, Tuple[int, int, int], NormLayer], nn.Module]


def conv_shortcut(
    in_channels: int, out_channels: int, stride: Tuple[int, int, int], norm_layer: NormLayer = nn.BatchNorm3d
) -> nn.Module:
    """Projection shortcut of the released 3D code: a strided 1x1x1 conv, then a norm."""
    return nn.Sequential(nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False), norm_layer(out_channels))


def avg_shortcut(
    in_channels: int, out_channels: int, stride: Tuple[int, int, int], norm_layer: NormLayer = nn.BatchNorm3d
) -> nn.Module:
    """ResNet-D projection shortcut: average-pool by the stride, then a non-strided 1x1x1 conv and a norm.

    The pool keeps index 0 (an ``nn.Identity`` when the stride is 1) so that state-dict keys are
    ``downsample.1`` (conv) and ``downsample.2`` (norm) whatever the stride.
    """
    pool = (
        nn.AvgPool3d(stride, stride, ceil_mode=True, count_include_pad=False) if stride != (1, 1, 1) else nn.Identity()
    )
    return nn.Sequential(pool, nn.Conv3d(in_channels, out_channels, 1, bias=False), norm_layer(out_channels))


SHORTCUT_LAYERS: Dict[str, ShortcutLayer] = {"conv": conv_shortcut, "avg": avg_shortcut}
SHORTCUT_TYPES = tuple(SHORTCUT_LAYERS)


class Bottleneck3D(nn.Module):
    """conv [kt,1,1] -> conv [1,3,3] (spatial stride) -> conv 1x1x1 (x4) -> gating/SE -> drop path -> + shortcut.

    The temporal stride sits on the first conv and the spatial stride on the 3x3 conv, as in the
    released R3D-RS code and torchvision's "ResNet v1.5".

    ``shortcut_layer(in_channels, out_channels, stride, norm_layer)`` builds the projection used
    when the block changes channels or resolution (:func:`conv_shortcut`, :func:`avg_shortcut`, or
    any callable with that signature, as timm injects ``attn_layer``); otherwise the shortcut is
    the identity.
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        out_channels: int,
        temporal_kernel: int = 1,
        spatial_stride: int = 1,
        temporal_stride: int = 1,
        shortcut_layer: ShortcutLayer = conv_shortcut,
        se_ratio: float = 0.0,
        self_gating: str = "none",
        drop_path_rate: float = 0.0,
        norm_layer: NormLayer = nn.BatchNorm3d,
    ):
        super().__init__()
        kt = temporal_kernel
        self.conv1 = nn.Conv3d(
            in_channels, width, (kt, 1, 1), stride=(temporal_stride, 1, 1), padding=(kt // 2, 0, 0), bias=False
        )
        self.bn1 = norm_layer(width)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv3d(
            width, width, (1, 3, 3), stride=(1, spatial_stride, spatial_stride), padding=(0, 1, 1), bias=False
        )
        self.bn2 = norm_layer(width)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv3d(width, out_channels, 1, bias=False)
        self.bn3 = norm_layer(out_channels)

        gate = SelfGating3d(out_channels) if self_gating != "none" else nn.Identity()
        self.gate_before_se = self_gating == "last_before_se"
        self.self_gating = gate
        self.se = SqueezeExcite3d(out_channels, int(out_channels * se_ratio)) if se_ratio > 0 else nn.Identity()
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

        stride = (temporal_stride, spatial_stride, spatial_stride)
        if in_channels != out_channels or stride != (1, 1, 1):
            self.downsample = shortcut_layer(in_channels, out_channels, stride, norm_layer)
        else:
            self.downsample = nn.Identity()
        self.act3 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.downsample(x)
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        if self.gate_before_se:
            x = self.se(self.self_gating(x))
        else:
            x = self.self_gating(self.se(x))
        x = self.drop_path(x)
        x += shortcut  # in place: x is this block's own fresh tensor, and no backward needs it
        return self.act3(x)


@torch.no_grad()
def _truncated_normal(w: torch.Tensor, std: float) -> None:
    """Keras' TruncatedNormal(stddev=std): a normal of ``std`` cut at +-2 ``std`` (its own std is
    0.88 ``std``). Drawn by redrawing the 4.6% outside the cut, 10x faster than
    ``nn.init.trunc_normal_`` (inverse CDF) on RS-50's 48 M weights."""
    if w.is_meta:  # a model built for its shapes only (the sweep's check) holds no values to draw
        return
    flat = w.view(-1).normal_(0.0, std)
    idx = (flat.abs() > 2.0 * std).nonzero().squeeze(1)
    while idx.numel():
        redrawn = torch.empty(idx.numel(), dtype=w.dtype, device=w.device).normal_(0.0, std)
        flat[idx] = redrawn
        idx = idx[redrawn.abs() > 2.0 * std]


def init_tf(model: nn.Module) -> None:
    """The released TF code's initialisation (Model Garden ``resnet_3d.py``, ``nn_blocks_3d.py``,
    ``video_classification_model.py``): every conv (SE included) VarianceScaling(1, fan_in,
    truncated normal), i.e. a truncated normal of std ``sqrt(1 / fan_in)``; the self-gating convs a
    truncated N(0, 0.01); every BN scale 1 and shift 0 (the last BN of a block too); the classifier
    U(-0.05, 0.05); biases 0."""
    gating = {id(m.fc) for m in model.modules() if isinstance(m, SelfGating3d)}
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            if id(m) in gating:
                _truncated_normal(m.weight, 0.01)
            else:
                fan_in = m.weight[0].numel()
                _truncated_normal(m.weight, (1.0 / fan_in) ** 0.5 / _TRUNC_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -0.05, 0.05)
            nn.init.zeros_(m.bias)


class ResNet3D(nn.Module):
    """Bottleneck 3D ResNet; every 3D ResNet-RS / R3D / SlowOnly variant is a choice of arguments.

    Args:
        depth: one of ``BLOCKS_PER_DEPTH`` (26, 50, 101, 152, 200, 270, 300, 350, 400, 420).
        num_classes: classifier outputs; 0 removes the classifier and ``forward`` returns the
            pooled features (as ``forward_head(forward_features(x), pre_logits=True)``).
        width_multiplier: scales every channel count (the paper's width axis: 0.25 .. 2.0).
        temporal_kernels: per stage, an int (every block) or a sequence (per block, repeated).
        temporal_strides: temporal stride of the first block of each stage.
        stem_type: "plain" (one [k,7,7] conv, ``stem_temporal_kernel``) or "deep" (ResNet-D: three 3x3
            convs of widths ``stem_width, stem_width, 2*stem_width`` with temporal kernels [5,1,1]).
        stem_temporal_stride: temporal stride of the first stem conv.
        stem_pool: "max" (3x3 max pool, stride 2), "conv" (stride-2 3x3 conv + BN + ReLU, as timm's and the
            TF ``replace_stem_max_pool``) or "none".
        stem_pool_temporal_stride: temporal stride of the stem pool.
        shortcut: "conv" (strided 1x1x1 conv, the released 3D code), "avg" (ResNet-D average pool then
            1x1x1), or a callable with :func:`conv_shortcut`'s signature, passed to every block.
        se_ratio: Squeeze-Excitation bottleneck ratio of the block output channels; 0 disables SE.
        self_gating: "none", "last_before_se" (last block of each stage, before SE: released code) or
            "all_after_se" (every block, after SE: Du et al. 2021's text).
        drop_path_rate / drop_path_mode: stochastic depth (see ``stage_drop_path_rates``).
        dropout_rate: dropout before the classifier.
        bn_eps / bn_momentum: BatchNorm settings (PyTorch momentum convention).
        zero_init_last_bn: start each residual branch at zero (timm, PySlowFast): stabler early training.
        init: "pytorch" (Kaiming fan_out convs, classifier N(0, 0.01), ``zero_init_last_bn``) or "tf"
            (the released TF code, see :func:`init_tf`; ``zero_init_last_bn`` unused).
    """

    def __init__(
        self,
        depth: int = 50,
        num_classes: int = 400,
        width_multiplier: float = 1.0,
        temporal_kernels: TemporalKernels = (1, 1, 3, 3),
        temporal_strides: Sequence[int] = (1, 1, 1, 1),
        stem_type: str = "deep",
        stem_width: int = 32,
        stem_temporal_kernel: int = 5,
        stem_temporal_stride: int = 2,
        stem_pool: str = "max",
        stem_pool_temporal_stride: int = 1,
        shortcut: Union[str, ShortcutLayer] = "conv",
        se_ratio: float = 0.25,
        self_gating: str = "none",
        drop_path_rate: float = 0.0,
        drop_path_mode: str = "stage",
        dropout_rate: float = 0.0,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        zero_init_last_bn: bool = True,
        in_channels: int = 3,
        init: str = "pytorch",
    ):
        super().__init__()
        if depth not in BLOCKS_PER_DEPTH:
            raise ValueError(f"depth={depth!r} is not allowed; choose one of {sorted(BLOCKS_PER_DEPTH)}")
        _check_choice("stem_type", stem_type, STEM_TYPES)
        _check_choice("stem_pool", stem_pool, STEM_POOLS)
        if not callable(shortcut):
            _check_choice("shortcut", shortcut, SHORTCUT_TYPES)
            shortcut = SHORTCUT_LAYERS[shortcut]
        _check_choice("self_gating", self_gating, SELF_GATING)
        _check_choice("init", init, INITS)
        if not 0.0 <= se_ratio <= 1.0:
            raise ValueError(f"se_ratio={se_ratio!r} is out of range; allowed: 0 (off) to 1.0 (0.25 for RS)")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate={drop_path_rate!r} is out of range; allowed: [0, 1)")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"dropout_rate={dropout_rate!r} is out of range; allowed: [0, 1)")
        if width_multiplier <= 0:
            raise ValueError(f"width_multiplier={width_multiplier!r} must be > 0 (the paper uses 0.25 .. 2.0)")
        if len(temporal_strides) != 4:
            raise ValueError(f"temporal_strides needs 4 entries (one per stage), got {list(temporal_strides)}")
        if num_classes < 0:
            raise ValueError(f"num_classes={num_classes!r} must be >= 0 (0 = no classifier)")

        def norm_layer(c: int) -> nn.BatchNorm3d:
            return nn.BatchNorm3d(c, eps=bn_eps, momentum=bn_momentum)

        blocks = BLOCKS_PER_DEPTH[depth]
        self.depth = depth
        self.num_classes = num_classes
        self.dropout_rate = dropout_rate

        # Stem.
        stem_out = _scaled(64, width_multiplier)
        kt = stem_temporal_kernel
        if stem_type == "deep":
            w = _scaled(stem_width, width_multiplier)
            self.conv1 = nn.Sequential(
                nn.Conv3d(
                    in_channels, w, (kt, 3, 3), stride=(stem_temporal_stride, 2, 2), padding=(kt // 2, 1, 1), bias=False
                ),
                norm_layer(w),
                nn.ReLU(inplace=True),
                nn.Conv3d(w, w, (1, 3, 3), padding=(0, 1, 1), bias=False),
                norm_layer(w),
                nn.ReLU(inplace=True),
                nn.Conv3d(w, stem_out, (1, 3, 3), padding=(0, 1, 1), bias=False),
            )
        else:
            self.conv1 = nn.Conv3d(
                in_channels,
                stem_out,
                (kt, 7, 7),
                stride=(stem_temporal_stride, 2, 2),
                padding=(kt // 2, 3, 3),
                bias=False,
            )
        self.bn1 = norm_layer(stem_out)
        self.act1 = nn.ReLU(inplace=True)
        pool_stride = (stem_pool_temporal_stride, 2, 2)
        if stem_pool == "max":
            self.maxpool = nn.MaxPool3d((1, 3, 3), stride=pool_stride, padding=(0, 1, 1))
        elif stem_pool == "conv":
            self.maxpool = nn.Sequential(
                nn.Conv3d(stem_out, stem_out, (1, 3, 3), stride=pool_stride, padding=(0, 1, 1), bias=False),
                norm_layer(stem_out),
                nn.ReLU(inplace=True),
            )
        else:
            self.maxpool = nn.Identity()

        # Residual stages res2..res5 (timm's layer1..layer4).
        kernels = _block_temporal_kernels(temporal_kernels, blocks)
        rates = stage_drop_path_rates(drop_path_rate, blocks, drop_path_mode)
        self.feature_info: List[Dict[str, object]] = []
        in_ch, reduction = stem_out, 4
        stages = []
        for i, n in enumerate(blocks):
            width = _scaled(STAGE_WIDTHS[i], width_multiplier)
            out_ch = width * EXPANSION
            spatial_stride = 1 if i == 0 else 2
            reduction *= spatial_stride
            stage = []
            for j in range(n):
                gating = self_gating
                if self_gating == "last_before_se" and j != n - 1:
                    gating = "none"
                stage.append(
                    Bottleneck3D(
                        in_ch,
                        width,
                        out_ch,
                        temporal_kernel=kernels[i][j],
                        spatial_stride=spatial_stride if j == 0 else 1,
                        temporal_stride=temporal_strides[i] if j == 0 else 1,
                        shortcut_layer=shortcut,
                        se_ratio=se_ratio,
                        self_gating=gating,
                        drop_path_rate=rates[i][j],
                        norm_layer=norm_layer,
                    )
                )
                in_ch = out_ch
            stages.append(nn.Sequential(*stage))
            self.feature_info.append(
                {"num_chs": out_ch, "reduction": reduction, "module": f"layer{i + 1}", "name": f"res{i + 2}"}
            )
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.num_features = in_ch

        self.global_pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout_rate)
        self.fc = nn.Linear(in_ch, num_classes) if num_classes > 0 else nn.Identity()
        if init == "tf":
            init_tf(self)
        else:
            self._init_weights(zero_init_last_bn)

    def _init_weights(self, zero_init_last_bn: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        if zero_init_last_bn:
            for m in self.modules():
                if isinstance(m, Bottleneck3D):
                    nn.init.zeros_(m.bn3.weight)

    # ------------------------------------------------------------------ forward paths
    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.act1(self.bn1(self.conv1(x))))

    @torch.jit.export
    def forward_stages(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Multi-scale feature maps ``res2..res5`` for detection or localisation heads."""
        x = self.forward_stem(x)
        res2 = self.layer1(x)
        res3 = self.layer2(res2)
        res4 = self.layer3(res3)
        res5 = self.layer4(res4)
        return {"res2": res2, "res3": res3, "res4": res4, "res5": res5}

    @torch.jit.export
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Unpooled final feature map [B, num_features, T', H', W'] (timm's contract)."""
        x = self.forward_stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool over (T, H, W), dropout, classifier.

        ``pre_logits=True`` stops before the classifier and returns the pooled embedding
        [B, num_features] (dropout applies only in training mode, as in timm).
        """
        x = self.dropout(torch.flatten(self.global_pool(x), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier (e.g. to fine-tune on another label set); 0 removes it."""
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if num_classes > 0:
            nn.init.normal_(self.fc.weight, std=0.01)
            nn.init.zeros_(self.fc.bias)
