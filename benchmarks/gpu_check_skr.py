#!/usr/bin/env python
"""The GPU check of SKR data generation (called by gpu_check_skr.sh; runs on any JAX backend).

Darcy (lognormal, FNO setting) at s = 258 (n = 65 536 unknowns), N = 200 systems, float64,
rtol 1e-8, solved by

1. `cg, batched`: independent CG on all N systems at once (`vmap`, the SPD baseline);
2. `skr, C chains`: sorted GCRO-DR(40, 20) chains, C chains side by side (`vmap`);
3. `gmres(40), batched`: independent GMRES(40) on all N systems at once;
4. `gmres(40), C chains`: the same sorted chains solved by GMRES(40), no recycling;
   with `--gmres-n N'` rows 3 and 4 solve only the first N' systems (all at once, or in chains
   of SKR's length), since GMRES keeps nothing from one system to the next;
5. `skr, 1 chain`: the paper's single sequential chain (with --single-chain);
6. `pipeline` (run after row 2): `generate_dataset` with the fastest rerun configuration:
   family sampling + sorting + solving + host transfer + chunk writing + merge.

Each method's first call (compile + run) and, when it took at most --rerun-below seconds and
the budget allows, a second call (run) are timed; seconds per sample and samples per second
come from the run time (from the first call where there is no rerun). The script stops
starting new measurements after --budget seconds (default 120), so the whole check fits in
150 s; a method that was skipped is listed as such. Writes `skr_gpu.json` and `skr_gpu.md`.

    PYTHONPATH=. python3 benchmarks/gpu_check_skr.py --out DIR
    PYTHONPATH=. python3 benchmarks/gpu_check_skr.py --smoke --out DIR   # CPU, s = 18, N = 8
"""

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


