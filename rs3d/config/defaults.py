"""Every configuration key of rs3d, with its default and the reason for it.

Names follow PySlowFast where the concept is the same, so a PySlowFast user can read a config at
a glance. Defaults are the authors' released R3D-RS-50 recipe on Kinetics-400
(``docs/reference.md``); ``configs/*.yaml`` only state what differs from here. Where the released
TF training code and the PyTorch convention differ (MODEL.INIT, BN.MOMENTUM, DATA.TRAIN_JITTER_MODE,
SOLVER.RUN_LENGTH, SOLVER.MOMENTUM_FORM, SOLVER.SELF_GATING_WEIGHT_DECAY, TRAIN.EMA_FORM,
TEST.VIEW_POSITIONS) the default is PyTorch's, and ``configs/k400_rs50.yaml`` selects TF's.

``None`` means "not set": the comment says what happens then, and ``NONE_DEFAULT_TYPES`` gives the
type a value must have when it is set (from YAML, or ``KEY VALUE`` on the command line; ``null``
in YAML or ``None`` on the command line unsets it again).

Only builders (``build_model(cfg)``, ``build_loader(cfg, ...)``, ``tools/*``) read a config; the
modules below them take plain arguments.
"""

from fvcore.common.config import CfgNode

_C = CfgNode()

# ----------------------------------------------------------------------------- run
# Where checkpoints, logs, TensorBoard events and test results go.
_C.OUTPUT_DIR = "./output"
# Seed of python, numpy and torch; each rank and data-loader worker derives its own from it.
_C.RNG_SEED = 0
# Process-group backend ("nccl", "gloo"); None: nccl on CUDA, gloo on CPU. The number of processes
# is torchrun's (WORLD_SIZE), not a config key.
_C.DIST_BACKEND = None
# Seconds a collective may wait before a rank gives up (a dead peer must not hang the others).
_C.DIST_TIMEOUT_S = 600
# Log a progress line every LOG_PERIOD iterations.
_C.LOG_PERIOD = 10
# Device ("cuda", "cpu", ...); None: cuda if available, else cpu.
_C.DEVICE = None
# cuDNN autotuning of convolution algorithms (CUDA only): clip sizes are fixed, so the one-off
# search pays back within a few steps. It may pick non-deterministic algorithms; set False for
# bit-exact reruns on a GPU.
_C.CUDNN_BENCHMARK = True

# ----------------------------------------------------------------------------- model
_C.MODEL = CfgNode()
# Registry name (rs3d.list_models()).
_C.MODEL.ARCH = "resnet3d_rs50"
# Classifier outputs (400 for Kinetics-400).
_C.MODEL.NUM_CLASSES = 400
# Dropout before the classifier (paper: 0.5 for RS at width 1.0).
_C.MODEL.DROPOUT_RATE = 0.5
# Stochastic depth rate (0.1 with scale jittering, appendix H).
_C.MODEL.DROP_PATH_RATE = 0.1
# "stage": init*(i+2)/5 for stage i as in the released code; "linear": linear in block index (timm).
_C.MODEL.DROP_PATH_MODE = "stage"
# Initialisation: "pytorch" (Kaiming fan_out convs, last BN of each block at 0, classifier N(0, 0.01);
# timm / PySlowFast) or "tf" (the released TF code: VarianceScaling(1, fan_in) truncated-normal convs,
# every BN scale 1, self-gating kernels truncated N(0, 0.01), classifier U(-0.05, 0.05)).
_C.MODEL.INIT = "pytorch"
# Optional overrides of the registry entry (MODEL.ARCH); unset keeps the entry's own.
# Stem: "plain" ([k,7,7] conv) or "deep" (ResNet-D, three 3x3 convs with temporal kernels [5,1,1]);
# None: the entry's stem.
_C.MODEL.STEM_TYPE = None
# Squeeze-Excitation ratio (0 = off, 0.25 for RS); None: the entry's.
_C.MODEL.SE_RATIO = None
# Width multiplier (the paper's width scaling axis); None: the entry's.
_C.MODEL.WIDTH_MULTIPLIER = None

