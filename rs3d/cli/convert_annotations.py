"""``rs3d-convert-annotations``: rs3d's video lists from a dataset's official annotation files.

    rs3d-convert-annotations ucf101 ucfTrainTestlist --videos UCF-101 --out datasets/ucf101
    rs3d-convert-annotations hmdb51 testTrainMulti_7030_splits --videos hmdb51 --out datasets/hmdb51
    rs3d-convert-annotations ssv2 labels --videos 20bn-something-something-v2 --out datasets/ssv2
    rs3d-convert-annotations charades Charades --videos Charades_v1_480 --out datasets/charades
    rs3d-convert-annotations kinetics kinetics700_2020 --videos k700 --out datasets/kinetics700

ANNOTATIONS is the folder of the
official files (classInd.txt + trainlist0N.txt + testlist0N.txt; the <class>_test_split<N>.txt
files; labels.json + train.json + validation.json; Charades_v1_classes.txt + Charades_v1_train.csv
+ Charades_v1_test.csv; train.csv + validate.csv [+ test.csv]). UCF101 and HMDB51 give one folder
per official split (OUT/split1 ...). Each output folder holds {train,val,test}.csv, with paths
relative to the video folder, video_root.txt naming that folder (so the lists survive a move), and
classes.txt: point DATA.PATH_TO_DATA_DIR at it. A listed video that is not under --videos is
skipped, counted and listed in missing_videos.tsv (split, source file:line, video); --strict stops
at the first one instead, naming its file and line. Everything is checked before anything is
written; exit status 2 on bad annotations or a missing split file.
"""

from __future__ import annotations

import json
import sys
from typing import Optional, Sequence

from rs3d.data.annotations import CONVERTERS
from rs3d.engine.logs import setup_logging

from . import run_tool
from .args import command_parser, parse_command


def _run(argv: Optional[Sequence[str]] = None) -> int:
    p = command_parser(
        "rs3d-convert-annotations",
        __doc__,
        config=False,
        overrides=False,
        docs="docs/datasets.md",
        examples=("rs3d-convert-annotations ucf101 ucfTrainTestlist --videos UCF-101 --out datasets/ucf101",),
    )
    p.add_argument("dataset", choices=sorted(CONVERTERS))
    p.add_argument("annotations", help="folder of the dataset's official annotation files")
    p.add_argument("--videos", required=True, help="folder the videos are under (each listed one is checked)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3], help="official splits to write (ucf101, hmdb51)")
    p.add_argument("--strict", action="store_true", help="a missing video is an error, not skipped")
    a = parse_command(p, argv)
    setup_logging(stream=sys.stderr)
    kwargs = {"splits": a.splits} if a.dataset in ("ucf101", "hmdb51") else {}
    summary = CONVERTERS[a.dataset](a.annotations, a.videos, a.out, strict=a.strict, **kwargs)
    print(json.dumps(summary, indent=2))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command: its exit status, with every rs3d error turned into one ``error:`` line."""
    return run_tool(_run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
