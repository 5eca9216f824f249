"""The `sciml` command line: info, solve, outputs, and one-line errors for every user mistake."""

import json
import os
import subprocess
import sys

import pytest

from sciml.cli import main

TINY = ["--size", "8", "--repeats", "1"]


def _single_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("sciml: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "jax / jaxlib" in out and "x64" in out and "devices" in out


def test_info_json(capsys):
    assert main(["--platform", "cpu", "info", "--json"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["backend"] == "cpu" and env["x64"] is True
    assert env["versions"]["sciml"]


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert "sciml" in capsys.readouterr().out
    assert main(["solve", "--help"]) == 0
    assert "--method" in capsys.readouterr().out


def test_solve_writes_metrics_and_plot_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["solve", "poisson2d", *TINY, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "sciml cg" in captured.out and "converged" in captured.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["results"]["status"] == "converged"
    assert metrics["results"]["rel_residual"] <= 1e-8  # checked on the host, rtol = 1e-8
    assert metrics["results"]["error_vs_direct"] < 1e-6
    assert metrics["sizes"]["n"] == 64 and metrics["dtype"] == "float64"
    assert metrics["timings"]["compile_s"] > 0 and metrics["timings"]["run_s"] > 0
    assert metrics["environment"]["versions"]["jax"]
    assert (out / "convergence.png").read_bytes()[:4] == b"\x89PNG"
    before = (out / "metrics.json").read_bytes()

    assert main(["solve", "poisson2d", *TINY, "--out", str(out)]) == 1
    line = _single_error_line(capsys.readouterr().err)
    assert "already contains" in line and "--force" in line
    assert (out / "metrics.json").read_bytes() == before  # untouched

    assert main(["solve", "poisson2d", *TINY, "--seed", "3", "--out", str(out), "--force"]) == 0
    capsys.readouterr()
    assert json.loads((out / "metrics.json").read_text())["problem"]["seed"] == 3
    assert sorted(os.listdir(out)) == ["convergence.png", "metrics.json"]  # no temp files


def test_solve_gmres_float32_on_nonsymmetric_problem(tmp_path, capsys):
    out = tmp_path / "cd"
    args = ["solve", "convection-diffusion", *TINY, "--dtype", "float32", "--out", str(out)]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dtype"] == "float32"
    assert metrics["solver"]["method"] == "gmres" and metrics["solver"]["rtol"] == 1e-5
    assert metrics["results"]["rel_residual"] < 1e-4
    assert "sciml gmres(40)" in capsys.readouterr().out


def test_solve_that_does_not_converge_is_a_failure(tmp_path, capsys):
    out = tmp_path / "short"
    assert main(["solve", "poisson2d", *TINY, "--max-steps", "3", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "FAILED: max_steps_reached" in captured.out
    line = _single_error_line(captured.err.split("wrote")[-1].split("\n", 1)[-1])
    assert "did not converge" in line
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["results"]["status"] == "max_steps_reached"  # recorded, not hidden


@pytest.mark.parametrize(
    "argv, fragment",
    [
        ([], "choose a command"),
        (["frobnicate"], "invalid choice"),
        (["solve", "poisson5d"], "invalid choice: 'poisson5d'"),
        (["solve", "poisson2d", "--size", "0"], "at least 1"),
        (["solve", "poisson2d", "--size", "ten"], "expected an integer"),
        (["solve", "fluid-pressure", "--size", "2"], "too small"),
        (["solve", "poisson3d", "--size", "100000"], "unknowns"),
        (["solve", "poisson2d", "--rtol", "-1e-3"], "must be a finite number > 0"),
        (["solve", "poisson2d", "--rtol", "0"], "must be a finite number > 0"),
        (["solve", "poisson2d", "--rtol", "nan"], "must be a finite number > 0"),
        (["solve", "poisson2d", "--rtol", "2"], "below 1"),
        (["solve", "poisson2d", "--dtype", "float16"], "invalid choice"),
        (
            ["solve", "poisson2d", "--dtype", "float32", "--rtol", "1e-9", "--size", "4"],
            "below the resolution of float32",
        ),
        (["solve", "helmholtz", "--method", "cg"], "use --method gmres"),
        (["solve", "poisson2d", "--bogus"], "unrecognized arguments"),
        (["--platform", "quantum", "info"], "invalid choice"),
        (["report", "--only", "nonsense"], "unknown report section"),
    ],
)
def test_user_mistakes_give_one_line_and_nonzero_exit(argv, fragment, capsys, tmp_path):
    code = main([*argv, *(["--out", str(tmp_path / "o")] if argv[:1] in (["solve"],) else [])])
    assert code != 0
    captured = capsys.readouterr()
    assert fragment in _single_error_line(captured.err)


def test_output_path_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["solve", "poisson2d", *TINY, "--out", str(target)]) == 1
    assert "not a directory" in _single_error_line(capsys.readouterr().err)


def test_python_dash_m_is_the_same_program(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "", "XLA_FLAGS": ""}
    done = subprocess.run(
        [sys.executable, "-m", "sciml", "--platform", "cpu", "info", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["backend"] == "cpu"
    done = subprocess.run(
        [sys.executable, "-m", "sciml", "solve", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert _single_error_line(done.stderr)
