"""Report section: sciml's Krylov solvers against SciPy on the bundled problems."""

import sys

from ._common import (
    DEFAULT_RTOL,
    PROBLEMS,
    RUN_HEADERS,
    HostSystem,
    MethodRun,
    markdown_table,
    method_title,
    run_method,
    run_row,
)
from ._report import SectionContext, SectionResult, report_section

LINEAR_PROBLEMS = (
    "poisson2d",
    "poisson3d",
    "fluid-pressure",
    "darcy",
    "convection-diffusion",
    "helmholtz",
)
# Restarted GMRES stagnates on the indefinite Helmholtz problem; a smaller budget shows the
# stagnation without spending minutes on it.
LINEAR_MAX_STEPS = {"helmholtz": 2000}
RESTART = 40
# Compilation dominates at smoke sizes (seconds per solver on a busy 2-core machine), so
# `--smoke` runs every problem but compiles each sciml solver on a few of them only: every code
# path of the section still runs, in about a third of the time.
SMOKE_METHODS = {
    "poisson2d": ("cg", "pcg", "gmres", "scipy-cg", "scipy-gmres", "direct"),
    "poisson3d": ("cg", "scipy-cg", "direct"),
    "fluid-pressure": ("cg", "pcg", "scipy-cg", "direct"),
    "darcy": ("pcg", "scipy-cg", "direct"),
    "convection-diffusion": ("gmres", "scipy-gmres", "direct"),
    "helmholtz": ("gmres", "scipy-gmres", "direct"),
}
# A method and its SciPy counterpart share a colour; SciPy is dashed on top, so curves that
# coincide (as they should) both stay visible.
PLOT_STYLES = {
    "cg": {"color": "C0", "linewidth": 2.6, "alpha": 0.6},
    "pcg": {"color": "C1"},
    "gmres": {"color": "C2", "linewidth": 2.6, "alpha": 0.6},
    "scipy-cg": {"color": "C0", "linestyle": "--", "linewidth": 1.2},
    "scipy-gmres": {"color": "C2", "linestyle": "--", "linewidth": 1.2},
    "direct": {},
}
NOTES = {
    "helmholtz": "Restarted GMRES without a preconditioner is known to stagnate on indefinite "
    "Helmholtz systems (the restart discards the Krylov information that resolves the "
    "eigenvalues near zero); a shifted-Laplacian preconditioner is the standard remedy.",
}


