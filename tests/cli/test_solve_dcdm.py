"""`sciml solve --method dcdm`: weights, outputs, failures and usage errors."""

import json

import jax
import pytest

from sciml.cli import main
from sciml.solvers import DCDMNet, save_dcdm_model


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("sciml: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def untrained_2d(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "untrained2d.eqx"
    save_dcdm_model(path, DCDMNet(2, key=jax.random.key(0)), metadata={"note": "untrained"})
    return path


def test_dcdm_with_given_weights_writes_metrics_and_reports_failure(untrained_2d, tmp_path, capsys):
    # An untrained network proposes poor directions: 3 iterations cannot reach 1e-8, and the
    # command must say so (exit 1) after writing its outputs.
    out = tmp_path / "run"
    argv = ["solve", "poisson2d", "--size", "8", "--repeats", "1", "--method", "dcdm"]
    code = main([*argv, "--weights", str(untrained_2d), "--max-steps", "3", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "did not converge" in _error_line(captured.err)
    assert "sciml dcdm" in captured.out and "max_steps_reached" in captured.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["solver"]["method"] == "dcdm"
    assert metrics["solver"]["weights"] == str(untrained_2d)
    assert metrics["solver"]["model_metadata"] == {"note": "untrained"}
    assert metrics["results"]["iterations"] == 3
    assert len(metrics["results"]["residual_history"]) == 4
    assert "--weights" in metrics["command"]
    assert (out / "convergence.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow  # one more DCDM compilation; the plumbing is covered by the test above
def test_dcdm_with_the_shipped_model(tmp_path, capsys):
    from sciml.solvers._dcdm import default_dcdm_model

    try:
        default_dcdm_model(2)
    except ValueError:
        pytest.skip("no shipped 2-D DCDM weights in this checkout")
    out = tmp_path / "run"
    argv = ["solve", "poisson2d", "--size", "16", "--repeats", "1", "--method", "dcdm"]
    code = main([*argv, "--rtol", "1e-4", "--out", str(out)])
    # The command's plumbing is under test here, not the model's quality (the benchmarks
    # measure that): a model that misses the tolerance must be reported as a failure.
    captured = capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["solver"]["weights"] == "shipped"
    if code == 0:
        assert metrics["results"]["status"] == "converged"
        assert metrics["results"]["rel_residual"] <= 1.1e-4  # recomputed on the host
    else:
        assert code == 1 and "did not converge" in _error_line(captured.err)
        assert metrics["results"]["status"] != "converged"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["darcy", "--method", "dcdm"], "needs a grid Laplacian problem"),
        (["poisson2d", "--method", "dcdm", "--size", "9"], "must be even"),
        (["poisson2d", "--method", "cg", "--weights", "x.eqx"], "only used with --method dcdm"),
        (["poisson2d", "--method", "dcdm", "--weights", "nowhere.eqx"], "no such file"),
        (["poisson2d", "--method", "cg", "--restart", "5"], "only used with --method gmres"),
    ],
)
def test_dcdm_usage_errors(extra, message, tmp_path, capsys):
    assert main(["solve", *extra, "--out", str(tmp_path / "o")]) == 2
    assert message in _error_line(capsys.readouterr().err)


def test_dcdm_weights_of_the_wrong_dimension_or_format(untrained_2d, tmp_path, capsys):
    argv = ["solve", "poisson3d", "--size", "4", "--method", "dcdm", "--out", str(tmp_path / "o")]
    assert main([*argv, "--weights", str(untrained_2d)]) == 2
    assert "2-D model but the problem is 3-D" in _error_line(capsys.readouterr().err)
    junk = tmp_path / "junk.eqx"
    junk.write_bytes(b"not a model\n")
    assert main([*argv, "--weights", str(junk)]) == 2
    assert "not a DCDM model file" in _error_line(capsys.readouterr().err)
