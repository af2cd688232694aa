#!/usr/bin/env bash
# The GPU figures the issues ask for, as one command for a lent GPU machine (one call of at most
# 10 minutes; 15 minutes of device time in all). Most wanted first, each part under its own time
# limit, every figure written to $OUT as soon as it is measured, so a run cut short still returns
# what it finished:
#   1. RealisDance-DiT 14B (random weights, 81 frames at 768x768 area): default vs faithful per
#      step, and group offload + fp8 (goal: <= 24 GB at <= 1.2x the default's time); then fp8,
#      group and model offload alone while time is left.
#   2. The SD-1.5 animator at 768x576, 80 frames, fp16: default and model offload.
#   3. Evaluation throughput on CUDA.
# The machine has no network: carry a diffusers wheel of the version pyproject.toml needs, e.g.
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --platform manylinux2014_x86_64 -d .whl diffusers==0.42.1
# (with `/.whl/` in .git/info/exclude) and run `bash benchmarks/gpu.sh` with carry [".whl"].
set -u
OUT=${OUT:-/tmp/gpu-figures}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

timeout "${DIT_SECONDS:-420}" python3 benchmarks/dit.py --config 14b --steps 2 \
    --modes "${DIT_MODES:-default,faithful,group+fp8,fp8,group,offload}" --json "$OUT/dit14b.json" \
    2>&1 | tee "$OUT/dit14b.txt"
timeout "${ANIMATE_SECONDS:-100}" python3 benchmarks/animate.py --config sd15 --size 768x576 \
    --frames 80 --dtype fp16 --modes default,offload 2>&1 | tee "$OUT/animate_sd15.txt"
timeout "${EVAL_SECONDS:-40}" python3 benchmarks/eval.py --device cuda --videos 16 2>&1 \
    | tee "$OUT/eval_cuda.txt"
