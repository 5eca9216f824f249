"""`sciml datagen`: generate a neural-operator dataset (SKR or a baseline solver) into a directory.

The dataset is written chunk by chunk (see `sciml.operators.datagen.generate_dataset`): an
interrupted run resumes where it stopped when the same command is run again, a complete one is
skipped, and a directory holding a dataset with other settings is refused unless `--force`.
`--devices N` shards the chains over N local devices; `--distributed` makes this one process of
a `jax.distributed` job in which every process generates its own chains and process 0 merges
the index.
"""

import argparse
import sys
import time
from pathlib import Path

from ._common import (
    DEFAULT_RTOL,
    DTYPES,
    MAX_UNKNOWNS,
    RunFailure,
    UsageError,
    add_run_options,
    configure_jax,
    int_at_least,
    one_line,
    positive_float,
)

METHODS = ("skr", "gmres", "cg", "direct")
SORTS = ("greedy", "fft", "features", "none")
MIN_GRID = 4  # nodes per side, boundary included: at least 2×2 unknowns


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "datagen",
        help="generate a PDE solution dataset for neural operators (SKR: sorted Krylov recycling)",
        description="Sample N instances of a PDE family, solve them (by default sorted and "
        "chained with GCRO-DR recycling, SKR) and write inputs, solutions and per-sample "
        "statistics to --out as chunk_*.npz, meta.json and a merged dataset.npz. Re-running "
        "the same command resumes an interrupted run.",
    )
    parser.add_argument(
        "family",
        help="darcy, darcy-piecewise, darcy-parametric, poisson, heat or helmholtz",
    )
    parser.add_argument("--n", type=int_at_least(1), required=True, help="number of samples")
    parser.add_argument(
        "--grid",
        type=int_at_least(MIN_GRID),
        required=True,
        help=f"nodes per side s, boundary included, at least {MIN_GRID} ((s−2)² unknowns)",
    )
    parser.add_argument("--method", choices=METHODS, default="skr", help="default: skr")
    parser.add_argument("--out", type=Path, required=True, help="dataset directory")
    parser.add_argument(
        "--rtol",
        type=positive_float,
        default=None,
        help="relative tolerance of each solve (default: 1e-8 in float64, 1e-5 in float32)",
    )
    parser.add_argument(
        "--chunk", type=int_at_least(1), default=64, help="chain positions per chunk (64)"
    )
    parser.add_argument(
        "--seed", type=int_at_least(0), default=0, help="seed of the family (default: 0)"
    )
    parser.add_argument("--sort", choices=SORTS, default="greedy", help="default: greedy")
    parser.add_argument(
        "--chains",
        type=int_at_least(1),
        default=None,
        help="independent recycling chains (default: the number of devices × processes)",
    )
    parser.add_argument("--m", type=int_at_least(2), default=40, help="GCRO-DR / GMRES m (40)")
    parser.add_argument("--k", type=int_at_least(0), default=20, help="GCRO-DR recycled k (20)")
    parser.add_argument(
        "--precond", choices=("none", "jacobi"), default="none", help="default: none"
    )
    parser.add_argument("--dtype", choices=DTYPES, default="float64", help="default: float64")
    parser.add_argument(
        "--max-steps", type=int_at_least(1), default=None, help="iteration limit per system"
    )
    parser.add_argument(
        "--devices",
        type=int_at_least(1),
        default=None,
        help="shard the chains over this many local devices",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="run as one process of a jax.distributed job (see --coordinator)",
    )
    parser.add_argument(
        "--coordinator",
        default=None,
        help="host:port of process 0 (else $SCIML_COORDINATOR or JAX's cluster detection)",
    )
    parser.add_argument(
        "--num-processes",
        type=int_at_least(1),
        default=None,
        help="processes in the job (else $SCIML_NUM_PROCESSES or cluster detection)",
    )
    parser.add_argument(
        "--process-id",
        type=int_at_least(0),
        default=None,
        help="this process's index (else $SCIML_PROCESS_ID or cluster detection)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace a dataset with other settings in --out"
    )
    add_run_options(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    rtol = DEFAULT_RTOL[args.dtype] if args.rtol is None else args.rtol
    if rtol >= 1:
        raise UsageError(f"--rtol {rtol:g} must be below 1 (it is relative to ‖b‖).")
    if args.seed >= 2**63:
        raise UsageError(f"--seed {args.seed} must be below 2**63.")
    unknowns = (args.grid - 2) ** 2
    if unknowns > MAX_UNKNOWNS:
        raise UsageError(
            f"--grid {args.grid} gives {unknowns:,} unknowns per system, more than the "
            f"{MAX_UNKNOWNS:,} this command allows; use a smaller --grid."
        )
    if args.method == "skr" and args.k >= min(args.m, unknowns):
        capped = f" (m is capped at the {unknowns} unknowns of --grid {args.grid})"
        raise UsageError(
            f"--k {args.k} must be smaller than --m {min(args.m, unknowns)}"
            + (capped if unknowns < args.m else "")
            + "."
        )
    if args.devices is not None and args.distributed:
        raise UsageError(
            "--devices with --distributed is not supported: run one process per device "
            "(each process then solves its own chains)."
        )
    if args.method == "direct" and (args.devices or args.distributed):
        raise UsageError("--method direct runs on the host; drop --devices/--distributed.")
    out = args.out
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory.")

    configure_jax(platform=args.platform, x64=args.dtype == "float64")
    import jax

    from sciml._core import OutputExistsError, check_tolerances
    from sciml.operators.datagen import FAMILIES, _distributed as dist, generate_dataset

    if args.family not in FAMILIES:
        raise UsageError(
            f"unknown family {args.family!r}; choose from {', '.join(sorted(FAMILIES))}."
        )
    import numpy as np

    try:
        check_tolerances(rtol, 0.0, np.dtype(args.dtype))
    except ValueError as error:
        raise UsageError(f"--rtol: {one_line(error)}") from None

    if args.distributed:
        try:
            process_index, process_count = dist.initialize(
                args.coordinator, args.num_processes, args.process_id
            )
        except (RuntimeError, ValueError) as error:
            raise RunFailure(f"jax.distributed.initialize failed: {one_line(error)}") from None
    else:
        process_index, process_count = 0, 1
    if args.devices is not None and args.devices > len(jax.local_devices()):
        raise UsageError(
            f"--devices {args.devices}: only {len(jax.local_devices())} local device(s); on "
            f"CPU simulate more with XLA_FLAGS=--xla_force_host_platform_device_count=N."
        )
    chains = args.chains or max(1, (args.devices or 1) * process_count)
    if chains > args.n:
        raise UsageError(f"--chains {chains} exceeds --n {args.n}; use at most {args.n} chains.")
    if chains < process_count:
        raise UsageError(f"--chains {chains} is fewer than the {process_count} processes.")
    if args.devices is not None and chains % args.devices:
        raise UsageError(f"--chains {chains} must be a multiple of --devices {args.devices}.")

    options = dict(
        n_samples=args.n,
        grid=args.grid,
        method=args.method,
        rtol=rtol,
        m=args.m,
        k=args.k,
        M=None if args.precond == "none" else args.precond,
        sort=None if args.sort == "none" else args.sort,
        n_chains=chains,
        chunk_size=args.chunk,
        seed=args.seed,
        dtype=np.dtype(args.dtype),
        max_steps=args.max_steps,
        devices=args.devices,
        force=args.force,
        progress=False if args.no_progress else None,
    )
    print(
        f"datagen {args.family}: N = {args.n}, s = {args.grid}, {args.method}, rtol {rtol:g}, "
        f"{chains} chain(s), chunks of {args.chunk}, seed {args.seed}, {args.dtype}"
        + (f", process {process_index}/{process_count}" if process_count > 1 else ""),
        file=sys.stderr,
    )
    tic = time.perf_counter()
    try:
        if args.distributed:
            report = dist.generate_distributed(out, args.family, **options)
        else:
            report = generate_dataset(out, args.family, **options)
    except OutputExistsError as error:
        raise RunFailure(one_line(error)) from None
    elapsed = time.perf_counter() - tic
    print(
        f"{report.computed} chunk(s) computed, {report.skipped} kept, of {report.n_chunks}; "
        f"{elapsed:.1f} s" + (f"; wrote {out / 'dataset.npz'}" if report.merged else ""),
        file=sys.stderr,
    )
    if report.merged:
        from sciml.operators.datagen import load_dataset

        data = load_dataset(out)
        failed = int(np.sum(~data.converged))
        print(
            f"iterations per sample: mean {data.iterations.mean():.1f}, max "
            f"{data.iterations.max()}; max relative residual {data.residuals.max():.2e}",
            file=sys.stderr,
        )
        if failed:
            raise RunFailure(
                f"{failed} of {len(data)} solves did not converge (see `converged` in "
                f"{out / 'dataset.npz'}): raise --max-steps or loosen --rtol if they ran out "
                f"of steps; if they stagnated (indefinite families such as helmholtz, "
                f"float32), use --dtype float64 or --precond jacobi."
            )
    return 0
