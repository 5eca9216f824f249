#!/usr/bin/env bash
# The prepared GPU check of sciml.equivariant: run once on a lent GPU machine, from the repo root:
#
#     bash benchmarks/gpu_check_equivariant.sh
#
# Prints the GPU, then runs benchmarks/gpu_check_equivariant.py: batch 10000, float32, L = 1..10,
# sciml grid / Fourier Gaunt products and CG (same even paths) vs e3nn-jax's tensor_product and
# its to_s2grid/from_s2grid product (e3nn-jax optional: install its wheel with sympy, mpmath and
# attrs first, or set SCIML_E3NN_PATH to a folder holding them). Everything goes to $OUT
# (./gpu_out when unset): gpu_check_equivariant.log, equivariant_gpu.json, equivariant_gpu.md.
# No new degree starts after GPU_EQUIVARIANT_BUDGET seconds (default 120) and the Python step is
# killed at 170 s. Exit status: that of the Python step.
#
# On a CPU, to try the script:  GPU_EQUIVARIANT_ARGS=--smoke JAX_PLATFORMS=cpu bash benchmarks/gpu_check_equivariant.sh

set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-.}"
OUT="${OUT:-./gpu_out}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check_equivariant.log"
PYTHON="${PYTHON:-python}"
exec > >(tee -a "$LOG") 2>&1
echo "sciml equivariant GPU check, $(date -u), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
command -v nvidia-smi > /dev/null && timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
# shellcheck disable=SC2086
timeout --kill-after=5 170 "$PYTHON" benchmarks/gpu_check_equivariant.py \
    --budget "${GPU_EQUIVARIANT_BUDGET:-120}" --out "$OUT" ${GPU_EQUIVARIANT_ARGS:-}
rc=$?
echo "=== gpu_check_equivariant.py exit $rc after ${SECONDS}s; outputs in $OUT"
exit $rc
