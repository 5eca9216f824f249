"""The Krylov benchmark: sciml `cg` vs `jax.scipy.sparse.linalg.cg` vs SciPy `cg` on 3-D Poisson.

Each case (grid side N, dtype) solves the 7-point Dirichlet Laplacian on N³ cells
(`sciml.linalg.poisson`, matrix-free for both JAX solvers; its `to_scipy()` CSR copy for SciPy)
with a fixed random right-hand side, and measures, in one process:

- rtol mode: a solve to ‖r‖ ≤ rtol‖b‖ (atol = 0, the same rule in all three solvers): iterations
  (which must agree within ±1), the true relative residual, compile time and run time;
- fixed mode: exactly K iterations in both JAX solvers (K = jax.scipy's rtol-mode count unless
  given), so the time per iteration compares identical work; sciml also returns its residual
  history here, as it always does;
- a streaming yardstick: one read+write pass over a vector of length N³ (`y * s`) and one
  axpy pass (`x + s·y`), each timed inside a loop of K passes so dispatch overhead is excluded.

The headline ratio is sciml's time per iteration over jax.scipy's (fixed mode, medians); the floor
is `FLOOR` (1.2).
"""

import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

FLOOR = 1.2
DEFAULT_RTOL = {"float32": 1e-5, "float64": 1e-6}
DTYPES = ("float32", "float64")


def check_config(
    sizes: Sequence[int], dtypes: Sequence[str], rtols: dict[str, float] | None
) -> dict[str, float]:
    """Validate a suite configuration; return the rtol per dtype.

    Raises:
        ValueError: for a grid side below 2, an unknown dtype, float64 without x64, or a
            tolerance below the dtype's resolution.
    """
    from sciml._core import check_dtype, check_tolerances

    if not sizes:
        raise ValueError("give at least one grid size, e.g. `--sizes 32,64`.")
    for size in sizes:
        if not isinstance(size, int) or size < 2:
            raise ValueError(f"grid sizes must be integers >= 2 (cells per side), got {size!r}.")
    if not dtypes:
        raise ValueError("give at least one dtype, e.g. `--dtypes float32`.")
    chosen = {}
    for name in dtypes:
        if name not in DTYPES:
            raise ValueError(f"unknown dtype {name!r}; choose from {', '.join(DTYPES)}.")
        dtype = check_dtype(name)
        rtol = (rtols or {}).get(name, DEFAULT_RTOL[name])
        check_tolerances(rtol, 0.0, dtype)
        if rtol <= 0:
            raise ValueError(f"the benchmark needs a positive rtol, got {rtol} for {name}.")
        chosen[name] = float(rtol)
    return chosen


def make_problem(size: int, dtype_name: str, *, seed: int = 0):
    """The benchmark system: 7-point Dirichlet Poisson on `size`³ cells and a random `b`.

    Returns:
        `(operator, b)`.
    """
    import jax
    import jax.numpy as jnp

    from sciml.linalg import poisson

    dtype = jnp.dtype(dtype_name)
    op = poisson((size, size, size), dtype=dtype)
    b = jax.random.normal(jax.random.key(seed), (size**3,), dtype)
    return op, b


def sciml_solver(rtol: float, steps: int, *, throw: bool = False):
    """A jitted `(op, b) -> Solution`: sciml's `cg` with atol = 0 and `max_steps=steps`."""
    import jax

    from sciml.solvers import cg

    return jax.jit(lambda op, b: cg(op, b, rtol=rtol, atol=0.0, max_steps=steps, throw=throw))


def jax_scipy_solver(rtol: float, steps: int):
    """A jitted `(op, b) -> x`: `jax.scipy.sparse.linalg.cg` with atol = 0, `maxiter=steps`."""
    import jax

    def solve(op, b):
        return jax.scipy.sparse.linalg.cg(op.mv, b, tol=rtol, atol=0.0, maxiter=steps)[0]

    return jax.jit(solve)


def relative_residual(op, x, b) -> float:
    """‖b − A x‖ / ‖b‖, computed in the dtype of `b`."""
    import jax
    import jax.numpy as jnp

    value = jax.jit(lambda op, x, b: jnp.linalg.norm(b - op.mv(x)) / jnp.linalg.norm(b))
    return float(value(op, x, b))


