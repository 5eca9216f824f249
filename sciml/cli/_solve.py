"""`sciml solve`: one named problem, one method; a table, `metrics.json` and a convergence plot."""

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
    RunFailure,
    UsageError,
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
        choices=METHODS,
        default=None,
        help="solver (default: cg for symmetric positive problems, gmres otherwise)",
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
        help="iteration limit (default: min(10·n, 10000))",
    )
    parser.add_argument(
        "--restart", type=int_at_least(1), default=40, help="GMRES restart length (default: 40)"
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
    check_method(spec, method)
    size = spec.default_size if args.size is None else args.size
    spec.check_size(size)
    rtol = DEFAULT_RTOL[args.dtype] if args.rtol is None else args.rtol
    if rtol >= 1:
        raise UsageError(f"--rtol {rtol:g} must be below 1 (it is relative to ‖b‖).")
    n = spec.unknowns(size)
    max_steps = args.max_steps or min(10 * n, 10_000)
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
    result = run_method(
        method,
        problem,
        host,
        rtol=rtol,
        max_steps=max_steps,
        restart=args.restart,
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
            f"--rtol {rtol:g} --max-steps {max_steps} --restart {args.restart} --seed {args.seed}"
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
            "restart": args.restart,
        },
    )
    written.append(out / "metrics.json")
    print("wrote " + ", ".join(str(path) for path in written), file=sys.stderr)
    if not result.ok:
        raise RunFailure(
            f"{result.title} did not converge on {spec.name} ({result.status}): {result.message}"
        )
    return 0
