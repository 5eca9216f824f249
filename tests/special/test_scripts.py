"""Smoke runs of the special-functions report section, benchmark and GPU check (slow: compiles)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    env.pop("XLA_FLAGS", None)
    return env


@pytest.mark.slow
def test_report_section_at_smoke_size(tmp_path):
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "sciml", "report", "--smoke", "--only", "special"]
    proc = subprocess.run(
        [*cmd, "--out", str(out)], env=_env(), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    index = (out / "index.md").read_text()
    assert "Special functions" in index and "special-heatmap.png" in index
    metrics = json.loads((out / "metrics.json").read_text())
    section = metrics["sections"]["special"]
    assert section["status"] == "ok" and not section["failures"]
    assert (out / "special-heatmap.png").stat().st_size > 1000


@pytest.mark.slow
def test_benchmark_at_tiny_size(tmp_path):
    script = ROOT / "benchmarks" / "bench_special.py"
    args = ["--n", "3000", "--repeats", "1", "--no-tfp", "--vmf-dims", "64", "--vmf-n", "50"]
    proc = subprocess.run(
        [sys.executable, str(script), *args, "--out", str(tmp_path)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "special.json").read_text())
    assert {r["method"] for r in result["throughput"]} == {
        "sciml float64",
        "sciml float32",
        "scipy float64",
    }
    statuses = {f["name"]: f["status"] for f in result["floors"]}
    assert statuses["log_iv >= 3x TFP [wide]"] == "skipped"
    assert statuses["sciml log_iv all finite [wide]"] == "met"
    assert all(a["nonfinite"] == 0 for a in result["accuracy"] if "sciml" in a["method"])


@pytest.mark.slow
def test_gpu_check_script_on_cpu_at_tiny_size(tmp_path):
    env = dict(
        _env(),
        OUT=str(tmp_path),
        PYTHON=sys.executable,
        GPU_SPECIAL_PLATFORM="cpu",
        GPU_SPECIAL_N="20000",
        GPU_SPECIAL_SCIPY_N="20000",
        GPU_SPECIAL_VMF_D="128",
        GPU_SPECIAL_VMF_N="50",
    )
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check_special.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    result = json.loads((tmp_path / "special_gpu.json").read_text())
    assert len(result["throughput"]) == 8 and len(result["vmf"]) == 6
    assert result["vmf_grad_finite"]
    assert all(r["max"] < 1e-5 for r in result["accuracy"])