def _streaming(n: int, dtype, passes: int, *, repeats: int, warmup: int, budget_s: float):
    import jax
    import jax.numpy as jnp
    from jax import lax

    from sciml._core._timing import time_jitted

    x = jnp.linspace(1.0, 2.0, n, dtype=dtype)
    y = jnp.linspace(2.0, 3.0, n, dtype=dtype)
    # A scale this close to 1 keeps K passes finite in float32 for any benchmark-sized K.
    scale = jnp.asarray(1.0 - 2.0**-12, dtype)

    def copy_passes(x, scale):
        return lax.fori_loop(0, passes, lambda _, v: v * scale, x)

    def axpy_passes(x, y, scale):
        return lax.fori_loop(0, passes, lambda _, v: x + scale * v, y)

    itemsize = jnp.dtype(dtype).itemsize
    copy, _ = time_jitted(
        jax.jit(copy_passes), x, scale, repeats=repeats, warmup=warmup, budget_s=budget_s
    )
    axpy, _ = time_jitted(
        jax.jit(axpy_passes), x, y, scale, repeats=repeats, warmup=warmup, budget_s=budget_s
    )
    copy_pass = copy.median_s / passes
    axpy_pass = axpy.median_s / passes
    return {
        "passes": passes,
        "copy": copy.as_dict(),
        "axpy": axpy.as_dict(),
        "copy_pass_s": copy_pass,
        "axpy_pass_s": axpy_pass,
        "copy_bandwidth_GBps": 2 * n * itemsize / copy_pass / 1e9,
        "axpy_bandwidth_GBps": 3 * n * itemsize / axpy_pass / 1e9,
    }


def count_jax_scipy_iterations(op, b, rtol: float, max_steps: int) -> int:
    # jax.scipy's cg returns no iteration count. It applies A once for the initial residual and
    # once per iteration, so counting operator applications (a host callback, in a separate
    # untimed run) gives the count.
    import jax

    calls = [0]

    def bump():
        calls[0] += 1

    def counted_mv(x):
        jax.debug.callback(bump)
        return op.mv(x)

    solve = jax.jit(
        lambda b: jax.scipy.sparse.linalg.cg(counted_mv, b, tol=rtol, atol=0.0, maxiter=max_steps)[
            0
        ]
    )
    jax.block_until_ready(solve(b))
    jax.effects_barrier()
    return calls[0] - 1


