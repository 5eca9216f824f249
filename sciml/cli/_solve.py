"""`sciml solve`: one named problem, one method; a table, `metrics.json` and a convergence plot.

Besides the methods of `sciml.cli._common.METHODS` it runs the learned DCDM solver
(`--method dcdm`, optionally `--weights PATH`) on the grid Laplacian problems.
"""

import argparse
import sys
from pathlib import Path

from ._common import (
    DEFAULT_RTOL,
    DTYPES,
    METHODS,
    PROBLEMS,
    RUN_HEADERS,
    HostSystem,
    MethodRun,
    RunFailure,
    UsageError,
    _result_name,
    add_run_options,
    check_method,
    configure_jax,
    direct_solve,
    int_at_least,
    limit_blas_threads,
    one_line,
    positive_float,
    run_method,
    run_row,
    text_table,
)

OUTPUTS = ("metrics.json", "convergence.png")
SOLVE_METHODS = (*METHODS, "dcdm")
# DCDM works on grid Laplacians (the network reads the grid and its fluid mask).
DCDM_PROBLEMS = ("poisson2d", "poisson3d", "fluid-pressure")
DCDM_DEFAULT_MAX_STEPS = 500
# Above these sizes the sparse LU reference costs more than the iterative solve is worth
# (3-D fill-in grows fast), so the error column is left out unless --reference is given.
REFERENCE_LIMIT = {2: 300_000, 3: 70_000}


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "solve",
        help="solve a bundled problem with one method; print a table, write metrics and a plot",
        description="Solve one of the bundled problems with one method, print iterations, the "
        "relative residual (checked on the host against SciPy), compile and run time, and "
        "write metrics.json and convergence.png to --out.",
    )
    parser.add_argument("problem", choices=sorted(PROBLEMS), help="the problem to solve")
    parser.add_argument(
        "--method",
        choices=SOLVE_METHODS,
        default=None,
        help="solver (default: cg for symmetric positive problems, gmres otherwise); dcdm is "
        "the learned Deep Conjugate Direction Method (grid Laplacian problems only)",
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="DCDM model file (from `sciml train dcdm` or `sciml.solvers.save_dcdm_model`; "
        "default: the shipped model for the problem's dimension)",
    )
    parser.add_argument(
        "--size",
        type=int_at_least(1),
        default=None,
        help="cells (or unknowns) per side (default: the problem's report size)",
    )
    parser.add_argument(
        "--rtol",
        type=positive_float,
        default=None,
        help="relative tolerance ‖b − Ax‖ ≤ rtol‖b‖ (default: 1e-8 in float64, 1e-5 in float32)",
    )
    parser.add_argument(
        "--max-steps",
        type=int_at_least(1),
        default=None,
        help=f"iteration limit (default: min(10·n, 10000); {DCDM_DEFAULT_MAX_STEPS} for dcdm)",
    )
    parser.add_argument(
        "--restart",
        type=int_at_least(1),
        default=None,
        help="GMRES restart length (gmres and scipy-gmres; default: 40)",
    )
    parser.add_argument("--dtype", choices=DTYPES, default="float64", help="default: float64")
    parser.add_argument("--seed", type=int, default=0, help="seed of the problem (default: 0)")
    parser.add_argument(
        "--repeats", type=int_at_least(1), default=3, help="timed runs (default: 3)"
    )
    reference = parser.add_mutually_exclusive_group()
    reference.add_argument(
        "--reference",
        dest="reference",
        action="store_true",
        default=None,
        help="always compare with a direct (sparse LU) solve",
    )
    reference.add_argument(
        "--no-reference",
        dest="reference",
        action="store_false",
        help="skip the direct solve (no error column)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: runs/solve-<problem>-<method>)",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite metrics.json/convergence.png in --out"
    )
    add_run_options(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    spec = PROBLEMS[args.problem]
    method = args.method or spec.default_method
    if method == "dcdm":
        _check_dcdm(spec, args)
    else:
        check_method(spec, method)
        if args.weights is not None:
            raise UsageError("--weights is only used with --method dcdm.")
    if args.restart is not None and method not in ("gmres", "scipy-gmres"):
        raise UsageError("--restart is only used with --method gmres or scipy-gmres.")
    restart = 40 if args.restart is None else args.restart
    size = spec.default_size if args.size is None else args.size
    spec.check_size(size)
    if method == "dcdm" and size % 2:
        raise UsageError(
            f"--size {size}: the DCDM network pools by 2 once, so the grid side must be even."
        )
    rtol = DEFAULT_RTOL[args.dtype] if args.rtol is None else args.rtol
    if rtol >= 1:
        raise UsageError(f"--rtol {rtol:g} must be below 1 (it is relative to ‖b‖).")
    n = spec.unknowns(size)
    max_steps = args.max_steps or (
        DCDM_DEFAULT_MAX_STEPS if method == "dcdm" else min(10 * n, 10_000)
    )
    out = args.out or Path("runs") / f"solve-{spec.name}-{method}"

    limit_blas_threads()
    from sciml._core._metrics import prepare_output_dir

    out = prepare_output_dir(out, force=args.force, outputs=OUTPUTS, force_hint="--force")
    configure_jax(platform=args.platform, x64=args.dtype == "float64")

    import numpy as np

    from sciml._core import check_tolerances
    from sciml._core._metrics import describe_environment, environment, write_metrics
    from sciml._core._plotting import convergence_plot

    try:
        check_tolerances(rtol, 0.0, np.dtype(args.dtype))
    except ValueError as error:
        raise UsageError(f"--rtol: {one_line(error)}") from None

    env = environment()
    print(
        f"{spec.name}: {spec.title}; {size} {spec.size_meaning}, n = {n:,}, {args.dtype}, "
        f"rtol {rtol:g}, seed {args.seed}",
        file=sys.stderr,
    )
    print(f"on {describe_environment(env)}", file=sys.stderr)
    problem = spec.build(size=size, seed=args.seed, dtype=np.dtype(args.dtype))
    host = HostSystem.from_problem(problem)
    solver_record = {}
    if method == "dcdm":
        model, solver_record = _dcdm_model(args.weights, spec.ndim)
        result = run_dcdm(
            problem, host, model=model, rtol=rtol, max_steps=max_steps, repeats=args.repeats
        )
    else:
        result = run_method(
            method,
            problem,
            host,
            rtol=rtol,
            max_steps=max_steps,
            restart=restart,
            repeats=args.repeats,
        )
    want_reference = args.reference
    if want_reference is None:
        want_reference = n <= REFERENCE_LIMIT[spec.ndim]
    if want_reference and method != "direct":
        result.error = direct_solve(host.matrix, host.rhs).error(result.solution)

    print(text_table(RUN_HEADERS, [run_row(result)]))

    written = []
    if result.history is not None:
        convergence_plot(
            {result.title: result.history},
            out / "convergence.png",
            f"{spec.title}, n = {n:,}, {args.dtype}",
            rtol=rtol,
        )
        written.append(out / "convergence.png")
    write_metrics(
        out / "metrics.json",
        command=(
            f"sciml solve {spec.name} --method {method} --size {size} --dtype {args.dtype} "
            f"--rtol {rtol:g} --max-steps {max_steps} --restart {restart} --seed {args.seed}"
            + (f" --weights {args.weights}" if args.weights is not None else "")
        ),
        dtype=np.dtype(args.dtype),
        env=env,
        sizes={"n": n, "size": size, "grid": f"{size}^{spec.ndim}", "ndim": spec.ndim},
        timings={"compile_s": result.compile_s, "run_s": result.run_s, "repeats": result.repeats},
        results=result.record(),
        problem={"name": spec.name, "title": spec.title, "kind": spec.kind, "seed": args.seed},
        solver={
            "method": method,
            "rtol": rtol,
            "atol": 0.0,
            "max_steps": max_steps,
            "restart": restart,
            **solver_record,
        },
    )
    written.append(out / "metrics.json")
    print("wrote " + ", ".join(str(path) for path in written), file=sys.stderr)
    if not result.ok:
        raise RunFailure(
            f"{result.title} did not converge on {spec.name} ({result.status}): {result.message}"
        )
    return 0


def _check_dcdm(spec, args: argparse.Namespace) -> None:
    if spec.name not in DCDM_PROBLEMS:
        raise UsageError(
            f"--method dcdm needs a grid Laplacian problem ({', '.join(DCDM_PROBLEMS)}); "
            f"{spec.name} is not one. Use --method {spec.default_method}."
        )
    if args.weights is not None and not args.weights.is_file():
        raise UsageError(f"--weights {args.weights}: no such file.")


def _dcdm_model(weights: Path | None, ndim: int):
    """The DCDM network to use and what to record about it in metrics.json."""
    from sciml.solvers import load_dcdm_model
    from sciml.solvers._dcdm import default_dcdm_model
    from sciml.solvers._dcdm_net import read_dcdm_header

    if weights is None:
        try:
            model = default_dcdm_model(ndim)
        except ValueError as error:
            raise RunFailure(f"no DCDM model: {one_line(error)} (or pass --weights)") from None
        return model, {"weights": "shipped", "model": f"{ndim}-D variant {model.variant}"}
    try:
        header = read_dcdm_header(weights)
        model = load_dcdm_model(weights)
    except ValueError as error:
        raise UsageError(f"--weights {weights}: {one_line(error)}") from None
    if model.dim != ndim:
        raise UsageError(
            f"--weights {weights} holds a {model.dim}-D model but the problem is {ndim}-D; "
            f"use a {ndim}-D model."
        )
    return model, {
        "weights": str(weights),
        "model": f"{model.dim}-D variant {model.variant}",
        "model_metadata": header.get("metadata", {}),
    }


def run_dcdm(problem, host, *, model, rtol: float, max_steps: int, repeats: int = 3):
    """Run and time `sciml.solvers.dcdm` on `problem` like `_common.run_method` does the others.

    Returns:
        A `MethodRun` (method "dcdm"), its residual recomputed on the host in float64.
    """
    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np

    from sciml._core import RESULTS, _timing as timing
    from sciml.solvers import dcdm

    norm_b = float(np.linalg.norm(host.rhs64)) or 1.0
    # The operator's and the model's arrays travel as arguments, not baked-in constants.
    dynamic, static = eqx.partition((problem.operator, model), eqx.is_array)
    rtol_array = jnp.asarray(rtol, dtype=problem.rhs.dtype)

    def solve(dynamic, b, rtol_array):
        operator, net = eqx.combine(dynamic, static)
        return dcdm(operator, b, model=net, rtol=rtol_array, max_steps=max_steps, throw=False)

    measured, solution = timing.time_jitted(
        solve, dynamic, problem.rhs, rtol_array, repeats=repeats, warmup=1, budget_s=10.0
    )
    value = np.asarray(solution.value)
    converged = bool(solution.result == RESULTS.successful)
    return MethodRun(
        "dcdm",
        "sciml dcdm",
        "converged" if converged else _result_name(solution.result),
        message="" if converged else one_line(RESULTS[solution.result]),
        iterations=int(solution.stats["num_steps"]),
        rel_residual=host.rel_residual(value),
        compile_s=measured.compile_s,
        run_s=measured.median_s,
        repeats=measured.repeats,
        history=np.asarray(solution.stats["residual_history"], dtype=np.float64) / norm_b,
        solution=value,
    )
