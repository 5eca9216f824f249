"""`sciml train`: train a learned solver; today `sciml train dcdm`.

`sciml train dcdm --dim 3 --n 64` builds (or reads from the cache) the Ritz basis of the
obstacle-free n^dim training box, trains a DCDM network with Adam on the scale-invariant loss,
writes a checkpoint after every chunk of steps (`--resume` continues an interrupted run), and
finally writes `model.eqx` (load it with `sciml.solvers.load_dcdm_model`) and `metrics.json`
(settings, timings, loss curve, DCDM vs CG iterations on unseen obstacle problems).
"""

import argparse
import shlex
import sys
from pathlib import Path

from ._common import (
    RunFailure,
    UsageError,
    add_run_options,
    configure_jax,
    int_at_least,
    one_line,
    positive_float,
)

MODELS = ("dcdm",)


def _even_grid(text: str) -> int:
    value = int_at_least(4)(text)
    if value % 2:
        raise argparse.ArgumentTypeError(
            f"the DCDM network pools by 2, so the grid side must be even; got {value}"
        )
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train a learned solver (dcdm: the Deep Conjugate Direction Method network)",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("model", choices=MODELS, help="what to train")
    parser.add_argument("--dim", type=int, choices=(2, 3), default=3, help="2 or 3 (default: 3)")
    parser.add_argument(
        "--n", type=_even_grid, default=64, help="training grid side, even (default: 64)"
    )
    parser.add_argument("--variant", choices=("64", "128"), default="64", help="default: 64")
    parser.add_argument(
        "--steps", type=int_at_least(1), default=2000, help="Adam steps (default: 2000)"
    )
    parser.add_argument(
        "--lr", type=positive_float, default=1e-3, help="learning rate (default: 1e-3)"
    )
    parser.add_argument(
        "--batch", type=int_at_least(1), default=10, help="right-hand sides per step (10)"
    )
    parser.add_argument(
        "--m",
        type=int_at_least(2),
        default=1000,
        help="Lanczos steps for the Ritz basis, capped by memory (default: 1000)",
    )
    parser.add_argument(
        "--theta",
        type=int_at_least(0),
        default=None,
        help="the 9x weighting covers the lowest m/2 + theta Ritz values (default: m/20)",
    )
    parser.add_argument(
        "--samples",
        type=int_at_least(1),
        default=20_000,
        help="size of the training set of right-hand sides (default: 20000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument(
        "--chunk",
        type=int_at_least(1),
        default=100,
        help="steps per compiled chunk; a checkpoint is written after each (default: 100)",
    )
    parser.add_argument(
        "--memory-budget-mb",
        type=int_at_least(1),
        default=None,
        help="memory for the Lanczos basis in MiB (default: 40%% of the device, 2 GiB on CPU)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="where Ritz bases are cached (default: $SCIML_CACHE_DIR/dcdm or ~/.cache/sciml/dcdm)",
    )
    parser.add_argument(
        "--time-limit",
        type=positive_float,
        default=None,
        help="stop after the chunk that ends past this many seconds of training (the model "
        "is still written; --resume continues)",
    )
    parser.add_argument(
        "--no-eval",
        dest="evaluate",
        action="store_false",
        help="skip the DCDM-vs-CG evaluation on unseen obstacle problems",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: runs/train-dcdm-<dim>d-n<n>)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    mode.add_argument(
        "--force", action="store_true", help="start afresh, overwriting the outputs in --out"
    )
    add_run_options(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    out = args.out or Path("runs") / f"train-dcdm-{args.dim}d-n{args.n}"
    configure_jax(platform=getattr(args, "platform", None), x64=False)

    from sciml._core._metrics import OutputExistsError
    from sciml.solvers._dcdm_train import TrainSettings, train_dcdm

    settings = TrainSettings(
        dim=args.dim,
        n=args.n,
        variant=args.variant,
        steps=args.steps,
        lr=args.lr,
        batch=args.batch,
        m=args.m,
        theta=args.theta,
        samples=args.samples,
        seed=args.seed,
        chunk=args.chunk,
        memory_budget=None if args.memory_budget_mb is None else args.memory_budget_mb << 20,
    )
    try:
        settings.check()
    except ValueError as error:
        raise UsageError(one_line(error)) from None
    command = "sciml " + " ".join(shlex.quote(arg) for arg in sys.argv[1:]) if sys.argv else ""
    progress = False if getattr(args, "no_progress", False) else None

    def log(message):
        print(message, file=sys.stderr, flush=True)

    try:
        payload = train_dcdm(
            settings,
            out,
            resume=args.resume,
            force=args.force,
            progress=progress,
            cache_dir=args.cache_dir,
            evaluate=args.evaluate,
            time_limit_s=args.time_limit,
            log=log,
            command=command or "sciml train dcdm",
        )
    except OutputExistsError as error:
        raise RunFailure(one_line(error)) from None
    results = payload["results"]
    print(
        f"trained {settings.dim}-D DCDM ({settings.variant}) on {settings.n}^{settings.dim}: "
        f"{results['steps_done']} steps, final loss {results['final_loss_mean']:.4f}; "
        f"model: {Path(out) / 'model.eqx'}"
    )
    for row in results["evaluation"]:
        grid = "x".join(str(s) for s in row["grid"])
        print(
            f"  unseen obstacles {grid}: DCDM {row['dcdm_iterations']} vs CG "
            f"{row['cg_iterations']} iterations to rtol {row['rtol']:g}"
        )
    return 0