# ----------------------------------------------------------------------------- batch norm
_C.BN = CfgNode()
# Added to the variance before the square root.
_C.BN.EPSILON = 1e-5
# PyTorch convention (0.1 = 10% of the new batch). The released TF recipe uses momentum 0 and
# relies on the EMA of BN statistics; PyTorch's 0.1 plus an EMA that averages BN buffers is the
# safe equivalent (see docs/reference.md).
_C.BN.MOMENTUM = 0.1
# Convert BatchNorm to SyncBatchNorm under DDP.
_C.BN.SYNC = False

# ----------------------------------------------------------------------------- data
_C.DATA = CfgNode()
# Folder with {train,val,test}.csv and optionally classes.txt (must be set to train or test).
_C.DATA.PATH_TO_DATA_DIR = None
# Prepended to every relative path in the CSVs; None: relative to PATH_TO_DATA_DIR.
_C.DATA.PATH_PREFIX = None
# Separator between path and label in the CSVs.
_C.DATA.PATH_LABEL_SEPARATOR = " "
# A manifest of the dataset (folder from `rs3d-manifest build`, or one {split}.csv.gz): training
# and the test take the split's fingerprint from it, checking only each listed file's size (one
# stat). None: the fast digest (size + first and last MiB) of every listed file is computed at
# start-up instead (up to 2 MiB read per file; at Kinetics scale a manifest is cheaper). Either way the
# fingerprint, with the counts, goes into json_stats.log, every checkpoint and test_metrics.json.
_C.DATA.MANIFEST = None
# Frames per clip and the step between sampled frames (32 x 2 for Kinetics).
_C.DATA.NUM_FRAMES = 32
_C.DATA.SAMPLING_RATE = 2
# Square crop side in pixels: training clips, and test views (full-resolution, as in the paper).
_C.DATA.TRAIN_CROP_SIZE = 224
_C.DATA.TEST_CROP_SIZE = 256
# "area": random resized crop, area uniform in TRAIN_JITTER_AREA, log-uniform aspect in
# TRAIN_JITTER_ASPECT, antialiased resize (torchvision); "tf_area": the released TF code's crop
# (tf.image.sample_distorted_bounding_box: side uniform for an aspect uniform in TRAIN_JITTER_ASPECT,
# area in TRAIN_JITTER_AREA and >= 0.1 of the frame; bilinear resize without antialias, truncated to
# uint8); "short_side": random short side in TRAIN_JITTER_SCALES then a random crop (PySlowFast).
_C.DATA.TRAIN_JITTER_MODE = "area"
_C.DATA.TRAIN_JITTER_AREA = [0.08, 1.0]
_C.DATA.TRAIN_JITTER_ASPECT = [0.5, 2.0]
_C.DATA.TRAIN_JITTER_SCALES = [256, 320]
# Horizontal flip of half the training clips.
_C.DATA.RANDOM_FLIP = True
# Label of a flipped clip (rs3d.data.flip): None keeps it; "auto" swaps the classes whose names in
# classes.txt differ only by left/right (or clockwise/counterclockwise), e.g. "Pushing something
# from left to right" <-> "... from right to left"; or explicit label pairs "86:87,93:94".
_C.DATA.FLIP_LABEL_MAP = None
# Which frames a clip uses (rs3d.data.temporal): "dense" = NUM_FRAMES frames SAMPLING_RATE apart
# (Kinetics); "segment" = the video cut into NUM_FRAMES equal segments, one frame from each (TSN,
# Something-Something; SAMPLING_RATE unused; test views are offsets within the segments).
_C.DATA.SAMPLING = "dense"
# Dense sampling with the stride counted at this frame rate (PySlowFast): SAMPLING_RATE frames at
# TARGET_FPS, i.e. SAMPLING_RATE * fps / TARGET_FPS frames of each file, so a clip lasts
# NUM_FRAMES * SAMPLING_RATE / TARGET_FPS seconds whatever the video's rate. None: stride in frames.
_C.DATA.TARGET_FPS = None
# Frame rate assumed for frame folders (a folder of JPEG/PNG frames per video), for TARGET_FPS.
_C.DATA.FRAME_FOLDER_FPS = 30.0
# Apply a video's display matrix (rotation/mirror) as ffmpeg does, so phone videos are upright;
# False keeps the stored orientation.
_C.DATA.AUTOROTATE = True
# Model input = (pixel / 255 - MEAN) / STD; the released recipe uses [0, 1] pixels, no mean/std.
_C.DATA.MEAN = [0.0, 0.0, 0.0]
_C.DATA.STD = [1.0, 1.0, 1.0]
# "decord", "pyav" or "torchcodec" (exact seeking; needs FFmpeg 4-9 shared libraries, checked at start-up).
_C.DATA.DECODING_BACKEND = "decord"
# A broken training video is replaced by another sample at most this many times in a row.
_C.DATA.MAX_RETRIES = 10
# Seconds one video may take to decode before it counts as broken (guards decord hangs).
_C.DATA.DECODE_TIMEOUT_S = 60.0
# Decoder threads per video (decord); parallelism normally comes from DATA_LOADER.NUM_WORKERS.
_C.DATA.DECODE_THREADS = 1
# Repeated sampling (PySlowFast's NUM_SAMPLE): each decoded training clip gives this many clips with
# independent crops and flips. TRAIN.BATCH_SIZE still counts clips (the learning rate too); an epoch
# keeps its clips and steps and decodes 1/N of the videos, each video once every N epochs
# (rs3d.data.loader.TrainSampler). Must divide the clips per forward on a rank.
_C.DATA.TRAIN_CLIPS_PER_VIDEO = 1
# Cut and scale the training crop inside FFmpeg while converting to RGB (rs3d.data.video.crop_scale):
# only the kept pixels are converted, at the size the clip needs; reads through PyAV; swscale's
# bilinear instead of torch's antialiased one (a few levels of difference per pixel).
_C.DATA.TRAIN_CROP_IN_DECODER = False
# Multi-label data (Charades, AVA-style tags): each CSV line lists its classes as ``path 3,17,42``
# (``;`` between the indices when PATH_LABEL_SEPARATOR is ``,``; ``-`` for none). Training then uses
# a sigmoid + binary cross-entropy per class, validation and test report mAP and per-class AP, and
# the test aggregates per-view sigmoids with TEST.ENSEMBLE_METHOD ("max" is Charades practice).
_C.DATA.MULTI_LABEL = False

