"""Report section and benchmark helpers for `sciml.special` (log-Bessel functions and vMF).

The helpers here are shared by the `sciml report` section and `benchmarks/bench_special.py`:

- `workload(name, n, seed)`: the two input distributions of the method note §3 ("small":
  v ~ U[0, 20], x ~ logU[1e-3, 1e2]; "wide": v ~ logU[0.1, 1e4], x ~ logU[1e-3, 1e5]);
- `methods(dtypes)`: the implementations compared — sciml (jit), SciPy's `log(ive(v, x)) + x` and
  `log(kve(v, x)) − x` (single-threaded C), and TensorFlow Probability's JAX substrate
  (`log_bessel_ive`/`log_bessel_kve`) when it imports;
- `reference_table()`: the 50-digit references of `tests/special/data/` when the checkout has
  them;
- `throughput(...)`, `table_accuracy(...)`, `vmf_fits(...)`.
"""

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._report import SectionContext, SectionResult, SectionSkipped, report_section

WORKLOADS = ("small", "wide")
REFERENCE_DIR = Path(__file__).resolve().parents[2] / "tests" / "special" / "data"


def workload(name: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(v, x) float64 arrays of one of the note's workloads."""
    rng = np.random.default_rng(seed)
    if name == "small":
        return rng.uniform(0, 20, n), 10 ** rng.uniform(-3, 2, n)
    if name == "wide":
        return 10 ** rng.uniform(-1, 4, n), 10 ** rng.uniform(-3, 5, n)
    raise ValueError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}.")


@dataclasses.dataclass(frozen=True)
class Method:
    """One implementation of log I or log K.

    Attributes:
        name: e.g. "sciml float64".
        function: "log_iv" or "log_kv".
        dtype: "float32" or "float64".
        kind: "jax" (timed as a compiled executable) or "host" (a NumPy callable).
        fn: `fn(v, x)`; JAX methods take device arrays of `dtype`.
    """

    name: str
    function: str
    dtype: str
    kind: str
    fn: Callable[[Any, Any], Any]


def tfp_jax():
    """TFP's JAX substrate, or None (only tfp-nightly imports with current JAX)."""
    try:
        from tensorflow_probability.substrates import jax as tfp  # type: ignore
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None
    return tfp


def methods(dtypes=("float64", "float32"), *, with_tfp: bool = True) -> list[Method]:
    """The implementations compared, for both functions."""
    import scipy.special as sc

    from sciml.special import log_iv, log_kv

    def scipy_i(v, x):
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            return np.log(sc.ive(v, x)) + x

    def scipy_k(v, x):
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            return np.log(sc.kve(v, x)) - x

    out = []
    for dtype in dtypes:
        out.append(Method(f"sciml {dtype}", "log_iv", dtype, "jax", log_iv))
        out.append(Method(f"sciml {dtype}", "log_kv", dtype, "jax", log_kv))
    out.append(Method("scipy float64", "log_iv", "float64", "host", scipy_i))
    out.append(Method("scipy float64", "log_kv", "float64", "host", scipy_k))
    tfp = tfp_jax() if with_tfp else None
    if tfp is not None:
        for dtype in dtypes:
            out.append(
                Method(
                    f"tfp {dtype}",
                    "log_iv",
                    dtype,
                    "jax",
                    lambda v, x: tfp.math.log_bessel_ive(v, x) + x,
                )
            )
            out.append(
                Method(
                    f"tfp {dtype}",
                    "log_kv",
                    dtype,
                    "jax",
                    lambda v, x: tfp.math.log_bessel_kve(v, x) - x,
                )
            )
    return out


def _as_inputs(method: Method, v: np.ndarray, x: np.ndarray):
    if method.kind == "host":
        return v, x
    import jax.numpy as jnp

    return jnp.asarray(v, method.dtype), jnp.asarray(x, method.dtype)


