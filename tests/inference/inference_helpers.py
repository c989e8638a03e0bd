"""Helpers of the inference tests (imported by name: pytest puts this folder on sys.path)."""

import torch

import rs3d

MODEL_OPTS = ["MODEL.ARCH", "resnet3d_rs26", "MODEL.WIDTH_MULTIPLIER", "0.25", "MODEL.NUM_CLASSES", "4"]


def tiny_model(num_classes=4, seed=0):
    torch.manual_seed(seed)
    model = rs3d.create_model("resnet3d_rs26", num_classes=num_classes, width_multiplier=0.25)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
        model.fc.weight.mul_(100)  # spread the logits: videos get different top classes
    return model.eval()


def cli_opts(cfg):
    """The ``cfg`` fixture as command-line overrides (for the tools)."""
    keys = [
        "DATA.PATH_TO_DATA_DIR",
        "DATA.NUM_FRAMES",
        "DATA.SAMPLING_RATE",
        "DATA.TRAIN_CROP_SIZE",
        "DATA.TEST_CROP_SIZE",
        "TEST.NUM_ENSEMBLE_VIEWS",
        "TEST.NUM_SPATIAL_CROPS",
        "DATA_LOADER.NUM_WORKERS",
        "TEST.CHECKPOINT_FILE_PATH",
        "TEST.BATCH_SIZE",
        "DEVICE",
    ]
    opts = list(MODEL_OPTS)
    for k in keys:
        node = cfg
        for part in k.split("."):
            node = getattr(node, part)
        opts += [k, str(node)]
    return opts
