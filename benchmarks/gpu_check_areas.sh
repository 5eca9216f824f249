#!/usr/bin/env bash
# Several areas' prepared GPU checks in one device call, from the repository root:
#
#     bash benchmarks/gpu_check_areas.sh relax skr equivariant dcdm
#
# Runs benchmarks/gpu_check_<area>.sh for each named area in turn, each writing into
# $OUT/<area>/ (OUT defaults to ./gpu_out), and packs everything into $OUT/gpu_areas.tar.gz so
# that one file comes back. Wheels carried in .whl/ (e3nn-jax, pyamg: baselines missing from
# the GPU image; .whl/ is git-ignored, so name it in the device call's `carry`) are installed into
# /tmp/site first when present. Each area script keeps its
# own time limit (about 150 s); the exit status is the number of areas that failed.
set -u
cd "$(dirname "$0")/.."
OUT_ROOT="${OUT:-./gpu_out}"
mkdir -p "$OUT_ROOT"
export PYTHON="${PYTHON:-python3}" PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:-.}"
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
failed=0
for area in "$@"; do
    echo "##### $area ($(date -u +%T))"
    OUT="$OUT_ROOT/$area" bash "benchmarks/gpu_check_$area.sh" || failed=$((failed + 1))
done
tar -czf "$OUT_ROOT/gpu_areas.tar.gz" -C "$OUT_ROOT" --exclude gpu_areas.tar.gz .
echo "##### done in ${SECONDS}s, $failed area(s) failed"
exit "$failed"