def throughput(
    method: Method, v: np.ndarray, x: np.ndarray, *, repeats: int = 5, budget_s: float = 20.0
) -> dict[str, Any]:
    """Time one method on (v, x); returns Mpts/s, compile time and the non-finite fraction."""
    import jax

    from sciml._core import time_call, time_jitted

    args = _as_inputs(method, v, x)
    if method.kind == "jax":
        timing, out = time_jitted(jax.jit(method.fn), *args, repeats=repeats, budget_s=budget_s)
    else:
        timing, out = time_call(method.fn, *args, repeats=repeats, warmup=0, budget_s=budget_s)
    out = np.asarray(out, np.float64)
    return {
        "method": method.name,
        "function": method.function,
        "dtype": method.dtype,
        "n": int(v.size),
        "mpts_per_s": v.size / timing.median_s / 1e6,
        "median_s": timing.median_s,
        "compile_s": timing.compile_s,
        "nonfinite_fraction": float(np.mean(~np.isfinite(out))),
        "repeats": timing.repeats,
    }


def reference_table() -> dict[str, np.ndarray] | None:
    """v, x, log I, log K from `tests/special/data/log_bessel_values.csv` (float64), if present."""
    path = REFERENCE_DIR / "log_bessel_values.csv"
    if not path.exists():
        return None
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {key: np.array([float(r[key]) for r in rows]) for key in ("v", "x", "log_i", "log_k")}


def mixed_error(computed, reference) -> np.ndarray:
    """|Δ log f| / max(1, |log f|), inf where the computed value is not finite."""
    computed = np.asarray(computed, np.float64)
    err = np.abs(computed - reference) / np.maximum(1.0, np.abs(reference))
    return np.where(np.isfinite(computed), err, np.inf)


def table_accuracy(method: Method, table: dict[str, np.ndarray]) -> dict[str, Any]:
    """Errors of one method on the 50-digit table (float32 inputs are the rounded ones)."""
    import jax

    key = "log_i" if method.function == "log_iv" else "log_k"
    args = _as_inputs(method, table["v"], table["x"])
    out = jax.jit(method.fn)(*args) if method.kind == "jax" else method.fn(*args)
    err = mixed_error(out, table[key])
    bound = 1e-12 if method.dtype == "float64" else 1e-5
    finite = np.isfinite(err)
    return {
        "method": method.name,
        "function": method.function,
        "points": int(err.size),
        "nonfinite": int((~finite).sum()),
        "wrong": int((finite & (err > bound)).sum()),
        "wrong_bound": bound,
        "median": float(np.median(err[finite])) if finite.any() else math.inf,
        "max_finite": float(err[finite].max()) if finite.any() else math.inf,
    }


