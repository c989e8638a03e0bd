"""tools/check_open_gop.py: on an open-GOP file rs3d's readers deliver every frame exactly."""
import json

import helpers


def test_rs3d_readers_are_exact_on_open_gop_where_decord_alone_is_not(capsys):
    tool = helpers.load_tool("check_open_gop")
    assert tool.main(["--frames", "40", "--gop", "12"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    opened, closed = results["open_gop"], results["closed_gop"]
    assert opened["has_open_gop"] and not closed["has_open_gop"]
    for r in (opened, closed):
        assert r["rs3d-decord"]["wrong"] == [] and r["rs3d-pyav"]["wrong"] == []
    assert closed["decord"]["wrong"] == []
    # Why rs3d guards decord: read alone, frames around the open-GOP keyframes come out wrong.
    assert opened["decord"]["wrong"], "decord now decodes open GOPs: the guard may be dropped"


def test_decode_ab_benchmark_runs_against_a_commit(tmp_path, capsys):
    """tools/benchmark_decode_ab.py loads decode.py of a commit beside the current one."""
    import subprocess

    import pytest

    if subprocess.run(["git", "-C", str(helpers.ROOT), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    tool = helpers.load_tool("benchmark_decode_ab")
    out = tmp_path / "ab.json"
    assert tool.main(["--old", "HEAD", "--num-videos", "1", "--clips-per-video", "1", "--gop", "32",
                      "--cache-dir", str(tmp_path), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["readers"]) == {"old-decord", "old-pyav", "new-decord", "new-pyav"}
    assert result["max_mean_abs_diff"] < 0.5
    assert all(r["clips_per_cpu_s"] > 0 for r in result["readers"].values())