_ROWS = ("cg", "skr", "pipeline", "gmres", "gmres-chains")  # the order they are measured in


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=int, default=258)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--chains", type=int, default=25, help="SKR chains side by side (25)")
    parser.add_argument("--max-steps", type=int, default=20000)
    parser.add_argument("--budget", type=float, default=120.0, help="stop starting steps after")
    parser.add_argument(
        "--rerun-below", type=float, default=30.0, help="time a compiled rerun if the first call <="
    )
    parser.add_argument(
        "--gmres-n",
        type=int,
        default=None,
        help="solve the GMRES rows on the first this many systems only (default: all N); their "
        "per-sample times still compare with the other rows, since GMRES keeps nothing between "
        "systems",
    )
    parser.add_argument(
        "--methods",
        default=",".join(_ROWS),
        help="rows to measure, in this fixed order (a rerun can time fewer)",
    )
    parser.add_argument("--single-chain", action="store_true", help="also one sequential chain")
    parser.add_argument("--smoke", action="store_true", help="s = 18, N = 8, 2 chains")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_out")))
    args = parser.parse_args(argv)
    if args.smoke:
        args.grid, args.n, args.chains = 18, 8, 2
    methods = set(args.methods.split(","))
    if not methods <= set(_ROWS):
        parser.error(f"--methods takes {list(_ROWS)}, got {sorted(methods - set(_ROWS))}")
    if args.gmres_n is not None and not 1 <= args.gmres_n <= args.n:
        parser.error(f"--gmres-n must be in 1..{args.n}, got {args.gmres_n}")
    started = time.perf_counter()

    import equinox as eqx
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    from sciml._core._metrics import environment, write_json
    from sciml.operators.datagen import darcy_family, generate_dataset, solve_sequence

    args.out.mkdir(parents=True, exist_ok=True)
    device = jax.devices()[0]
    family = darcy_family(jax.random.key(0), args.n, args.grid, dtype=np.float64)
    n = family.n
    # GMRES(40) needs 9,000-14,000 iterations per system at s = 258 (measured on a CPU, two
    # systems), so its rows may be run on a prefix of the family to fit a short device call.
    gmres_n = args.gmres_n or args.n
    gmres_family = eqx.tree_at(lambda f: f.params, family, family.params[:gmres_n])
    print(
        f"SKR GPU check on {device.platform}: {device.device_kind}; Darcy s = {args.grid} "
        f"(n = {n:,}), N = {args.n}, float64, rtol {args.rtol:g}",
        flush=True,
    )

    def left():
        return args.budget - (time.perf_counter() - started)

    def emit(rows, pipeline, final=False):
        """Write the tables so far (a killed run still leaves its finished rows)."""
        lines = [
            f"SKR data generation on {device.device_kind} ({device.platform}), Darcy s = "
            f"{args.grid} (n = {n:,}), N = {args.n}, float64, rtol {args.rtol:g}",
            "",
            "| method | mean its | max its | first call [s] | run [s] | s/sample | samples/s | "
            "converged | max rel. res |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            if "skipped" in r:
                lines.append(f"| {r['method']} | skipped ({r['skipped']}) |||||||| ")
                continue
            run = "—" if r["run_s"] is None else f"{r['run_s']:.2f}"
            lines.append(
                f"| {r['method']} | {r['mean_iterations']:.0f} | {r['max_iterations']} | "
                f"{r['first_call_s']:.1f} | {run} | {r['seconds_per_sample']:.4f} | "
                f"{r['samples_per_s']:.1f} | {r['converged']}/{r['n']} | {r['max_residual']:.1e} |"
            )
        if pipeline:
            lines += [
                "",
                f"Whole pipeline (`generate_dataset`, {pipeline['method']}): "
                f"{pipeline['seconds']:.1f} s = {pipeline['samples_per_s']:.1f} samples/s "
                f"({pipeline['bytes_written'] / 1e6:.0f} MB written).",
            ]
        total = time.perf_counter() - started
        lines += ["", f"Total {total:.0f} s (budget {args.budget:.0f} s for starting steps)."]
        table = "\n".join(lines)
        if final:
            print(table)
        (args.out / "skr_gpu.md").write_text(table + "\n")
        write_json(
            args.out / "skr_gpu.json",
            {
                "environment": environment(),
                "settings": vars(args) | {"out": str(args.out)},
                "rows": rows,
                "pipeline": pipeline,
                "total_s": total,
            },
        )

    # Cheapest first, so a tight budget still measures SKR and the pipeline: batched GMRES(40)
    # alone outran a 120 s budget at s = 258 on an H200. "gmres(40), C chains" solves the
    # same sorted chains without recycling (the like-for-like SKR comparison).
    # The GMRES rows on a prefix of N' systems keep the layout: all N' at once, or chains of the
    # same length as SKR's.
    of = "" if gmres_n == args.n else f", first {gmres_n}"
    skr_chain_length = -(-args.n // args.chains)
    gmres_chains = -(-gmres_n // skr_chain_length)
    configs = [
        ("cg", "cg, batched", family, dict(method="cg", sort=None, n_chains=args.n)),
        (
            "skr",
            f"skr, {args.chains} chains",
            family,
            dict(method="skr", sort="greedy", n_chains=args.chains),
        ),
        (
            "gmres",
            f"gmres(40), batched{of}",
            gmres_family,
            dict(method="gmres", sort=None, n_chains=gmres_n),
        ),
        (
            "gmres-chains",
            f"gmres(40), {gmres_chains} chains{of}",
            gmres_family,
            dict(method="gmres", sort="greedy", n_chains=gmres_chains),
        ),
    ]
    if args.single_chain:  # the paper's layout; far too sequential to fit a short GPU check
        configs.append(
            ("skr", "skr, 1 chain", family, dict(method="skr", sort="greedy", n_chains=1))
        )
    rows = []
    pipeline = None

    def measure(name, systems, config):
        if left() <= 0:
            rows.append({"method": name, "skipped": "budget"})
            print(f"{name}: skipped (budget)", flush=True)
            return
        tic = time.perf_counter()
        out = solve_sequence(
            systems, rtol=args.rtol, m=40, k=20, max_steps=args.max_steps, **config
        )
        jax.block_until_ready(out.solutions)
        first_s = time.perf_counter() - tic
        run_s = None
        # A second, compiled run only where compilation is a noticeable share of the first call
        # (long first calls are dominated by the solve; the budget goes to other rows instead).
        if first_s <= args.rerun_below and left() > first_s:
            tic = time.perf_counter()
            out = solve_sequence(
                systems, rtol=args.rtol, m=40, k=20, max_steps=args.max_steps, **config
            )
            jax.block_until_ready(out.solutions)
            run_s = time.perf_counter() - tic
        its = np.asarray(out.iterations)
        count = systems.n_samples
        row = {
            "method": name,
            "n": count,
            "config": config,
            "first_call_s": first_s,
            "run_s": run_s,
            "seconds_per_sample": (run_s if run_s is not None else first_s) / count,
            "samples_per_s": count / (run_s if run_s is not None else first_s),
            "mean_iterations": float(its.mean()),
            "max_iterations": int(its.max()),
            "mean_matvecs": float(np.asarray(out.matvecs).mean()),
            "max_residual": float(np.asarray(out.residuals).max()),
            "converged": int(np.asarray(out.converged).sum()),
        }
        rows.append(row)
        emit(rows, pipeline)
        print(
            f"{name}: first call {first_s:.1f} s, run "
            f"{'—' if run_s is None else f'{run_s:.2f} s'}, mean its {row['mean_iterations']:.0f}"
            f", {row['converged']}/{count} converged, max res {row['max_residual']:.1e}",
            flush=True,
        )

    def run_pipeline():
        """`generate_dataset` with the fastest fully converged configuration timed so far."""
        timed = [r for r in rows if r.get("run_s") is not None and r["converged"] == args.n]
        if not timed or left() <= 0:
            return None
        best = min(timed, key=lambda r: r["run_s"])
        config = best["config"]
        target = args.out / "pipeline_dataset"
        shutil.rmtree(target, ignore_errors=True)
        chain_length = -(-args.n // config["n_chains"])
        tic = time.perf_counter()
        generate_dataset(
            target,
            "darcy",
            n_samples=args.n,
            grid=args.grid,
            method=config["method"],
            rtol=args.rtol,
            sort=config["sort"],
            n_chains=config["n_chains"],
            chunk_size=chain_length,  # one block per chain: the compiled solve is reused
            max_steps=args.max_steps,
            dtype=np.float64,
            progress=False,
        )
        seconds = time.perf_counter() - tic
        size = sum(f.stat().st_size for f in target.iterdir())
        shutil.rmtree(target, ignore_errors=True)
        print(
            f"pipeline ({best['method']}): {seconds:.1f} s, {args.n / seconds:.1f} samples/s",
            flush=True,
        )
        return {
            "method": best["method"],
            "seconds": seconds,
            "samples_per_s": args.n / seconds,
            "bytes_written": size,
        }

    # CG and SKR, then the pipeline, then the slow GMRES rows: a budget that runs out late
    # still leaves the pipeline measured.
    for key, name, fam, config in configs[:2]:
        if key in methods:
            measure(name, fam, config)
    if "pipeline" in methods:
        pipeline = run_pipeline()
    emit(rows, pipeline)
    for key, name, fam, config in configs[2:]:
        if key in methods:
            measure(name, fam, config)
    emit(rows, pipeline, final=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