# ----------------------------------------------------------------------------- augmentation
_C.AUG = CfgNode()
# RandAugment of training clips (rs3d.data.randaugment): RAND_AUGMENT_NUM_OPS ops drawn once per clip
# and applied alike to every frame, at RAND_AUGMENT_MAGNITUDE on the TensorFlow level scale (10 = each
# op's nominal maximum). 0 ops = off (the released recipe: scale jittering instead). The paper's
# additive study before its scale-jittering row: 2 ops at magnitude 15 (appendix F, 224-px crops).
_C.AUG.RAND_AUGMENT_NUM_OPS = 0
_C.AUG.RAND_AUGMENT_MAGNITUDE = 15

_C.MIXUP = CfgNode()
# MixUp / CutMix of training batches (rs3d.engine.mixup; PySlowFast's key names): with probability
# PROB a batch is mixed with itself reversed, by CutMix with probability SWITCH_PROB (when both alphas
# are > 0), else MixUp; lambda ~ Beta(ALPHA, ALPHA) or Beta(CUTMIX_ALPHA, CUTMIX_ALPHA); one lambda
# and one box for the batch, the same on every frame. Targets become soft (TRAIN.LABEL_SMOOTHING
# applied before mixing).
_C.MIXUP.ENABLE = False
_C.MIXUP.ALPHA = 0.8
_C.MIXUP.CUTMIX_ALPHA = 1.0
_C.MIXUP.PROB = 1.0
_C.MIXUP.SWITCH_PROB = 0.5

