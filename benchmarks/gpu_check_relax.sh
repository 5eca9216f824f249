#!/usr/bin/env bash
# The prepared GPU check of sciml.solvers.relax: run once on a lent GPU machine, from the repo root:
#
#     bash benchmarks/gpu_check_relax.sh
#
# Runs benchmarks/gpu_check_relax.py: (r) replay: Tsallis-INF, Tsallis-INF-CB and ChebCB play
# the T = 5000 high-variance shifted-Laplacian sequence with lexicographic SOR on the host CPU;
# their recorded iteration counts are replayed on the GPU (relax.replay, same key and
# contexts) and the actions compared: expected 0 differing actions (relax_replay.json);
# (a) Tsallis-INF over the T = 5000 high-variance
# shifted-Laplacian sequence with red-black SOR under a fixed key, on the GPU and on the host
# CPU in the same process, writing the chosen arms to relax_actions.json and the number of
# differing actions; (b) wall time of the whole T = 5000 sequence with red-black SOR at
# omega = 1.8 on the GPU (compile and run apart) vs a NumPy loop doing the same sweeps on the
# host, for the 10x10 shifted Laplacians and the heat sequence at nx = 100. Outputs go to $OUT
# (./gpu_out when unset): gpu_check_relax.log, relax_gpu.json, relax_gpu.md,
# relax_actions.json, relax_replay.json (written after each learner). The Python step stops
# starting measurements after GPU_RELAX_BUDGET seconds (default 115) and is killed at 150 s.
# Exit status: that of the Python step.
#
# To compare with a CPU run elsewhere (e.g. this repository's build machine):
#     PYTHONPATH=. python benchmarks/gpu_check_relax.py --actions-only --out cpu_out \
#         --compare gpu_out/relax_actions.json
#
# To replay on the GPU a run recorded on another machine's CPU (e.g. the build machine):
#     PYTHONPATH=. python benchmarks/gpu_check_relax.py --record record.json      # on the CPU
#     PYTHONPATH=. python benchmarks/gpu_check_relax.py --replay record.json --parts replay \
#         --out gpu_out                                                            # on the GPU
#
# Knobs: PYTHON (default python), GPU_RELAX_PLATFORM (JAX platform), GPU_RELAX_BUDGET (s),
# GPU_RELAX_ARGS (extra arguments, e.g. "--smoke" to try it on a CPU first).

set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-.}"
OUT="${OUT:-./gpu_out}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check_relax.log"
PYTHON="${PYTHON:-python}"
if [ -n "${GPU_RELAX_PLATFORM:-}" ]; then
    export JAX_PLATFORMS="$GPU_RELAX_PLATFORM"
fi
exec > >(tee -a "$LOG") 2>&1
echo "sciml relax GPU check, $(date -u), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
command -v nvidia-smi > /dev/null && timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
# shellcheck disable=SC2086
timeout --kill-after=5 150 "$PYTHON" benchmarks/gpu_check_relax.py \
    --budget "${GPU_RELAX_BUDGET:-115}" --out "$OUT" ${GPU_RELAX_ARGS:-}
rc=$?
echo "=== gpu_check_relax.py exit $rc after ${SECONDS}s; outputs in $OUT"
[ -f "$OUT/relax_gpu.md" ] && cat "$OUT/relax_gpu.md"
exit $rc
