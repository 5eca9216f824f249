#!/usr/bin/env bash
# The prepared GPU check of sciml.special: run once on a lent GPU machine, from the repo root:
#
#     bash benchmarks/gpu_check_special.sh
#
# Prints the GPU and JAX's devices, then runs benchmarks/gpu_check_special.py: log_iv/log_kv
# throughput on 1e8 points in float32 and float64 (inputs drawn on the device) against
# single-threaded SciPy on a 1e6-point host subsample (floor: 20x), the float64/float32 errors
# on the 50-digit reference table computed on the device, and a vMF fit in d = 32768 (with
# jax.grad of log_prob). Everything goes to $OUT (./gpu_out when unset): gpu_check_special.log,
# special_gpu.json, special_gpu.md. The Python step stops starting new measurements after
# GPU_SPECIAL_BUDGET seconds (default 170) and is killed at 225 s, so the script ends in under
# 4 minutes. Exit status: that of the Python step.
#
# Knobs (environment variables), mainly for trying the script on a CPU at tiny sizes first:
#   PYTHON                 python interpreter (default: python)
#   GPU_SPECIAL_PLATFORM   JAX platform (default: JAX's choice)
#   GPU_SPECIAL_N          points per workload on the device (default: 1e8)
#   GPU_SPECIAL_SCIPY_N    SciPy subsample (default: 1e6)
#   GPU_SPECIAL_VMF_D      vMF dimension (default: 32768)
#   GPU_SPECIAL_VMF_N      vMF samples per fit (default: 1000)
#   GPU_SPECIAL_BUDGET     seconds (default: 170)
# e.g. on a CPU:  GPU_SPECIAL_PLATFORM=cpu GPU_SPECIAL_N=2e5 GPU_SPECIAL_SCIPY_N=1e5 \
#                 GPU_SPECIAL_VMF_D=512 GPU_SPECIAL_VMF_N=200 bash benchmarks/gpu_check_special.sh

set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-.}"
OUT="${OUT:-./gpu_out}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check_special.log"
PYTHON="${PYTHON:-python}"
if [ -n "${GPU_SPECIAL_PLATFORM:-}" ]; then
    export JAX_PLATFORMS="$GPU_SPECIAL_PLATFORM"
fi
exec > >(tee -a "$LOG") 2>&1
echo "sciml special GPU check, $(date -u), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
command -v nvidia-smi > /dev/null && timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
timeout --kill-after=5 225 "$PYTHON" benchmarks/gpu_check_special.py \
    --n "${GPU_SPECIAL_N:-1e8}" --scipy-n "${GPU_SPECIAL_SCIPY_N:-1e6}" \
    --vmf-d "${GPU_SPECIAL_VMF_D:-32768}" --vmf-n "${GPU_SPECIAL_VMF_N:-1000}" \
    --budget "${GPU_SPECIAL_BUDGET:-170}" --out "$OUT"
rc=$?
echo "=== gpu_check_special.py exit $rc after ${SECONDS}s; outputs in $OUT"
[ -f "$OUT/special_gpu.md" ] && cat "$OUT/special_gpu.md"
exit $rc
