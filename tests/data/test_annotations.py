"""Converters on small files written in each dataset's official format: the lists they write read
back with rs3d's own reader, every path points at its video, and bad input is one line naming
the file and line (or the JSON entry)."""

import json
import os

import pytest

from rs3d.cli.convert_annotations import main as cli_main
from rs3d.data.annotations import convert_charades, convert_hmdb51, convert_kinetics, convert_ssv2, convert_ucf101
from rs3d.data.csv import read_classes, read_video_list
from rs3d.data.video_root import resolve_video_root
from rs3d.errors import DataError

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def touch(root, *relative):
    for rel in relative:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def listed(folder, split, root, multi_label=False, num_classes=None):
    """(path relative to ``root/videos``, label) of a written list, checking each path exists
    (relative paths resolved as the loader does: against the folder video_root.txt names)."""
    records = read_video_list(
        str(folder / f"{split}.csv"),
        resolve_video_root(str(folder))[0],
        num_classes=num_classes,
        multi_label=multi_label,
    )
    assert all(os.path.exists(r.path) for r in records)
    out = []
    for r in records:
        label = r.label.nonzero().view(-1).tolist() if multi_label else r.label
        out.append((os.path.relpath(os.path.realpath(r.path), os.path.realpath(root / "videos")), label))
    return out


def one_line(e):
    assert "\n" not in str(e.value)
    return str(e.value)


# ----------------------------------------------------------------------------- UCF101
UCF_TRAIN = {
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi": 1,
    "HandstandPushups/v_HandStandPushups_g08_c01.avi": 2,
    "YoYo/v_YoYo_g08_c01.avi": 3,
    "YoYo/v_YoYo_g09_c02.avi": 3,
}
UCF_TEST = [
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
    "HandstandPushups/v_HandStandPushups_g01_c01.avi",
    "YoYo/v_YoYo_g01_c01.avi",
]


@pytest.fixture
def ucf(tmp_path):
    ann = tmp_path / "ucfTrainTestlist"
    ann.mkdir()
    crlf = "\r\n"  # the official files have Windows line ends
    (ann / "classInd.txt").write_text(crlf.join(["1 ApplyEyeMakeup", "2 HandstandPushups", "3 YoYo"]) + crlf)
    for n in (1, 2):
        (ann / f"trainlist0{n}.txt").write_text(crlf.join(f"{v} {i}" for v, i in UCF_TRAIN.items()) + crlf)
        (ann / f"testlist0{n}.txt").write_text(crlf.join(UCF_TEST) + crlf)
    touch(tmp_path / "videos", *UCF_TRAIN, *UCF_TEST)
    return tmp_path, ann


def test_ucf101_splits_to_rs3d_lists(ucf):
    root, ann = ucf
    summary = convert_ucf101(str(ann), str(root / "videos"), str(root / "out"), splits=(1, 2))
    assert summary["split2"]["splits"] == {
        "train": {"videos": 4, "missing": 0},
        "val": {"videos": 3, "missing": 0},
        "test": {"videos": 3, "missing": 0},
    }
    split = root / "out" / "split1"
    assert read_classes(str(split)) == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
    assert listed(split, "train", root) == [(v, i - 1) for v, i in UCF_TRAIN.items()]
    assert listed(split, "test", root) == listed(split, "val", root) == [(v, i) for i, v in enumerate(UCF_TEST)]
    assert not (split / "missing_videos.tsv").exists()


def test_ucf101_missing_video_is_skipped_and_counted_or_an_error_when_strict(ucf):
    root, ann = ucf
    os.remove(root / "videos" / UCF_TEST[1])
    summary = convert_ucf101(str(ann), str(root / "videos"), str(root / "out"), splits=(1,))
    assert summary["split1"]["splits"]["test"] == {"videos": 2, "missing": 1}
    tsv = (root / "out" / "split1" / "missing_videos.tsv").read_text().splitlines()
    # One row per annotation line, with the splits it feeds (testlist01 is both val and test).
    assert tsv == ["split\tsource\tvideo", f"val,test\t{ann / 'testlist01.txt'}:2\t{UCF_TEST[1]}"]
    with pytest.raises(DataError) as e:
        convert_ucf101(str(ann), str(root / "videos"), str(root / "out2"), splits=(1,), strict=True)
    assert one_line(e) == f"{ann / 'testlist01.txt'}:2: {UCF_TEST[1]} not found under {root / 'videos'}"


