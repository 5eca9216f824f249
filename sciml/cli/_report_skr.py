"""Report section: SKR, sorted Krylov recycling for neural-operator data generation."""

from ._report import SectionContext, SectionResult, report_section

GRID_DEFAULT, GRID_SMOKE = 34, 18
N_DEFAULT, N_SMOKE = 20, 6


@report_section("skr", "SKR: sorted Krylov recycling for data generation", order=50)
def skr_section(ctx: SectionContext) -> SectionResult:
    """Iterations per system along a GCRO-DR(40, 20) chain, sorted vs unsorted, vs GMRES(40).

    Two Darcy families on an s×s grid: lognormal GRF coefficients (the FNO dataset: independent
    samples, sorting helps little) and a one-parameter family a = exp(θφ) (sorting puts close θ
    next to each other). The full benchmark (s = 34, 66, both tolerances, Jacobi, SciPy
    baselines) is `benchmarks/bench_skr.py`.
    """
    import time

    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from sciml.operators.datagen import darcy_family, solve_sequence

    s = GRID_SMOKE if ctx.smoke else GRID_DEFAULT
    N = N_SMOKE if ctx.smoke else N_DEFAULT
    dtype = np.dtype(ctx.dtype)
    rtol = 1e-8 if dtype == np.float64 else 1e-5
    key = jax.random.key(ctx.seed)
    families = {
        "lognormal": darcy_family(key, N, s, dtype=dtype),
        "one-parameter": darcy_family(key, N, s, coefficient="parametric", n_terms=1, dtype=dtype),
    }
    runs = {}
    for fam_name, family in families.items():
        methods = {"gmres(40)": ("gmres", None), "skr unsorted": ("skr", None)}
        methods["skr sorted"] = ("skr", "greedy")
        if fam_name != "lognormal":
            methods.pop("gmres(40)")  # the comparison of interest there is the sorting
        for name, (method, sort) in methods.items():
            ctx.log(f"skr: {fam_name} {name}")
            solve = lambda method=method, sort=sort, family=family: solve_sequence(  # noqa: E731
                family, method=method, sort=sort, rtol=rtol, m=40, k=20
            )
            tic = time.perf_counter()
            jax.block_until_ready(solve().solutions)
            first = time.perf_counter() - tic
            tic = time.perf_counter()
            out = solve()
            jax.block_until_ready(out.solutions)
            run_s = time.perf_counter() - tic
            order = np.asarray(out.order)
            runs[(fam_name, name)] = {
                "chain_iterations": np.asarray(out.iterations)[order],
                "iterations": np.asarray(out.iterations),
                "matvecs": np.asarray(out.matvecs),
                "converged": np.asarray(out.converged),
                "max_residual": float(np.max(np.asarray(out.residuals))),
                "run_s": run_s,
                "compile_s": max(first - run_s, 0.0),
            }

    failures = [
        f"skr: {fam} {name}: {int(np.sum(~r['converged']))} solves did not converge"
        for (fam, name), r in runs.items()
        if not np.all(r["converged"])
    ]

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
    for ax, fam_name in zip(axes, families, strict=True):
        for (fam, name), r in runs.items():
            if fam == fam_name:
                ax.plot(np.arange(1, N + 1), r["chain_iterations"], marker="o", ms=3, label=name)
        ax.set(
            xlabel="position in the solving order",
            ylabel="iterations",
            title=f"Darcy {fam_name}, s = {s}",
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ctx.path("chain.png"), dpi=110)
    plt.close(fig)

    reference = runs[("lognormal", "gmres(40)")]
    rows = []
    for (fam, name), r in runs.items():
        ratio = float(np.mean(reference["iterations"]) / np.mean(r["iterations"]))
        speed = reference["run_s"] / r["run_s"] if fam == "lognormal" else None
        rows.append(
            f"| {fam} | {name} | {np.mean(r['iterations']):.1f} | {r['chain_iterations'][0]} | "
            f"{np.mean(r['matvecs']):.1f} | {r['run_s']:.2f} | "
            f"{f'{ratio:.2f}' if fam == 'lognormal' else '—'} | "
            f"{'—' if speed is None else f'{speed:.2f}'} | {r['max_residual']:.1e} |"
        )
    markdown = "\n".join(
        [
            f"N = {N} Darcy systems −∇·(a∇u) = 1 on a {s}×{s} grid ({(s - 2) ** 2} unknowns), "
            f"rtol {rtol:g} on the true residual, {ctx.dtype}, one chain, GCRO-DR(40, 20) "
            f"(`sciml.solvers.gcrodr`) vs restarted GMRES(40) with the same operator. Solve "
            f"times are the second (compiled) call on {ctx.env.get('device_kind')}. At this "
            f"size a product with A is nearly free, so GCRO-DR's dense work per cycle can cost "
            f"more time than its fewer iterations save; the time gain grows with the grid "
            f"(docs/skr.md, Measurements).",
            "",
            "| family | method | mean its | first its | mean matvecs | solve [s] | "
            "GMRES/method its | speed-up | max rel. res |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            ctx.image("chain.png", "iterations along the chain"),
        ]
    )
    metrics = {
        "grid": s,
        "n_samples": N,
        "rtol": rtol,
        "runs": {
            f"{fam}/{name}": {
                "mean_iterations": float(np.mean(r["iterations"])),
                "chain_iterations": r["chain_iterations"].tolist(),
                "mean_matvecs": float(np.mean(r["matvecs"])),
                "run_s": r["run_s"],
                "compile_s": r["compile_s"],
                "max_residual": r["max_residual"],
            }
            for (fam, name), r in runs.items()
        },
    }
    return SectionResult(markdown=markdown, metrics=metrics, failures=failures)