_C.DATA_LOADER = CfgNode()
# Decoding processes per rank (0 = decode in the training process).
_C.DATA_LOADER.NUM_WORKERS = 8
# Page-locked batches for faster host-to-GPU copies (ignored without CUDA).
_C.DATA_LOADER.PIN_MEMORY = True
# Keep the workers alive between epochs instead of restarting them.
_C.DATA_LOADER.PERSISTENT_WORKERS = True
# Batches each worker prepares ahead.
_C.DATA_LOADER.PREFETCH_FACTOR = 2
# Draw training videos with probability 1 / (videos of their class), with replacement, so every
# class is seen equally often (skewed datasets); the epoch keeps its length (rs3d.data.balance).
_C.DATA_LOADER.CLASS_BALANCED = False

# ----------------------------------------------------------------------------- solver
_C.SOLVER = CfgNode()
# "sgd" (Nesterov; the recipe), "adamw" (small models trained briefly, e.g. the CPU demo) or "lamb"
# (timm's LAMB, large batches as in ResNet strikes back; needs timm installed: pip install timm).
_C.SOLVER.OPTIMIZING_METHOD = "sgd"
# Learning rate at REFERENCE_BATCH_SIZE; the run uses BASE_LR * TRAIN.BATCH_SIZE / REFERENCE_BATCH_SIZE.
_C.SOLVER.BASE_LR = 0.8
_C.SOLVER.REFERENCE_BATCH_SIZE = 1024
# The schedule is linear warm-up then cosine decay, per optimizer step (rs3d.engine.schedule);
# the cosine ends at COSINE_END_LR after MAX_EPOCH epochs.
_C.SOLVER.COSINE_END_LR = 0.0
# Warm-up length (may be fractional) and the rate it starts from.
_C.SOLVER.WARMUP_EPOCHS = 5.0
_C.SOLVER.WARMUP_START_LR = 0.0
# Length of the run in epochs.
_C.SOLVER.MAX_EPOCH = 350
# How MAX_EPOCH becomes optimizer steps: "epochs" (PyTorch): MAX_EPOCH whole epochs of
# floor(clips / TRAIN.BATCH_SIZE) steps; "examples" (TF Model Garden): ceil(MAX_EPOCH x clips /
# TRAIN.BATCH_SIZE) steps, the last epoch cut short (73,682 steps for the released run, not 73,500).
_C.SOLVER.RUN_LENGTH = "epochs"
# SGD momentum and Nesterov (ignored by adamw).
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = True
# Where SGD applies the learning rate: "pytorch" (torch.optim.SGD: the velocity sums gradients, the
# rate scales it) or "keras" (TF's Keras SGD: the rate is inside the velocity, so during a warm-up
# old gradients keep the small rate they came with). The same at a constant rate.
_C.SOLVER.MOMENTUM_FORM = "pytorch"
# Applied to conv and linear weights only (never BN parameters or biases).
_C.SOLVER.WEIGHT_DECAY = 4e-5
# Whether the self-gating convs' kernels are decayed too (True: every conv weight); the released TF
# code gives them no regulariser (False).
_C.SOLVER.SELF_GATING_WEIGHT_DECAY = True
# Fine-tuning: the classifier's learning rate is the schedule's times HEAD_LR_MULT (a new head
# learns faster than the pretrained backbone), and with LAYER_DECAY < 1 each earlier stage's rate is
# LAYER_DECAY times the next one's (res5 x LAYER_DECAY, res4 x LAYER_DECAY^2, ..., stem x ^5).
# 1.0 and 1.0: every parameter follows the schedule.
_C.SOLVER.HEAD_LR_MULT = 1.0
_C.SOLVER.LAYER_DECAY = 1.0

