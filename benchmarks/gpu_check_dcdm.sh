#!/usr/bin/env bash
# The prepared GPU check of DCDM: run once on a lent GPU machine, from the repo root:
#
#     bash benchmarks/gpu_check_dcdm.sh                 # shipped 3-D model
#     WEIGHTS=path/to/model.eqx bash benchmarks/gpu_check_dcdm.sh
#
# Runs benchmarks/gpu_check_dcdm.py: 3-D fluid pressure with obstacles at 64³, 128³ (and 256³
# when memory allows), DCDM vs sciml CG vs jax.scipy CG on the same device, float32,
# rtol 1e-4; says per grid whether DCDM wins on time. Outputs in $OUT (./gpu_out when unset):
# gpu_check_dcdm.log, dcdm_gpu.json, dcdm_gpu.md. The Python step stops starting measurements
# after 130 s and is killed at 150 s. Knobs: PYTHON, GPU_DCDM_PLATFORM (e.g. cpu), GPU_DCDM_ARGS
# (extra arguments, e.g. "--smoke" to try it on a CPU first), GPU_DCDM_TIMEOUT (seconds, 150).

set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-.}"
OUT="${OUT:-./gpu_out}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check_dcdm.log"
PYTHON="${PYTHON:-python}"
if [ -n "${GPU_DCDM_PLATFORM:-}" ]; then
    export JAX_PLATFORMS="$GPU_DCDM_PLATFORM"
fi
exec > >(tee -a "$LOG") 2>&1
echo "sciml DCDM GPU check, $(date -u), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
command -v nvidia-smi > /dev/null && timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
WEIGHT_ARGS=()
if [ -n "${WEIGHTS:-}" ]; then
    WEIGHT_ARGS=(--weights "$WEIGHTS")
fi
# shellcheck disable=SC2086
timeout --kill-after=5 "${GPU_DCDM_TIMEOUT:-150}" "$PYTHON" benchmarks/gpu_check_dcdm.py "${WEIGHT_ARGS[@]}" \
    --out "$OUT" ${GPU_DCDM_ARGS:-}
rc=$?
echo "=== gpu_check_dcdm.py exit $rc after ${SECONDS}s; outputs in $OUT"
exit $rc