def deviation_grid(method: Method, n_v: int, n_x: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log10 of the mixed deviation from sciml float64 on a log grid (inf where non-finite)."""
    import jax

    from sciml.special import log_iv, log_kv

    v = np.logspace(-1, 5, n_v)
    x = np.logspace(-6, 6, n_x)
    vv, xx = np.meshgrid(v, x, indexing="ij")
    ref_fn = log_iv if method.function == "log_iv" else log_kv
    ref = np.asarray(jax.jit(ref_fn)(vv, xx))
    args = _as_inputs(method, vv, xx)
    out = jax.jit(method.fn)(*args) if method.kind == "jax" else method.fn(*args)
    err = mixed_error(out, ref)
    with np.errstate(divide="ignore"):
        return v, x, np.log10(np.maximum(err, 1e-17))


def vmf_fits(
    dims, factors, n: int, *, seed: int = 0, dtype: str = "float64"
) -> list[dict[str, Any]]:
    """Sample n points of vMF(μ, κ = factor·d) by Wood's algorithm, then fit; one row per case.

    The SciPy column is Newton's iteration with the ratio `ive(d/2, κ)/ive(d/2 − 1, κ)`, as
    a SciPy user would write it; NaN where that ratio is 0/0.
    """
    import jax
    import jax.numpy as jnp

    from sciml.special import vmf

    rows = []
    key = jax.random.key(seed)
    for d in dims:
        for factor in factors:
            key, sub_mu, sub_x = jax.random.split(key, 3)
            kappa = factor * d
            mu = jax.random.normal(sub_mu, (d,), dtype)
            mu = mu / jnp.linalg.norm(mu)
            start = time.perf_counter()
            X = jax.block_until_ready(vmf.sample(sub_x, mu, kappa, (n,)))
            sample_s = time.perf_counter() - start
            fit = jax.jit(lambda X: vmf.fit(X, throw=False))
            start = time.perf_counter()
            sol = jax.block_until_ready(fit(X))
            fit_s = time.perf_counter() - start
            rbar = float(sol.stats["mean_resultant_length"])
            rows.append(
                {
                    "d": d,
                    "n": n,
                    "kappa_true": kappa,
                    "kappa_hat": float(sol.value.kappa),
                    "relative_error": float(sol.value.kappa) / kappa - 1,
                    "cosine_mu": float(sol.value.mu @ mu),
                    "newton_steps": int(sol.stats["num_steps"]),
                    "residual": float(sol.stats["residual_norm"]),
                    "converged": bool(sol.converged),
                    "scipy_kappa_hat": _scipy_newton(rbar, d),
                    "sample_s": sample_s,
                    "fit_s": fit_s,
                    "rbar": rbar,
                }
            )
    return rows


def _scipy_newton(rbar: float, d: int, steps: int = 10) -> float:
    import scipy.special as sc

    kappa = rbar * (d - rbar**2) / (1 - rbar**2)
    with np.errstate(all="ignore"):
        for _ in range(steps):
            a = sc.ive(d / 2, kappa) / sc.ive(d / 2 - 1, kappa)
            slope = 1 - a * a - (d - 1) * a / kappa
            kappa = kappa - (a - rbar) / slope
    return float(kappa)


# --------------------------------------------------------------------------------------------
# The report section


def _fmt(value, spec=".2e"):
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return format(value, spec)


@report_section("special", "Special functions: log-Bessel and von Mises–Fisher", order=60)
def build(ctx: SectionContext) -> SectionResult:
    try:
        import jax

        from sciml.special import vmf  # noqa: F401
    except ImportError as error:  # pragma: no cover - sciml.special is part of sciml
        raise SectionSkipped(f"sciml.special is not importable: {error}") from error

    dtypes = ("float64", "float32") if jax.config.read("jax_enable_x64") else ("float32",)
    all_methods = methods(dtypes)
    have_tfp = any(m.name.startswith("tfp") for m in all_methods)
    n = 20_000 if ctx.smoke else 200_000
    repeats = 1 if ctx.smoke else 3
    lines, metrics, failures = [], {"throughput": [], "accuracy": [], "vmf": []}, []
    lines.append(
        "log I_v(x) and log K_v(x) on the log scale (series / Temme / uniform Debye expansion in "
        "1/√(v²+x²)), against SciPy's `log(ive)+x`, `log(kve)−x` (single-threaded C) and "
        + (
            "TensorFlow Probability's JAX substrate."
            if have_tfp
            else "(not installed here) TensorFlow Probability's JAX substrate."
        )
        + " Mixed error = |Δ log f| / max(1, |log f|)."
    )

    table = reference_table()
    if table is not None:
        lines += [
            "",
            f"**Accuracy on the {table['v'].size} 50-digit references** of `tests/special/data` "
            "(v up to 1e5, x from 1e-6 to 1e6; 'wrong' = finite but mixed error above the bound):",
            "",
            "| method | function | non-finite | wrong (bound) | median | max (finite) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for method in all_methods:
            acc = table_accuracy(method, table)
            metrics["accuracy"].append(acc)
            lines.append(
                f"| {acc['method']} | {acc['function']} | {acc['nonfinite']} | "
                f"{acc['wrong']} ({acc['wrong_bound']:.0e}) | {_fmt(acc['median'])} | "
                f"{_fmt(acc['max_finite'])} |"
            )
            if method.name.startswith("sciml") and (acc["nonfinite"] or acc["wrong"]):
                failures.append(
                    f"special: {method.name} {method.function} has {acc['nonfinite']} non-finite "
                    f"and {acc['wrong']} wrong values on the reference table"
                )
    else:
        lines += ["", "*The 50-digit reference table is not in this installation; skipped.*"]

    ctx.log("  error heat-maps")
    grid_methods = [m for m in all_methods if m.function == "log_iv" and m.name != "sciml float64"]
    grid_methods += [m for m in all_methods if m.function == "log_kv" and m.name == "scipy float64"]
    n_grid = 24 if ctx.smoke else 60
    from sciml._core._plotting import new_figure, save_figure

    fig = new_figure(figsize=(4.2 * len(grid_methods), 3.6))
    axes = fig.subplots(1, len(grid_methods), squeeze=False)[0]
    for ax, method in zip(axes, grid_methods, strict=True):
        v, x, log_err = deviation_grid(method, n_grid, n_grid)
        shown = np.where(np.isfinite(log_err), log_err, np.nan)
        mesh = ax.pcolormesh(np.log10(x), np.log10(v), shown, vmin=-17, vmax=0, cmap="viridis")
        bad = ~np.isfinite(log_err)
        if bad.any():
            xx, vv = np.meshgrid(np.log10(x), np.log10(v))
            ax.scatter(xx[bad], vv[bad], s=2, c="red", marker="s", label="non-finite")
            ax.legend(loc="lower right", fontsize=7)
        ax.set_title(f"{method.name} {method.function}", fontsize=9)
        ax.set_xlabel("log10 x")
        ax.set_ylabel("log10 v")
    fig.colorbar(mesh, ax=list(axes), label="log10 mixed deviation")
    save_figure(fig, ctx.path("heatmap.png"), dpi=90)
    lines += [
        "",
        "Deviation from sciml float64 on a 10^-1…10^5 × 10^-6…10^6 log grid (red: inf/NaN). "
        "sciml float64 itself is checked against the 50-digit table above.",
        "",
        ctx.image("heatmap.png", "error heat-maps"),
    ]

    ctx.log(f"  throughput on {n} points")
    lines += [
        "",
        f"**Throughput** ({n} points, Mpts/s, median of {repeats}; JAX jit warm, compile "
        "excluded; SciPy single-threaded; non-finite fraction in brackets):",
        "",
        "| workload | function | " + " | ".join(sorted({m.name for m in all_methods})) + " |",
        "|---|---|" + "---:|" * len({m.name for m in all_methods}),
    ]
    names = sorted({m.name for m in all_methods})
    for name in WORKLOADS:
        v, x = workload(name, n, seed=ctx.seed)
        for function in ("log_iv", "log_kv"):
            cells = []
            for method_name in names:
                method = next(
                    (m for m in all_methods if m.name == method_name and m.function == function),
                    None,
                )
                if method is None:
                    cells.append("—")
                    continue
                row = throughput(method, v, x, repeats=repeats, budget_s=10.0)
                row["workload"] = name
                metrics["throughput"].append(row)
                cells.append(f"{row['mpts_per_s']:.2f} ({row['nonfinite_fraction']:.0%})")
            lines.append(f"| {name} | {function} | " + " | ".join(cells) + " |")

    ctx.log("  vMF fits")
    dims = (256,) if ctx.smoke else (2048, 8192)
    vmf_n = 200 if ctx.smoke else 1000
    dtype = "float64" if "float64" in dtypes else "float32"
    rows = vmf_fits(dims, (0.25, 1.0, 4.0), vmf_n, seed=ctx.seed, dtype=dtype)
    metrics["vmf"] = rows
    lines += [
        "",
        f"**vMF fit** on {vmf_n} synthetic unit vectors per case (Wood's sampler, {dtype}): "
        "κ̂ by Newton on A_d(κ) = R̄ from Banerjee's start; the SciPy column runs the same "
        "Newton with `ive(d/2, κ)/ive(d/2−1, κ)`.",
        "",
        "| d | κ true | κ̂ (sciml) | rel. error (sampling) | Newton steps | residual | κ̂ (SciPy) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['d']} | {row['kappa_true']:.0f} | {row['kappa_hat']:.2f} | "
            f"{row['relative_error']:+.1e} | {row['newton_steps']} | {row['residual']:.1e} | "
            f"{row['scipy_kappa_hat']:.2f} |"
        )
        if not row["converged"]:
            failures.append(f"special: vMF fit did not converge at d={row['d']}")
    return SectionResult(markdown="\n".join(lines), metrics=metrics, failures=failures)
