"""`sciml datagen`: argument errors, a run, re-run skipping, --force, devices and processes."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sciml.cli import main
from sciml.operators.datagen import load_dataset
from sciml.operators.datagen._dataset import dataset_settings

# The same small problem as tests/operators/test_dataset.py (one compilation for both).
ARGS = ["--n", "12", "--grid", "10", "--m", "10", "--k", "4", "--chunk", "3", "--chains", "2"]
ROOT = Path(__file__).resolve().parents[2]


def datagen(*argv):
    return main(["--no-progress", "datagen", *map(str, argv)])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope", "--n", "4", "--grid", "8"], "unknown family 'nope'; choose from darcy"),
        (["darcy", "--n", "0", "--grid", "8"], "argument --n: must be at least 1, got 0"),
        (["darcy", "--n", "4", "--grid", "3"], "argument --grid: must be at least 4, got 3"),
        (["darcy", "--n", "4", "--grid", "8", "--k", "40"], "--k 40 must be smaller than --m 36"),
        (["darcy", "--n", "4", "--grid", "8", "--method", "lu"], "invalid choice: 'lu'"),
        (["darcy", "--n", "4", "--grid", "8", "--chains", "5"], "--chains 5 exceeds --n 4"),
        (["darcy", "--n", "4", "--grid", "8", "--devices", "64"], "only 2 local device"),
        (["darcy", "--n", "4", "--grid", "8", "--rtol", "2"], "--rtol 2 must be below 1"),
        (["darcy", "--n", "4", "--grid", "100000"], "unknowns per system"),
        (["darcy", "--n", "4", "--grid", "8", "--seed", str(10**23)], "--seed"),
    ],
)
def test_bad_arguments(tmp_path, capsys, argv, message):
    code = datagen(*argv, "--out", tmp_path / "out")
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err, err
    assert len(err.splitlines()) == 1 and err.startswith("sciml: error:")
    assert not (tmp_path / "out").exists()


def test_settings_the_solver_refuses_leave_nothing_behind(tmp_path, capsys):
    # Refused before `--out` is touched: a settings file left by a failed start would make the
    # corrected command ask for --force.
    out = tmp_path / "out"
    assert datagen("helmholtz", "--n", "3", "--grid", "10", "--method", "cg", "--out", out) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "symmetric positive definite" in err, err
    assert not out.exists()


def test_missing_required_arguments(capsys):
    assert datagen("darcy", "--n", "4") == 2
    assert "--grid" in capsys.readouterr().err


def test_refuses_other_settings_and_foreign_directories(tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    # A dataset index written with other settings: refused before anything is solved.
    settings = dataset_settings("darcy", n_samples=99, grid=10, m=10, k=4, chunk_size=3)
    meta = {"settings": dict(settings, n_chains=2), "chunks": []}
    (out / "meta.json").write_text(json.dumps(meta))
    assert datagen("darcy", *ARGS, "--out", out) == 1
    err = capsys.readouterr().err
    assert "different settings (n_samples: 99 -> 12)" in err and "--force" in err
    assert len(err.strip().splitlines()) <= 2  # the banner line and the error
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert datagen("darcy", *ARGS, "--out", foreign) == 1
    assert "holds no sciml dataset" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "mine"


def test_generate_rerun_and_force(tmp_path, capsys):
    out = tmp_path / "darcy"
    assert datagen("darcy", *ARGS, "--out", out) == 0
    err = capsys.readouterr().err
    assert "4 chunk(s) computed, 0 kept, of 4" in err and "max relative residual" in err
    data = load_dataset(out)
    assert data.solutions.shape == (12, 8, 8) and float(data.residuals.max()) <= 1e-8
    assert datagen("darcy", *ARGS, "--out", out) == 0
    assert "0 chunk(s) computed, 4 kept" in capsys.readouterr().err
    assert datagen("darcy", *ARGS, "--rtol", "1e-6", "--out", out) == 1
    assert "different settings (rtol: 1e-08 -> 1e-06)" in capsys.readouterr().err
    assert datagen("darcy", *ARGS, "--rtol", "1e-6", "--out", out, "--force") == 0
    assert "4 chunk(s) computed" in capsys.readouterr().err
    assert load_dataset(out).meta["settings"]["rtol"] == 1e-6


@pytest.mark.slow
def test_devices_shard_the_chains(tmp_path):
    # Two simulated CPU devices (conftest): the chains are split over them with shard_map.
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert datagen("darcy", *ARGS, "--out", single) == 0
    assert datagen("darcy", *ARGS, "--out", sharded, "--devices", "2") == 0
    a, b = load_dataset(single), load_dataset(sharded)
    np.testing.assert_array_equal(a.order, b.order)
    np.testing.assert_array_equal(a.iterations, b.iterations)
    np.testing.assert_allclose(a.solutions, b.solutions, rtol=1e-10, atol=1e-14)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_with_a_local_coordinator(tmp_path):
    # Two local processes and a coordinator on 127.0.0.1: each generates one chain's chunks,
    # process 0 merges the index; the result equals a single-process run.
    out, reference = tmp_path / "distributed", tmp_path / "reference"
    coordinator = f"127.0.0.1:{_free_port()}"
    env = dict(os.environ, JAX_PLATFORMS="cpu", SCIML_PROGRESS="0", PYTHONPATH=str(ROOT))
    env.pop("XLA_FLAGS", None)  # one device per process
    command = [sys.executable, "-m", "sciml", "datagen", "darcy", *ARGS, "--out", str(out)]
    command += ["--distributed", "--coordinator", coordinator, "--num-processes", "2"]
    procs = [
        subprocess.Popen(
            [*command, "--process-id", str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    assert "process 1/2" in outputs[1][1] and "wrote" in outputs[0][1]
    data = load_dataset(out)
    assert data.meta["complete"] and len(data.meta["chunks"]) == 4
    assert not list(out.glob("index.p*.json"))
    assert datagen("darcy", *ARGS, "--out", reference) == 0
    ref = load_dataset(reference)
    np.testing.assert_array_equal(data.order, ref.order)
    np.testing.assert_array_equal(data.iterations, ref.iterations)
    np.testing.assert_allclose(data.solutions, ref.solutions, rtol=1e-10, atol=1e-14)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "extra", "outputs"),
    [
        ("bench_skr.py", (), ("bench_skr.json", "bench_skr.md")),
        ("gpu_check_skr.py", (), ("skr_gpu.json", "skr_gpu.md")),
        ("gpu_check_skr.py", ("--gmres-n", "3"), ("skr_gpu.json", "skr_gpu.md")),
        ("fno_darcy.py", (), ("fno_darcy.json",)),
    ],
)
def test_benchmark_scripts_smoke(tmp_path, script, extra, outputs):
    env = dict(os.environ, JAX_PLATFORMS="cpu", SCIML_PROGRESS="0", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--smoke", "--out", str(tmp_path)]
        + list(extra),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for name in outputs:
        assert (tmp_path / name).exists(), name
    assert "|" in done.stdout  # a Markdown table
    if extra:  # the GMRES rows on the first 3 of the 8 smoke systems
        assert "| gmres(40), batched, first 3 |" in done.stdout
        assert "3/3" in done.stdout
