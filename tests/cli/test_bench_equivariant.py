"""The equivariant benchmark: floor and slope logic (fast), and smoke runs of the CLI suite, the
GPU-check script and the report section (slow: they compile every product)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sciml.cli._bench_equivariant import check_floors, fit_slope, format_table, slopes

ROOT = Path(__file__).resolve().parents[2]


def _case(lmax, channels, **times_ms):
    return {
        "lmax": lmax,
        "batch": 10,
        "channels": channels,
        "products": {
            name.replace("_", "-"): {
                "min_s": t / 1e3,
                "median_s": 2 * t / 1e3,
                "compile_s": 1.0,
                "repeats": 3,
                "times_s": [],
            }
            for name, t in times_ms.items()
        },
        "max_rel_diff": {"sciml-fourier vs sciml-grid": 1e-7},
    }


def test_slope_fit_recovers_a_power_law():
    lmaxes = [2, 3, 4, 6, 8]
    assert fit_slope(lmaxes, [1e-3 * n**3 for n in lmaxes]) == pytest.approx(3.0)
    cases = [_case(n, 1, sciml_grid=0.1 * n**3, e3nn_cg=0.01 * n**6) for n in (1, 2, 3, 4, 5)]
    fitted = slopes(cases)["10x1"]
    assert fitted["sciml-grid"] == pytest.approx(3.0) and fitted["e3nn-cg"] == pytest.approx(6.0)


def test_floors_are_met_missed_or_skipped_as_measured():
    cases = [
        _case(6, 1, sciml_grid=1.0, sciml_fourier=2.0, sciml_cg=10.0, e3nn_cg=2.9, e3nn_grid=1.5),
        _case(6, 16, sciml_grid=1.0, sciml_fourier=20.0, sciml_cg=10.0, e3nn_cg=6.0),
    ]
    floors = {f["name"]: f for f in check_floors(cases)}
    one = floors["sciml-grid >= 3x faster than e3nn-cg (same paths) at L=6, 1 ch"]
    assert one["status"] == "missed" and one["measured"] == pytest.approx(2.9)
    assert one["median"] == pytest.approx(2.9)
    sixteen = floors["sciml-grid >= 5x faster than e3nn-cg (same paths) at L=6, 16 ch"]
    assert sixteen["status"] == "met"
    assert floors["sciml-grid no slower than e3nn-grid at L=6, 1 ch"]["status"] == "met"
    assert floors["sciml-fourier faster than sciml-cg at L=6, 1 ch"]["status"] == "met"
    assert floors["sciml-fourier faster than e3nn-cg at L=6, 16 ch"]["status"] == "missed"
    assert floors["sciml-grid compile <= 5 s per (product, L)"]["status"] == "met"
    # Nothing measured at L = 6: the speed-up floors are skipped, not met.
    skipped = {f["name"]: f["status"] for f in check_floors([_case(2, 1, sciml_grid=1.0)])}
    assert skipped["sciml-grid >= 3x faster than e3nn-cg (same paths) at L=6, 1 ch"] == "skipped"


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    env.pop("XLA_FLAGS", None)
    return env


@pytest.mark.slow
def test_sciml_bench_equivariant_at_tiny_size(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "sciml",
        "bench",
        "equivariant",
        "--lmax",
        "1,2",
        "--configs",
        "8x1,4x2",
        "--repeats",
        "2",
        "--warmup",
        "0",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "equivariant.json").read_text())
    assert len(result["cases"]) == 4
    for case in result["cases"]:
        assert {"sciml-grid", "sciml-fourier", "sciml-cg"} <= set(case["products"])
        # The products compute the same thing: float32 agreement.
        assert all(diff < 1e-5 for diff in case["max_rel_diff"].values()), case
    assert (tmp_path / "equivariant.png").read_bytes()[:4] == b"\x89PNG"
    assert "| floor | status |" in format_table(result)


@pytest.mark.slow
def test_gpu_check_script_on_cpu_smoke(tmp_path):
    env = dict(
        _env(),
        OUT=str(tmp_path),
        PYTHON=sys.executable,
        GPU_EQUIVARIANT_ARGS="--smoke",
        GPU_EQUIVARIANT_BUDGET="600",
    )
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check_equivariant.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    result = json.loads((tmp_path / "equivariant_gpu.json").read_text())
    assert [c["lmax"] for c in result["cases"]] == [1, 2]
    assert all(c["products"] for c in result["cases"])


@pytest.mark.slow
def test_report_section_at_smoke_size(tmp_path):
    out = tmp_path / "report"
    cmd = [
        sys.executable,
        "-m",
        "sciml",
        "report",
        "--smoke",
        "--only",
        "equivariant",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    section = metrics["sections"]["equivariant"]
    assert section["status"] == "ok" and not section["failures"], section
    assert (out / "equivariant-speed.png").stat().st_size > 1000
