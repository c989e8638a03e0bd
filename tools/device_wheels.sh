#!/usr/bin/env bash
# Wheels the GPU machine lacks (its python3 is 3.12 with torch/torchvision but no video stack), into
# .whl/ (git-ignored through .git/info/exclude): carry ".whl" to the device and run
# tools/gpu_benchmarks.sh there. About 48 MB. Needs the package registry, so run it here.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
py=${PYTHON:-python3}
$py -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux2010_x86_64 -d .whl decord==0.6.0 av==18.1.0 yacs==0.1.8 termcolor==3.3.0
# Pure-python packages published as sources only: build their wheels here.
tmp=$(mktemp -d)
$py -m pip download -q --no-deps --no-binary=:all: -d "$tmp" fvcore==0.1.5.post20221221 iopath==0.1.10 \
    pytorchvideo==0.1.5
$py -m pip wheel -q --no-deps -w .whl "$tmp"/*.tar.gz
rm -rf "$tmp"
ls -la .whl
