"""Smoke runs of the DCDM benchmark and GPU check scripts (slow: they compile several solvers)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from sciml.solvers import DCDMNet, save_dcdm_model

ROOT = Path(__file__).resolve().parents[2]


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    env.pop("XLA_FLAGS", None)
    return env


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    # Untrained networks: the scripts must run (and report DCDM's failure honestly) without
    # shipped weights.
    folder = tmp_path_factory.mktemp("weights")
    paths = {}
    for dim in (2, 3):
        paths[dim] = folder / f"untrained{dim}d.eqx"
        save_dcdm_model(paths[dim], DCDMNet(dim, key=jax.random.key(dim)), metadata={"n": 8})
    return paths


@pytest.mark.slow
def test_benchmark_at_smoke_size(untrained, tmp_path):
    script = ROOT / "benchmarks" / "bench_dcdm.py"
    args = ["--smoke", "--weights-2d", str(untrained[2]), "--weights-3d", str(untrained[3])]
    proc = subprocess.run(
        [sys.executable, str(script), *args, "--dcdm-max-steps", "10", "--out", str(tmp_path)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "dcdm.json").read_text())
    records = [r for size in result["sizes"] for r in size["records"]]
    assert {r["solver"] for r in records} == {"dcdm", "cg", "jacobi-pcg", "ic-pcg", "amg-pcg"}
    assert {r["kind"] for r in records} == {"smoke", "blobs", "noise"}
    for r in records:
        if r["solver"] != "dcdm":
            assert r["converged"] and r["rel_residual"] <= 1.05 * r["rtol"], r
    # IC(0) and AMG precondition: fewer iterations than plain CG on every system.
    for size in result["sizes"]:
        by = {(r["kind"], r["solver"]): r["iterations"] for r in size["records"]}
        for kind in ("smoke", "blobs", "noise"):
            assert by[(kind, "amg-pcg")] < by[(kind, "ic-pcg")] < by[(kind, "cg")]
    # An untrained model cannot meet the floors, and the script must say so.
    assert all(f["status"] == "missed" for f in result["floors"])
    assert (tmp_path / "dcdm.md").read_text().startswith("# DCDM benchmark")
    assert len(result["smoke_demo"]["runs"]) == 4


@pytest.mark.slow
def test_gpu_check_script_on_cpu(untrained, tmp_path):
    env = dict(
        _env(),
        OUT=str(tmp_path),
        PYTHON=sys.executable,
        GPU_DCDM_PLATFORM="cpu",
        GPU_DCDM_ARGS=f"--smoke --budget 1000 --weights {untrained[3]}",
        GPU_DCDM_TIMEOUT="1100",  # a busy CPU compiles slowly; the GPU run keeps 150 s
    )
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check_dcdm.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    result = json.loads((tmp_path / "dcdm_gpu.json").read_text())
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert [row["n"] for row in result["rows"]] == [8, 16]
    for row in result["rows"]:
        assert row["sciml_cg"]["converged"] and row["jax_scipy_cg"]["converged"]
        assert "dcdm_wins_on_time" in row
    assert "on time" in (tmp_path / "dcdm_gpu.md").read_text()
