"""Write tests/fixtures/tf_golden.npz from the authors' TensorFlow Model Garden code.

Runs in its own environment, never rs3d's (TensorFlow is no dependency of rs3d)::

    python3 -m venv tfenv
    tfenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    tfenv/bin/pip install --no-deps tf-models-official==2.20.0
    tfenv/bin/pip install gin-config pyyaml tensorflow-hub six absl-py tensorflow-datasets tf_slim \
        scipy pycocotools pillow opencv-python-headless matplotlib
    tfenv/bin/python tools/tf_reference/make_golden.py --out tests/fixtures/tf_golden.npz --yaml \
        <tensorflow/models>/official/vision/configs/experiments/video_classification/k400_resnet3drs_50_tpu.yaml

Every value comes from a Model Garden object built from the released yaml (or from TensorFlow's own
ops with the arguments the Model Garden passes them); nothing here imports rs3d. The CI tests
(tests/engine/test_tf_golden.py and friends) compare rs3d against the file without TensorFlow.

What the file holds (keys):
- ``lr_steps``, ``lr_values``: the released run's learning rate (LinearWarmup + CosineDecay from
  ``OptimizerFactory``) at sampled steps; ``run_*``: its step counts and data size.
- ``crop_boxes``: 10,000 (top, left, height, width) boxes that ``preprocess_ops_3d.random_crop_resize``
  cut from a 256x340 frame (seeded); ``resize_boxes``, ``resize_out``: 8 crops of a fixed pattern
  frame resized by it to 32x32 (bilinear, no antialias, truncating cast).
- ``init_names``, ``init_shapes``, ``init_stats``: per variable of the released R3D-RS-50 classifier
  at initialisation: mean, std, min, max, element count.
- ``ema_steps``, ``ema_decays``: the decay the ExponentialMovingAverage wrapper applies after the
  optimizer's t-th update.
- ``upd_*``: 5 noise-free training steps (``VideoClassificationTask.train_step``, the recipe's SGD
  + EMA from ``OptimizerFactory``, a warm-up + cosine of 2 + 6 steps so the rate changes every step)
  of a tiny model made of the Model Garden's ``BottleneckBlock3D`` (projection shortcut, SE,
  self-gating) and the classifier head of ``VideoClassificationModel``; weights in rs3d's names and
  PyTorch layouts: ``upd_w0/<name>`` initial, ``upd_w<k>/<name>`` after step k, ``upd_ema5/<name>``
  the averages after step 5, ``upd_x<k>``, ``upd_y<k>`` the batches, ``upd_lr`` the rates used.
- ``view_starts_L<L>``: the 10 test clip starts (``sample_linspace_sequence``, 32 frames x 2);
  ``view_hw_<W>x<H>``, ``view_crops3_<W>x<H>``, ``view_crops1_<W>x<H>``: the short-side-256 size
  (``resize_smallest``) and the (top, left) of the 3-crop and 1-crop test views (``crop_image``);
  ``view_sweep_*``: the same for every length 1..700 and 60 random frame sizes.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from official.core import exp_factory  # noqa: E402
from official.modeling.optimization import optimizer_factory  # noqa: E402
from official.vision.modeling.layers import nn_blocks_3d  # noqa: E402
from official.vision.ops import preprocess_ops_3d  # noqa: E402
from official.vision.tasks import video_classification  # noqa: E402

CROP_FRAME = (256, 340)  # (height, width) of the frame the training crops are cut from
NUM_CROPS = 10_000
VIEW_LENGTHS = (250, 300)
VIEW_SIZES = ((340, 256), (1280, 720), (1920, 1080), (352, 288), (256, 340))  # (width, height)


def load_experiment(yaml_path: str):
    """The released experiment: video_classification_kinetics400 overridden by the yaml.

    tf-models-official 2.20 no longer has ``num_channels`` under the data configs: dropped.
    """
    with open(yaml_path) as f:
        params = yaml.load(f, Loader=yaml.UnsafeLoader)  # the yaml holds !!python/tuple
    for split in ("train_data", "validation_data"):
        params["task"][split].pop("num_channels", None)
    exp = exp_factory.get_exp_config("video_classification_kinetics400")
    exp.override(params, is_strict=True)
    return exp


# ----------------------------------------------------------------------------- learning rate
def lr_samples(exp) -> dict:
    opt_cfg = exp.trainer.optimizer_config
    lr = optimizer_factory.OptimizerFactory(opt_cfg).build_learning_rate()
    total = int(exp.trainer.train_steps)
    warm = int(opt_cfg.warmup.linear.warmup_steps)
    steps = sorted(
        set(range(0, 40))
        | set(range(warm - 20, warm + 20))
        | set(range(0, total, 97))
        | set(range(total - 40, total + 3))
    )
    values = np.array([float(lr(tf.constant(s, tf.int64))) for s in steps], np.float32)
    return {
        "lr_steps": np.array(steps, np.int64),
        "lr_values": values,
        "run_train_steps": np.int64(total),
        "run_warmup_steps": np.int64(warm),
        "run_decay_steps": np.int64(opt_cfg.learning_rate.cosine.decay_steps),
        "run_num_examples": np.int64(exp.task.train_data.num_examples),
        "run_global_batch": np.int64(exp.task.train_data.global_batch_size),
        "run_base_lr": np.float64(opt_cfg.learning_rate.cosine.initial_learning_rate),
    }


# ----------------------------------------------------------------------------- training crops
def pattern_frame(height: int, width: int) -> np.ndarray:
    """A fixed uint8 test frame with detail at every scale (rebuilt by the rs3d test)."""
    y, x = np.mgrid[0:height, 0:width]
    chans = [(x * 3 + y * 5 + (x * y) % 37) % 256, (x * x + 7 * y) % 251, ((x // 4 + y // 4) % 2) * 255]
    return np.stack(chans, -1).astype(np.uint8)


def crop_samples(exp) -> dict:
    """Boxes ``random_crop_resize`` cuts, recorded by wrapping the TF op it calls."""
    data = exp.task.train_data
    aspect = (data.aug_min_aspect_ratio, data.aug_max_aspect_ratio)
    area = (data.aug_min_area_ratio, data.aug_max_area_ratio)
    recorded = []
    original = tf.image.sample_distorted_bounding_box

    def spy(*args, **kwargs):
        begin, size, bbox = original(*args, **kwargs)
        recorded.append((int(begin[0]), int(begin[1]), int(size[0]), int(size[1])))
        return begin, size, bbox

    h, w = CROP_FRAME
    tf.image.sample_distorted_bounding_box = spy
    try:
        tf.random.set_seed(20_000)
        frames = tf.zeros((1, h, w, 3), tf.uint8)
        for _ in range(NUM_CROPS):
            preprocess_ops_3d.random_crop_resize(frames, 16, 16, 1, 3, aspect, area)
        boxes = np.array(recorded, np.int32)
        recorded.clear()
        pattern = tf.constant(pattern_frame(h, w)[None])
        outs = [preprocess_ops_3d.random_crop_resize(pattern, 32, 32, 1, 3, aspect, area)[0].numpy() for _ in range(8)]
        resize_boxes = np.array(recorded, np.int32)
    finally:
        tf.image.sample_distorted_bounding_box = original
    return {
        "crop_boxes": boxes.astype(np.int16),
        "crop_frame_hw": np.array(CROP_FRAME, np.int32),
        "crop_area_range": np.array(area, np.float64),
        "crop_aspect_range": np.array(aspect, np.float64),
        "resize_boxes": resize_boxes,
        "resize_out": np.stack(outs).astype(np.uint8),
    }


# ----------------------------------------------------------------------------- initialisation
def init_samples(exp) -> dict:
    tf_keras.utils.set_random_seed(0)
    model = video_classification.VideoClassificationTask(exp.task).build_model()
    names, shapes, stats = [], [], []
    for v in model.variables:
        a = v.numpy().astype(np.float64).ravel()
        names.append(v.name)
        shapes.append("x".join(str(d) for d in v.shape))
        stats.append([a.mean(), a.std(), a.min(), a.max(), a.size])
    return {"init_names": np.array(names), "init_shapes": np.array(shapes), "init_stats": np.array(stats, np.float64)}


# ----------------------------------------------------------------------------- EMA decays
def ema_decay_samples(exp) -> dict:
    """The decay after update t: average 1, weight 0, zero gradient -> the new average is the decay."""
    opt_cfg = exp.trainer.optimizer_config.as_dict()
    opt_cfg["learning_rate"] = {"type": "constant", "constant": {"learning_rate": 0.0}}
    opt_cfg["warmup"] = {"type": None}
    factory = optimizer_factory.OptimizerFactory(type(exp.trainer.optimizer_config)(opt_cfg))
    opt = factory.build_optimizer(factory.build_learning_rate())

    class Holder(tf_keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.w = self.add_weight(name="w", shape=(1,), initializer="zeros")

    holder = tf_keras.Sequential([Holder()])
    holder.build((None, 1))
    opt.shadow_copy(holder)
    steps = np.array(list(range(1, 31)) + [100, 1000, 10_000, 73_682], np.int64)
    decays = []
    for t in steps:
        opt.iterations.assign(int(t) - 1)
        opt._average_weights[0].assign([1.0])
        opt.apply_gradients([(tf.zeros((1,)), holder.variables[0])])
        assert int(opt.iterations) == t
        decays.append(float(opt._average_weights[0].numpy()[0]))
    return {
        "ema_steps": steps,
        "ema_decays": np.array(decays, np.float32),
        "ema_max_decay": np.float64(exp.trainer.optimizer_config.ema.average_decay),
    }


# ----------------------------------------------------------------------------- noise-free update
TINY = dict(in_ch=8, filters=4, t=5, hw=9, classes=5, batch=3, steps=5)


def tiny_model(exp):
    """Model Garden's bottleneck block (projection shortcut, SE 0.25, self-gating) + the
    VideoClassificationModel head (global pool, Dense with random_uniform init), regularised as
    the task's build_model does (l2(wd / 2) on kernels)."""
    norm = exp.task.model.norm_activation
    l2 = tf_keras.regularizers.l2(float(exp.task.losses.l2_weight_decay) / 2.0)
    image = tf_keras.Input((TINY["t"], TINY["hw"], TINY["hw"], TINY["in_ch"]), name="image")
    block = nn_blocks_3d.BottleneckBlock3D(
        filters=TINY["filters"],
        temporal_kernel_size=3,
        temporal_strides=1,
        spatial_strides=1,
        se_ratio=0.25,
        use_self_gating=True,
        kernel_regularizer=l2,
        norm_momentum=norm.norm_momentum,
        norm_epsilon=norm.norm_epsilon,
    )
    x = block(image)
    x = tf_keras.layers.GlobalAveragePooling3D()(x)
    dense = tf_keras.layers.Dense(TINY["classes"], kernel_initializer="random_uniform", kernel_regularizer=l2)
    return tf_keras.Model(inputs={"image": image}, outputs=dense(x)), block, dense