# ----------------------------------------------------------------------------- training
_C.TRAIN = CfgNode()
# Global batch (all ranks and accumulation steps together), as in the paper.
_C.TRAIN.BATCH_SIZE = 1024
# Clips per forward on one rank; None: BATCH_SIZE / world size. Gradient accumulation makes up the rest.
_C.TRAIN.MICRO_BATCH_SIZE = None
# Label smoothing (cross-entropy, or timm's rule for binary cross-entropy: 1 - s + s/K and s/K).
_C.TRAIN.LABEL_SMOOTHING = 0.1
# Loss of single-label data (rs3d.engine.losses): "ce" = softmax cross-entropy; "bce" = sigmoid +
# binary cross-entropy per class on one-hot (or mixed) targets, ResNet strikes back's choice.
# Multi-label data (DATA.MULTI_LABEL) always uses binary cross-entropy.
_C.TRAIN.LOSS = "ce"
# With "bce": targets above this value become 1, the others 0 (timm's target_threshold: both classes
# of a mixed pair count as present); None keeps the soft targets.
_C.TRAIN.BCE_TARGET_THRESHOLD = None
# EMA of weights and BN statistics, decay min(EMA_DECAY, (1+t)/(10+t)) at step t.
_C.TRAIN.EMA = True
_C.TRAIN.EMA_DECAY = 0.9999
# "pytorch" (timm): the average starts as a copy of the model and step t's update uses t = optimizer
# steps before it; "tf" (the Model Garden's ExponentialMovingAverage): it starts at zero and uses
# the count after the update (the first decay is 2/11, not 1/10).
_C.TRAIN.EMA_FORM = "pytorch"
# "bfloat16", "float16" (with a gradient scaler) or "float32".
_C.TRAIN.AMP_DTYPE = "bfloat16"
# channels_last_3d memory format for weights and clips (faster convolutions on some GPUs).
_C.TRAIN.CHANNELS_LAST = False
# torch.compile the model (DDP included) before training.
_C.TRAIN.COMPILE = False
# Max global gradient norm; None: no clipping.
_C.TRAIN.CLIP_GRAD_NORM = None
# Validate (centre clip, centre crop, EMA model) every EVAL_PERIOD epochs; 0 = never.
_C.TRAIN.EVAL_PERIOD = 10
# Checkpoint every CHECKPOINT_PERIOD epochs (and always after the last and after a new best).
_C.TRAIN.CHECKPOINT_PERIOD = 1
# Also checkpoint every CHECKPOINT_PERIOD_ITERS optimizer steps inside an epoch (0 = epoch ends
# only), for long epochs on preemptible machines; only the newest mid-epoch checkpoint is kept.
_C.TRAIN.CHECKPOINT_PERIOD_ITERS = 0
# Keep the newest CHECKPOINT_KEEP epoch checkpoints plus the best.
_C.TRAIN.CHECKPOINT_KEEP = 3
# Continue from the newest good checkpoint in OUTPUT_DIR/checkpoints.
_C.TRAIN.AUTO_RESUME = True
# Initial weights (not a resume): rs3d, PyTorchVideo, PySlowFast or (with CHECKPOINT_INFLATE) timm 2D;
# None: random initialisation.
_C.TRAIN.CHECKPOINT_FILE_PATH = None
# Inflate 2D kernels of CHECKPOINT_FILE_PATH to 3D.
_C.TRAIN.CHECKPOINT_INFLATE = False
# "center" or "mean" inflation of 2D kernels.
_C.TRAIN.CHECKPOINT_INFLATE_MODE = "center"
# Fine-tuning from CHECKPOINT_FILE_PATH (rs3d.engine.finetune). A classifier of another class
# count is re-initialised and everything else loaded. FREEZE_STAGES = n keeps the first n stages at
# their loaded values (weights and BN statistics), counting as PySlowFast does: 1 = stem (s1),
# 2 = stem + res2, ..., 5 = the whole backbone; 0 = nothing frozen.
_C.TRAIN.FREEZE_STAGES = 0
# Keep every BN layer's running statistics fixed (eval mode) while training; BN scales and shifts
# still learn unless their stage is frozen. For small batches or small datasets.
_C.TRAIN.FREEZE_BN = False
# Linear probe: only the classifier learns (FREEZE_STAGES 5 and FREEZE_BN together).
_C.TRAIN.LINEAR_PROBE = False

