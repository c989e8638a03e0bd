#!/usr/bin/env bash
# The GPU figures of BENCHMARKS.md. Run this on the GPU machine, from the repository root:
#   bash tools/gpu_benchmarks.sh [OUT_DIR]            (default: output/gpu)
# It uses the python3 found there and needs rs3d's dependencies importable (pip install -e ".[dev]").
# On a machine without a package index, first build the wheels on one that has one
# (bash tools/device_wheels.sh), copy the checkout with its .whl/ folder over, and run
#   WHEELS=.whl bash tools/gpu_benchmarks.sh
# which installs them into /tmp/site first. Writes, as JSON and text: model (MFU, memory per clip,
# rs3d vs PyTorchVideo), the same bf16 step without cuDNN autotuning, e2e (data wait vs compute) and
# data (decoders). Each step has a time limit, so the whole run takes about nine minutes at most.
set -uo pipefail
if [ -n "${WHEELS:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
out=${1:-output/gpu}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$out/gpu.txt"
timeout 200 python3 -m benchmarks model --device cuda --models slow_r50 resnet3d_rs50 --frames 32 \
    --res 224 --batch 16 --variants base cl bf16 cl+bf16 --rounds 8 --json "$out/gpu_model.json" \
    2>&1 | tee "$out/gpu_model.txt"
# The same bf16 step without cuDNN autotuning, to back (or drop) the CUDNN_BENCHMARK default.
timeout 60 python3 -m benchmarks model --device cuda --models resnet3d_rs50 --no-ptv --frames 32 \
    --res 224 --batch 16 --variants bf16 --rounds 5 --no-inference --no-cudnn-benchmark \
    --json "$out/gpu_model_no_cudnn_benchmark.json" 2>&1 | tee "$out/gpu_model_no_cudnn_benchmark.txt"
timeout 180 python3 -m benchmarks e2e --device cuda --dataset kinetics-like --num-videos 32 \
    --model resnet3d_rs50 --frames 32 --crop 224 --batch 16 --workers 14 --amp bfloat16 --steps 30 \
    --json "$out/gpu_e2e.json" 2>&1 | tee "$out/gpu_e2e.txt"
timeout 90 python3 -m benchmarks data --num-videos 8 --no-loader --json "$out/gpu_data.json" \
    2>&1 | tee "$out/gpu_data.txt"