def _kernel(v) -> np.ndarray:
    """TF conv kernel [kt, kh, kw, in, out] (or Dense [in, out]) -> PyTorch [out, in, kt, kh, kw]."""
    a = v.numpy()
    if a.ndim == 5:
        return np.ascontiguousarray(a.transpose(4, 3, 0, 1, 2))
    if a.ndim == 4:  # Conv2D used on pooled 3D input: [1, 1, in, out] -> [out, in, 1, 1, 1]
        return np.ascontiguousarray(a.transpose(3, 2, 0, 1)[..., None])
    if a.ndim == 2:
        return np.ascontiguousarray(a.T)
    return a


def rs3d_names(block, dense) -> dict:
    """rs3d state-dict name -> TF variable, for the tiny model (block.*, fc.*)."""

    def bn(prefix, layer):
        return {
            f"{prefix}.weight": layer.gamma,
            f"{prefix}.bias": layer.beta,
            f"{prefix}.running_mean": layer.moving_mean,
            f"{prefix}.running_var": layer.moving_variance,
        }

    out = {
        "block.downsample.0.weight": block._shortcut_conv.kernel,
        "block.conv1.weight": block._temporal_conv.kernel,
        "block.conv2.weight": block._spatial_conv.kernel,
        "block.conv3.weight": block._expand_conv.kernel,
        "block.self_gating.fc.weight": block._self_gating._transformer_w.kernel,
        "block.self_gating.fc.bias": block._self_gating._transformer_w.bias,
        "block.se.fc1.weight": block._squeeze_excitation._se_reduce.kernel,
        "block.se.fc1.bias": block._squeeze_excitation._se_reduce.bias,
        "block.se.fc2.weight": block._squeeze_excitation._se_expand.kernel,
        "block.se.fc2.bias": block._squeeze_excitation._se_expand.bias,
        "fc.weight": dense.kernel,
        "fc.bias": dense.bias,
    }
    out.update(bn("block.downsample.1", block._norm0))
    for i, layer in ((1, block._norm1), (2, block._norm2), (3, block._norm3)):
        out.update(bn(f"block.bn{i}", layer))
    return out


