"""`sciml report`: run each area's headline comparison and write `index.md` with tables and plots.

This is what `make demo` runs. The report is a registry of sections, one per area of sciml. A
section is a function `build(ctx: SectionContext) -> SectionResult` registered with
`@report_section(key, title, order=...)`; it writes its files through `ctx.path(name)` and
returns Markdown. Sections live in this module (linear solvers) or in any module named
`sciml/cli/_report_<area>.py`, which is discovered and imported automatically, so a new area adds
its section by adding one module.

Rules for sections:
- a missing optional piece (a module of sciml not written yet, an optional dependency) raises
  `SectionSkipped("why")`: the report says so and carries on;
- a failed solve or check is shown as a failure in the section's tables and listed in
  `SectionResult.failures` (it appears in the report's summary); it is never dressed up as a
  success;
- any other exception is caught by the runner, shown in the report, and makes `sciml report`
  exit with status 1 after the report is written.
- a section module that cannot be imported becomes a section that says so: skipped when a
  third-party package is missing, failed otherwise.

Everything is written into a staging folder inside the output directory and moved into place
(one atomic rename per file, `index.md` last) only when all sections have run, so an interrupted
report leaves the previous one intact.
"""

import argparse
import dataclasses
import datetime
import importlib
import pkgutil
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._common import (
    DEFAULT_RTOL,
    DTYPES,
    PROBLEMS,
    RUN_HEADERS,
    HostSystem,
    MethodRun,
    UsageError,
    add_run_options,
    configure_jax,
    int_at_least,
    limit_blas_threads,
    markdown_table,
    method_title,
    one_line,
    run_method,
    run_row,
)


class SectionSkipped(Exception):
    """Raised by a section when an optional piece it needs is missing."""


@dataclasses.dataclass
class SectionContext:
    """What a section gets to work with.

    Attributes:
        key: the section's key; file names are prefixed with it.
        workdir: the staging folder; write only through `path`.
        smoke: tiny sizes and a single timed run (for tests; seconds, not minutes).
        dtype: "float32" or "float64".
        seed: the base seed of every problem.
        progress: progress bar setting for `sciml._core._progress` (None: only on a terminal).
        env: `sciml._core._metrics.environment()`.
        log: print a line of progress on stderr.
    """

    key: str
    workdir: Path
    smoke: bool
    dtype: str
    seed: int
    progress: bool | None
    env: dict[str, Any]
    log: Callable[[str], None]
    files: list[str] = dataclasses.field(default_factory=list)

    def path(self, name: str) -> Path:
        """Where to write the output file `name` (it appears in the report as `<key>-<name>`)."""
        filename = f"{self.key}-{name}"
        if filename not in self.files:
            self.files.append(filename)
        return self.workdir / filename

    def image(self, name: str, alt: str) -> str:
        """Markdown that shows the PNG written to `self.path(name)`."""
        return f"![{alt}]({self.key}-{name})"


@dataclasses.dataclass
class SectionResult:
    """What a section produced.

    Attributes:
        markdown: the section body (without its `##` title).
        metrics: JSON-ready measurements, stored under the section's key in `metrics.json`.
        failures: one line per failed solve or check, listed in the report's summary.
    """

    markdown: str
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    failures: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Section:
    key: str
    title: str
    order: int
    build: Callable[[SectionContext], SectionResult]


_SECTIONS: dict[str, Section] = {}


def report_section(key: str, title: str, *, order: int = 100):
    """Register the decorated `build(ctx) -> SectionResult` as a report section.

    Args:
        key: a short slug (`"linear-solvers"`); used for `--only`, file names and metrics.
        title: the section heading.
        order: sections appear by increasing `order`, then key.
    """

    def register(build: Callable[[SectionContext], SectionResult]):
        existing = _SECTIONS.get(key)
        if existing is not None and existing.build is not build:
            raise ValueError(f"two report sections are registered under the key {key!r}.")
        _SECTIONS[key] = Section(key, title, order, build)
        return build

    return register


def section_modules() -> list[str]:
    """The names of the `sciml.cli._report_<area>` modules present in this installation."""
    package = importlib.import_module(__package__)
    return sorted(
        f"{__package__}.{module.name}"
        for module in pkgutil.iter_modules(package.__path__)
        if module.name.startswith("_report_")
    )


_import_module = importlib.import_module


def _import_section_module(name: str) -> None:
    """Import a section module; if that fails, register a section that reports why.

    A missing third-party package (an optional dependency of that area) makes the section
    skipped; any other import error (a bug) makes it fail, which the exit status reflects.
    """
    try:
        _import_module(name)
    except Exception as error:
        key = name.rsplit("._report_", 1)[-1].replace("_", "-")
        missing = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
        optional = missing is not None and missing.split(".")[0] != "sciml"
        reason = f"{type(error).__name__}: {one_line(error)}"

        def build(ctx: SectionContext) -> SectionResult:
            if optional:
                raise SectionSkipped(f"optional dependency '{missing}' is not installed")
            raise RuntimeError(f"could not import {name}: {reason}")

        _SECTIONS.setdefault(key, Section(key, f"{key} (not importable)", 1000, build))


def available_sections() -> list[Section]:
    """All registered sections, after importing every `sciml.cli._report_<area>` module."""
    for name in section_modules():
        _import_section_module(name)
    return sorted(_SECTIONS.values(), key=lambda section: (section.order, section.key))


# --------------------------------------------------------------------------------------------
# The command


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report",
        help="run every area's headline comparison; write index.md, plots and metrics.json",
        description="Run each area's headline comparison and write OUT/index.md (Markdown "
        "tables and PNG plots) and OUT/metrics.json. This is what `make demo` runs.",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("report"), help="output directory (default: report)"
    )
    parser.add_argument(
        "--force", action="store_true", help="write into --out even if it is not empty"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes and one timed run (seconds; for tests)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="SECTION",
        help="run only this section (repeatable); see --list",
    )
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    parser.add_argument("--dtype", choices=DTYPES, default="float64", help="default: float64")
    parser.add_argument(
        "--seed", type=int_at_least(0), default=0, help="seed of every problem (default: 0)"
    )
    add_run_options(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    sections = available_sections()
    if args.list:
        for section in sections:
            print(f"{section.key:20s} {section.title}")
        return 0
    if args.only:
        known = {section.key for section in sections}
        unknown = [key for key in args.only if key not in known]
        if unknown:
            raise UsageError(
                f"unknown report section {', '.join(map(repr, unknown))}; choose from "
                f"{', '.join(sorted(known))}."
            )
        sections = [section for section in sections if section.key in args.only]

    limit_blas_threads()
    from sciml._core._metrics import prepare_output_dir

    out = prepare_output_dir(args.out, force=args.force, force_hint="--force")
    configure_jax(platform=args.platform, x64=args.dtype == "float64")

    from sciml._core._metrics import (
        atomic_write_text,
        describe_environment,
        environment,
        jsonable,
        write_json,
    )

    env = environment()
    progress = False if args.no_progress else None
    started = time.perf_counter()
    created = datetime.datetime.now(datetime.timezone.utc)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    log(
        f"sciml report → {out}/index.md ({'smoke' if args.smoke else 'full'} sizes, "
        f"{args.dtype}) on {describe_environment(env)}"
    )
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        outcomes = []
        for section in sections:
            ctx = SectionContext(
                key=section.key,
                workdir=staging,
                smoke=args.smoke,
                dtype=args.dtype,
                seed=args.seed,
                progress=progress,
                env=env,
                log=log,
            )
            log(f"[{section.key}] {section.title}")
            outcomes.append(_run_section(section, ctx))
        elapsed = time.perf_counter() - started

        errors = [o for o in outcomes if o["status"] == "error"]
        failures = [line for o in outcomes for line in o["failures"]]
        metrics = {
            "schema": 1,
            "command": "sciml report" + (" --smoke" if args.smoke else ""),
            "created": created.isoformat(timespec="seconds"),
            "environment": env,
            "dtype": args.dtype,
            "smoke": args.smoke,
            "seed": args.seed,
            "timings": {"total_s": elapsed},
            "sections": {
                o["key"]: {k: v for k, v in o.items() if k not in ("markdown",)} for o in outcomes
            },
            "failures": failures,
        }
        markdown = _index_markdown(
            outcomes,
            env=env,
            args=args,
            created=created,
            elapsed=elapsed,
            describe=describe_environment(env),
        )
        moved = []
        for outcome in outcomes:
            for name in outcome["files"]:
                if (staging / name).exists():
                    (staging / name).replace(out / name)
                    moved.append(name)
        write_json(out / "metrics.json", jsonable(metrics))
        atomic_write_text(out / "index.md", markdown)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    log(
        f"wrote {out / 'index.md'}, {out / 'metrics.json'} and {len(moved)} other files "
        f"in {elapsed:.0f} s"
    )
    for line in failures:
        log(f"  not successful: {line}")
    if errors:
        for outcome in errors:
            log(f"  section '{outcome['key']}' raised: {outcome['error']}")
        print(
            f"sciml: error: {len(errors)} report section(s) failed with an exception "
            f"({', '.join(o['key'] for o in errors)}); see {out / 'index.md'}",
            file=sys.stderr,
        )
        return 1
    return 0


def _run_section(section: Section, ctx: SectionContext) -> dict[str, Any]:
    start = time.perf_counter()
    outcome: dict[str, Any] = {
        "key": section.key,
        "title": section.title,
        "status": "ok",
        "error": None,
        "markdown": "",
        "metrics": {},
        "failures": [],
        "files": ctx.files,
    }
    try:
        result = section.build(ctx)
    except SectionSkipped as reason:
        outcome.update(status="skipped", error=one_line(reason))
        outcome["markdown"] = f"*Skipped: {one_line(reason)}*"
    except KeyboardInterrupt:
        raise
    except Exception as error:  # shown in the report and reflected in the exit status
        outcome.update(
            status="error",
            error=f"{type(error).__name__}: {one_line(error)}",
            traceback=traceback.format_exc(),
        )
        outcome["markdown"] = (
            f"**This section failed with an exception**: `{type(error).__name__}: "
            f"{one_line(error)}`. The traceback is in `metrics.json` "
            f"(`sections.{section.key}.traceback`)."
        )
    else:
        outcome.update(
            markdown=result.markdown, metrics=result.metrics, failures=list(result.failures)
        )
        if result.failures:
            outcome["status"] = "ok, with failures"
    outcome["elapsed_s"] = time.perf_counter() - start
    return outcome


def _index_markdown(outcomes, *, env, args, created, elapsed, describe) -> str:
    versions = env["versions"]
    sizes = (
        "**smoke sizes** (a quick check, not representative timings)"
        if args.smoke
        else "default sizes"
    )
    lines = [
        "# sciml report",
        "",
        f"Generated by `sciml report{' --smoke' if args.smoke else ''}` (sciml "
        f"{versions['sciml']}) on {created:%Y-%m-%d %H:%M} UTC in {elapsed:.0f} s, "
        f"{sizes}, "
        f"{args.dtype}, seed {args.seed}.",
        "",
        f"**Machine**: {describe}. JAX devices: {', '.join(env['devices'])}.",
        "",
        "Timings are wall-clock seconds on this machine: *compile* is JAX's trace + lower + "
        "XLA compile of the whole solve (paid once per shape and dtype), *run* the median of "
        "the timed runs (JAX after one untimed warm-up run). SciPy runs on the host CPU with "
        f"OPENBLAS_NUM_THREADS={env['env'].get('OPENBLAS_NUM_THREADS') or 'unset'}: threaded "
        "BLAS-1 calls on vectors this short gain nothing and contend with XLA's thread pool. "
        "Numbers from a shared or busy machine are noisy; compare methods within one report, "
        "not across machines.",
        "",
        "| section | status | time [s] |",
        "|---|---|---:|",
    ]
    for o in outcomes:
        status = o["status"] if o["status"] != "error" else f"**error**: {o['error']}"
        if o["status"] == "skipped":
            status = f"skipped: {o['error']}"
        lines.append(f"| [{o['title']}](#{o['key']}) | {status} | {o['elapsed_s']:.1f} |")
    failures = [line for o in outcomes for line in o["failures"]]
    if failures:
        lines += ["", "**Not successful** (shown as failures in the tables below):", ""]
        lines += [f"- {line}" for line in failures]
    for o in outcomes:
        lines += ["", f'<a id="{o["key"]}"></a>', "", f"## {o['title']}", "", o["markdown"]]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------------------------
# Section: linear solvers

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
