#!/usr/bin/env python
"""Learning to relax: bandit-tuned ω vs fixed-ω comparators on the paper's two settings.

Shifted Laplacians (SOR sweeps, x0 = 0, rtol 1e-8) and the 2-D heat equation (warm-started
SSOR-PCG, MATLAB pcg semantics). Prints totals per comparator and learner and checks the floors
of issue 5; writes everything as JSON with `--out`. Examples:

    python benchmarks/bench_relax.py                          # T = 5000, 3 seeds, heat nx = 25
    python benchmarks/bench_relax.py --T 1000 --seeds 1 --nx 25,50
    python benchmarks/bench_relax.py --skip-laplacian --nx 50
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from sciml.problems import heat_sequence, shifted_laplacians  # noqa: E402
from sciml.solvers import relax  # noqa: E402

GRID = np.linspace(1.0, 1.95, 20)  # the learners' arms (final repository version)
FIXED = [1.0, 1.2, 1.4, 1.6, 1.8]  # the paper's fixed comparators
HEAT_FIXED = [1.0, 1.3, 1.5, 1.75, 1.95]


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    return out, time.perf_counter() - start


def laplacian(variance: str, seed: int, T: int) -> dict:
    seq = shifted_laplacians(jax.random.key(seed), T, variance=variance)
    out = {"variance": variance, "seed": seed, "T": T, "fixed": {}, "learners": {}}
    # Every arm of the learners' grid, so "best fixed" and "instance-optimal" are over it.
    counts = {}
    for w in GRID:
        res, wall = _timed(lambda w=w: relax.fixed(seq, float(w)))
        counts[round(float(w), 2)] = np.asarray(res.iterations)
    for w in FIXED:
        if round(w, 2) not in counts:
            counts[round(w, 2)] = np.asarray(relax.fixed(seq, w).iterations)
    out["fixed"] = {str(w): int(c.sum()) for w, c in sorted(counts.items())}
    grid_counts = np.stack([counts[round(float(w), 2)] for w in GRID])
    best = int(np.argmin(grid_counts.sum(1)))
    out["best_fixed"] = {"omega": float(GRID[best]), "total": int(grid_counts[best].sum())}
    out["instance_optimal_grid"] = int(grid_counts.min(0).sum())
    young_omega, wall = _timed(lambda: relax.young(seq))
    out["young"] = int(relax.fixed(seq, young_omega).total)
    learners = {
        "TsallisINF": relax.TsallisINF(jnp.asarray(GRID)),
        "TsallisINFCB": relax.TsallisINFCB(jnp.asarray(GRID), 5, -0.15, 0.65),
        "ChebCB": relax.ChebCB(jnp.asarray(GRID), 6, -0.15, 0.65),
    }
    for name, learner in learners.items():
        res, wall = _timed(
            lambda learner=learner: relax.run(seq, learner, key=jax.random.key(seed))
        )
        its = np.asarray(res.iterations)
        out["learners"][name] = {
            "total": int(its.sum()),
            "last_1000_mean": float(its[-1000:].mean()),
            "wall_s": wall,
        }
    # Wall time of a fixed-ω run vs a SciPy/pyamg loop doing the same sweeps (first 200).
    res, wall = _timed(lambda: relax.fixed(seq, 1.8))
    out["wall_fixed_1.8_s"] = wall
    out["pyamg_loop_s_per_instance_1.8"] = _pyamg_loop(seq, 1.8, 200)
    return out


def _pyamg_loop(seq, omega, count):
    import pyamg

    start = time.perf_counter()
    for t in range(count):
        A = seq.operator(t).to_scipy().tocsr()
        b = np.asarray(seq.rhs[t])
        x = np.zeros_like(b)
        r0 = np.linalg.norm(b)
        while np.linalg.norm(b - A @ x) > 1e-8 * r0:
            pyamg.relaxation.relaxation.sor(A, x, b, omega)
    return (time.perf_counter() - start) / count


def heat(nx: int, T: int, seeds: int) -> dict:
    seq, gen = _timed(lambda: heat_sequence(nx, T))
    out = {"nx": nx, "T": T, "generate_s": gen, "fixed": {}, "learners": {}}
    for w in HEAT_FIXED:
        res, wall = _timed(lambda w=w: relax.fixed(seq, w, method="ssor_pcg"))
        out["fixed"][str(w)] = int(res.total)
    counts = {}
    for w in GRID:
        counts[float(w)] = np.asarray(relax.fixed(seq, float(w), method="ssor_pcg").iterations)
    grid_counts = np.stack([counts[float(w)] for w in GRID])
    best = int(np.argmin(grid_counts.sum(1)))
    out["best_fixed"] = {"omega": float(GRID[best]), "total": int(grid_counts[best].sum())}
    out["instance_optimal_grid"] = int(grid_counts.min(0).sum())
    lo, hi = float(seq.context.min()), float(seq.context.max())
    learners = {
        "TsallisINF": relax.TsallisINF(jnp.asarray(GRID)),
        "TsallisINFCB": relax.TsallisINFCB(jnp.asarray(GRID), 6, lo, hi),
        "ChebCB": relax.ChebCB(jnp.asarray(GRID), 6, lo, hi),
    }
    for name, learner in learners.items():
        totals = []
        for seed in range(seeds):
            res, wall = _timed(
                lambda learner=learner, seed=seed: relax.run(
                    seq, learner, key=jax.random.key(seed), method="ssor_pcg"
                )
            )
            totals.append(int(res.total))
        out["learners"][name] = {"totals": totals, "wall_s_last": wall}
    return out


def _ratio(a, b):
    return a / b if b else float("nan")


def report_laplacian(runs: list[dict]) -> list[str]:
    lines = []
    for variance in ("high", "low"):
        rs = [r for r in runs if r["variance"] == variance]
        if not rs:
            continue
        lines.append(f"\nShifted Laplacians, {variance} variance, T={rs[0]['T']}, seeds={len(rs)}")
        for r in rs:
            best = r["best_fixed"]["total"]
            fixed = ", ".join(f"ω={w}: {r['fixed'][str(w)]:,}" for w in FIXED)
            lines.append(f"  seed {r['seed']}: {fixed}")
            lines.append(
                f"    best fixed ω={r['best_fixed']['omega']:.2f}: {best:,}; instance-opt (grid): "
                f"{r['instance_optimal_grid']:,}; Young ω*(A_t): {r['young']:,}"
            )
            for name, lr in r["learners"].items():
                lines.append(
                    f"    {name}: {lr['total']:,} ({_ratio(lr['total'], best):.3f}× best fixed, "
                    f"{_ratio(lr['total'], r['fixed']['1.0']):.3f}× ω=1, "
                    f"{_ratio(lr['total'], r['young']):.3f}× Young; last-1000 mean "
                    f"{lr['last_1000_mean']:.1f}; {lr['wall_s']:.1f} s)"
                )
            lines.append(
                f"    wall: fixed ω=1.8 whole sequence {r['wall_fixed_1.8_s']:.2f} s; pyamg loop "
                f"{r['pyamg_loop_s_per_instance_1.8'] * 1e3:.2f} ms/instance"
            )
        floors = {
            "TsallisINF ≤ 1.3× best fixed": all(
                r["learners"]["TsallisINF"]["total"] <= 1.3 * r["best_fixed"]["total"] for r in rs
            ),
            "TsallisINF ≤ 0.25× ω=1": all(
                r["learners"]["TsallisINF"]["total"] <= 0.25 * r["fixed"]["1.0"] for r in rs
            ),
            "TsallisINFCB ≤ 1.15× best fixed": all(
                r["learners"]["TsallisINFCB"]["total"] <= 1.15 * r["best_fixed"]["total"]
                for r in rs
            ),
            "ChebCB ≤ 1.3× Young": all(
                r["learners"]["ChebCB"]["total"] <= 1.3 * r["young"] for r in rs
            ),
        }
        if variance == "high":
            floors["ChebCB < best fixed"] = all(
                r["learners"]["ChebCB"]["total"] < r["best_fixed"]["total"] for r in rs
            )
        for k, ok in floors.items():
            lines.append(f"  floor {k}: {'met' if ok else 'MISSED'}")
    return lines


def report_heat(runs: list[dict]) -> list[str]:
    lines = []
    for r in runs:
        best = r["best_fixed"]["total"]
        fixed = ", ".join(f"ω={w}: {t:,}" for w, t in r["fixed"].items())
        lines.append(f"\nHeat nx={r['nx']}, T={r['T']} (SSOR-PCG iterations): {fixed}")
        lines.append(
            f"  best fixed ω={r['best_fixed']['omega']:.2f}: {best:,}; instance-opt (grid): "
            f"{r['instance_optimal_grid']:,}"
        )
        for name, lr in r["learners"].items():
            ratios = [t / best for t in lr["totals"]]
            ok = all(q <= 1.10 for q in ratios)
            lines.append(
                f"  {name}: {lr['totals']} ({', '.join(f'{q:.3f}' for q in ratios)}× best "
                f"fixed; within 10%: {'met' if ok else 'MISSED'})"
            )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--nx", default="25", help="heat grid sizes, comma separated ('' = none)")
    parser.add_argument("--skip-laplacian", action="store_true")
    parser.add_argument("--variance", default="high,low")
    parser.add_argument("--out", default=None, help="write the JSON results here")
    args = parser.parse_args(argv)
    results = {"laplacian": [], "heat": []}
    if not args.skip_laplacian:
        for variance in args.variance.split(","):
            for seed in range(args.seeds):
                results["laplacian"].append(laplacian(variance, seed, args.T))
                print(json.dumps(results["laplacian"][-1]), flush=True)
    for nx in [int(v) for v in args.nx.split(",") if v]:
        results["heat"].append(heat(nx, args.T, args.seeds))
        print(json.dumps(results["heat"][-1]), flush=True)
    print("\n".join(report_laplacian(results["laplacian"]) + report_heat(results["heat"])))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
