"""Grid expansion, point names, short axis names, the scaling rules, and bad input refused up front."""

import pytest
from helpers import ROOT as REPO

from rs3d.errors import ConfigError
from rs3d.sweep.grid import Axis, check_models, expand_grid, parse_axis, points_from_configs, split_values
from rs3d.sweep.rules import DROPOUT_PER_WIDTH, parse_rules


def _pairs(opts):
    return dict(zip(opts[0::2], opts[1::2]))


def test_split_values_keeps_lists_whole():
    assert split_values("1,2") == ["1", "2"]
    assert split_values("[1,1,3,3],[3,3,3,3], x") == ["[1,1,3,3]", "[3,3,3,3]", "x"]


def test_cartesian_product_first_axis_slowest_and_paper_names(demo_cfg):
    points = expand_grid(demo_cfg, [parse_axis("depth=26,50"), parse_axis("frames=4,8")])
    assert [p.name for p in points] == ["26-4-32", "26-8-32", "50-4-32", "50-8-32"]
    assert [p.label for p in points] == [p.name for p in points]
    assert [p.axes for p in points] == [
        {"depth": "26", "frames": "4"},
        {"depth": "26", "frames": "8"},
        {"depth": "50", "frames": "4"},
        {"depth": "50", "frames": "8"},
    ]
    # depth swaps the depth in the registry name; the config each point loads is the one it names.
    cfg = points[3].load()
    assert (cfg.MODEL.ARCH, cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE) == ("resnet3d_rs50", 8, 32)
    assert points[0].load().MODEL.ARCH == "resnet3d_rs26"
    assert points[3].info["depth"] == 50 and points[3].info["frames"] == 8


def test_other_varying_axes_go_into_the_name(demo_cfg):
    points = expand_grid(
        demo_cfg, [parse_axis("width=0.25,0.5"), parse_axis("SOLVER.BASE_LR=0.001,0.003"), parse_axis("frames=4")]
    )
    assert [p.name for p in points] == [
        "26-4-32_w0.25_base_lr=0.001",
        "26-4-32_w0.25_base_lr=0.003",
        "26-4-32_w0.5_base_lr=0.001",
        "26-4-32_w0.5_base_lr=0.003",
    ]
    cfg = points[2].load()
    assert cfg.MODEL.WIDTH_MULTIPLIER == 0.5 and cfg.SOLVER.BASE_LR == 0.001


def test_overrides_apply_to_every_point_and_grid_values_win(demo_cfg):
    points = expand_grid(demo_cfg, [parse_axis("frames=4,8")], ["SOLVER.MAX_EPOCH", "3", "DATA.NUM_FRAMES", "16"])
    assert [p.load().SOLVER.MAX_EPOCH for p in points] == [3, 3]
    assert [p.load().DATA.NUM_FRAMES for p in points] == [4, 8]


def test_res_scales_the_test_crop_and_jitter_in_proportion():
    cfg_file = str(REPO / "configs" / "k400_r3d50_baseline.yaml")  # 224 train, 256 test, jitter [256, 320]
    (p,) = expand_grid(cfg_file, [parse_axis("res=112")])
    cfg = p.load()
    assert (cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE) == (112, 128)
    assert list(cfg.DATA.TRAIN_JITTER_SCALES) == [128, 160]
    assert p.name == "50-32-112"


def test_list_valued_axis(demo_cfg):
    points = expand_grid(demo_cfg, [parse_axis("DATA.TRAIN_JITTER_SCALES=[32,40],[36,48]")])
    assert [list(p.load().DATA.TRAIN_JITTER_SCALES) for p in points] == [[32, 40], [36, 48]]
    assert len({p.name for p in points}) == 2


@pytest.mark.parametrize(
    "text, words",
    [
        ("MODEL.DEPTHH=26,50", "unknown config key MODEL.DEPTHH"),
        ("MODEL=1,2", "unknown config key MODEL"),
        ("depth", "expected KEY=V1,V2"),
        ("frames=", "empty value"),
        ("frames=4,,8", "empty value"),
        ("frames=4,4", "listed twice"),
        ("OUTPUT_DIR=a,b", "--out"),
    ],
)
def test_bad_axis_is_one_line_naming_it(text, words):
    with pytest.raises(ConfigError) as e:
        parse_axis(text)
    assert words in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "axis, words",
    [
        ("frames=4,abc", "DATA.NUM_FRAMES expects int"),
        ("SOLVER.BASE_LR=fast", "SOLVER.BASE_LR expects float"),
        ("depth=26,big", "depth=big: expects an integer"),
        ("depth=26,77", "not a registered model"),
        ("DATA.TRAIN_JITTER_MODE=area,zoom", "DATA.TRAIN_JITTER_MODE must be one of"),
    ],
)
def test_wrong_value_type_is_refused_when_the_grid_expands(demo_cfg, axis, words):
    with pytest.raises(ConfigError) as e:
        expand_grid(demo_cfg, [parse_axis(axis)])
    assert words in str(e.value) and "--grid" in str(e.value)