def update_samples(exp) -> dict:
    tf_keras.utils.set_random_seed(1)
    model, block, dense = tiny_model(exp)
    opt_cfg = exp.trainer.optimizer_config.as_dict()
    opt_cfg["learning_rate"]["cosine"]["decay_steps"] = 8
    opt_cfg["warmup"]["linear"]["warmup_steps"] = 2
    factory = optimizer_factory.OptimizerFactory(type(exp.trainer.optimizer_config)(opt_cfg))
    lr = factory.build_learning_rate()
    opt = factory.build_optimizer(lr)
    opt.shadow_copy(model)
    task = video_classification.VideoClassificationTask(exp.task)
    names = rs3d_names(block, dense)
    assert len(names) == len(model.variables), (len(names), len(model.variables))
    out = {f"upd_w0/{k}": _kernel(v) for k, v in names.items()}
    rng = np.random.default_rng(5)
    lrs = []
    for step in range(1, TINY["steps"] + 1):
        x = rng.uniform(0, 1, (TINY["batch"], TINY["t"], TINY["hw"], TINY["hw"], TINY["in_ch"])).astype(np.float32)
        y = rng.integers(0, TINY["classes"], TINY["batch"])
        lrs.append(float(lr(opt.iterations)))
        task.train_step(({"image": tf.constant(x)}, tf.one_hot(y, TINY["classes"])), model, opt)
        out[f"upd_x{step}"] = np.ascontiguousarray(x.transpose(0, 4, 1, 2, 3))  # [B, C, T, H, W]
        out[f"upd_y{step}"] = y.astype(np.int64)
        out.update({f"upd_w{step}/{k}": _kernel(v) for k, v in names.items()})
    by_var = {id(v): a for v, a in zip(opt._model_weights, opt._average_weights)}
    out.update({f"upd_ema5/{k}": _kernel(by_var[id(v)]) for k, v in names.items()})
    out["upd_lr"] = np.array(lrs, np.float32)
    out["upd_label_smoothing"] = np.float64(exp.task.losses.label_smoothing)
    out["upd_weight_decay"] = np.float64(exp.task.losses.l2_weight_decay)
    out["upd_bn"] = np.array(
        [exp.task.model.norm_activation.norm_momentum, exp.task.model.norm_activation.norm_epsilon], np.float64
    )
    return out


