"""Smoke runs of the learning-to-relax benchmark and GPU check scripts (slow: compiles)."""

import functools
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
def test_gpu_check_script_on_cpu_at_tiny_size(tmp_path):
    env = dict(_env(), OUT=str(tmp_path / "a"), PYTHON=sys.executable, GPU_RELAX_ARGS="--smoke")
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check_relax.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    result = json.loads((tmp_path / "a" / "relax_gpu.json").read_text())
    assert [r["sequence"].split()[0] for r in result["wall"]] == ["shifted", "heat"]
    # the NumPy loop repeats the device's red–black sweeps exactly
    assert all(r["host_counts_equal"] for r in result["wall"])
    actions = json.loads((tmp_path / "a" / "relax_actions.json").read_text())
    assert len(actions["arms"]) == result["T"] == 40
    # (r) the in-process run's counts replayed (here CPU -> CPU) give the same actions
    replay = json.loads((tmp_path / "a" / "relax_replay.json").read_text())
    assert set(replay["learners"]) == {"TsallisINF", "TsallisINFCB", "ChebCB"}
    assert all(r["differing_actions"] == 0 for r in replay["learners"].values())
    assert all(r["T"] == 60 for r in replay["learners"].values())
    # --compare: a second run with the same key takes the same actions
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_check_relax.py"),
            "--smoke",
            "--actions-only",
            "--out",
            str(tmp_path / "b"),
            "--compare",
            str(tmp_path / "a" / "relax_actions.json"),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((tmp_path / "b" / "relax_actions.json").read_text())
    assert again["compare"]["differing_actions"] == 0
    assert again["compare"]["differing_iterations"] == 0


@pytest.mark.slow
def test_gpu_check_record_and_replay_files(tmp_path):
    script = str(ROOT / "benchmarks" / "gpu_check_relax.py")
    record = tmp_path / "record.json"
    run = functools.partial(subprocess.run, env=_env(), capture_output=True, text=True)
    proc = run([sys.executable, script, "--smoke", "--record", str(record)], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recorded = json.loads(record.read_text())
    assert len(recorded["context"]) == 60
    args = ["--smoke", "--parts", "replay", "--out", str(tmp_path / "r"), "--replay"]
    proc = run([sys.executable, script, *args, str(record)], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    replay = json.loads((tmp_path / "r" / "relax_replay.json").read_text())
    assert all(r["differing_actions"] == 0 for r in replay["learners"].values())
    # a tampered record is detected: changed arms differ from the replayed ones
    for rec in recorded["learners"].values():
        rec["arms"][-1] = (rec["arms"][-1] + 1) % 20
    record.write_text(json.dumps(recorded))
    proc = run([sys.executable, script, *args, str(record)], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    replay = json.loads((tmp_path / "r" / "relax_replay.json").read_text())
    assert all(r["differing_actions"] == 1 for r in replay["learners"].values())
    assert all(r["first_difference"] == 59 for r in replay["learners"].values())


def _bench_relax(out, *args) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_relax.py"), *args, "--out", str(out)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_benchmark_at_tiny_size(tmp_path):
    out = tmp_path / "relax.json"
    result = _bench_relax(out, "--T", "30", "--seeds", "1", "--variance", "high", "--nx", "6")
    lap = result["laplacian"][0]
    assert lap["best_fixed"]["total"] <= min(lap["fixed"].values())
    assert lap["instance_optimal"]["total"] <= lap["best_fixed"]["total"]
    wall = lap["wall"]
    assert wall["sor"]["pyamg_sweeps_equal"] and wall["sor_red_black"]["numpy_sweeps_equal"]
    heat = result["heat"][0]
    assert heat["best_fixed"]["total"] <= min(heat["fixed"].values())
    assert heat["best_fixed"]["search"] == "brute force"
    assert set(heat["learners"]) == {"TsallisINF", "TsallisINFCB", "ChebCB"}
    # The golden-section searches can only be as good as brute force on the same grid.
    golden = _bench_relax(
        out, "--T", "30", "--seeds", "1", "--skip-laplacian", "--nx", "6", "--golden"
    )["heat"][0]
    assert golden["best_fixed"]["search"] == "golden section"
    assert golden["best_fixed"]["total"] >= heat["best_fixed"]["total"]
    assert golden["instance_optimal"]["total"] >= heat["instance_optimal"]["total"]
