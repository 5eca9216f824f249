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

(r) Replay (the determinism check of the learners): each of Tsallis-INF, Tsallis-INF-CB and
    ChebCB plays the high-variance shifted-Laplacian sequence (T = `--replay-T`, key 0,
    lexicographic SOR, learner key 2) on the host CPU; the recorded counts are then replayed
    on the device with `relax.replay` under the same key and contexts, and the chosen arms
    compared (0 differing actions is the aim: the learners are pure functions of key,
    contexts and counts, and Tsallis-INF(-CB) use only IEEE arithmetic in a fixed order; an
    NVIDIA H200 run of the code before the FMA fix found 333 of 5000 Tsallis-INF actions
    differing). `--record FILE`
    writes such a run (of this machine's default device) to
    FILE; `--replay FILE` replays a recorded FILE from another machine on this device.

Needs JAX, equinox, NumPy, SciPy only. Writes `relax_gpu.json`, `relax_gpu.md`,
`relax_actions.json` and `relax_replay.json` into --out and prints everything. `--smoke` runs
tiny sizes (CPU test).
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


REPLAY_LEARNERS = ("TsallisINF", "TsallisINFCB", "ChebCB")


def make_learner(name: str):
    """The learners of the shifted-Laplacian runs (20 arms, context interval [−0.15, 0.65])."""
    import jax.numpy as jnp

    from sciml.solvers import relax

    grid = jnp.linspace(1.0, 1.95, 20)
    return {
        "TsallisINF": lambda: relax.TsallisINF(grid),
        "TsallisINFCB": lambda: relax.TsallisINFCB(grid, 5, -0.15, 0.65),
        "ChebCB": lambda: relax.ChebCB(grid, 6, -0.15, 0.65),
    }[name]()


def record_runs(T: int, names=REPLAY_LEARNERS, device=None) -> dict:
    """Play each learner on the high-variance sequence (key 0) with SOR; record everything.

    The record holds what a replay needs (key seed, contexts, counts) and what it must
    reproduce (arms), with floats as JSON numbers (Python writes the shortest repr that reads
    back to the same float64, so contexts survive the round trip bitwise).
    """
    import jax

    from sciml.problems import shifted_laplacians
    from sciml.solvers import relax

    device = device or jax.devices()[0]
    out = {
        "device": f"{device.platform}: {device.device_kind}",
        "jax": jax.__version__,
        "T": T,
        "sequence": "shifted_laplacians(key(0), T, variance='high'), float64",
        "solver": "sor (lexicographic)",
        "key": 2,
        "learners": {},
    }
    with jax.default_device(device):
        seq = shifted_laplacians(jax.random.key(0), T, variance="high")
        for name in names:
            tic = time.perf_counter()
            res = relax.relax(seq, "sor", make_learner(name), key=jax.random.key(out["key"]))
            arms = np.asarray(res.arm)
            out["learners"][name] = {
                "iterations": np.asarray(res.iterations).tolist(),
                "arms": arms.tolist(),
                "run_s": time.perf_counter() - tic,
            }
        out["context"] = [float(c) for c in np.asarray(seq.context)]
    return out


def replay_record(record: dict, device, *, left=None, needs=None, progress=None) -> dict:
    """Replay every learner of a record on `device`; count the actions that differ.

    `progress(partial_result)` is called after each learner (to save what is done in case a
    later, slower replay runs into the wall-clock kill).
    """
    import jax
    import jax.numpy as jnp

    from sciml.solvers import relax

    out = {}
    context = np.asarray(record["context"], np.float64)
    for name, rec in record["learners"].items():
        if left is not None and needs is not None and left() < needs.get(name, 0):
            out[name] = {"skipped": "budget"}
            continue
        with jax.default_device(device):
            learner = jax.device_put(make_learner(name), device)
            args = (
                jax.device_put(jnp.asarray(rec["iterations"], jnp.int32), device),
                jax.device_put(jnp.asarray(context), device),
                jax.device_put(jax.random.key(record["key"]), device),
            )
            tic = time.perf_counter()
            res = relax.replay(learner, args[0], key=args[2], context=args[1])
            arms = np.asarray(jax.block_until_ready(res.arm))
            replay_s = time.perf_counter() - tic
        out[name] = {
            "T": len(rec["arms"]),
            **_differences(arms, rec["arms"]),
            "replay_s_with_compile": replay_s,
            "recorded_run_s": rec.get("run_s"),
        }
        if progress is not None:
            progress(out)
    return out


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
        "--parts",
        default="replay,actions,laplacian,heat",
        help="which of replay, actions, laplacian, heat",
    )
    parser.add_argument("--replay-T", type=int, default=5000, help="rounds of part (r)")
    parser.add_argument(
        "--record", type=Path, default=None, help="write a learner run to FILE and stop"
    )
    parser.add_argument(
        "--replay", type=Path, default=None, help="replay a --record FILE on this device"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CPU test)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if args.actions_only:
        parts = {"actions"}
    if args.smoke:
        args.T, args.nx, args.host_seconds, args.replay_T = 40, 8, 2.0, 60
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

    if args.record is not None:
        record = record_runs(args.replay_T)
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(record))
        print(f"recorded {list(record['learners'])} (T={args.replay_T}) to {args.record}")
        return 0

    # (r) replay: recorded counts (host CPU, or --replay FILE) replayed on the device.
    replay = {}

    def save_replay(learners):
        replay["learners"] = learners
        (args.out / "relax_replay.json").write_text(json.dumps(replay, indent=1))

    if args.replay is not None:
        record = json.loads(args.replay.read_text())
        replay.update(
            source=f"{args.replay} ({record['device']}, jax {record['jax']})",
            target=result["device"],
            T=record["T"],
        )
        replay_record(record, device, progress=save_replay)
    elif "replay" in parts:
        tic = time.perf_counter()
        record = record_runs(args.replay_T, device=cpu)
        replay.update(
            source=f"in-process run on {cpu.platform} ({time.perf_counter() - tic:.1f} s)",
            target=result["device"],
            T=args.replay_T,
        )
        # ChebCB's replay on a GPU is the slow one (a 500-step refit loop per round).
        needs = {} if args.smoke else {"TsallisINF": 10, "TsallisINFCB": 10, "ChebCB": 40}
        replay_record(record, device, left=left, needs=needs, progress=save_replay)
    if replay:
        result["replay"] = replay
        for name, r in replay["learners"].items():
            print(f"(r) replay {name}: {r}", flush=True)

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
        actions["device_vs_cpu"].update(
            _count_differences(actions["iterations"], actions["cpu_iterations"])
        )
        # The device's counts replayed on the CPU: the learner alone, without the solver.
        with jax.default_device(cpu):
            replayed = relax.replay(
                jax.device_put(learner, cpu),
                jnp.asarray(actions["iterations"], jnp.int32),
                key=jax.device_put(jax.random.key(1), cpu),
            )
        actions["device_counts_replayed_on_cpu"] = _differences(
            np.asarray(replayed.arm), actions["arms"]
        )
    if args.compare is not None:
        other = json.loads(args.compare.read_text())
        actions["compare"] = {
            "file": str(args.compare),
            "other_device": other.get("device"),
            "other_jax": other.get("jax"),
            **_differences(actions["arms"], other["arms"]),
            **_count_differences(actions["iterations"], other["iterations"]),
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
    for label in ("device_vs_cpu", "device_counts_replayed_on_cpu", "compare"):
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


def _count_differences(a, b):
    # Where the counts first differ tells the solver's part from the learner's: a count that
    # differs before the first differing action came from the solver.
    diff = np.flatnonzero(np.asarray(a) != np.asarray(b))
    return {
        "differing_iterations": int(diff.size),
        "first_differing_iteration": int(diff[0]) if diff.size else None,
    }


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
    lines = [f"### sciml relax on {result['device']} (jax {result['jax']}, float64)", ""]
    if "replay" in result:
        rp = result["replay"]
        lines += [
            f"(r) replay of recorded counts, T = {rp['T']}: {rp['source']} -> {rp['target']}",
            "",
            "| learner | differing actions (expected 0) | first difference | replay s |",
            "|---|---:|---:|---:|",
        ]
        for name, r in rp["learners"].items():
            if "skipped" in r:
                lines.append(f"| {name} | skipped ({r['skipped']}) | | |")
                continue
            lines.append(
                f"| {name} | {r['differing_actions']} | {r['first_difference']} | "
                f"{r['replay_s_with_compile']:.1f} |"
            )
        lines.append("")
    if result["actions"].get("runs"):
        lines.append(
            f"(a) actions, T = {result['T']}: "
            + "; ".join(
                f"{p}: {r['total']:,} sweeps, compile {r['compile_s']:.1f} s, "
                f"run {r['run_s']:.1f} s"
                for p, r in result["actions"]["runs"].items()
            )
        )
    for label in ("device_vs_cpu", "device_counts_replayed_on_cpu", "compare"):
        if label in result["actions"]:
            d = result["actions"][label]
            lines.append(
                f"- {label}: {d['differing_actions']} differing actions (first at "
                f"{d['first_difference']}), {d.get('differing_iterations', '-')} differing counts"
                f" (first at {d.get('first_differing_iteration', '-')})"
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
