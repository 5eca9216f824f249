"""`sciml report`: the smoke report end to end, and the section registry's failure handling."""

import json
import os

import pytest

from sciml.cli import _report, main
from sciml.cli._report import SectionResult, SectionSkipped


def _single_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("sciml: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_smoke_report_writes_tables_plots_and_metrics(tmp_path, capsys):
    # One section keeps the default suite fast; test_smoke_report_every_section (slow) runs all.
    out = tmp_path / "report"
    argv = ["report", "--smoke", "--no-progress", "--only", "linear-solvers", "--out", str(out)]
    assert main(argv) == 0
    index = (out / "index.md").read_text()
    assert "## Linear solvers" in index
    assert "| method | iterations | status |" in index
    pngs = sorted(name for name in os.listdir(out) if name.endswith(".png"))
    assert pngs, os.listdir(out)
    for name in pngs:
        assert f"]({name})" in index  # every plot is shown
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert not [name for name in os.listdir(out) if name.startswith(".")]  # no staging left

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["smoke"] is True and metrics["environment"]["versions"]["jax"]
    section = metrics["sections"]["linear-solvers"]
    assert section["status"] in ("ok", "ok, with failures")
    problems = section["metrics"]["problems"]
    assert set(problems) >= {"poisson2d", "fluid-pressure", "convection-diffusion"}
    for name, record in problems.items():
        for run in record["runs"]:
            assert run["status"] != "error", (name, run)
            if run["status"] == "converged":
                # The host recomputation, not the solver's estimate, must meet the tolerance
                # (up to the gap between recursive and true residual).
                assert run["rel_residual"] < 10 * record["rtol"], (name, run)
            elif run["status"] != "direct":
                # A failed solve is shown as a failure, in the table and in the summary.
                assert f"FAILED: {run['status']}" in index
                assert any(run["title"] in line for line in metrics["failures"])
    # The machine that ran it is named.
    assert metrics["environment"]["device_kind"] in index

    # A second run without --force refuses and leaves the report alone.
    capsys.readouterr()
    assert main(["report", "--smoke", "--out", str(out)]) == 1
    assert "--force" in _single_error_line(capsys.readouterr().err)
    assert (out / "index.md").read_text() == index


@pytest.fixture
def fake_sections(monkeypatch):
    # Import every real section module first: a module imported while the registry is patched
    # would register into the throw-away copy and never again into the real one.
    registry = {section.key: section for section in _report.available_sections()}
    monkeypatch.setattr(_report, "_SECTIONS", registry)

    @_report.report_section("fake-ok", "Fake OK", order=1)
    def ok(ctx):
        from sciml._core._plotting import convergence_plot

        convergence_plot({"a": [1.0, 0.1]}, ctx.path("plot.png"), "fake")
        return SectionResult(
            markdown="fine " + ctx.image("plot.png", "a plot"), metrics={"value": 1}
        )

    @_report.report_section("fake-skip", "Fake skipped", order=2)
    def skip(ctx):
        raise SectionSkipped("optional dependency missing")

    @_report.report_section("fake-broken", "Fake broken", order=3)
    def broken(ctx):
        ctx.path("half-written.png").write_bytes(b"partial")
        raise ZeroDivisionError("boom")

    @_report.report_section("fake-interrupt", "Fake interrupt", order=4)
    def interrupt(ctx):
        ctx.path("x.png").write_bytes(b"partial")
        raise KeyboardInterrupt

    return registry


def _only(*keys):
    return [arg for key in keys for arg in ("--only", key)]


def test_sections_skip_fail_and_report_it(fake_sections, tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["report", "--out", str(out), *_only("fake-ok", "fake-skip", "fake-broken")])
    assert code == 1  # a section raised: the report is written, the exit status says so
    err = capsys.readouterr().err
    assert "fake-broken" in _single_error_line(err)
    index = (out / "index.md").read_text()
    assert "fine ![a plot](fake-ok-plot.png)" in index
    assert "Skipped: optional dependency missing" in index
    assert "ZeroDivisionError: boom" in index
    assert (out / "fake-ok-plot.png").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sections"]["fake-ok"]["metrics"] == {"value": 1}
    assert metrics["sections"]["fake-skip"]["status"] == "skipped"
    assert "ZeroDivisionError" in metrics["sections"]["fake-broken"]["traceback"]


def test_interrupted_report_keeps_the_previous_one(fake_sections, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", "--out", str(out), *_only("fake-ok")]) == 0
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    code = main(["report", "--out", str(out), "--force", *_only("fake-ok", "fake-interrupt")])
    assert code == 130
    after = {name: (out / name).read_bytes() for name in os.listdir(out)}
    assert after == before  # nothing replaced, no staging folder or partial file left


def test_list_sections(capsys):
    assert main(["report", "--list"]) == 0
    assert "linear-solvers" in capsys.readouterr().out


def test_a_section_module_that_cannot_be_imported_is_reported(
    fake_sections, monkeypatch, tmp_path, capsys
):
    # One area's optional dependency is missing (skipped); another has a broken import (error).
    def fake_import(name):
        if name.endswith("_report_needs_dep"):
            import a_package_that_is_not_installed_anywhere  # noqa: F401
        if name.endswith("_report_buggy"):
            from sciml.cli._common import no_such_name  # noqa: F401
        raise AssertionError(name)

    monkeypatch.setattr(
        _report,
        "section_modules",
        lambda: ["sciml.cli._report_needs_dep", "sciml.cli._report_buggy"],
    )
    monkeypatch.setattr(_report, "_import_module", fake_import)

    out = tmp_path / "r"
    code = main(["report", "--out", str(out), *_only("needs-dep", "buggy")])
    assert code == 1
    assert "buggy" in _single_error_line(capsys.readouterr().err)
    index = (out / "index.md").read_text()
    assert "optional dependency 'a_package_that_is_not_installed_anywhere'" in index
    assert "could not import sciml.cli._report_buggy" in index


@pytest.mark.slow
def test_smoke_report_every_section(tmp_path):
    out = tmp_path / "report"
    assert main(["report", "--smoke", "--no-progress", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key, section in metrics["sections"].items():
        assert section["status"] in ("ok", "ok, with failures", "skipped"), (key, section)