@report_section("linear-solvers", "Linear solvers", order=10)
def linear_solvers(ctx: SectionContext) -> SectionResult:
    """sciml CG / PCG (Jacobi) / GMRES(40) vs SciPy cg / gmres and spsolve on the bundled problems.

    Iterations, the host-checked relative residual, the error against the direct solve, compile
    and run time per method; one convergence plot per problem.
    """
    import numpy as np

    from sciml._core._plotting import convergence_plot
    from sciml._core._progress import progress_bar, progress_enabled

    rtol = DEFAULT_RTOL[ctx.dtype]
    repeats, warmup = (1, 0) if ctx.smoke else (3, 1)
    budget_s = 5.0 if ctx.smoke else 10.0
    dtype = np.dtype(ctx.dtype)
    blocks, records, failures, summary_rows = [], {}, [], []

    def methods_of(name):
        return SMOKE_METHODS[name] if ctx.smoke else PROBLEMS[name].methods

    total = sum(len(methods_of(name)) for name in LINEAR_PROBLEMS)
    with progress_bar(total, desc="linear solvers", unit="solve", progress=ctx.progress) as bar:
        # Lines printed around a live bar must go through it, or they tear its rendering.
        say = ctx.log
        if progress_enabled(ctx.progress):
            say = lambda line: bar.write(line, file=sys.stderr)  # noqa: E731
        for name in LINEAR_PROBLEMS:
            spec = PROBLEMS[name]
            size = spec.smoke_size if ctx.smoke else spec.default_size
            n = spec.unknowns(size)
            max_steps = min(10 * n, 10_000, LINEAR_MAX_STEPS.get(name, 10_000))
            problem = spec.build(size=size, seed=ctx.seed, dtype=dtype)
            host = HostSystem.from_problem(problem)
            runs: dict[str, MethodRun] = {}
            direct = run_method(
                "direct",
                problem,
                host,
                rtol=rtol,
                max_steps=max_steps,
                repeats=repeats,
                warmup=warmup,
                budget_s=budget_s,
            )
            bar.update()
            for method in methods_of(name):
                if method == "direct":
                    runs[method] = direct
                    continue
                say(f"  {name} (n = {n:,}): {method_title(method, RESTART)}")
                run = run_method(
                    method,
                    problem,
                    host,
                    rtol=rtol,
                    max_steps=max_steps,
                    restart=RESTART,
                    repeats=repeats,
                    warmup=warmup,
                    budget_s=budget_s,
                )
                if run.solution is not None:
                    run.error = direct.reference.error(run.solution)
                runs[method] = run
                bar.update()
                if not run.ok:
                    failures.append(
                        f"{spec.title}: {run.title} — {run.status}"
                        + (f" after {run.iterations} iterations" if run.iterations else "")
                        + (
                            f", rel. residual {run.rel_residual:.1e}"
                            if run.rel_residual is not None
                            else ""
                        )
                        + (f" ({run.message})" if run.status == "error" else "")
                    )
            plot = ctx.path(f"{name}.png")
            convergence_plot(
                {run.title: run.history for run in runs.values() if run.history is not None},
                plot,
                f"{spec.title}, n = {n:,}, {ctx.dtype}",
                rtol=rtol,
                styles={run.title: PLOT_STYLES[run.method] for run in runs.values()},
            )
            blocks.append(_problem_block(ctx, spec, size, n, max_steps, runs, name))
            summary_rows.append(_summary_row(spec, n, runs))
            records[name] = {
                "title": spec.title,
                "kind": spec.kind,
                "size": size,
                "n": n,
                "max_steps": max_steps,
                "rtol": rtol,
                "restart": RESTART,
                "runs": [run.record() for run in runs.values()],
            }

    summary_headers = [
        "problem",
        "n",
        *[method_title(m, RESTART) for m in ("cg", "pcg", "gmres", "scipy-cg", "scipy-gmres")],
    ]
    text = [
        f"Krylov solvers of `sciml.solvers` against SciPy on the problems of `sciml.problems` "
        f"({ctx.dtype}, stopping rule ‖b − Ax‖ ≤ rtol‖b‖ with rtol = {rtol:g}, x₀ = 0, the "
        f"same rule in every solver). CG-type methods run only on the symmetric positive "
        f"(semi-)definite problems; the convection–diffusion (nonsymmetric) and Helmholtz "
        f"(indefinite) systems use GMRES. The *rel. residual* column is recomputed on the host "
        f"in float64 from the operator's `to_scipy()` matrix, not taken from the solver; "
        f"*error vs direct* is ‖x − x_LU‖/‖x_LU‖ against SciPy's sparse LU (for the singular "
        f"fluid-pressure system both are taken with zero mean on every floating fluid region). "
        f"The plots show each solver's own residual per iteration: the recursively updated "
        f"residual for sciml CG, the Givens-rotation estimate for both GMRES, and the true "
        f"residual of each iterate for SciPy CG (from its callback, in an extra untimed run).",
        "",
        "Iterations to convergence (a ✗ marks a solve that did not converge):",
        "",
        markdown_table(summary_headers, summary_rows),
        "",
        _agreement_note(records),
    ]
    if failures:
        text += ["", "**Not converged**:", ""] + [f"- {line}" for line in failures]
    markdown = "\n".join(text + [""] + blocks)
    return SectionResult(markdown=markdown, metrics={"problems": records}, failures=failures)


def _summary_row(spec, n, runs) -> list[str]:
    row = [spec.title, f"{n:,}"]
    for method in ("cg", "pcg", "gmres", "scipy-cg", "scipy-gmres"):
        run = runs.get(method)
        if run is None:
            row.append("—")
        else:
            row.append(str(run.iterations) if run.ok else f"✗ {run.iterations}")
    return row


def _agreement_note(records) -> str:
    pairs = (("cg", "scipy-cg"), ("gmres", "scipy-gmres"))
    agree, disagree = 0, []
    for name, record in records.items():
        runs = {run["method"]: run for run in record["runs"]}
        for ours, theirs in pairs:
            if ours in runs and theirs in runs:
                a, b = runs[ours]["iterations"], runs[theirs]["iterations"]
                if a is not None and b is not None and abs(a - b) <= 1:
                    agree += 1
                else:
                    disagree.append(f"{name}: {ours} {a} vs {theirs} {b}")
    if not disagree:
        return (
            f"Iteration counts of sciml and SciPy agree within ±1 in all {agree} "
            f"comparable pairs (cg/SciPy cg, gmres/SciPy gmres)."
        )
    return (
        "**Iteration counts differ from SciPy by more than 1**: "
        + "; ".join(disagree)
        + f" ({agree} other pairs agree)."
    )


def _problem_block(ctx, spec, size, n, max_steps, runs, name) -> str:
    rows = [run_row(run) for run in runs.values()]
    grid = "×".join([str(size)] * spec.ndim)
    messages = sorted(
        {f"{run.status}: {run.message}" for run in runs.values() if not run.ok and run.message}
    )
    notes = []
    if name in NOTES and any(not run.ok for run in runs.values()):
        notes = [NOTES[name], ""]
    return "\n".join(
        [
            f"### {spec.title}",
            "",
            f"`sciml solve {name} --size {size}` · {spec.size_meaning}: {grid}, n = {n:,} "
            f"unknowns, {spec.kind}, max_steps = {max_steps}.",
            "",
            markdown_table(RUN_HEADERS, rows),
            "",
            *[f"- {message}" for message in messages],
            *([""] if messages else []),
            *notes,
            ctx.image(f"{name}.png", f"convergence on {spec.title}"),
            "",
        ]
    )
