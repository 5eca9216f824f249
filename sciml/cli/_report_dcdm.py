"""Report section: the learned DCDM solver vs CG, Jacobi-PCG and AMG-PCG on 2-D fluid pressure."""

from ._report import SectionContext, SectionResult, SectionSkipped, report_section

SIZES_DEFAULT, SIZES_SMOKE = (16, 32, 64), (16,)
RTOL = 1e-4
# 3-D DCDM costs seconds per iteration on a CPU (16-channel 3×3×3 convolutions), so the report
# stays in 2-D; the 3-D numbers are in benchmarks/bench_dcdm.py and the GPU check.


@report_section("dcdm", "Deep Conjugate Direction Method (learned solver)", order=30)
def deep_conjugate_directions(ctx: SectionContext) -> SectionResult:
    """Iterations to rtol 1e-4 against grid size, and convergence curves at the largest grid.

    2-D fluid-pressure systems with random obstacles (unseen in training), pure Neumann, x0 = 0;
    DCDM with the shipped 2-D model, sciml CG, CG with the Jacobi preconditioner, and pyamg's
    smoothed-aggregation AMG as a CG preconditioner when pyamg is installed (on the host).
    """
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from sciml.linalg import FLUID
    from sciml.problems import fluid_pressure
    from sciml.solvers import cg, dcdm, jacobi
    from sciml.solvers._dcdm import default_dcdm_model

    try:
        model = default_dcdm_model(2)
    except ValueError as error:
        raise SectionSkipped(f"no shipped 2-D DCDM model ({error})") from None
    try:
        import pyamg
    except ImportError:
        pyamg = None

    dtype = jnp.dtype(ctx.dtype)
    sizes = SIZES_SMOKE if ctx.smoke else SIZES_DEFAULT
    methods = ["dcdm", "cg"] if ctx.smoke else ["dcdm", "cg", "jacobi-pcg"]
    if pyamg is not None:
        methods.append("amg-pcg")

    @eqx.filter_jit
    def solve(method, op, b, net):
        if method == "dcdm":
            return dcdm(op, b, model=net, rtol=RTOL, max_steps=300, throw=False)
        M = jacobi(op) if method == "jacobi-pcg" else None
        return cg(op, b, rtol=RTOL, max_steps=20 * op.n, M=M, throw=False)

    iterations = {m: [] for m in methods}
    cells = {m: [] for m in methods}
    histories, failures = {}, []
    for size in sizes:
        problem = fluid_pressure(jax.random.key(ctx.seed), (size, size), dtype=dtype)
        op, b = problem.operator, problem.rhs
        b_norm = float(jnp.linalg.norm(b))
        for method in methods:
            ctx.log(f"dcdm: {size}² {method}")
            if method == "amg-pcg":
                its, history, ok = _amg(pyamg, op, np.asarray(b), FLUID)
            else:
                sol = solve(method, op, b, model)
                its = int(sol.stats["num_steps"])
                history = np.asarray(sol.stats["residual_history"], np.float64) / b_norm
                ok = bool(sol.converged)
            iterations[method].append(its)
            cells[method].append(str(its) if ok else f"FAILED: {its}")
            if not ok:
                failures.append(f"dcdm section: {method} did not reach {RTOL:g} at {size}²")
            if size == sizes[-1]:
                histories[method] = history[np.isfinite(history)]

    fig, (ax_its, ax_conv) = plt.subplots(1, 2, figsize=(11, 4))
    for method in methods:
        ax_its.plot(sizes, iterations[method], "o-", label=method)
        ax_conv.semilogy(histories[method], label=method)
    ax_its.set(xlabel="grid side N (N² cells)", ylabel=f"iterations to {RTOL:g}", xscale="log")
    ax_its.set_xticks(sizes, [str(s) for s in sizes])
    ax_its.legend()
    ax_conv.axhline(RTOL, color="k", linestyle=":", linewidth=1)
    ax_conv.set(xlabel="iteration", ylabel="‖r‖ / ‖b‖", title=f"{sizes[-1]}²")
    ax_conv.legend()
    fig.tight_layout()
    fig.savefig(ctx.path("iterations.png"), dpi=110)
    plt.close(fig)

    header = "| solver | " + " | ".join(f"{s}²" for s in sizes) + " |"
    rows = [f"| {m} | " + " | ".join(str(i) for i in iterations[m]) + " |" for m in methods]
    markdown = "\n".join(
        [
            f"Iterations to ‖b − Ax‖ ≤ {RTOL:g}·‖b‖ from x₀ = 0 on 2-D fluid-pressure systems with "
            f"three random obstacles (pure Neumann, {ctx.dtype}); DCDM uses the shipped 2-D "
            f"model (variant {model.variant}), which never saw obstacles. AMG-PCG is pyamg's "
            f"smoothed aggregation on the host"
            + ("" if pyamg is not None else " (pyamg is not installed: left out)")
            + ". Wall times: benchmarks/bench_dcdm.py and docs/dcdm.md.",
            "",
            header,
            "|---|" + "---:|" * len(sizes),
            *rows,
            "",
            ctx.image("iterations.png", "iterations against grid size and convergence curves"),
        ]
    )
    metrics = {"sizes": list(sizes), "rtol": RTOL, "iterations": iterations}
    return SectionResult(markdown=markdown, metrics=metrics, failures=failures)


def _amg(pyamg, op, b, fluid_code):
    import numpy as np

    fluid = np.flatnonzero(np.asarray(op.mask).reshape(-1) == fluid_code)
    matrix = op.to_scipy().tocsr().astype(np.float64)[fluid][:, fluid]
    ml = pyamg.smoothed_aggregation_solver(matrix, max_coarse=10)
    residuals: list[float] = []
    rhs = b.astype(np.float64)[fluid]
    x = ml.solve(rhs, tol=RTOL, maxiter=500, accel="cg", residuals=residuals)
    ok = np.linalg.norm(rhs - matrix @ x) <= 1.01 * RTOL * np.linalg.norm(rhs)
    return len(residuals) - 1, np.asarray(residuals) / np.linalg.norm(rhs), bool(ok)
