"""`sciml bench`: benchmarks against named baselines, measured in the same process.

`sciml bench krylov` runs the Krylov suite: sciml `cg` vs `jax.scipy.sparse.linalg.cg` vs SciPy
`cg` on 3-D Poisson, with iterations, compile time, run time, time per iteration and a
streaming-copy yardstick. It prints a Markdown table and writes the full results as JSON (with
versions and devices) and the table as Markdown.

JAX is imported only inside `run`, after the global options have set the environment.
"""

import argparse
import datetime
from pathlib import Path

from ._common import (
    RunFailure,
    UsageError,
    add_run_options,
    configure_jax,
    int_at_least,
    limit_blas_threads,
    positive_float,
)

SUITES = ("krylov", "equivariant")
DEFAULT_RESULTS_DIR = Path("benchmarks") / "results"


def _sizes(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 32,64,128, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one size, e.g. 32,64")
    if min(values) < 2:
        raise argparse.ArgumentTypeError(f"grid sides must be at least 2 cells, got {text!r}")
    return values


def _dtypes(text: str) -> list[str]:
    from ._bench_krylov import DTYPES

    values = [part for part in text.replace(" ", "").split(",") if part]
    unknown = [value for value in values if value not in DTYPES]
    if unknown or not values:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(DTYPES)}, got {text!r}"
        )
    return values


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `sciml bench` on the CLI's subparsers."""
    parser = subparsers.add_parser(
        "bench",
        help="benchmarks against named baselines (compile time, run time, per iteration)",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("suite", choices=SUITES, help="the benchmark suite to run")
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[32, 64, 128],
        help="grid sides N, comma-separated; each case solves on N³ cells (default: 32,64,128)",
    )
    parser.add_argument(
        "--dtypes",
        type=_dtypes,
        default=["float32", "float64"],
        help="comma-separated: float32, float64 (default: both)",
    )
    parser.add_argument(
        "--repeats", type=int_at_least(1), default=5, help="timed runs per measurement (5)"
    )
    parser.add_argument(
        "--warmup", type=int_at_least(0), default=1, help="untimed runs before timing (1)"
    )
    parser.add_argument(
        "--budget",
        type=positive_float,
        default=30.0,
        help="stop repeating a measurement once its timed runs took this many seconds (30)",
    )
    parser.add_argument(
        "--scipy-max-size",
        type=int_at_least(0),
        default=64,
        help="skip SciPy above this grid side (default 64: SciPy is slow at 128³)",
    )
    parser.add_argument(
        "--iters",
        type=int_at_least(1),
        default=None,
        help="iterations of the fixed-iteration runs (default: jax.scipy's count at rtol)",
    )
    parser.add_argument(
        "--seed", type=int_at_least(0), default=0, help="seed of the right-hand side (0)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory for <suite>.json and <suite>.md (default: "
        "benchmarks/results/, with the backend and a time stamp in the file names)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit with status 1 if a case misses the per-iteration floor or the solvers' "
        "iteration counts disagree by more than 1",
    )
    from ._bench_equivariant import add_arguments as add_equivariant_arguments

    add_equivariant_arguments(parser)
    add_run_options(parser)
    parser.set_defaults(run=run)
    return parser


def _output_paths(args: argparse.Namespace, backend: str) -> tuple[Path, Path]:
    if args.out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        stem = DEFAULT_RESULTS_DIR / f"{args.suite}-{backend}-{stamp}"
    else:
        stem = Path(args.out) / args.suite
    return stem.with_suffix(".json"), stem.with_suffix(".md")


def run(args: argparse.Namespace) -> int:
    """Run `sciml bench <suite>`; return the exit status.

    Raises:
        UsageError: for bad option values (e.g. float64 with x64 explicitly off).
        OutputExistsError: if an output exists and `--force` was not given.
        RunFailure: with `--check`, if a case misses the floor or the counts disagree.
    """
    if args.suite == "equivariant":
        from ._bench_equivariant import run as run_equivariant

        return run_equivariant(args)
    # One BLAS thread keeps the SciPy baseline honest: threaded OpenBLAS contends with XLA's CPU
    # thread pool in the same process (see `limit_blas_threads`).
    limit_blas_threads()
    from sciml._core._metrics import prepare_output_dir

    if args.out is not None:
        json_path, md_path = _output_paths(args, "")
        prepare_output_dir(args.out, force=args.force, outputs=[json_path.name, md_path.name])
    configure_jax(platform=getattr(args, "platform", None), x64="float64" in args.dtypes)

    import jax

    from sciml._core._metrics import atomic_write_text, write_json

    from ._bench_krylov import check_config, format_table, run_suite

    try:
        check_config(args.sizes, args.dtypes, None)
    except ValueError as error:
        raise UsageError(str(error)) from None
    json_path, md_path = _output_paths(args, jax.default_backend())
    prepare_output_dir(json_path.parent, force=args.force, outputs=[json_path.name, md_path.name])

    def log(line: str) -> None:
        import sys

        print(line, file=sys.stderr, flush=True)

    results = run_suite(
        sizes=args.sizes,
        dtypes=args.dtypes,
        repeats=args.repeats,
        warmup=args.warmup,
        budget_s=args.budget,
        scipy_max_size=args.scipy_max_size,
        iters=args.iters,
        seed=args.seed,
        log=log,
    )
    table = format_table(results)
    write_json(json_path, results)
    atomic_write_text(md_path, table + "\n")
    print(table)
    log(f"wrote {json_path} and {md_path}")
    if args.check:
        failed = [
            f"{case['size']}^3 {case['dtype']}"
            for case in results["cases"]
            if not (case["floor_met"] and case["iterations_agree"])
        ]
        if failed:
            raise RunFailure(
                f"benchmark check failed (sciml/jax.scipy per iteration above "
                f"{results['config']['floor']} or iteration counts apart by more than 1) for "
                f"{', '.join(failed)}; see {json_path}"
            )
    return 0
