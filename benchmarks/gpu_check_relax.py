#!/usr/bin/env python
"""The GPU check of `sciml.solvers.relax` (called by gpu_check_relax.sh; runs on any backend).

(a) Actions: the high-variance shifted-Laplacian sequence (T = 5000, key 0) played by
    Tsallis-INF over `linspace(1, 1.95, 20)` with red–black SOR and key 1, on the default
    device and, when that is not the CPU, again on the host CPU in the same process (same JAX
    version); the arm indices and sweep counts go to `relax_actions.json`, with the number of
    actions that differ between the two. `--compare FILE` also compares this run's actions
    with another run's `relax_actions.json` (e.g. a CPU run on another machine).
(b) Wall time of the whole T = 5000 sequence with red–black SOR at a fixed ω on the device
    (compile and run timed apart, ahead-of-time compilation), against a NumPy loop doing the
    same sweeps on the host (same row tables, vectorised colour updates, the same stopping
    test), for the shifted-Laplacian 10×10 sequence and the heat sequence at nx = 100. The
    host loop stops after `--host-seconds` and is extrapolated by sweeps (its time per sweep ×
    the device's total sweeps); its counts are checked against the device's on the instances
    it did.

Needs JAX, equinox, NumPy, SciPy only. Writes `relax_gpu.json`, `relax_gpu.md` and
`relax_actions.json` into --out and prints everything. `--smoke` runs tiny sizes (CPU test).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def numpy_red_black_loop(seq, omegas, *, rtol=1e-8, max_steps=10_000, seconds=None):
    """Red–black SOR from x0 = 0 on every instance of a sequence, in NumPy on the host.

    The same arithmetic as `sciml.solvers.sor(..., ordering="red_black")`: the row tables of
    `sciml.solvers._sor._stencil_table` (built in chunks outside the timed region), one
    vectorised update per colour, and the stopping test ‖b − Ax‖ ≤ rtol‖b‖ after each sweep.

    Args:
        seq: a stencil sequence (`shifted_laplacians`, `heat_sequence`).
        omegas: ω per instance, shape (T,).
        rtol, max_steps: as for `sor`.
        seconds: stop after the instance that passes this much timed work (None: all).

    Returns:
        `(counts, seconds)`: the sweeps of the instances done (a prefix) and the timed seconds.
    """
    import jax

    from sciml.solvers._sor import _stencil_table

    T = seq.rhs.shape[0]
    first = jax.tree.map(lambda x: x[0], seq.operators)
    pattern = _stencil_table(first, "red_black")
    cols = np.asarray(pattern.cols)
    levels = np.asarray(pattern.levels)
    values = jax.jit(
        jax.vmap(lambda op: tuple(_stencil_table(op, "red_black"))[0:3:2])  # (diag, vals)
    )
    counts, elapsed, chunk = [], 0.0, 64
    for start in range(0, T, chunk):
        part = jax.tree.map(lambda x, s=start: x[s : s + chunk], seq.operators)
        diags, vals = (np.asarray(v) for v in values(part))
        rhs = np.asarray(seq.rhs[start : start + chunk])
        for j in range(rhs.shape[0]):
            tic = time.perf_counter()
            counts.append(
                _red_black(
                    diags[j], cols, vals[j], levels, rhs[j], omegas[start + j], rtol, max_steps
                )
            )
            elapsed += time.perf_counter() - tic
            if seconds is not None and elapsed > seconds:
                return np.asarray(counts), elapsed
    return np.asarray(counts), elapsed


def _red_black(diag, cols, vals, levels, b, omega, rtol, max_steps):
    n = b.shape[0]
    x = np.zeros(n + 1)
    bx = np.append(b, 0.0)
    colours = [(rows, vals[rows], cols[rows], bx[rows], diag[rows]) for rows in levels]

    def residual():
        return np.linalg.norm(b - (diag * x + np.sum(vals * x[cols], axis=-1))[:-1])

    tol = rtol * residual()
    k = 0
    while residual() > tol and k < max_steps:
        for rows, v, c, b_rows, d_rows in colours:
            # (1 − ω)x + ω(b − Σ a x)/d, the pointwise SOR update, for a whole colour at once
            x[rows] = (1 - omega) * x[rows] + omega * ((b_rows - np.sum(v * x[c], -1)) / d_rows)
        k += 1
    return k


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_out")))
    parser.add_argument("--T", type=int, default=5000)
    parser.add_argument("--nx", type=int, default=100, help="heat grid intervals per axis")
    parser.add_argument("--omega", type=float, default=1.8, help="fixed ω of the wall times")
    parser.add_argument("--host-seconds", type=float, default=8.0, help="per host loop")
    parser.add_argument("--budget", type=float, default=115.0, help="stop starting steps after")
    parser.add_argument("--compare", type=Path, default=None, help="another relax_actions.json")
    parser.add_argument("--actions-only", action="store_true", help="run (a) only")
    parser.add_argument(
        "--parts", default="actions,laplacian,heat", help="which of actions, laplacian, heat"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CPU test)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if args.actions_only:
        parts = {"actions"}
    if args.smoke:
        args.T, args.nx, args.host_seconds = 40, 8, 2.0
    started = time.perf_counter()

    import equinox as eqx
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from sciml.problems import heat_sequence, shifted_laplacians
    from sciml.solvers import relax

    args.out.mkdir(parents=True, exist_ok=True)
    device = jax.devices()[0]
    try:
        cpu = jax.devices("cpu")[0]
    except RuntimeError:  # JAX_PLATFORMS excludes the host: no in-process CPU comparison
        cpu = device
    result = {
        "device": f"{device.platform}: {device.device_kind}",
        "jax": jax.__version__,
        "T": args.T,
        "nx": args.nx,
        "omega": args.omega,
        "dtype": "float64",
        "wall": [],
        "notes": [],
    }
    print(f"device {result['device']}, jax {jax.__version__}", flush=True)

    def left():
        return args.budget - (time.perf_counter() - started)

    def aot(fn, *fn_args):
        """(compiled, compile seconds) of an `eqx.filter_jit` function for these arguments."""
        tic = time.perf_counter()
        compiled = fn.lower(*fn_args).compile()
        return compiled, time.perf_counter() - tic

    def timed(fn, *fn_args):
        tic = time.perf_counter()
        out = jax.block_until_ready(fn(*fn_args))
        return out, time.perf_counter() - tic

    # (a) actions under a fixed key, on the device and on the host CPU.
    grid = jnp.linspace(1.0, 1.95, 20)
    learner = relax.TsallisINF(grid)
    play = eqx.filter_jit(lambda s, k: relax.relax(s, "sor_red_black", learner, key=k))
    tic = time.perf_counter()
    lap = jax.block_until_ready(shifted_laplacians(jax.random.key(0), args.T, variance="high"))
    lap_gen = time.perf_counter() - tic
    runs = {}
    for where in [device] + ([cpu] if cpu.platform != device.platform else []):
        if "actions" not in parts:
            break
        with jax.default_device(where):
            seq = jax.device_put(lap, where)
            key = jax.device_put(jax.random.key(1), where)
            compiled, compile_s = aot(play, seq, key)
            out, run_s = timed(compiled, seq, key)
        runs[where.platform] = {
            "arms": np.asarray(out.arm).tolist(),
            "iterations": np.asarray(out.iterations).tolist(),
            "total": int(out.total),
            "compile_s": compile_s,
            "run_s": run_s,
        }
        print(
            f"(a) Tsallis-INF, red–black SOR, T={args.T} on {where.platform}: "
            f"{int(out.total):,} sweeps, compile {compile_s:.1f} s, run {run_s:.1f} s",
            flush=True,
        )
    actions = (
        {}
        if not runs
        else {
            "device": result["device"],
            "jax": jax.__version__,
            "T": args.T,
            "sequence": "shifted_laplacians(key(0), T, variance='high'), float64",
            "learner": "TsallisINF(linspace(1, 1.95, 20)), relax(..., 'sor_red_black', key=key(1))",
            "arms": runs[device.platform]["arms"],
            "iterations": runs[device.platform]["iterations"],
        }
    )
    if not runs:
        args.compare = None
    if "cpu" in runs and device.platform != "cpu":
        actions["cpu_arms"] = runs["cpu"]["arms"]
        actions["cpu_iterations"] = runs["cpu"]["iterations"]
        actions["device_vs_cpu"] = _differences(actions["arms"], actions["cpu_arms"])
        actions["device_vs_cpu"]["differing_iterations"] = int(
            np.sum(np.asarray(actions["iterations"]) != np.asarray(actions["cpu_iterations"]))
        )
    if args.compare is not None:
        other = json.loads(args.compare.read_text())
        actions["compare"] = {
            "file": str(args.compare),
            "other_device": other.get("device"),
            "other_jax": other.get("jax"),
            **_differences(actions["arms"], other["arms"]),
            "differing_iterations": int(
                np.sum(np.asarray(actions["iterations"]) != np.asarray(other["iterations"]))
            ),
        }
    if runs:
        (args.out / "relax_actions.json").write_text(json.dumps(actions))
    result["actions"] = {
        k: v
        for k, v in actions.items()
        if k not in ("arms", "iterations", "cpu_arms", "cpu_iterations")
    }
    result["actions"]["runs"] = {
        p: {k: v for k, v in r.items() if k not in ("arms", "iterations")} for p, r in runs.items()
    }
    for label in ("device_vs_cpu", "compare"):
        if label in actions:
            print(f"(a) {label}: {actions[label]}", flush=True)

    # (b) wall time of the whole sequence at a fixed ω: device vs a NumPy loop on the host.
    fixed = eqx.filter_jit(lambda s, w: relax.fixed(s, w, method="sor_red_black"))
    sequences = []
    if "laplacian" in parts:
        sequences.append(("shifted Laplacians 10×10 (high)", lambda: lap, lap_gen, 20))
    if "heat" in parts:

        def make_heat():
            return heat_sequence(args.nx, args.T)

        # generation (CG to 1e-12 per step) + compile + run + host loop
        sequences.append((f"heat nx={args.nx}", make_heat, None, 30 if args.smoke else 60))
    for name, make, gen_s, needs in sequences:
        if left() < needs and not args.smoke:
            result["notes"].append(f"skipped {name}: budget")
            continue
        if gen_s is None:
            seq, gen_s = timed(make)
        else:
            seq = make()
        seq = jax.device_put(seq, device)
        omega = jnp.asarray(args.omega, jnp.float64)
        compiled, compile_s = aot(fixed, seq, omega)
        out, run_s = timed(compiled, seq, omega)
        device_counts = np.asarray(out.iterations)
        host_counts, host_s = numpy_red_black_loop(
            seq, np.full(args.T, args.omega), seconds=min(args.host_seconds, max(left(), 1))
        )
        done = host_counts.shape[0]
        per_sweep = host_s / max(int(host_counts.sum()), 1)
        host_total = host_s if done == args.T else per_sweep * int(device_counts.sum())
        row = {
            "sequence": name,
            "n": int(seq.rhs.shape[1]),
            "generate_s": gen_s,
            "sweeps": int(device_counts.sum()),
            "device_compile_s": compile_s,
            "device_run_s": run_s,
            "host_instances": done,
            "host_sweeps": int(host_counts.sum()),
            "host_s_measured": host_s,
            "host_s_whole_sequence": host_total,
            "host_extrapolated": done < args.T,
            "host_counts_equal": bool(np.array_equal(host_counts, device_counts[:done])),
            "ratio_host_over_device": host_total / run_s,
        }
        if name.startswith("shifted") and device.platform in runs:
            row["tsallis_run_s"] = runs[device.platform]["run_s"]
        result["wall"].append(row)
        print(f"(b) {json.dumps(row)}", flush=True)

    result["elapsed_s"] = time.perf_counter() - started
    (args.out / "relax_gpu.json").write_text(json.dumps(result, indent=1))
    md = _markdown(result)
    (args.out / "relax_gpu.md").write_text(md)
    print(md)
    return 0


def _differences(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return {"differing_actions": None, "note": f"lengths differ: {a.shape} vs {b.shape}"}
    diff = np.flatnonzero(a != b)
    return {
        "differing_actions": int(diff.size),
        "first_difference": int(diff[0]) if diff.size else None,
    }


def _markdown(result) -> str:
    lines = [
        f"### sciml relax on {result['device']} (jax {result['jax']}, float64)",
        "",
        f"(a) actions, T = {result['T']}: "
        + "; ".join(
            f"{p}: {r['total']:,} sweeps, compile {r['compile_s']:.1f} s, run {r['run_s']:.1f} s"
            for p, r in result["actions"]["runs"].items()
        ),
    ]
    for label in ("device_vs_cpu", "compare"):
        if label in result["actions"]:
            d = result["actions"][label]
            lines.append(
                f"- {label}: {d['differing_actions']} differing actions (first at "
                f"{d['first_difference']}), {d.get('differing_iterations')} differing counts"
            )
    if result["wall"]:
        lines += [
            "",
            f"(b) whole sequence, red–black SOR at ω = {result['omega']}, T = {result['T']}:",
            "",
            "| sequence | n | sweeps | device compile s | device run s | NumPy loop s (host) | "
            "host / device | counts equal |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in result["wall"]:
            host = f"{r['host_s_whole_sequence']:.2f}"
            if r["host_extrapolated"]:
                host += f" (extrapolated from {r['host_instances']} instances)"
            lines.append(
                f"| {r['sequence']} | {r['n']} | {r['sweeps']:,} | {r['device_compile_s']:.2f} | "
                f"{r['device_run_s']:.2f} | {host} | {r['ratio_host_over_device']:.1f}× | "
                f"{r['host_counts_equal']} |"
            )
    lines += [f"- {note}" for note in result["notes"]]
    lines.append(f"\nelapsed {result['elapsed_s']:.1f} s")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
