#!/usr/bin/env bash
# The prepared GPU check of SKR data generation: run once on a lent GPU machine, from the repo root:
#
#     bash benchmarks/gpu_check_skr.sh
#
# Darcy s = 258 (n = 65 536), N = 200, float64, rtol 1e-8: independent batched CG, sorted
# GCRO-DR(40,20) chains (25 side by side), independent batched GMRES(40), the same chains by
# GMRES(40) without recycling, and the whole `generate_dataset` pipeline;
# seconds per sample and samples per second. Outputs go to $OUT (./gpu_out when unset):
# gpu_check_skr.log, skr_gpu.json, skr_gpu.md. The Python step starts no new measurement after
# GPU_SKR_BUDGET seconds (default 120) and is killed at GPU_SKR_KILL seconds (default 150).
#
# Knobs (environment variables):
#   PYTHON           python interpreter (default: python3)
#   GPU_SKR_N        number of systems (default 200; lower it if the first run overran)
#   GPU_SKR_GRID     nodes per side (default 258)
#   GPU_SKR_CHAINS   SKR chains side by side (default 25)
#   GPU_SKR_GMRES_N  solve the GMRES(40) rows on the first this many systems (default: all;
#                    at s = 258 GMRES(40) needs 9,000-14,000 iterations per system)
#   GPU_SKR_BUDGET   seconds (default 120)
#   GPU_SKR_KILL     seconds (default 150)
# On a CPU first:   bash benchmarks/gpu_check_skr.sh --smoke

set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-.}"
OUT="${OUT:-./gpu_out}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check_skr.log"
PYTHON="${PYTHON:-python3}"
exec > >(tee -a "$LOG") 2>&1
echo "sciml SKR GPU check, $(date -u), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
command -v nvidia-smi > /dev/null && timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
timeout --kill-after=5 "${GPU_SKR_KILL:-150}" "$PYTHON" benchmarks/gpu_check_skr.py \
    --n "${GPU_SKR_N:-200}" --grid "${GPU_SKR_GRID:-258}" --chains "${GPU_SKR_CHAINS:-25}" \
    ${GPU_SKR_GMRES_N:+--gmres-n "$GPU_SKR_GMRES_N"} \
    --budget "${GPU_SKR_BUDGET:-120}" --out "$OUT" "$@"
rc=$?
echo "=== gpu_check_skr.py exit $rc after ${SECONDS}s; outputs in $OUT"
exit $rc
