#!/usr/bin/env python
"""GPU check of DCDM: iterations and wall time against sciml CG and jax.scipy CG, same device.

3-D fluid-pressure systems with random obstacles (`sciml.problems.fluid_pressure`, pure
Neumann, right-hand side in the range) at 64³ and 128³, and 256³ when the device has the
memory. For each grid: DCDM with the shipped 3-D model (or `--weights`), `sciml.solvers.cg`
and `jax.scipy.sparse.linalg.cg`, all to ‖b − Ax‖ ≤ rtol‖b‖ from x0 = 0, compiled separately
from the timed runs (median of repeats, `block_until_ready`). jax.scipy's CG reports no
iteration count; it runs the same recurrence as sciml's, so its count is sciml's. The table
says, per grid, whether DCDM wins on time and not only on iterations.

    PYTHONPATH=. python benchmarks/gpu_check_dcdm.py --out gpu_out [--weights model.eqx]
    PYTHONPATH=. python benchmarks/gpu_check_dcdm.py --smoke --out /tmp/g   # CPU, tiny

Stops starting new measurements after `--budget` seconds (default 130), so the whole run,
compiles included, stays under 150 s.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,128,256", help="grid sides (3-D)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--weights", default=None, help="3-D DCDM model file (default: shipped)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=130.0)
    parser.add_argument("--smoke", action="store_true", help="tiny grids; untrained model if none")
    parser.add_argument("--out", type=Path, default=Path("gpu_out"))
    args = parser.parse_args(argv)
    start_all = time.perf_counter()
    if args.dtype == "float64":
        import os

        os.environ.setdefault("JAX_ENABLE_X64", "1")

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from sciml._core import RESULTS
    from sciml._core._metrics import environment
    from sciml.problems import fluid_pressure
    from sciml.solvers import DCDMNet, cg, dcdm, load_dcdm_model

    sizes = [int(s) for s in args.sizes.split(",")]
    dcdm_max_steps = 200
    if args.smoke:
        # Tiny grids, one timed run, and few DCDM steps (an untrained model never converges).
        sizes, args.repeats, dcdm_max_steps = [8, 16], 1, 10
    dtype = jnp.dtype(args.dtype)
    device = jax.devices()[0]
    memory = (
        (device.memory_stats() or {}).get("bytes_limit")
        if hasattr(device, "memory_stats")
        else None
    )

    if args.weights:
        model, source = load_dcdm_model(args.weights), args.weights
    else:
        try:
            from sciml.solvers._dcdm import default_dcdm_model

            model, source = default_dcdm_model(3), "shipped"
        except ValueError:
            if not args.smoke:
                raise SystemExit("no shipped 3-D DCDM weights: pass --weights PATH") from None
            model, source = DCDMNet(3, key=jax.random.key(0)), "untrained (smoke)"

    def fits(n):
        if memory is None:
            return n <= 128
        # The network's 16-channel float32 activations dominate: a few live copies of 16·n³.
        return 6 * 16 * n**3 * 4 + 40 * n**3 * dtype.itemsize < 0.8 * memory

    def timed(fn, *a):
        t = time.perf_counter()
        compiled = jax.jit(fn).lower(*a).compile()
        compile_s = time.perf_counter() - t
        out = jax.block_until_ready(compiled(*a))
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            out = jax.block_until_ready(compiled(*a))
            times.append(time.perf_counter() - t)
            if time.perf_counter() - start_all > args.budget:
                break
        return out, compile_s, float(np.median(times))

    rows = []
    for n in sizes:
        if time.perf_counter() - start_all > args.budget:
            rows.append({"n": n, "status": "skipped: time budget"})
            continue
        if not fits(n):
            rows.append({"n": n, "status": "skipped: device memory"})
            continue
        problem = fluid_pressure(jax.random.key(0), (n, n, n), n_obstacles=3, dtype=dtype)
        b = problem.rhs / jnp.linalg.norm(problem.rhs)
        dynamic, static = eqx.partition((problem.operator, model), eqx.is_array)
        rtol = jnp.asarray(args.rtol, dtype)
        row = {"n": n, "unknowns": n**3, "status": "ok"}

        def run_dcdm(dynamic, b, rtol, static=static):
            op, net = eqx.combine(dynamic, static)
            return dcdm(op, b, model=net, rtol=rtol, max_steps=dcdm_max_steps, throw=False)

        def run_cg(dynamic, b, rtol, static=static, n=n):
            op, _ = eqx.combine(dynamic, static)
            return cg(op, b, rtol=rtol, max_steps=20 * n, throw=False)

        def run_jax_cg(dynamic, b, rtol, static=static, n=n):
            op, _ = eqx.combine(dynamic, static)
            return jax.scipy.sparse.linalg.cg(op.mv, b, tol=rtol, maxiter=20 * n)[0]

        for name, fn in (("dcdm", run_dcdm), ("sciml_cg", run_cg), ("jax_scipy_cg", run_jax_cg)):
            if time.perf_counter() - start_all > args.budget:
                row[name] = {"status": "skipped: time budget"}
                continue
            out, compile_s, run_s = timed(fn, dynamic, b, rtol)
            x = out if name == "jax_scipy_cg" else out.value
            residual = float(jnp.linalg.norm(b - problem.operator.mv(x)))
            entry = {"compile_s": compile_s, "run_s": run_s, "rel_residual": residual}
            if name != "jax_scipy_cg":
                entry["iterations"] = int(out.stats["num_steps"])
                entry["converged"] = bool(out.result == RESULTS.successful)
            else:
                entry["iterations"] = row.get("sciml_cg", {}).get("iterations")
                entry["converged"] = residual <= 1.05 * args.rtol
            row[name] = entry
            print(f"  {n}³ {name}: {entry}", file=sys.stderr, flush=True)
        if all("run_s" in row.get(k, {}) for k in ("dcdm", "sciml_cg", "jax_scipy_cg")):
            best_cg = min(row["sciml_cg"]["run_s"], row["jax_scipy_cg"]["run_s"])
            row["dcdm_wins_on_time"] = bool(
                row["dcdm"]["converged"] and row["dcdm"]["run_s"] < best_cg
            )
            row["speedup_vs_best_cg"] = best_cg / row["dcdm"]["run_s"]
        rows.append(row)

    env = environment()
    result = {
        "environment": env,
        "dtype": args.dtype,
        "rtol": args.rtol,
        "model": source,
        "rows": rows,
        "total_s": time.perf_counter() - start_all,
    }
    lines = [
        f"# DCDM GPU check ({env.get('device_kind')}, {args.dtype}, rtol {args.rtol:g}, "
        f"model {source})",
        "",
        "| grid | solver | iterations | converged | run [s] | compile [s] | rel. residual |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    verdicts = []
    for row in rows:
        if row.get("status") != "ok":
            lines.append(f"| {row['n']}³ | {row['status']} | | | | | |")
            continue
        for name in ("dcdm", "sciml_cg", "jax_scipy_cg"):
            e = row.get(name, {})
            if "run_s" not in e:
                lines.append(f"| {row['n']}³ | {name} | {e.get('status', '')} | | | | |")
                continue
            lines.append(
                f"| {row['n']}³ | {name} | {e['iterations']} | {'yes' if e['converged'] else 'NO'}"
                f" | {e['run_s']:.4g} | {e['compile_s']:.3g} | {e['rel_residual']:.1e} |"
            )
        if "dcdm_wins_on_time" in row:
            verdicts.append(
                f"- {row['n']}³: DCDM {'WINS' if row['dcdm_wins_on_time'] else 'does not win'} "
                f"on time ({row['speedup_vs_best_cg']:.3g}× the speed of the faster CG; iterations "
                f"{row['dcdm']['iterations']} vs {row['sciml_cg']['iterations']})."
            )
    text = "\n".join(lines + [""] + verdicts) + f"\n\nTotal {result['total_s']:.0f} s.\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dcdm_gpu.json").write_text(json.dumps(result, indent=1, default=str))
    (args.out / "dcdm_gpu.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