# ----------------------------------------------------------------------------- test views
def view_samples(exp) -> dict:
    data = exp.task.validation_data
    n, stride = data.feature_shape[0], data.temporal_stride
    crop = data.feature_shape[1]
    out = {
        "view_num_clips": np.int64(data.num_test_clips),
        "view_frames": np.int64(n),
        "view_stride": np.int64(stride),
        "view_crop": np.int64(crop),
        "view_min_resize": np.int64(data.min_image_size),
    }
    for length in VIEW_LENGTHS:
        idx = preprocess_ops_3d.sample_linspace_sequence(tf.range(length), data.num_test_clips, n, stride)
        idx = idx.numpy().reshape(data.num_test_clips, n)
        out[f"view_starts_L{length}"] = idx[:, 0].astype(np.int64)
        out[f"view_indices_L{length}"] = idx.astype(np.int64)
    lengths = np.arange(1, 701)
    out["view_sweep_lengths"] = lengths
    out["view_sweep_starts"] = np.stack(
        [
            preprocess_ops_3d.sample_linspace_sequence(tf.range(int(L)), data.num_test_clips, n, stride)
            .numpy()
            .reshape(data.num_test_clips, n)[:, 0]
            for L in lengths
        ]
    ).astype(np.int64)
    sizes = np.random.default_rng(3).integers(160, 2000, (60, 2))
    hws, crops = [], []
    for w, h in sizes:
        resized = preprocess_ops_3d.resize_smallest(tf.zeros((1, int(h), int(w), 1), tf.uint8), data.min_image_size)
        rh, rw = int(resized.shape[1]), int(resized.shape[2])
        yy, xx = tf.meshgrid(tf.range(rh), tf.range(rw), indexing="ij")
        c = preprocess_ops_3d.crop_image(tf.stack([yy, xx], -1)[None], crop, crop, False, 3).numpy()
        hws.append([rh, rw])
        crops.append(c[:, 0, 0, :])
    out["view_sweep_sizes_wh"] = sizes.astype(np.int64)
    out["view_sweep_hw"] = np.array(hws, np.int64)
    out["view_sweep_crops3"] = np.array(crops, np.int64)
    for w, h in VIEW_SIZES:
        resized = preprocess_ops_3d.resize_smallest(tf.zeros((1, h, w, 1), tf.uint8), data.min_image_size)
        rh, rw = int(resized.shape[1]), int(resized.shape[2])
        yy, xx = tf.meshgrid(tf.range(rh), tf.range(rw), indexing="ij")
        coords = tf.stack([yy, xx], -1)[None]
        tops = []
        for k in (3, 1):
            crops = preprocess_ops_3d.crop_image(coords, crop, crop, False, k).numpy()
            tops.append(crops[:, 0, 0, :].astype(np.int64))
        out[f"view_hw_{w}x{h}"] = np.array([rh, rw], np.int64)
        out[f"view_crops3_{w}x{h}"], out[f"view_crops1_{w}x{h}"] = tops
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--yaml", required=True, help="the released k400_resnet3drs_50_tpu.yaml")
    ap.add_argument("--out", default="tests/fixtures/tf_golden.npz")
    args = ap.parse_args()
    exp = load_experiment(args.yaml)
    out = {"tf_version": np.array(tf.__version__), "keras_version": np.array(tf_keras.__version__)}
    for part in (lr_samples, crop_samples, init_samples, ema_decay_samples, update_samples, view_samples):
        out.update(part(exp))
        print(f"{part.__name__}: done")
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
