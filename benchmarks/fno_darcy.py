#!/usr/bin/env python
"""Close the loop: an FNO trained on SKR-generated Darcy data vs on direct-solver data (issue 6).

1. Generate the same N lognormal Darcy instances (FNO setting, s×s nodes) twice with
   `generate_dataset`: solved by SKR (sorted GCRO-DR(40, 20) chain, rtol) and by SciPy's
   sparse LU ("direct").
2. Train the same FNO (same initial weights, same minibatch order) on each training set: input
   the coefficient a (normalised per node), target u on all s×s nodes (0 on the boundary).
3. Evaluate both on the direct-solved test set (mean relative L2). The seed-to-seed spread of
   the direct-data FNO (a second initialisation) measures the noise the difference is judged by.

    python benchmarks/fno_darcy.py --out runs/fno_darcy          # s = 34, 300 + 100 samples
    python benchmarks/fno_darcy.py --smoke                       # s = 18, 40 + 10, 60 steps
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from sciml._core._metrics import environment, write_json  # noqa: E402
from sciml.operators import FNO, mean_relative_l2, train_fno  # noqa: E402
from sciml.operators.datagen import generate_dataset, load_dataset  # noqa: E402


def fno_arrays(data, dtype):
    """Inputs (N, 1, s, s) and targets (N, 1, s, s) with u = 0 on the boundary nodes."""
    a = np.asarray(data.inputs)
    u = np.pad(np.asarray(data.solutions), ((0, 0), (1, 1), (1, 1)))
    return a[:, None].astype(dtype), u[:, None].astype(dtype)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=int, default=34)
    parser.add_argument("--n-train", type=int, default=300)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--rtol", type=float, default=1e-6, help="SKR tolerance (1e-6)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--modes", type=int, default=8)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--projection", type=int, default=32, help="projection width (32)")
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.smoke:
        args.grid, args.n_train, args.n_test, args.steps, args.modes = 18, 40, 10, 60, 4
        args.width, args.batch = 8, 10
    n = args.n_train + args.n_test
    dtype = np.float64
    work = Path(tempfile.mkdtemp(prefix="fno_darcy_")) if args.out is None else args.out
    timings, data = {}, {}
    for method, rtol in (("skr", args.rtol), ("direct", args.rtol)):
        tic = time.perf_counter()
        generate_dataset(
            work / f"data_{method}",
            "darcy",
            n_samples=n,
            grid=args.grid,
            method=method,
            rtol=rtol,
            n_chains=args.chains,
            chunk_size=max(1, n // args.chains),
            seed=args.seed,
            progress=False,
        )
        timings[f"generate_{method}_s"] = time.perf_counter() - tic
        data[method] = load_dataset(work / f"data_{method}")
        print(
            f"{method}: {n} samples in {timings[f'generate_{method}_s']:.1f} s (incl. compile), "
            f"mean its {data[method].iterations.mean():.1f}, max residual "
            f"{data[method].residuals.max():.1e}",
            file=sys.stderr,
            flush=True,
        )
    skr_u, direct_u = data["skr"].solutions, data["direct"].solutions
    data_error = float(
        np.max(
            np.linalg.norm((skr_u - direct_u).reshape(n, -1), axis=1)
            / np.linalg.norm(direct_u.reshape(n, -1), axis=1)
        )
    )
    print(f"max relative difference SKR vs direct solutions: {data_error:.1e}", file=sys.stderr)

    x_all, y_direct = fno_arrays(data["direct"], dtype)
    _, y_skr = fno_arrays(data["skr"], dtype)
    train, test = slice(0, args.n_train), slice(args.n_train, n)
    mean = x_all[train].mean(axis=0, keepdims=True)
    std = x_all[train].std(axis=0, keepdims=True)
    x = jnp.asarray((x_all - mean) / std)
    schedule = optax.cosine_decay_schedule(args.lr, args.steps)
    results = {}
    runs = (("skr", y_skr, args.seed), ("direct", y_direct, args.seed))
    runs += (("direct, other init", y_direct, args.seed + 1),)
    for name, targets, seed in runs:
        model = FNO(
            1,
            1,
            modes=args.modes,
            width=args.width,
            projection_width=args.projection,
            key=jax.random.key(seed),
        )
        tic = time.perf_counter()
        trained, history = train_fno(
            model,
            x[train],
            jnp.asarray(targets[train]),
            steps=args.steps,
            key=jax.random.key(1000 + args.seed),  # the same minibatches for every run
            batch_size=args.batch,
            lr=schedule,
            progress=False,
        )
        seconds = time.perf_counter() - tic
        test_error = float(mean_relative_l2(trained, x[test], jnp.asarray(y_direct[test])))
        train_error = float(mean_relative_l2(trained, x[train], jnp.asarray(targets[train])))
        results[name] = {
            "test_rel_l2": test_error,
            "train_rel_l2": train_error,
            "final_batch_loss": float(np.mean(np.asarray(history[-20:]))),
            "train_s": seconds,
        }
        print(
            f"FNO on {name} data: test rel. L2 {test_error:.4f} (train {train_error:.4f}), "
            f"{seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    difference = abs(results["skr"]["test_rel_l2"] - results["direct"]["test_rel_l2"])
    noise = abs(results["direct, other init"]["test_rel_l2"] - results["direct"]["test_rel_l2"])
    lines = [
        f"FNO (modes {args.modes}, width {args.width}, 4 layers, projection "
        f"{args.projection}) on Darcy s = {args.grid}: "
        f"{args.n_train} train / {args.n_test} test, {args.steps} Adam steps, batch {args.batch}",
        "",
        "| training data | test rel. L2 (vs direct) | train rel. L2 | train [s] |",
        "|---|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['test_rel_l2']:.4f} | {r['train_rel_l2']:.4f} | {r['train_s']:.1f} |"
        )
    lines += [
        "",
        f"|SKR − direct| = {difference:.4f}; seed-to-seed spread (direct) = {noise:.4f}; "
        f"max relative difference of the solutions {data_error:.1e}; generation "
        f"{timings['generate_skr_s']:.1f} s (SKR) vs {timings['generate_direct_s']:.1f} s "
        f"(direct), both incl. start-up/compile.",
    ]
    print("\n".join(lines))
    if args.out is not None:
        write_json(
            args.out / "fno_darcy.json",
            {
                "environment": environment(),
                "settings": vars(args) | {"out": str(args.out)},
                "timings": timings,
                "data_max_rel_difference": data_error,
                "results": results,
                "difference": difference,
                "seed_spread": noise,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
