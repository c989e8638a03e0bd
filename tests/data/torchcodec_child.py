"""Running torchcodec in a child process that can load FFmpeg's shared libraries.

torchcodec loads its FFmpeg-linked core on first use; where no system FFmpeg is installed, the
benchmarks' ``torchcodec_env`` points the child at PyAV's bundled copy, as a user's system FFmpeg
would be found.
"""

import subprocess
import sys

import helpers
import pytest

_FOUND = {}  # one search per test run: each try starts a Python process that imports torch


def env_or_skip(sample_video: str) -> dict:
    """An environment in which torchcodec decodes ``sample_video``; skips the test if none."""
    if "env" not in _FOUND:
        _FOUND["env"] = _find(sample_video)
    env = _FOUND["env"]
    if env["error"]:
        pytest.skip(f"torchcodec cannot run here: {env['error']}")
    return env["env"]


def _find(sample_video: str) -> dict:
    if str(helpers.ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout
        sys.path.insert(0, str(helpers.ROOT))
    try:
        from benchmarks.decoders import torchcodec_env
    except ImportError:
        try:
            from rs3d.benchmark.decoders import torchcodec_env
        except ImportError:
            return {"error": "benchmarks/decoders.py (torchcodec_env) is not in this checkout"}
    return torchcodec_env(sample_video)


def run(code: str, args, env: dict) -> str:
    """stdout of ``python -c code *args`` in ``env``; fails the test with stderr's tail."""
    p = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout
