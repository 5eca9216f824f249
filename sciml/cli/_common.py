"""Shared machinery of the `sciml` subcommands: errors, JAX start-up, problems, methods, tables.

Nothing here imports JAX at module level: `--platform` and `--dtype float64` must reach JAX
through environment variables before it is first imported, so every JAX-touching import happens
inside a function that runs after `configure_jax`.
"""

import argparse
import dataclasses
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

PLATFORMS = ("cpu", "gpu", "tpu")
DTYPES = ("float32", "float64")
DEFAULT_RTOL = {"float32": 1e-5, "float64": 1e-8}
# Problems larger than this are almost certainly a typo (`--size 10000` in 3-D is 10¹² unknowns).
MAX_UNKNOWNS = 1 << 27


class UsageError(Exception):
    """A mistake in the command line: reported as one line with exit status 2."""


class RunFailure(Exception):
    """The command ran but its result is a failure (e.g. a solver did not converge): exit 1."""


def one_line(message: Any) -> str:
    """Collapse a message to a single line (exception texts may span several)."""
    return " ".join(str(message).split())


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but usage mistakes raise `UsageError` instead of printing usage and exiting.

    `main` turns the error into the single line `sciml: error: ...`; `--help` still prints
    the full usage.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # argparse reads `--rtol -1e-3` as a missing value followed by an option; treat
        # negative numbers in exponent notation as values, so the type check can explain.
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{one_line(message)} (see `{self.prog} --help`)")


# --------------------------------------------------------------------------------------------
# Argument types


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options every computing subcommand accepts (they may also precede the subcommand)."""
    group = parser.add_argument_group("runtime")
    group.add_argument(
        "--platform",
        choices=PLATFORMS,
        default=argparse.SUPPRESS,
        help="run JAX on this platform (sets JAX_PLATFORMS before JAX starts)",
    )
    group.add_argument(
        "--no-progress",
        action="store_true",
        default=argparse.SUPPRESS,
        help="never show progress bars (they are shown only on a terminal anyway)",
    )


# --------------------------------------------------------------------------------------------
# JAX start-up


def jax_platforms_value(platform: str) -> str:
    """The `JAX_PLATFORMS` value for a `--platform` choice.

    Recent JAX reads "gpu" as "cuda or rocm" and fails when the ROCm backend is absent, so a
    "gpu" request names the GPU plugin that is installed ("cuda" or "rocm").
    """
    if platform != "gpu":
        return platform
    from importlib import metadata

    names = {dist.metadata["Name"].lower().replace("_", "-") for dist in metadata.distributions()}
    for backend in ("cuda", "rocm"):
        if any(name.startswith(f"jax-{backend}") for name in names):
            return backend
    return platform


def configure_jax(*, platform: str | None = None, x64: bool = False) -> None:
    """Choose JAX's platform and precision, before JAX is imported when possible.

    Args:
        platform: "cpu", "gpu" or "tpu", or None for JAX's default choice.
        x64: turn on 64-bit mode (needed for float64).

    Raises:
        UsageError: if JAX already runs in this process on a different platform.
        RuntimeError: if JAX cannot start the requested platform (reported by `main`).
    """
    if "jax" not in sys.modules:
        if platform is not None:
            os.environ["JAX_PLATFORMS"] = jax_platforms_value(platform)
        if x64:
            os.environ["JAX_ENABLE_X64"] = "1"
    import jax

    if x64 and not jax.config.read("jax_enable_x64"):
        # Only reached when JAX was imported before the CLI ran (e.g. `main()` called from a
        # notebook): the command line is the application here, so it may set the flag.
        jax.config.update("jax_enable_x64", True)
    if platform is not None:
        try:
            backend = jax.default_backend()
        except RuntimeError as error:
            hint = " (is a GPU-enabled jaxlib installed?)" if platform == "gpu" else ""
            raise RunFailure(
                f"JAX could not start the '{platform}' platform{hint}: {one_line(error)}"
            ) from None
        if backend != platform:
            raise UsageError(
                f"--platform {platform} was requested but JAX already runs on '{backend}' in "
                f"this process; give --platform before JAX starts (e.g. on the command line)."
            )


def limit_blas_threads() -> None:
    """Run NumPy/SciPy's BLAS single-threaded in this process (unless the user chose otherwise).

    SciPy's Krylov solvers spend their vector work in BLAS-1 calls on short vectors, where
    threads gain nothing; a multithreaded OpenBLAS then contends with XLA's CPU thread pool in
    the same process and the SciPy baselines slow down by orders of magnitude on a small
    machine (a ddot over 10⁴–10⁵ entries measured 10 ms instead of 0.05 ms once JAX had run).
    The setting only takes effect before NumPy is first imported.
    """
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


# --------------------------------------------------------------------------------------------
# Problems


@dataclasses.dataclass(frozen=True)
class ProblemSpec:
    """A named problem of `sciml.problems` at a size chosen by one integer.

    Attributes:
        name: the command-line name.
        title: a short human title for tables and plots.
        kind: "spd", "spsd" (singular, consistent right-hand side), "nonsymmetric" or
            "indefinite"; CG and PCG apply to the first two only.
        ndim: 2 or 3.
        size_meaning: what `--size` counts, for messages.
        default_size: the size used by `sciml solve` and the report.
        smoke_size: the size used by `--smoke`.
        min_size: the smallest valid size.
        builder: `(key, size, dtype) -> LinearProblem`.
    """

    name: str
    title: str
    kind: str
    ndim: int
    size_meaning: str
    default_size: int
    smoke_size: int
    min_size: int
    builder: Callable[[Any, int, Any], Any]

    @property
    def positive(self) -> bool:
        return self.kind in ("spd", "spsd")

    @property
    def methods(self) -> tuple[str, ...]:
        if self.positive:
            return ("cg", "pcg", "gmres", "scipy-cg", "scipy-gmres", "direct")
        return ("gmres", "scipy-gmres", "direct")

    @property
    def default_method(self) -> str:
        return "cg" if self.positive else "gmres"

    def unknowns(self, size: int) -> int:
        return size**self.ndim

    def check_size(self, size: int) -> None:
        """Raise `UsageError` for a size this problem cannot take."""
        if size < self.min_size:
            raise UsageError(
                f"--size {size} is too small for {self.name}: it needs at least "
                f"{self.min_size} ({self.size_meaning})."
            )
        if self.unknowns(size) > MAX_UNKNOWNS:
            raise UsageError(
                f"--size {size} gives {self.unknowns(size):,} unknowns for {self.name} "
                f"({self.size_meaning}), more than the {MAX_UNKNOWNS:,} this command allows; "
                f"use a smaller --size."
            )

    def build(self, *, size: int, seed: int, dtype: Any) -> Any:
        """The problem as a `sciml.problems.LinearProblem`, deterministic from `seed`."""
        import jax

        self.check_size(size)
        return self.builder(jax.random.key(seed), size, dtype)


def _poisson(ndim):
    def build(key, size, dtype):
        from sciml.problems import poisson_problem

        return poisson_problem(key, (size,) * ndim, dtype=dtype)

    return build


def _fluid_pressure(key, size, dtype):
    from sciml.problems import fluid_pressure

    return fluid_pressure(key, (size,) * 3, n_obstacles=3, dtype=dtype)


def _darcy(key, size, dtype):
    from sciml.problems import darcy

    # `size` counts unknowns per side; the coefficient lives on the nodes, boundary included.
    return darcy(key, 1, size + 2, coefficient="lognormal", dtype=dtype).problem(0)


def _helmholtz(key, size, dtype):
    from sciml.problems import helmholtz_problem

    return helmholtz_problem(key, (size, size), kappa=20.0, dtype=dtype)


def _convection_diffusion(key, size, dtype):
    from sciml.problems import convection_diffusion_problem

    return convection_diffusion_problem(key, (size, size), speed=20.0, dtype=dtype)


# Default sizes keep `sciml report` to a few minutes on a 2-core laptop: SciPy's GMRES (about
# 10 ms per iteration there at n ≈ 10⁴) and the sparse LU of the 3-D problems (fill-in) are the
# slow parts, not the sciml solvers.
PROBLEMS: dict[str, ProblemSpec] = {
    spec.name: spec
    for spec in (
        ProblemSpec(
            name="poisson2d",
            title="2-D Poisson (Dirichlet, 5-point)",
            kind="spd",
            ndim=2,
            size_meaning="cells per side",
            default_size=96,
            smoke_size=12,
            min_size=2,
            builder=_poisson(2),
        ),
        ProblemSpec(
            name="poisson3d",
            title="3-D Poisson (Dirichlet, 7-point)",
            kind="spd",
            ndim=3,
            size_meaning="cells per side",
            default_size=24,
            smoke_size=6,
            min_size=2,
            builder=_poisson(3),
        ),
        ProblemSpec(
            name="fluid-pressure",
            title="3-D fluid pressure, obstacles, pure Neumann",
            kind="spsd",
            ndim=3,
            size_meaning="cells per side",
            default_size=24,
            smoke_size=8,
            min_size=4,
            builder=_fluid_pressure,
        ),
        ProblemSpec(
            name="darcy",
            title="2-D Darcy, lognormal coefficient",
            kind="spd",
            ndim=2,
            size_meaning="unknowns per side",
            default_size=83,  # 85 nodes per side, one of the FNO Darcy resolutions
            smoke_size=14,
            min_size=1,
            builder=_darcy,
        ),
        ProblemSpec(
            name="helmholtz",
            title="2-D Helmholtz, κ = 20 (indefinite)",
            kind="indefinite",
            ndim=2,
            size_meaning="cells per side",
            default_size=64,
            smoke_size=12,
            min_size=2,
            builder=_helmholtz,
        ),
        ProblemSpec(
            name="convection-diffusion",
            title="2-D convection–diffusion, |w|/ν = 20 (nonsymmetric)",
            kind="nonsymmetric",
            ndim=2,
            size_meaning="unknowns per side",
            default_size=96,
            smoke_size=12,
            min_size=2,
            builder=_convection_diffusion,
        ),
    )
}

METHODS = ("cg", "pcg", "gmres", "scipy-cg", "scipy-gmres", "direct")
METHOD_TITLES = {
    "cg": "sciml cg",
    "pcg": "sciml cg + Jacobi",
    "gmres": "sciml gmres({restart})",
    "scipy-cg": "SciPy cg",
    "scipy-gmres": "SciPy gmres({restart})",
    "direct": "SciPy spsolve (direct)",
}


def method_title(method: str, restart: int) -> str:
    return METHOD_TITLES[method].format(restart=restart)


def check_method(spec: ProblemSpec, method: str) -> None:
    """Refuse CG-type methods on problems that are not symmetric positive (semi-)definite."""
    if method in ("cg", "pcg", "scipy-cg") and not spec.positive:
        raise UsageError(
            f"--method {method} needs a symmetric positive definite system, but {spec.name} is "
            f"{spec.kind}; use --method gmres (or scipy-gmres, direct)."
        )


# --------------------------------------------------------------------------------------------
# Running one method on one problem


@dataclasses.dataclass
class MethodRun:
    """What one method did on one problem.

    Attributes:
        method: the method's command-line name.
        title: its human title.
        status: "converged", a `RESULTS` name such as "max_steps_reached", "direct", or
            "error" (SciPy reported illegal input).
        message: the explanation for any status but "converged"/"direct".
        iterations: iterations done (None for the direct solve).
        rel_residual: ‖b − A x‖ / ‖b‖ recomputed on the host in float64 with the operator's
            `to_scipy()` copy (not the solver's own estimate).
        error: ‖x − x_direct‖ / ‖x_direct‖ (after removing null-space components), if known.
        compile_s: time to trace and compile (JAX methods only).
        run_s: median steady-state run time.
        repeats: number of timed runs.
        history: relative residual per iteration (NaN-padded), if the method gives one.
        solution: the computed solution on the host.
        reference: for the direct method, the `DirectReference` (to measure others' errors).
    """

    method: str
    title: str
    status: str
    message: str = ""
    iterations: int | None = None
    rel_residual: float | None = None
    error: float | None = None
    compile_s: float | None = None
    run_s: float | None = None
    repeats: int = 0
    history: Any = None
    solution: Any = None
    reference: "DirectReference | None" = None

    @property
    def ok(self) -> bool:
        return self.status in ("converged", "direct")

    def record(self) -> dict[str, Any]:
        """A JSON-ready summary (no arrays but the trimmed history)."""
        import numpy as np

        history = None
        if self.history is not None:
            values = np.asarray(self.history, dtype=np.float64)
            finite = np.flatnonzero(np.isfinite(values))
            history = values[: finite[-1] + 1].tolist() if finite.size else []
        per_iteration = None
        if self.run_s is not None and self.iterations:
            per_iteration = self.run_s / self.iterations
        return {
            "method": self.method,
            "title": self.title,
            "status": self.status,
            "message": self.message,
            "iterations": self.iterations,
            "rel_residual": self.rel_residual,
            "error_vs_direct": self.error,
            "compile_s": self.compile_s,
            "run_s": self.run_s,
            "time_per_iteration_s": per_iteration,
            "repeats": self.repeats,
            "residual_history": history,
        }


@dataclasses.dataclass
class HostSystem:
    """The host (SciPy) copy of a problem, for the SciPy methods and the residual checks."""

    matrix: Any  # scipy.sparse.csr_array in the problem's dtype
    rhs: Any  # numpy array in the problem's dtype
    matrix64: Any
    rhs64: Any

    @classmethod
    def from_problem(cls, problem: Any) -> "HostSystem":
        import numpy as np

        matrix = problem.operator.to_scipy().tocsr()
        rhs = np.asarray(problem.rhs)
        return cls(matrix, rhs, matrix.astype(np.float64), rhs.astype(np.float64))

    def rel_residual(self, x: Any) -> float:
        import numpy as np

        x = np.asarray(x, dtype=np.float64)
        norm_b = np.linalg.norm(self.rhs64)
        residual = np.linalg.norm(self.rhs64 - self.matrix64 @ x)
        return float(residual / norm_b) if norm_b > 0 else float(residual)


@dataclasses.dataclass
class DirectReference:
    """The direct solution and the projection that removes the operator's null space."""

    solution: Any
    project: Callable[[Any], Any]

    def error(self, x: Any) -> float:
        import numpy as np

        reference = self.project(self.solution)
        difference = self.project(np.asarray(x, dtype=np.float64)) - reference
        scale = np.linalg.norm(reference)
        return float(np.linalg.norm(difference) / scale) if scale > 0 else float("nan")


def direct_solve(matrix: Any, rhs: Any) -> DirectReference:
    """Solve `A x = b` with SciPy's sparse LU, also when `A` is singular in the grid sense.

    Grid pressure systems have zero rows (solid or empty cells) and, where a fluid region touches
    no Dirichlet boundary, a constant null space per region (its rows sum to zero). Zero rows get
    x = 0; one cell of every such floating region is pinned to zero, the rest is solved by LU,
    and the result is shifted to zero mean over the region: the minimum-norm solution, which is
    also what CG from x0 = 0 converges to.

    Args:
        matrix: a SciPy sparse matrix.
        rhs: the right-hand side (consistent, for singular systems).

    Returns:
        A `DirectReference`.
    """
    import numpy as np
    import scipy.sparse as sp
    import scipy.sparse.csgraph as csgraph
    import scipy.sparse.linalg as spla

    matrix = sp.csr_array(matrix, dtype=np.float64)
    rhs = np.asarray(rhs, dtype=np.float64)
    n = matrix.shape[0]
    active = np.flatnonzero(abs(matrix).sum(axis=1) > 0)
    sub = matrix[active][:, active].tocsr()
    n_regions, labels = csgraph.connected_components(sub, directed=True, connection="weak")
    row_sums = np.abs(sub.sum(axis=1))
    scale = np.abs(sub.diagonal())
    zero_sum = row_sums <= 1e-12 * np.maximum(scale, np.finfo(np.float64).tiny)
    floating = np.ones(n_regions, bool)
    np.logical_and.at(floating, labels, zero_sum)
    floating_rows = floating[labels]
    pinned = np.zeros(sub.shape[0], bool)
    for region in np.flatnonzero(floating):
        pinned[np.flatnonzero(labels == region)[0]] = True
    free = np.flatnonzero(~pinned)
    x_sub = np.zeros(sub.shape[0])
    if free.size:
        x_sub[free] = spla.spsolve(sub[free][:, free].tocsc(), rhs[active][free])

    def project(x):
        x = np.asarray(x, dtype=np.float64)
        inner = x[active].copy()
        if floating.any():
            sums = np.bincount(labels, weights=inner, minlength=n_regions)
            counts = np.bincount(labels, minlength=n_regions)
            inner = np.where(floating_rows, inner - (sums / counts)[labels], inner)
        out = np.zeros(n)
        out[active] = inner
        return out

    solution = np.zeros(n)
    solution[active] = x_sub
    return DirectReference(project(solution), project)


def run_method(
    method: str,
    problem: Any,
    host: HostSystem,
    *,
    rtol: float,
    max_steps: int,
    restart: int = 40,
    repeats: int = 3,
    warmup: int = 1,
    budget_s: float | None = 10.0,
) -> MethodRun:
    """Run `method` on `problem` and measure it.

    JAX methods are timed as compile (trace + lower + XLA) and steady-state run separately
    (`sciml._core._timing`). SciPy methods run on the host in the problem's dtype. Every
    solution's residual is recomputed on the host in float64.

    Exceptions propagate: a solver that crashes is an error, never a row in a table.
    """
    import numpy as np

    from sciml._core import _timing as timing

    title = method_title(method, restart)
    norm_b = float(np.linalg.norm(host.rhs64)) or 1.0

    if method in ("cg", "pcg", "gmres"):
        import equinox as eqx
        import jax.numpy as jnp

        from sciml._core import RESULTS
        from sciml.solvers import cg, gmres, jacobi

        def solve(operator, b, rtol_array):
            if method == "gmres":
                return gmres(
                    operator,
                    b,
                    rtol=rtol_array,
                    atol=0.0,
                    restart=restart,
                    max_steps=max_steps,
                    throw=False,
                )
            preconditioner = jacobi(operator) if method == "pcg" else None
            return cg(
                operator,
                b,
                rtol=rtol_array,
                atol=0.0,
                max_steps=max_steps,
                M=preconditioner,
                throw=False,
            )

        # Arrays travel as arguments (not baked-in constants) so compile time does not grow
        # with the problem; the operator's static fields are closed over.
        dynamic, static = eqx.partition(problem.operator, eqx.is_array)
        rtol_array = jnp.asarray(rtol, dtype=problem.rhs.dtype)

        def solve_dynamic(dynamic, b, rtol_array):
            return solve(eqx.combine(dynamic, static), b, rtol_array)

        measured, solution = timing.time_jitted(
            solve_dynamic,
            dynamic,
            problem.rhs,
            rtol_array,
            repeats=repeats,
            warmup=warmup,
            budget_s=budget_s,
        )
        value = np.asarray(solution.value)
        converged = bool(solution.result == RESULTS.successful)
        status = "converged" if converged else _result_name(solution.result)
        history = np.asarray(solution.stats["residual_history"], dtype=np.float64) / norm_b
        return MethodRun(
            method,
            title,
            status,
            message="" if converged else one_line(RESULTS[solution.result]),
            iterations=int(solution.stats["num_steps"]),
            rel_residual=host.rel_residual(value),
            compile_s=measured.compile_s,
            run_s=measured.median_s,
            repeats=measured.repeats,
            history=history,
            solution=value,
        )

    if method in ("scipy-cg", "scipy-gmres"):
        import scipy.sparse.linalg as spla

        counter = [0]
        residuals: list[float] = []
        if method == "scipy-cg":

            def count(_xk):
                counter[0] += 1

            def solve():
                counter[0] = 0
                return spla.cg(
                    host.matrix, host.rhs, rtol=rtol, atol=0.0, maxiter=max_steps, callback=count
                )
        else:

            def record(relative_residual):
                counter[0] += 1
                residuals.append(float(relative_residual))

            def solve():
                counter[0] = 0
                residuals.clear()
                residuals.append(1.0)  # x0 = 0, so r0 = b
                return spla.gmres(
                    host.matrix,
                    host.rhs,
                    rtol=rtol,
                    atol=0.0,
                    restart=restart,
                    maxiter=max(1, math.ceil(max_steps / restart)),
                    callback=record,
                    callback_type="pr_norm",
                )

        # Nothing to compile or warm up: every run is timed (up to the budget).
        measured, (value, info) = timing.time_call(
            solve, repeats=repeats, warmup=0, budget_s=budget_s
        )
        iterations = counter[0]
        if method == "scipy-cg":
            history = _scipy_cg_history(host, rtol=rtol, max_steps=max_steps) / norm_b
        else:
            history = np.asarray(residuals)
        status = "converged" if info == 0 else ("max_steps_reached" if info > 0 else "error")
        message = "" if info == 0 else f"SciPy returned info = {info}"
        return MethodRun(
            method,
            title,
            status,
            message=message,
            iterations=iterations,
            rel_residual=host.rel_residual(value),
            compile_s=None,
            run_s=measured.median_s,
            repeats=measured.repeats,
            history=history,
            solution=np.asarray(value),
        )

    if method == "direct":
        measured, reference = timing.time_call(
            direct_solve,
            host.matrix,
            host.rhs,
            repeats=max(1, min(repeats, 2)),
            warmup=0,
            budget_s=budget_s,
        )
        return MethodRun(
            method,
            title,
            "direct",
            rel_residual=host.rel_residual(reference.solution),
            run_s=measured.median_s,
            repeats=measured.repeats,
            solution=reference.solution,
            reference=reference,
        )

    raise UsageError(f"unknown method {method!r}; choose from {', '.join(METHODS)}.")


def _result_name(result: Any) -> str:
    from sciml._core import RESULTS

    for name in ("max_steps_reached", "breakdown", "stagnation", "nonfinite_input", "nonfinite"):
        if bool(result == getattr(RESULTS, name)):
            return name
    return "failed"


def _scipy_cg_history(host: HostSystem, *, rtol: float, max_steps: int) -> Any:
    """SciPy CG's true residual norms per iteration, from an untimed second run."""
    import numpy as np
    import scipy.sparse.linalg as spla

    norms = [float(np.linalg.norm(host.rhs64))]

    def record(xk):
        norms.append(float(np.linalg.norm(host.rhs64 - host.matrix64 @ xk)))

    spla.cg(host.matrix, host.rhs, rtol=rtol, atol=0.0, maxiter=max_steps, callback=record)
    return np.asarray(norms)


# --------------------------------------------------------------------------------------------
# Tables


def fmt_sci(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}e}"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_milliseconds(value: float | None) -> str:
    return "—" if value is None else f"{value * 1e3:.3g}"


RUN_HEADERS = (
    "method",
    "iterations",
    "status",
    "rel. residual",
    "error vs direct",
    "compile [s]",
    "run [s]",
    "per iteration [ms]",
)


def run_row(run: MethodRun) -> list[str]:
    """One table row for a `MethodRun` (same columns as `RUN_HEADERS`)."""
    per_iteration = run.run_s / run.iterations if run.run_s is not None and run.iterations else None
    status = run.status if run.ok else f"FAILED: {run.status}"
    return [
        run.title,
        "—" if run.iterations is None else str(run.iterations),
        status,
        fmt_sci(run.rel_residual),
        fmt_sci(run.error),
        fmt_seconds(run.compile_s),
        fmt_seconds(run.run_s),
        fmt_milliseconds(per_iteration),
    ]


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with aligned columns (numbers right-aligned)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells, header=False):
        out = []
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            numeric = not header and i > 0 and _looks_numeric(cell)
            out.append(cell.rjust(width) if numeric else cell.ljust(width))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers, header=True), rule] + [line(row) for row in rows])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (numeric columns right-aligned)."""

    def escape(cell):
        return str(cell).replace("|", "\\|")

    numeric = [
        i > 0 and bool(rows) and all(_looks_numeric(row[i]) or row[i] == "—" for row in rows)
        for i in range(len(headers))
    ]
    lines = [
        "| " + " | ".join(escape(h) for h in headers) + " |",
        "|" + "|".join("---:" if num else "---" for num in numeric) + "|",
    ]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return cell == "—"
    return True