def run_case(
    size: int,
    dtype_name: str,
    *,
    rtol: float,
    repeats: int = 5,
    warmup: int = 1,
    budget_s: float = 30.0,
    scipy_max_size: int = 64,
    iters: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Benchmark one grid size and dtype (see the module docstring for what is measured).

    Args:
        size: cells per side N (the system has N³ unknowns).
        dtype_name: "float32" or "float64".
        rtol: the relative tolerance of the rtol-mode solves.
        repeats: the most timed runs per measurement.
        warmup: untimed runs before each measurement.
        budget_s: stop repeating a measurement once its timed runs took this long.
        scipy_max_size: skip SciPy for grids larger than this.
        iters: iterations of the fixed-mode runs; jax.scipy's rtol-mode count if omitted.
        seed: seed of the random right-hand side.
        log: called with progress lines.

    Returns:
        A JSON-ready dict with the case's configuration, per-solver results, the streaming
        yardstick and the sciml/jax.scipy ratios.
    """
    import jax.numpy as jnp
    import numpy as np

    from sciml._core._timing import time_call, time_jitted_interleaved

    log = log or (lambda _: None)
    dtype = jnp.dtype(dtype_name)
    eps = float(jnp.finfo(dtype).eps)
    n = size**3
    # 3-D Dirichlet Poisson needs O(N) CG iterations (about 5N at these tolerances); 20N
    # leaves ample room, and keeps sciml's residual history short.
    max_steps = 20 * size
    op, b = make_problem(size, dtype_name, seed=seed)
    timing_opts = {"repeats": repeats, "warmup": warmup, "budget_s": budget_s}

    case: dict[str, Any] = {
        "size": size,
        "n": n,
        "dtype": dtype_name,
        "rtol": rtol,
        "atol": 0.0,
        "max_steps": max_steps,
        "operator": "sciml.linalg.poisson, 7-point, Dirichlet, spacing 1",
        "rhs": f"jax.random.normal(key({seed}))",
    }
    log(f"[{size}^3 {dtype_name}] rtol mode: sciml cg and jax.scipy cg, interleaved")
    timings, outputs = time_jitted_interleaved(
        {"sciml": sciml_solver(rtol, max_steps), "jax.scipy": jax_scipy_solver(rtol, max_steps)},
        op,
        b,
        **timing_opts,
    )
    t_sciml, t_jax = timings["sciml"], timings["jax.scipy"]
    sol = outputs["sciml"]
    sciml_iters = int(sol.stats["num_steps"])
    sciml = {
        "iterations": sciml_iters,
        "converged": bool(sol.converged),
        "relative_residual": relative_residual(op, sol.value, b),
        "history_length": int(sol.stats["residual_history"].shape[0]),
        "rtol_mode": t_sciml.as_dict(),
    }
    jax_iters = count_jax_scipy_iterations(op, b, rtol, max_steps)
    jsp = {
        "iterations": jax_iters,
        "converged": jax_iters < max_steps,
        "relative_residual": relative_residual(op, outputs["jax.scipy"], b),
        "rtol_mode": t_jax.as_dict(),
    }
    del sol, outputs

    fixed = int(iters) if iters is not None else max(jax_iters, 1)
    case["fixed_iterations"] = fixed
    # Fixed mode: the tolerance is the dtype's resolution, which K iterations cannot reach,
    # so both loops run exactly K times (sciml's num_steps confirms it).
    log(f"[{size}^3 {dtype_name}] fixed mode: {fixed} iterations each, interleaved")
    timings, outputs = time_jitted_interleaved(
        {"sciml": sciml_solver(eps, fixed), "jax.scipy": jax_scipy_solver(eps, fixed)},
        op,
        b,
        **timing_opts,
    )
    t_sciml_fixed, t_jax_fixed = timings["sciml"], timings["jax.scipy"]
    sciml_fixed_steps = int(outputs["sciml"].stats["num_steps"])
    del outputs
    sciml["fixed_mode"] = t_sciml_fixed.as_dict()
    sciml["fixed_mode_steps"] = sciml_fixed_steps
    sciml["per_iteration_s"] = t_sciml_fixed.median_s / max(sciml_fixed_steps, 1)
    jsp["fixed_mode"] = t_jax_fixed.as_dict()
    jsp["per_iteration_s"] = t_jax_fixed.median_s / fixed

    log(f"[{size}^3 {dtype_name}] streaming yardstick")
    stream = _streaming(n, dtype, fixed, **timing_opts)

    solvers = {"sciml": sciml, "jax.scipy": jsp}
    if size <= scipy_max_size:
        import scipy.sparse.linalg as spla

        log(f"[{size}^3 {dtype_name}] scipy cg, rtol mode")
        matrix = op.to_scipy()
        b_np = np.asarray(b)
        counter = [0]

        def scipy_solve():
            counter[0] = 0

            def count(_):
                counter[0] += 1

            x, _ = spla.cg(matrix, b_np, rtol=rtol, atol=0.0, maxiter=max_steps, callback=count)
            return x, counter[0]

        t_scipy, (x_scipy, scipy_iters) = time_call(
            scipy_solve, repeats=repeats, warmup=0, budget_s=budget_s
        )
        solvers["scipy"] = {
            "iterations": scipy_iters,
            "converged": scipy_iters < max_steps,
            "relative_residual": float(
                np.linalg.norm(b_np - matrix @ x_scipy) / np.linalg.norm(b_np)
            ),
            "rtol_mode": t_scipy.as_dict(),
            "per_iteration_s": t_scipy.median_s / max(scipy_iters, 1),
        }
    else:
        solvers["scipy"] = {"skipped": f"grid side {size} > scipy_max_size {scipy_max_size}"}

    counts = [s["iterations"] for s in solvers.values() if "iterations" in s]
    ratio = sciml["per_iteration_s"] / jsp["per_iteration_s"]
    ratio_min = (t_sciml_fixed.min_s / max(sciml_fixed_steps, 1)) / (t_jax_fixed.min_s / fixed)
    ratio_rtol = (t_sciml.median_s / max(sciml_iters, 1)) / (t_jax.median_s / max(jax_iters, 1))
    case.update(
        solvers=solvers,
        streaming=stream,
        iterations_agree=max(counts) - min(counts) <= 1,
        ratio_per_iteration=ratio,
        ratio_per_iteration_min=ratio_min,
        ratio_per_iteration_rtol_mode=ratio_rtol,
        iteration_in_copy_passes=sciml["per_iteration_s"] / stream["copy_pass_s"],
        jax_iteration_in_copy_passes=jsp["per_iteration_s"] / stream["copy_pass_s"],
        floor=FLOOR,
        floor_met=ratio <= FLOOR,
    )
    log(
        f"[{size}^3 {dtype_name}] iterations {counts}, sciml/jax.scipy per iteration "
        f"{ratio:.3f} (min-based {ratio_min:.3f})"
    )
    return case


def run_suite(
    *,
    sizes: Sequence[int] = (32, 64, 128),
    dtypes: Sequence[str] = DTYPES,
    rtols: dict[str, float] | None = None,
    repeats: int = 5,
    warmup: int = 1,
    budget_s: float = 30.0,
    scipy_max_size: int = 64,
    iters: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the Krylov benchmark over `sizes` × `dtypes`.

    Args:
        sizes: grid sides N (N³ unknowns each).
        dtypes: "float32" and/or "float64" (float64 needs JAX's x64 mode).
        rtols: tolerance per dtype; defaults 1e-5 (float32) and 1e-6 (float64).
        repeats, warmup, budget_s, scipy_max_size, iters, seed, log: as in `run_case`.

    Returns:
        A JSON-ready dict: `benchmark`, `environment` (versions, devices), `config` and `cases`.

    Raises:
        ValueError: for a bad configuration (see `check_config`).
    """
    from sciml._core._metrics import environment

    chosen = check_config(sizes, dtypes, rtols)
    if iters is not None and (not isinstance(iters, int) or iters < 1):
        raise ValueError(f"`iters` must be a positive integer, got {iters!r}.")
    cases = [
        run_case(
            size,
            name,
            rtol=chosen[name],
            repeats=repeats,
            warmup=warmup,
            budget_s=budget_s,
            scipy_max_size=scipy_max_size,
            iters=iters,
            seed=seed,
            log=log,
        )
        for size in sizes
        for name in dtypes
    ]
    return {
        "benchmark": "krylov",
        "description": __doc__.strip().splitlines()[0],
        "environment": environment(),
        "config": {
            "sizes": list(sizes),
            "dtypes": list(dtypes),
            "rtol": chosen,
            "repeats": repeats,
            "warmup": warmup,
            "budget_s": budget_s,
            "scipy_max_size": scipy_max_size,
            "iters": iters,
            "seed": seed,
            "floor": FLOOR,
            "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "argv": sys.argv,
        },
        "cases": cases,
    }


def _ms(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    return f"{seconds * 1e3:.3g}"


def format_table(results: dict[str, Any]) -> str:
    """A Markdown table of a `run_suite` result."""
    from sciml._core._metrics import describe_environment

    lines = [
        f"{describe_environment(results['environment'])}.",
        "",
        "Times are medians; per-iteration figures come from the fixed-iteration runs (SciPy: "
        "rtol-mode time / iterations). The ratio is of medians, in brackets of the fastest "
        "runs. Last column: one CG iteration in units of a streaming copy pass over a vector, "
        "sciml / jax.scipy.",
        "",
        "| grid | dtype | iterations sciml / jax / scipy | compile s sciml / jax "
        "| solve ms sciml / jax / scipy | per iter ms sciml / jax / scipy | copy pass ms "
        "| sciml / jax per iter (min) | iter in copy passes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in results["cases"]:
        s, j, sp = (case["solvers"][k] for k in ("sciml", "jax.scipy", "scipy"))
        sp_iters = str(sp["iterations"]) if "iterations" in sp else "skipped"
        sp_run = _ms(sp["rtol_mode"]["median_s"]) if "rtol_mode" in sp else "–"
        sp_iter = _ms(sp.get("per_iteration_s"))
        agree = "" if case["iterations_agree"] else " (disagree!)"
        flag = "" if case["floor_met"] else " ✗"
        lines.append(
            f"| {case['size']}³ | {case['dtype']} "
            f"| {s['iterations']} / {j['iterations']} / {sp_iters}{agree} "
            f"| {s['rtol_mode']['compile_s']:.2f} / {j['rtol_mode']['compile_s']:.2f} "
            f"| {_ms(s['rtol_mode']['median_s'])} / {_ms(j['rtol_mode']['median_s'])} / {sp_run} "
            f"| {_ms(s['per_iteration_s'])} / {_ms(j['per_iteration_s'])} / {sp_iter} "
            f"| {_ms(case['streaming']['copy_pass_s'])} "
            f"| {case['ratio_per_iteration']:.2f}{flag} ({case['ratio_per_iteration_min']:.2f}) "
            f"| {case['iteration_in_copy_passes']:.1f} / "
            f"{case['jax_iteration_in_copy_passes']:.1f} |"
        )
    return "\n".join(lines)
