"""`sciml train dcdm`: outputs, refusal to overwrite, resume, one-line errors."""

import json

import pytest

from sciml.cli import main

TINY = ["--dim", "2", "--n", "8", "--m", "12", "--batch", "2", "--chunk", "2", "--no-eval"]


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("sciml: error: "), err
    assert "Traceback" not in err
    return lines[-1]


def test_train_dcdm_writes_model_metrics_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["train", "dcdm", *TINY, "--steps", "2", "--out", str(out), *cache]) == 0
    assert "trained 2-D DCDM" in capsys.readouterr().out
    for name in ("model.eqx", "metrics.json", "checkpoint.eqx", "checkpoint.json"):
        assert (out / name).is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["results"]["steps_done"] == 2
    assert metrics["settings"]["n"] == 8 and metrics["command"].startswith("sciml")

    from sciml.solvers import load_dcdm_model

    assert load_dcdm_model(out / "model.eqx").dim == 2

    # Existing outputs are kept unless --force or --resume.
    assert main(["train", "dcdm", *TINY, "--steps", "2", "--out", str(out), *cache]) == 1
    assert "--force" in _error_line(capsys.readouterr().err)
    assert (
        main(["train", "dcdm", *TINY, "--steps", "4", "--out", str(out), "--resume", *cache]) == 0
    )
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 4
    # Resuming with other settings is refused with one line.
    capsys.readouterr()
    args = ["train", "dcdm", *TINY, "--steps", "6", "--lr", "0.01", "--out", str(out), "--resume"]
    assert main([*args, *cache]) == 1
    assert "settings differ" in _error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "dcdm", "--n", "7"], "even"),
        (["train", "dcdm", "--dim", "4"], "invalid choice"),
        (["train", "dcdm", "--steps", "0"], "at least 1"),
        (["train", "fno"], "invalid choice"),
        (["train", "dcdm", "--resume", "--force"], "not allowed"),
    ],
)
def test_bad_arguments_give_one_line(args, message, capsys):
    assert main(args) == 2
    assert message in _error_line(capsys.readouterr().err)


def test_resume_without_checkpoint(tmp_path, capsys):
    out = tmp_path / "empty"
    assert main(["train", "dcdm", *TINY, "--out", str(out), "--resume"]) == 1
    assert "nothing to resume" in _error_line(capsys.readouterr().err)