def test_a_model_that_cannot_be_built_is_refused_before_training(demo_cfg):
    points = expand_grid(demo_cfg, [parse_axis("MODEL.SE_RATIO=0.25,1.5")])
    check_models(points[:1])
    with pytest.raises(ConfigError, match="point 26-8-32_se_ratio=1.5: the model cannot be built"):
        check_models(points)


def test_overrides_may_not_set_the_output_dir(demo_cfg):
    with pytest.raises(ConfigError, match="OUTPUT_DIR"):
        expand_grid(demo_cfg, [], ["OUTPUT_DIR", "x"])


def test_an_axis_given_twice_is_refused(demo_cfg):
    with pytest.raises(ConfigError, match="given twice"):
        expand_grid(demo_cfg, [Axis("frames", ("4",)), Axis("frames", ("8",))])


def test_points_from_configs_keep_order_and_names():
    files = [str(REPO / "configs" / "ablation" / f) for f in ("00_baseline.yaml", "01_dropout.yaml")]
    points = points_from_configs(files)
    assert [p.name for p in points] == ["00_baseline", "01_dropout"]
    assert [p.label for p in points] == ["50-32-224", "50-32-224"]
    assert points[1].load().MODEL.DROPOUT_RATE == 0.5 and points[0].load().MODEL.DROPOUT_RATE == 0.0


# ----------------------------------------------------------------------------- rules
def test_rules_are_checked_by_name():
    assert parse_rules(["dropout-per-width,slow-resolution", "dropout-per-width"]) == [
        "dropout-per-width",
        "slow-resolution",
    ]
    with pytest.raises(ConfigError, match="unknown rule 'dropout'"):
        parse_rules(["dropout"])


def test_dropout_per_width_is_table_10(demo_cfg):
    widths = ["0.25", "0.5", "1.0", "1.5", "2.0"]
    points = expand_grid(demo_cfg, [parse_axis("width=" + ",".join(widths))], rules=["dropout-per-width"])
    assert [p.load().MODEL.DROPOUT_RATE for p in points] == [0.0, 0.1, 0.25, 0.6, 0.75]
    assert DROPOUT_PER_WIDTH == {0.25: 0.0, 0.5: 0.1, 1.0: 0.25, 1.5: 0.6, 2.0: 0.75}
    assert points[3].rules == {"MODEL.DROPOUT_RATE": "0.6"}


def test_a_width_table_10_does_not_list_is_refused(demo_cfg):
    with pytest.raises(ConfigError, match="Table 10 has no dropout rate for width 0.75"):
        expand_grid(demo_cfg, [parse_axis("width=0.75")], rules=["dropout-per-width"])


def test_explicit_values_win_over_rules(demo_cfg):
    (p,) = expand_grid(demo_cfg, [parse_axis("width=0.5")], ["MODEL.DROPOUT_RATE", "0.3"], rules=["dropout-per-width"])
    assert p.load().MODEL.DROPOUT_RATE == 0.3 and p.rules == {}


def test_drop_path_per_depth_is_table_8():
    cfg_file = str(REPO / "configs" / "k400_rs50.yaml")
    points = expand_grid(cfg_file, [parse_axis("depth=50,152,200,420")], rules=["drop-path-per-depth"])
    assert [p.load().MODEL.DROP_PATH_RATE for p in points] == [0.0, 0.0, 0.1, 0.1]
    (narrow,) = expand_grid(
        cfg_file, [parse_axis("depth=200"), parse_axis("width=0.25")], rules=["drop-path-per-depth"]
    )
    assert narrow.load().MODEL.DROP_PATH_RATE == 0.0  # appendix F: none at width 0.25


def test_slow_resolution_grows_the_crop_with_depth_as_table_8():
    cfg_file = str(REPO / "configs" / "k400_rs50.yaml")  # 224 train / 256 test at depth 50
    points = expand_grid(cfg_file, [parse_axis("depth=50,101,152,200,420")], rules=["slow-resolution"])
    # Table 8: 160, 160, 192, 256, 320 -> ratios 1, 1, 1.2, 1.6, 2.0 of the depth-50 crop (multiples of 8).
    assert [p.load().DATA.TRAIN_CROP_SIZE for p in points] == [224, 224, 272, 360, 448]
    assert [p.load().DATA.TEST_CROP_SIZE for p in points] == [256, 256, 311, 411, 512]
    assert [p.name for p in points][2] == "152-32-272"
