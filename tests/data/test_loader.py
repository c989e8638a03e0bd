"""Samplers and loaders: every video once across ranks, reproducible batches, exact mid-epoch resume."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from rs3d.data import ShardSampler, TrainSampler, build_dataset, build_loader, set_epoch, views_of


@pytest.mark.parametrize("n", [1, 7, 10, 13])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_cover_every_video_once(n, world):
    shards = [list(ShardSampler(n, r, world)) for r in range(world)]
    flat = [i for s in shards for i in s]
    assert sorted(flat) == list(range(n))  # none twice, none dropped, no padding
    assert all(len(s) == len(ShardSampler(n, r, world)) for r, s in enumerate(shards))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_train_sampler_is_a_pure_function_of_seed_and_epoch():
    def order(rank, world, epoch, seed=3):
        s = TrainSampler(10, rank, world, seed=seed)
        s.set_epoch(epoch)
        return list(s)

    assert order(0, 1, 4) == order(0, 1, 4)
    assert [i for _, i in order(0, 1, 4)] != [i for _, i in order(0, 1, 5)]
    assert all(e == 4 for e, _ in order(0, 1, 4))
    ranks = [[i for _, i in order(r, 3, 1)] for r in range(3)]
    assert all(len(x) == 3 == len(TrainSampler(10, r, 3)) for r, x in enumerate(ranks))
    assert len({i for x in ranks for i in x}) == 9  # disjoint; 1 left out to keep ranks equal


def _batches(loader):
    return [{k: v.clone() for k, v in b.items()} for b in loader]


def _equal(a, b):
    return len(a) == len(b) and all(
        all(torch.equal(x[k], y[k]) for k in ("clip", "label", "index", "skipped")) for x, y in zip(a, b)
    )


def test_batches_do_not_depend_on_worker_count_and_resume_exactly(data_cfg):
    """Epoch 1 read with 0 workers; then fresh loaders ("restarts") with 0 and 2 workers, each
    told to start at batch 2, must give exactly batches 2.. of it."""
    data_cfg.RNG_SEED = 7
    full = build_loader(data_cfg, "train", "train", batch_size=2)
    set_epoch(full, 1)
    ref = _batches(full)
    assert len(ref) == len(full) == 6  # 12 videos / 2
    set_epoch(full, 2)
    assert not _equal(ref, _batches(full))  # another epoch, another order and other crops
    for workers in (0, 2):
        data_cfg.DATA_LOADER.NUM_WORKERS = workers
        loader = build_loader(data_cfg, "train", "train", batch_size=2)
        set_epoch(loader, 1)
        assert _equal(_batches(loader), ref)
        restarted = build_loader(data_cfg, "train", "train", batch_size=2)
        set_epoch(restarted, 1, start_batch=2)
        assert _equal(_batches(restarted), ref[2:])
        assert _equal(_batches(restarted), ref)  # the skip applied to one iteration only


def test_resume_does_not_decode_skipped_batches(data_cfg):
    loader = build_loader(data_cfg, "train", "train", batch_size=2)
    seen = []
    get = loader.dataset.__getitem__
    loader.dataset.__class__ = type(
        "Counting", (type(loader.dataset),), {"__getitem__": lambda self, key: (seen.append(key), get(key))[1]}
    )
    set_epoch(loader, 0, start_batch=4)
    assert len(list(loader)) == 2 and len(seen) == 4


def test_eval_loaders_shard_and_keep_everything(data_cfg):
    n = len(build_dataset(data_cfg, "val", "val"))
    seen = []
    for rank in range(3):  # 8 videos over 3 ranks: 2, 3, 3
        val = build_loader(data_cfg, "val", "val", batch_size=3, rank=rank, world_size=3)
        seen += [i for b in val for i in b["index"].tolist()]
        test = build_loader(data_cfg, "test", "test", batch_size=2, rank=rank, world_size=3)
        for batch in test:
            assert isinstance(batch, list) and all(v["error"] == "" for v in batch)
            assert all(views_of(v).shape == (6, 3, 4, 32, 32) for v in batch)
    assert sorted(seen) == list(range(n))


@pytest.mark.slow
def test_torchrun_ranks_see_every_test_video_once(data_cfg, tmp_path):
    """Two real gloo processes: gather every rank's video indices on rank 0."""
    script = tmp_path / "shard.py"
    script.write_text(
        textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {os.getcwd()!r})
        from rs3d.config import get_cfg
        from rs3d.data import build_loader
        from rs3d.engine.distributed import init_distributed, all_gather_object, cleanup
        info = init_distributed("cpu", "gloo", 60)
        cfg = get_cfg()
        cfg.merge_from_list(sys.argv[1:])
        loader = build_loader(cfg, "test", "test", 1, info.rank, info.world_size)
        mine = [v["index"] for b in loader for v in b if not v["error"]]
        everyone = all_gather_object(mine)
        if info.rank == 0:
            print("RESULT", json.dumps(everyone))
        cleanup()
    """)
    )
    opts = [
        "DATA.PATH_TO_DATA_DIR",
        data_cfg.DATA.PATH_TO_DATA_DIR,
        "MODEL.NUM_CLASSES",
        "4",
        "DATA.NUM_FRAMES",
        "2",
        "DATA.TEST_CROP_SIZE",
        "16",
        "TEST.NUM_ENSEMBLE_VIEWS",
        "1",
        "TEST.NUM_SPATIAL_CROPS",
        "1",
        "DATA_LOADER.NUM_WORKERS",
        "0",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", str(script)] + opts,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    everyone = json.loads(proc.stdout.split("RESULT", 1)[1].strip().splitlines()[0])
    assert len(everyone) == 2 and all(everyone)
    assert sorted(everyone[0] + everyone[1]) == list(range(8))


def test_test_views_reach_the_main_process_intact_with_workers(data_cfg):
    """Test items built in a worker equal those built in the main process."""
    main = [v for b in build_loader(data_cfg, "test", "test", 2) for v in b]
    data_cfg.DATA_LOADER.NUM_WORKERS = 2
    workers = [v for b in build_loader(data_cfg, "test", "test", 2) for v in b]
    assert [v["index"] for v in main] == [v["index"] for v in workers] == list(range(8))
    assert all(torch.equal(views_of(a), views_of(b)) for a, b in zip(main, workers))
