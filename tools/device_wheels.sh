#!/usr/bin/env bash
# Wheels of rs3d's video stack for a GPU machine that has python 3.12 with torch and torchvision but
# no package index: run this on a machine that has one, from the checkout, then copy the checkout
# (with its .whl/ folder, about 48 MB) to the GPU machine and run there
#   WHEELS=.whl bash tools/gpu_benchmarks.sh
# .whl/ is kept out of git through .git/info/exclude.
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