# ----------------------------------------------------------------------------- test
_C.TEST = CfgNode()
# The CSV (without .csv) that rs3d-test evaluates.
_C.TEST.SPLIT = "test"
# Clips per model forward (views of one or more videos).
_C.TEST.BATCH_SIZE = 30
# Views per video: NUM_ENSEMBLE_VIEWS clips along time x NUM_SPATIAL_CROPS crops (10 x 3 in the paper).
_C.TEST.NUM_ENSEMBLE_VIEWS = 10
_C.TEST.NUM_SPATIAL_CROPS = 3
# On a GPU, resize the test frames there: workers only decode, which is what limits a GPU test.
# Ignored on a CPU, where the workers resize in parallel with the model.
_C.TEST.RESIZE_ON_DEVICE = True
# "mean", "sum" or "max" over the per-view softmax.
_C.TEST.ENSEMBLE_METHOD = "mean"
# Weights to test; None: the newest checkpoint under OUTPUT_DIR.
_C.TEST.CHECKPOINT_FILE_PATH = None
# Where the test views sit: "pytorch" (clip starts rounded to the nearest frame, short side resized
# with rounding, centre crop (W - S) // 2) or "tf" (the released TF code: starts floored from a float32
# linspace, the long side floored, centre crop round(W / 2 - S // 2)).
_C.TEST.VIEW_POSITIONS = "pytorch"
# Evaluate only the test videos that this manifest (folder or {split}.csv.gz) also lists, matched
# by key, e.g. the intersection of two labs' copies (`rs3d-manifest diff A B --intersection OUT`).
_C.TEST.SUBSET_MANIFEST = None
# Test an rs3d checkpoint's EMA weights (the recipe's) when it holds them.
_C.TEST.USE_EMA = True

_C.TENSORBOARD = CfgNode()
# TensorBoard events under OUTPUT_DIR/tensorboard (json_stats.log is always written).
_C.TENSORBOARD.ENABLE = True

# The type each key whose default is None takes when it is set.
NONE_DEFAULT_TYPES = {
    "DIST_BACKEND": str,
    "DEVICE": str,
    "MODEL.STEM_TYPE": str,
    "MODEL.SE_RATIO": float,
    "MODEL.WIDTH_MULTIPLIER": float,
    "DATA.PATH_TO_DATA_DIR": str,
    "DATA.PATH_PREFIX": str,
    "DATA.MANIFEST": str,
    "DATA.FLIP_LABEL_MAP": str,
    "DATA.TARGET_FPS": float,
    "TRAIN.MICRO_BATCH_SIZE": int,
    "TRAIN.CLIP_GRAD_NORM": float,
    "TRAIN.BCE_TARGET_THRESHOLD": float,
    "TRAIN.CHECKPOINT_FILE_PATH": str,
    "TEST.CHECKPOINT_FILE_PATH": str,
    "TEST.SUBSET_MANIFEST": str,
}

# Keys that older configs may still set, and why they are gone (load_config names them).
REMOVED_KEYS = {
    "NUM_GPUS": "the number of processes is torchrun's (--nproc_per_node), not a config key",
    "TRAIN.ENABLE": "rs3d-train always trains; rs3d-test tests",
    "TEST.ENABLE": "rs3d-test always tests; rs3d-train trains",
    "SOLVER.LR_POLICY": "the schedule is always warm-up + cosine (SOLVER.WARMUP_EPOCHS, SOLVER.COSINE_END_LR)",
}


def get_cfg() -> CfgNode:
    """A fresh copy of the defaults."""
    return _C.clone()
