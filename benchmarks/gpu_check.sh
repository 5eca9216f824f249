#!/usr/bin/env bash
# The prepared GPU check: run once on a lent GPU machine, from the repository root:
#
#     PYTHONPATH=. bash benchmarks/gpu_check.sh
#
# It prints the GPU and JAX's devices, runs the Krylov benchmark (sciml cg vs jax.scipy cg vs a
# streaming copy, time per CG iteration, in one process) at 256³ float32 and at 64³/128³ in
# float32 and float64, the per-iteration diagnostics of benchmarks/gpu_check.py at 256³ float32,
# and a short correctness smoke (the solver tests on the GPU). Everything goes to $OUT
# (./gpu_out when unset): gpu_check.log, the JSON and Markdown of each step, and summary.md.
#
# Every step has its own time limit and the whole script stops starting new steps once
# GPU_CHECK_BUDGET seconds (default 320) are spent, so it finishes well inside 6 minutes; a
# failing step is logged and the next one still runs. The exit status is the number of failed
# steps (0 when all passed).
#
# Knobs (environment variables), mainly for trying the script on a CPU at tiny sizes first:
#   PYTHON                    python interpreter (default: python)
#   GPU_CHECK_PLATFORM        JAX platform for every step (default: JAX's choice; the tests are
#                             run with JAX_PLATFORMS=cuda,cpu unless this is set)
#   GPU_CHECK_HEADLINE_SIZES  headline grid sides, float32 (default: 256)
#   GPU_CHECK_SIZES           further grid sides, float32 and float64 (default: 64,128)
#   GPU_CHECK_DIAG_SIZE       grid side of the diagnostics (default: 256)
#   GPU_CHECK_REPEATS         timed runs per measurement (default: 10)
#   GPU_CHECK_TESTS           pytest arguments of the smoke (default: tests/solvers/test_cg.py)
#   GPU_CHECK_BUDGET          total seconds (default: 320)
# e.g. on a CPU:  GPU_CHECK_PLATFORM=cpu GPU_CHECK_HEADLINE_SIZES=12 GPU_CHECK_SIZES=8 \
#                 GPU_CHECK_DIAG_SIZE=12 GPU_CHECK_TESTS="tests/solvers/test_cg.py" \
#                 bash benchmarks/gpu_check.sh

set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-.}"

OUT="${OUT:-./gpu_out}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
PYTHON="${PYTHON:-python}"
PLATFORM="${GPU_CHECK_PLATFORM:-}"
HEADLINE="${GPU_CHECK_HEADLINE_SIZES:-256}"
SIZES="${GPU_CHECK_SIZES:-64,128}"
DIAG_SIZE="${GPU_CHECK_DIAG_SIZE:-256}"
REPEATS="${GPU_CHECK_REPEATS:-10}"
TESTS="${GPU_CHECK_TESTS:-tests/solvers/test_cg.py}"
BUDGET="${GPU_CHECK_BUDGET:-320}"
PLATFORM_ARGS=()
if [ -n "$PLATFORM" ]; then
    export JAX_PLATFORMS="$PLATFORM"
    PLATFORM_ARGS=(--platform "$PLATFORM")
fi

exec > >(tee -a "$LOG") 2>&1
START=$SECONDS
FAILED=0
SUMMARY="$OUT/summary.md"
: > "$SUMMARY"

# step NAME LIMIT_SECONDS COMMAND...: run COMMAND with a time limit, capped by what is left of
# the total budget; skip it when less than 20 s are left.
step() {
    local name="$1" limit="$2"
    shift 2
    local left=$((BUDGET - (SECONDS - START)))
    if [ "$left" -lt 20 ]; then
        echo "=== $name: SKIPPED (only ${left}s of the ${BUDGET}s budget left)"
        echo "- $name: skipped (budget)" >> "$SUMMARY"
        FAILED=$((FAILED + 1))
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "=== $name (limit ${limit}s, $((SECONDS - START))s elapsed) $(date -u +%H:%M:%S)"
    local t0=$SECONDS rc
    timeout --kill-after=10 "$limit" "$@"
    rc=$?
    echo "=== $name: exit $rc after $((SECONDS - t0))s"
    echo "- $name: exit $rc, $((SECONDS - t0)) s" >> "$SUMMARY"
    [ "$rc" -ne 0 ] && FAILED=$((FAILED + 1))
    return 0
}

echo "sciml GPU check, $(date -u), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "OUT=$OUT PYTHON=$PYTHON PLATFORM=${PLATFORM:-default} HEADLINE=$HEADLINE SIZES=$SIZES"

if command -v nvidia-smi > /dev/null; then
    step nvidia-smi 30 nvidia-smi
else
    echo "=== nvidia-smi: not found"
fi

step jax-devices 90 "$PYTHON" -c "
import jax, jaxlib, sys
print('python', sys.version.split()[0], '| jax', jax.__version__, '| jaxlib', jaxlib.__version__)
print('backend', jax.default_backend(), '| devices', jax.devices())
print('device kind', jax.devices()[0].device_kind)
"

# The headline first, so it exists even if a later step runs out of time.
step "bench-headline-${HEADLINE}-float32" 150 "$PYTHON" benchmarks/bench_krylov.py \
    "${PLATFORM_ARGS[@]}" --sizes "$HEADLINE" --dtypes float32 --repeats "$REPEATS" \
    --budget 15 --scipy-max-size 64 --out "$OUT/bench_headline" --force

step "bench-${SIZES}-float32-float64" 150 "$PYTHON" benchmarks/bench_krylov.py \
    "${PLATFORM_ARGS[@]}" --sizes "$SIZES" --dtypes float32,float64 --repeats "$REPEATS" \
    --budget 10 --scipy-max-size 64 --out "$OUT/bench_sizes" --force

step "diagnostics-${DIAG_SIZE}-float32" 90 "$PYTHON" benchmarks/gpu_check.py \
    --size "$DIAG_SIZE" --dtype float32 --repeats 20 --budget 10 --out "$OUT/diag"

# The solver tests on the accelerator (conftest defaults JAX_PLATFORMS to cpu, so it is set
# here); tests that need 2 simulated CPU devices cannot run on one GPU and are deselected.
# "cuda,cpu": equinox raises run-time errors through a host callback, which needs the CPU device.
TEST_PLATFORM="${PLATFORM:-cuda,cpu}"
# shellcheck disable=SC2086
step "pytest-smoke" 120 env JAX_PLATFORMS="$TEST_PLATFORM" "$PYTHON" -m pytest -q \
    -p no:cacheprovider --maxfail=5 -k "not shard and not devices and not mesh" \
    --junitxml="$OUT/pytest.xml" $TESTS

{
    echo
    echo "## Tables"
    for table in "$OUT"/bench_headline/krylov.md "$OUT"/bench_sizes/krylov.md; do
        [ -f "$table" ] && { echo; cat "$table"; }
    done
} >> "$SUMMARY"
echo "=== done in $((SECONDS - START))s with $FAILED failed step(s); outputs in $OUT"
cat "$SUMMARY"
exit "$FAILED"
