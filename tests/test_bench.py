"""Smoke tests of the benchmark code path: the timing helper, the Krylov suite and `sciml bench`.

Sizes are tiny and nothing here asserts on timings (benchmarks are not timed unit tests); the
tests check that the measurements exist, have the documented fields, and that the three CG
implementations agree on the iteration count.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml._core._timing import Timing, time_call, time_jitted, time_jitted_interleaved
from sciml.cli import main
from sciml.cli._bench_krylov import DEFAULT_RTOL, format_table, run_suite


def test_time_jitted_separates_compile_and_run():
    x = jnp.arange(8.0, dtype=jnp.float32)
    timing, out = time_jitted(lambda v: v * 2, x, repeats=3, warmup=1)
    assert isinstance(timing, Timing)
    assert timing.compile_s is not None and timing.compile_s > 0
    assert timing.repeats == len(timing.times_s) == 3
    assert timing.min_s <= timing.median_s <= max(timing.times_s)
    np.testing.assert_array_equal(out, np.arange(8.0, dtype=np.float32) * 2)
    assert set(timing.as_dict()) == {"compile_s", "median_s", "min_s", "repeats", "times_s"}


def test_time_jitted_static_arguments():
    timing, out = time_jitted(
        lambda v, k: v * k, jnp.ones(3), 4, repeats=2, jit_kwargs={"static_argnums": 1}
    )
    assert timing.repeats == 2
    np.testing.assert_array_equal(out, np.full(3, 4.0))


def test_budget_bounds_repeats_and_bad_counts_raise():
    timing, out = time_call(lambda: 7, repeats=50, warmup=0, budget_s=1e-12)
    assert timing.repeats == 1 and timing.compile_s is None and out == 7
    with pytest.raises(ValueError, match="repeats"):
        time_call(lambda: 0, repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        time_jitted(lambda v: v, jnp.ones(2), warmup=-1)


def test_interleaved_timing_returns_each_function():
    x = jnp.ones(4)
    timings, outputs = time_jitted_interleaved(
        {"double": lambda v: 2 * v, "square": lambda v: v * v}, x, repeats=3, warmup=0
    )
    assert set(timings) == {"double", "square"}
    assert all(t.repeats == 3 and t.compile_s > 0 for t in timings.values())
    np.testing.assert_array_equal(outputs["double"], np.full(4, 2.0))
    with pytest.raises(ValueError, match="at least one"):
        time_jitted_interleaved({}, x)


def _check_case(case, size, dtype):
    assert case["size"] == size and case["n"] == size**3 and case["dtype"] == dtype
    assert case["rtol"] == DEFAULT_RTOL[dtype]
    solvers = case["solvers"]
    assert set(solvers) == {"sciml", "jax.scipy", "scipy"}
    counts = [solvers[name]["iterations"] for name in solvers]
    # SciPy, jax.scipy and sciml run the same recurrence with the same stopping rule.
    assert max(counts) - min(counts) <= 1, counts
    assert case["iterations_agree"]
    for name, record in solvers.items():
        assert record["converged"], name
        # The iteration stops on the recursive residual; the true residual differs from it
        # only by rounding drift, far below rtol on a 6³ grid.
        assert record["relative_residual"] <= 2 * case["rtol"], (name, record)
        assert record["rtol_mode"]["median_s"] > 0
        assert record["per_iteration_s"] > 0
    for name in ("sciml", "jax.scipy"):
        assert solvers[name]["rtol_mode"]["compile_s"] > 0
        assert solvers[name]["fixed_mode"]["repeats"] >= 1
    assert solvers["sciml"]["fixed_mode_steps"] == case["fixed_iterations"]
    assert solvers["sciml"]["history_length"] == case["max_steps"] + 1
    stream = case["streaming"]
    assert stream["copy_pass_s"] > 0 and stream["axpy_pass_s"] > 0
    assert stream["passes"] == case["fixed_iterations"]
    for key in ("ratio_per_iteration", "ratio_per_iteration_min", "iteration_in_copy_passes"):
        assert np.isfinite(case[key]) and case[key] > 0
    assert case["floor"] == 1.2 and isinstance(case["floor_met"], bool)


def test_krylov_suite_smoke():
    results = run_suite(sizes=[6], dtypes=["float32", "float64"], repeats=1, warmup=0)
    assert results["benchmark"] == "krylov"
    env = results["environment"]
    assert env["versions"]["jax"] == jax.__version__ and env["backend"] == "cpu"
    assert results["config"]["sizes"] == [6]
    assert [case["dtype"] for case in results["cases"]] == ["float32", "float64"]
    for case in results["cases"]:
        _check_case(case, 6, case["dtype"])
    table = format_table(results)
    assert table.count("| 6³ |") == 2 and "sciml / jax per iter (min)" in table
    json.dumps(results)  # JSON-ready as returned


def test_suite_skips_scipy_above_the_limit_and_fixes_iterations():
    results = run_suite(
        sizes=[5], dtypes=["float64"], repeats=1, warmup=0, scipy_max_size=4, iters=7
    )
    (case,) = results["cases"]
    assert "skipped" in case["solvers"]["scipy"]
    assert case["fixed_iterations"] == 7 == case["solvers"]["sciml"]["fixed_mode_steps"]
    assert "skipped" in format_table(results)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sizes": [1]}, ">= 2"),
        ({"sizes": []}, "at least one grid size"),
        ({"dtypes": ["float16"]}, "unknown dtype"),
        ({"iters": 0}, "iters"),
    ],
)
def test_suite_rejects_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_suite(**{"sizes": [4], "dtypes": ["float64"], **kwargs})


def test_cli_writes_json_and_refuses_to_overwrite(tmp_path, capsys):
    argv = ["bench", "krylov", "--sizes", "5", "--dtypes", "float32", "--repeats", "1"]
    argv += ["--warmup", "0", "--out", str(tmp_path)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "| 5³ | float32 |" in captured.out
    payload = json.loads((tmp_path / "krylov.json").read_text())
    assert payload["benchmark"] == "krylov" and payload["environment"]["versions"]["jax"]
    _check_case(payload["cases"][0], 5, "float32")
    assert "× cpu (cpu)" in (tmp_path / "krylov.md").read_text().splitlines()[0]
    before = (tmp_path / "krylov.json").read_text()

    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("sciml: error:") and "--force" in err and err.count("\n") == 1
    assert (tmp_path / "krylov.json").read_text() == before


@pytest.mark.parametrize(
    "extra", [["--sizes", "1"], ["--sizes", "a,b"], ["--dtypes", "float16"], ["--repeats", "0"]]
)
def test_cli_usage_mistakes_give_one_line(extra, tmp_path, capsys):
    assert main(["bench", "krylov", "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sciml: error:") and err.count("\n") == 1
    assert not any(tmp_path.iterdir())