def test_ucf101_video_found_after_reencoding_to_another_container(ucf):
    root, ann = ucf
    os.remove(root / "videos" / UCF_TEST[0])
    touch(root / "videos", UCF_TEST[0].replace(".avi", ".mp4"))
    convert_ucf101(str(ann), str(root / "videos"), str(root / "out"), splits=(1,))
    assert listed(root / "out" / "split1", "test", root)[0] == (UCF_TEST[0].replace(".avi", ".mp4"), 0)


@pytest.mark.parametrize(
    "line,message",
    [
        ("YoYo/v_YoYo_g08_c01.avi 1", "class index 1 but YoYo/v_YoYo_g08_c01.avi is in folder 'YoYo' (index 3"),
        ("Juggling/v_Juggling_g08_c01.avi 3", "class folder 'Juggling' of Juggling/v_Juggling_g08_c01.avi is not in"),
        ("YoYo/v_YoYo_g08_c01.avi", "expected '<class>/<video> <class index>'"),
    ],
)
def test_ucf101_bad_trainlist_line_names_file_and_line(ucf, line, message):
    root, ann = ucf
    (ann / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n" + line + "\n")
    with pytest.raises(DataError) as e:
        convert_ucf101(str(ann), str(root / "videos"), str(root / "out"), splits=(1,))
    assert one_line(e).startswith(f"{ann / 'trainlist01.txt'}:2: ") and message in str(e.value)


# ----------------------------------------------------------------------------- HMDB51
@pytest.fixture
def hmdb(tmp_path):
    ann = tmp_path / "testTrainMulti_7030_splits"
    ann.mkdir()
    split1 = {
        "brush_hair": [
            "April_09_brush_my_hair_brush_hair_u_nm_np1_ba_goo_0.avi 1 ",
            "Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_0.avi 2 ",
            "Brushing_Hair_with_Beth_brush_hair_h_nm_np1_le_goo_0.avi 0 ",
        ],
        "cartwheel": [
            "(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi 2 ",
            "Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi 1 ",
        ],
    }
    for cls, lines in split1.items():
        (ann / f"{cls}_test_split1.txt").write_text("\n".join(lines) + "\n")
        touch(tmp_path / "videos", *(f"{cls}/{line.split()[0]}" for line in lines))
    return tmp_path, ann


def test_hmdb51_split_files_to_rs3d_lists(hmdb):
    root, ann = hmdb
    convert_hmdb51(str(ann), str(root / "videos"), str(root / "out"), splits=(1,))
    split = root / "out" / "split1"
    assert read_classes(str(split)) == ["brush_hair", "cartwheel"]
    assert listed(split, "train", root) == [
        ("brush_hair/April_09_brush_my_hair_brush_hair_u_nm_np1_ba_goo_0.avi", 0),
        ("cartwheel/Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi", 1),
    ]
    assert listed(split, "test", root) == [
        ("brush_hair/Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_0.avi", 0),
        ("cartwheel/(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi", 1),
    ]


def test_hmdb51_bad_id_and_missing_split_are_named(hmdb):
    root, ann = hmdb
    with pytest.raises(DataError, match=r"no \*_test_split2.txt files"):
        convert_hmdb51(str(ann), str(root / "videos"), str(root / "out"), splits=(1, 2))
    with open(ann / "cartwheel_test_split1.txt", "a") as f:
        f.write("Another_video_cartwheel_f_cm_np1_ba_bad_8.avi 3\n")
    with pytest.raises(DataError) as e:
        convert_hmdb51(str(ann), str(root / "videos"), str(root / "out"), splits=(1,))
    assert one_line(e).startswith(f"{ann / 'cartwheel_test_split1.txt'}:3: expected '<video> <0|1|2>'")


# ----------------------------------------------------------------------------- SSv2
@pytest.fixture
def ssv2(tmp_path):
    ann = tmp_path / "labels"
    ann.mkdir()
    labels = {
        "Pushing something from left to right": "1",
        "Pushing something from right to left": "2",
        "Holding something next to something": "0",
    }
    (ann / "labels.json").write_text(json.dumps(labels, indent=1))
    train = [
        {
            "id": "78687",
            "label": "holding potato next to vicks vaporub bottle",
            "template": "Holding [something] next to [something]",
            "placeholders": ["potato", "bottle"],
        },
        {
            "id": "42326",
            "label": "pushing a cup from left to right",
            "template": "Pushing [something] from left to right",
            "placeholders": ["a cup"],
        },
    ]
    val = [
        {
            "id": "74225",
            "label": "pushing pen from right to left",
            "template": "Pushing [something] from right to left",
            "placeholders": ["pen"],
        }
    ]
    (ann / "train.json").write_text(json.dumps(train))
    (ann / "validation.json").write_text(json.dumps(val))
    (ann / "test.json").write_text(json.dumps([{"id": "1420"}]))
    touch(tmp_path / "videos", "78687.webm", "42326.webm", "74225.webm")
    return tmp_path, ann


def test_ssv2_json_to_rs3d_lists(ssv2):
    root, ann = ssv2
    convert_ssv2(str(ann), str(root / "videos"), str(root / "out"))
    out = root / "out"
    assert read_classes(str(out)) == [
        "Holding something next to something",
        "Pushing something from left to right",
        "Pushing something from right to left",
    ]
    assert listed(out, "train", root) == [("78687.webm", 0), ("42326.webm", 1)]
    assert listed(out, "val", root) == listed(out, "test", root) == [("74225.webm", 2)]


def test_ssv2_unknown_template_names_the_entry(ssv2):
    root, ann = ssv2
    entries = json.loads((ann / "train.json").read_text())
    entries.append({"id": "5", "label": "x", "template": "Spinning [something] that quickly stops spinning"})
    (ann / "train.json").write_text(json.dumps(entries))
    with pytest.raises(DataError) as e:
        convert_ssv2(str(ann), str(root / "videos"), str(root / "out"))
    assert one_line(e) == (
        f"{ann / 'train.json'}: entry 2 (id 5): class 'Spinning something that quickly "
        "stops spinning' is not in labels.json"
    )


# ----------------------------------------------------------------------------- Charades
CHARADES_HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length"


@pytest.fixture
def charades(tmp_path):
    ann = tmp_path / "Charades"
    ann.mkdir()
    (ann / "Charades_v1_classes.txt").write_text(
        "c000 Holding some clothes\nc001 Putting clothes somewhere\nc002 Taking some clothes from somewhere\n"
    )
    (ann / "Charades_v1_train.csv").write_text(
        "\n".join(
            [
                CHARADES_HEADER,
                '46GP8,HR43,Kitchen,6,7,Yes,"A person cooking on a stove, then leaves.",food;stove,'
                '"A person cooks food on a stove before running out of the room.",'
                '"c002 11.90 21.20;c000 0.00 12.60",24.83',
                "N11GT,0KZ7,Stairs,6,7,Yes,A person is walking.,stairs,A person walks up the stairs.,,18.33",
            ]
        )
        + "\n"
    )
    (ann / "Charades_v1_test.csv").write_text(
        "\n".join(
            [
                CHARADES_HEADER,
                'YSKX3,HJ0P,Bedroom,5,7,Yes,Holding clothes.,clothes,Holds clothes.,"c000 0.0 3.5;c000 5 9",10.1',
            ]
        )
        + "\n"
    )
    touch(tmp_path / "videos", "46GP8.mp4", "N11GT.mp4", "YSKX3.mp4")
    return tmp_path, ann


def test_charades_actions_to_multi_label_lists(charades):
    root, ann = charades
    convert_charades(str(ann), str(root / "videos"), str(root / "out"))
    out = root / "out"
    assert read_classes(str(out)) == [
        "Holding some clothes",
        "Putting clothes somewhere",
        "Taking some clothes from somewhere",
    ]
    assert (out / "train.csv").read_text().splitlines() == ["46GP8.mp4 0,2", "N11GT.mp4 -"]
    assert listed(out, "train", root, multi_label=True, num_classes=3) == [("46GP8.mp4", [0, 2]), ("N11GT.mp4", [])]
    assert listed(out, "test", root, multi_label=True, num_classes=3) == [("YSKX3.mp4", [0])]


@pytest.mark.parametrize(
    "actions,message",
    [
        ('"c000 0.00"', "action 'c000 0.00' is not 'cNNN start end'"),
        ('"c157 1.0 2.0"', "class c157 is not in Charades_v1_classes.txt"),
    ],
)
def test_charades_malformed_action_names_file_and_line(charades, actions, message):
    root, ann = charades
    path = ann / "Charades_v1_test.csv"
    path.write_text(path.read_text() + f"ZZZZZ,HJ0P,Bedroom,5,7,Yes,x,y,z,{actions},3.0\n")
    with pytest.raises(DataError) as e:
        convert_charades(str(ann), str(root / "videos"), str(root / "out"))
    assert one_line(e).startswith(f"{path}:3: ") and message in str(e.value)


# ----------------------------------------------------------------------------- Kinetics
@pytest.fixture
def kinetics(tmp_path):
    ann = tmp_path / "kinetics700_2020"
    ann.mkdir()
    (ann / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,---QUuC4vJs,84,94,train\n"
        '"massaging person\'s head",--3ouPhoy2A,20,30,train\n'
        "air drumming,--nQbRBEz2s,104,114,train\n"
        "abseiling,missingVid1,0,10,train\n"
    )
    (ann / "validate.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nair drumming,-VtLx-mcPds,14,24,validate\n"
    )
    (ann / "test.csv").write_text("youtube_id,time_start,time_end,split\n-0n4Hh4vq6s,0,10,test\n")
    touch(
        tmp_path / "videos",
        "train/abseiling/---QUuC4vJs_000084_000094.mp4",
        "train/massaging person's head/--3ouPhoy2A_000020_000030.mp4",
        "train/air drumming/--nQbRBEz2s.mkv",  # named by the YouTube id only, another container
        "val/air drumming/-VtLx-mcPds_000014_000024.mp4",
    )
    return tmp_path, ann


def test_kinetics_csvs_to_rs3d_lists_missing_clips_counted(kinetics, caplog):
    root, ann = kinetics
    summary = convert_kinetics(str(ann), str(root / "videos"), str(root / "out"))
    out = root / "out"
    assert read_classes(str(out)) == ["abseiling", "air drumming", "massaging person's head"]
    assert listed(out, "train", root) == [
        ("train/abseiling/---QUuC4vJs_000084_000094.mp4", 0),
        ("train/massaging person's head/--3ouPhoy2A_000020_000030.mp4", 2),
        ("train/air drumming/--nQbRBEz2s.mkv", 1),
    ]
    # test.csv has no labels: the test list is the validation list.
    val = [("val/air drumming/-VtLx-mcPds_000014_000024.mp4", 1)]
    assert listed(out, "val", root) == listed(out, "test", root) == val
    assert summary["splits"]["train"] == {"videos": 3, "missing": 1}
    assert (out / "missing_videos.tsv").read_text().splitlines()[
        1
    ] == f"train\t{ann / 'train.csv'}:5\tmissingVid1_000000_000010"
    assert f"{ann / 'train.csv'}: 1 listed video(s) not found" in caplog.text


def test_kinetics_validation_class_outside_training_classes_is_named(kinetics):
    root, ann = kinetics
    with open(ann / "validate.csv", "a") as f:
        f.write("zumba,abcdefghijk,0,10,validate\n")
    with pytest.raises(DataError) as e:
        convert_kinetics(str(ann), str(root / "videos"), str(root / "out"))
    assert one_line(e) == f"{ann / 'validate.csv'}:3: class 'zumba' is not among the 3 classes of train.csv"


# ----------------------------------------------------------------------------- command line
def test_command_writes_lists_and_reports_bad_input_in_one_line(ucf, capsys):
    root, ann = ucf
    assert (
        cli_main(["ucf101", str(ann), "--videos", str(root / "videos"), "--out", str(root / "out"), "--splits", "1"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["split1"]["classes"] == 3
    os.remove(root / "videos" / UCF_TEST[2])
    assert (
        cli_main(
            [
                "ucf101",
                str(ann),
                "--videos",
                str(root / "videos"),
                "--out",
                str(root / "o2"),
                "--splits",
                "1",
                "--strict",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err == f"error: {ann / 'testlist01.txt'}:3: {UCF_TEST[2]} not found under {root / 'videos'}"


# ----------------------------------------------------------------------------- moves, reports, all or nothing
def _cfg(data_dir, **keys):
    from rs3d.config import get_cfg

    cfg = get_cfg()
    cfg.DATA.PATH_TO_DATA_DIR = str(data_dir)
    cfg.MODEL.NUM_CLASSES = 3
    for k, v in keys.items():
        setattr(cfg.DATA, k, v)
    return cfg


def test_lists_survive_a_move_of_the_output_folder_or_of_videos_and_lists_together(ucf):
    """The lists are relative to the video folder, which video_root.txt names (absolute, then
    relative to the lists): moving the output folder alone, or the whole tree, keeps every path."""
    import shutil

    from rs3d.data import build_dataset

    root, ann = ucf
    (root / "tree").mkdir()
    shutil.move(str(root / "videos"), str(root / "tree" / "videos"))  # tree/videos, tree/out
    convert_ucf101(str(ann), str(root / "tree" / "videos"), str(root / "tree" / "out"), splits=(1,))
    expected = [(v, i - 1) for v, i in UCF_TRAIN.items()]
    moved = root / "elsewhere" / "deeper" / "split1"
    shutil.move(str(root / "tree" / "out" / "split1"), str(moved))  # the lists alone
    assert listed(moved, "train", root / "tree") == expected
    assert all(os.path.isfile(r.path) for r in build_dataset(_cfg(moved), "train", "train").records)
    shutil.move(str(moved), str(root / "tree" / "out" / "split1"))
    shutil.move(str(root / "tree"), str(root / "copied_tree"))  # videos and lists together
    ds = build_dataset(_cfg(root / "copied_tree" / "out" / "split1"), "train", "train")
    assert [os.path.relpath(r.path, root / "copied_tree" / "videos") for r in ds.records] == list(UCF_TRAIN)
    assert all(os.path.isfile(r.path) for r in ds.records)


def test_a_list_none_of_whose_videos_exists_is_one_line_and_exit_2(ucf, tmp_path, capsys):
    """Videos moved away from both places video_root.txt names: training stops at start-up with
    one line naming the list, the root and the key to set (it ended in a DataLoader traceback)."""
    import shutil

    from rs3d.cli.train import main as train_main

    root, ann = ucf
    convert_ucf101(str(ann), str(root / "videos"), str(root / "out"), splits=(1,))
    shutil.move(str(root / "videos"), str(root / "moved_videos"))
    data = root / "out" / "split1"
    argv = [
        "--cfg",
        str(REPO / "configs" / "demo.yaml"),
        "DATA.PATH_TO_DATA_DIR",
        str(data),
        "MODEL.NUM_CLASSES",
        "3",
        "OUTPUT_DIR",
        str(tmp_path / "run"),
        "DEVICE",
        "cpu",
        "DATA_LOADER.NUM_WORKERS",
        "0",
        "TRAIN.EVAL_PERIOD",
        "0",
    ]
    assert train_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {data / 'train.csv'}: none of its 4 videos exists")
    assert "video_root.txt" in err[0] and "DATA.PATH_PREFIX" in err[0]
    # The key it names fixes it.
    ds_cfg = _cfg(data, PATH_PREFIX=str(root / "moved_videos"))
    from rs3d.data import build_dataset

    assert all(os.path.isfile(r.path) for r in build_dataset(ds_cfg, "train", "train").records)


def test_kinetics_test_list_taken_from_validate_is_said_so(kinetics, caplog):
    root, ann = kinetics
    summary = convert_kinetics(str(ann), str(root / "videos"), str(root / "out"))
    assert summary["splits"]["test"]["source"] == "validate.csv"
    assert f"{ann / 'test.csv'} has no label column" in caplog.text and "validation videos" in caplog.text
    os.remove(ann / "test.csv")
    caplog.clear()
    assert (
        convert_kinetics(str(ann), str(root / "videos"), str(root / "o2"))["splits"]["test"]["source"] == "validate.csv"
    )
    assert f"{ann / 'test.csv'} does not exist" in caplog.text
    (ann / "test.csv").write_text("label,youtube_id,time_start,time_end,split\nabseiling,---QUuC4vJs,84,94,test\n")
    caplog.clear()
    assert convert_kinetics(str(ann), str(root / "videos"), str(root / "o3"))["splits"]["test"]["source"] == "test.csv"
    assert "test.csv lists the validation videos" not in caplog.text


@pytest.mark.parametrize("damage", ["third split asked for", "bad line in split 2", "split 2 all missing"])
def test_nothing_is_written_before_an_error(ucf, damage, capsys):
    """UCF101 with the default --splits 1 2 3 but two split files: nothing is written (it wrote
    split1 and split2, then failed on the third); the same for any error in a later split."""
    root, ann = ucf
    argv = ["ucf101", str(ann), "--videos", str(root / "videos"), "--out", str(root / "out")]
    if damage == "bad line in split 2":
        (ann / "testlist02.txt").write_text("YoYo/v_YoYo_g01_c01.avi extra\n")
        argv += ["--splits", "1", "2"]
    elif damage == "split 2 all missing":
        (ann / "trainlist02.txt").write_text("YoYo/v_YoYo_g99_c01.avi 3\n")
        argv += ["--splits", "1", "2"]
    assert cli_main(argv) == 2
    # The error is one line, the last (warnings about missing videos may come before it).
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("error: ")]
    assert len(err) == 1, err
    if damage == "third split asked for":
        assert "trainlist03.txt: annotation file not found" in err[0] and "--splits" in err[0]
    assert not (root / "out").exists()
