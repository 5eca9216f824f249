#!/usr/bin/env python
"""DCDM against CG, Jacobi-PCG, IC(0)-PCG and AMG-PCG on fluid-pressure systems with obstacles.

The problems are `sciml.problems.fluid_pressure` boxes with random sphere/box obstacles, which
the shipped DCDM models never saw (they are trained on the obstacle-free box). Each grid gets
three right-hand-side kinds, all projected onto the range of the singular operator and
normalised: the divergence of a smoke-simulation step on that geometry (`sciml.sims`), a sum
of Gaussian blobs, and white noise. For every solver and tolerance (‖b − Ax‖ ≤ rtol‖b‖, x0 = 0)
it records iterations, the host-checked residual, steady-state wall time and, separately,
compile (JAX) or setup (IC factor, AMG hierarchy) time. Then the issue's floors:

- DCDM needs ≤ 1/5 of CG's iterations at 64² and 32³ (rtol 1e-4);
- a model trained at size N keeps ≤ 1/3 of CG's iterations at 2N (the training size is read
  from the weights' metadata);

and a smoke-plume demo: the same simulation with each pressure solver, total time per method.

    python benchmarks/bench_dcdm.py --out bench_out                 # 64², 32³, 64³
    python benchmarks/bench_dcdm.py --sizes 2d64,3d32 --out bench_out
    python benchmarks/bench_dcdm.py --smoke --out /tmp/b            # tiny, seconds

IC(0)-PCG and AMG-PCG run on the host (SciPy triangular solves; pyamg), as in the DCDM
reference harness; the JAX solvers run compiled on the default device.
"""

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402

from sciml._core import RESULTS, _timing as timing  # noqa: E402
from sciml._core._metrics import environment  # noqa: E402
from sciml.linalg import FLUID, project_to_range  # noqa: E402
from sciml.problems import fluid_pressure  # noqa: E402
from sciml.sims import SmokeSim, smoke_plume  # noqa: E402
from sciml.solvers import cg, dcdm, jacobi, load_dcdm_model  # noqa: E402

KINDS = ("smoke", "blobs", "noise")
SOLVERS = ("dcdm", "cg", "jacobi-pcg", "ic-pcg", "amg-pcg")


# --------------------------------------------------------------------------------------------
# Problems


def parse_size(text: str) -> tuple[int, ...]:
    """'2d64' -> (64, 64); '3d32' -> (32, 32, 32)."""
    dim, n = text.lower().split("d")
    return (int(n),) * int(dim)


def geometry(shape: tuple[int, ...], seed: int):
    """A fluid-pressure operator with obstacles whose smoke source is not blocked."""
    for attempt in range(20):
        problem = fluid_pressure(jax.random.key(seed + 1000 * attempt), shape, n_obstacles=3)
        try:
            SmokeSim(shape, mask=problem.operator.mask)
        except ValueError:
            continue
        return problem
    raise RuntimeError(f"no obstacle layout with a free smoke source at {shape}")


def smoke_rhs(op, *, steps: int) -> jnp.ndarray:
    """The pressure rhs of step `steps + 1` of a smoke plume rising among the obstacles."""
    sim = SmokeSim(op.grid_shape, mask=op.mask, pressure_solver="cg", rtol=1e-6, max_steps=4000)
    state, _, _ = eqx.filter_jit(lambda s, st: s.run(st, steps))(sim, sim.init())
    _, rhs = eqx.filter_jit(lambda s, st: s.advance(st))(sim, state)
    return rhs


def blob_rhs(op, key) -> jnp.ndarray:
    shape = op.grid_shape
    ckey, skey = jax.random.split(key)
    centres = np.asarray(jax.random.uniform(ckey, (6, len(shape)), minval=0.15, maxval=0.85))
    signs = np.where(np.asarray(jax.random.bernoulli(skey, 0.5, (6,))), 1.0, -1.0)
    coords = np.meshgrid(*[(np.arange(s) + 0.5) / s for s in shape], indexing="ij")
    field = np.zeros(shape)
    for centre, sign in zip(centres, signs, strict=True):
        r2 = sum((x - c) ** 2 for x, c in zip(coords, centre, strict=True))
        field += sign * np.exp(-r2 / (2 * 0.06**2))
    return project_to_range(op, jnp.asarray(field.reshape(-1)))


def noise_rhs(op, key) -> jnp.ndarray:
    return project_to_range(op, jax.random.normal(key, (op.n,), jnp.float64))


def right_hand_sides(op, kinds, *, seed: int, smoke_steps: int) -> dict[str, jnp.ndarray]:
    out = {}
    for kind in kinds:
        key = jax.random.key(seed + 17)
        if kind == "smoke":
            b = smoke_rhs(op, steps=smoke_steps)
        elif kind == "blobs":
            b = blob_rhs(op, key)
        else:
            b = noise_rhs(op, key)
        out[kind] = b / jnp.linalg.norm(b)
    return out


# --------------------------------------------------------------------------------------------
# Host baselines


def ic0_diagonal(op) -> np.ndarray:
    """Pivots d of IC(0) for a 5/7-point grid stencil: M = (D + L) D⁻¹ (D + Lᵀ), L = tril(A).

    For these stencils IC(0) drops every fill-in, so l_ij = a_ij / √d_j and
    d_i = a_ii − Σ_{lower neighbours j} a_ij² / d_j, computed by wavefronts (cells with the
    same index sum are independent). Pivots are kept ≥ 1e-8·a_ii (the singular Neumann system
    has a near-zero last pivot per floating region).
    """
    centre, off = op.stencil()
    centre = np.asarray(centre, np.float64)
    shape = centre.shape
    lower = [np.asarray(off[(axis, -1)], np.float64) for axis in range(len(shape))]
    d = np.where(centre > 0, centre, 1.0)
    level = sum(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"))
    for value in range(1, int(level.max()) + 1):
        idx = np.nonzero(level == value)
        acc = np.zeros(len(idx[0]))
        for axis in range(len(shape)):
            neighbour = list(idx)
            neighbour[axis] = neighbour[axis] - 1
            inside = neighbour[axis] >= 0
            neighbour = tuple(np.where(inside, k, 0) for k in neighbour)
            acc += np.where(inside, lower[axis][idx] ** 2 / d[neighbour], 0.0)
        pivot = np.maximum(centre[idx] - acc, 1e-8 * np.maximum(centre[idx], 1.0))
        d[idx] = np.where(centre[idx] > 0, pivot, 1.0)
    return d.reshape(-1)


@dataclasses.dataclass
class HostSystem:
    matrix: sp.csr_array  # fluid rows/columns only
    fluid: np.ndarray


def host_system(op) -> HostSystem:
    fluid = np.flatnonzero(np.asarray(op.mask).reshape(-1) == FLUID)
    matrix = op.to_scipy().tocsr().astype(np.float64)
    return HostSystem(sp.csr_array(matrix[fluid][:, fluid]), fluid)


def ic_preconditioner(op, host: HostSystem):
    d = ic0_diagonal(op)[host.fluid]
    lower = sp.csr_matrix(sp.diags(d) + sp.tril(host.matrix, -1))
    upper = sp.csr_matrix(lower.T)

    def apply(r):
        y = spla.spsolve_triangular(lower, r, lower=True)
        return spla.spsolve_triangular(upper, d * y, lower=False)

    return spla.LinearOperator(host.matrix.shape, apply, dtype=np.float64)


def host_pcg(host: HostSystem, b: np.ndarray, M, *, rtol: float, max_steps: int):
    count = [0]

    def callback(_):
        count[0] += 1

    rhs = b[host.fluid]
    x, info = spla.cg(
        host.matrix, rhs, rtol=rtol, atol=0.0, maxiter=max_steps, M=M, callback=callback
    )
    full = np.zeros(b.shape)
    full[host.fluid] = x
    return full, count[0], info == 0


def amg_pcg(ml, host: HostSystem, b: np.ndarray, *, rtol: float, max_steps: int):
    residuals: list[float] = []
    rhs = b[host.fluid]
    x = ml.solve(rhs, tol=rtol, maxiter=max_steps, accel="cg", residuals=residuals)
    full = np.zeros(b.shape)
    full[host.fluid] = x
    ok = np.linalg.norm(rhs - host.matrix @ x) <= 1.01 * rtol * np.linalg.norm(rhs)
    return full, len(residuals) - 1, bool(ok)


# --------------------------------------------------------------------------------------------
# Runs


def rel_residual(op, b, x) -> float:
    A = op.to_scipy().tocsr().astype(np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(b - A @ np.asarray(x, np.float64)) / np.linalg.norm(b))


def time_jax(solve, args, *, repeats: int):
    measured, sol = timing.time_jitted(solve, *args, repeats=repeats, warmup=0, budget_s=20.0)
    return measured, sol


def run_jax_solver(name, op, b, *, model, rtol, max_steps, repeats):
    dynamic, static = eqx.partition((op, model), eqx.is_array)
    rtol_array = jnp.asarray(rtol, b.dtype)

    def solve(dynamic, b, rtol_array):
        operator, net = eqx.combine(dynamic, static)
        if name == "dcdm":
            return dcdm(operator, b, model=net, rtol=rtol_array, max_steps=max_steps, throw=False)
        M = jacobi(operator) if name == "jacobi-pcg" else None
        return cg(operator, b, rtol=rtol_array, max_steps=max_steps, M=M, throw=False)

    measured, sol = time_jax(solve, (dynamic, b, rtol_array), repeats=repeats)
    history = np.asarray(sol.stats["residual_history"], np.float64)
    return {
        "iterations": int(sol.stats["num_steps"]),
        "converged": bool(sol.result == RESULTS.successful),
        "rel_residual": rel_residual(op, b, sol.value),
        "run_s": measured.median_s,
        "compile_s": measured.compile_s,
        "setup_s": 0.0,
        "history": history[np.isfinite(history)].tolist(),
    }


def run_host_solver(name, op, b, host, *, prepared, rtol, max_steps, repeats):
    b_host = np.asarray(b, np.float64)
    if name == "ic-pcg":
        fn = lambda: host_pcg(host, b_host, prepared, rtol=rtol, max_steps=max_steps)  # noqa: E731
    else:
        fn = lambda: amg_pcg(prepared, host, b_host, rtol=rtol, max_steps=max_steps)  # noqa: E731
    measured, (x, iterations, ok) = timing.time_call(fn, repeats=repeats, warmup=0, budget_s=20.0)
    return {
        "iterations": iterations,
        "converged": ok,
        "rel_residual": rel_residual(op, b, x),
        "run_s": measured.median_s,
        "compile_s": None,
    }


def model_for(dim: int, weights: str | None):
    from sciml.solvers._dcdm import default_dcdm_model
    from sciml.solvers._dcdm_net import read_dcdm_header

    if weights:
        return load_dcdm_model(weights), read_dcdm_header(weights), weights
    model = default_dcdm_model(dim)
    from importlib import resources

    path = resources.files("sciml.solvers._dcdm_weights").joinpath(f"dcdm_{dim}d.eqx")
    with resources.as_file(path) as file:
        return model, read_dcdm_header(file), "shipped"


def training_size(header: dict) -> int | None:
    meta = header.get("metadata", {}) or {}
    for key in ("n", "train_n", "grid", "size"):
        value = meta.get(key)
        if isinstance(value, int):
            return value
        if isinstance(value, list) and value and isinstance(value[0], int):
            return value[0]
    settings = meta.get("settings") or {}
    value = settings.get("n")
    return value if isinstance(value, int) else None


def bench_size(shape, args, models, solvers):
    dim = len(shape)
    problem = geometry(shape, args.seed)
    op = problem.operator
    host = host_system(op)
    t = time.perf_counter()
    rhs = right_hand_sides(op, args.kinds, seed=args.seed, smoke_steps=args.smoke_steps)
    rhs_s = time.perf_counter() - t
    prepared, setup = {}, {}
    if "ic-pcg" in solvers:
        t = time.perf_counter()
        prepared["ic-pcg"] = ic_preconditioner(op, host)
        setup["ic-pcg"] = time.perf_counter() - t
    if "amg-pcg" in solvers:
        import pyamg

        t = time.perf_counter()
        prepared["amg-pcg"] = pyamg.smoothed_aggregation_solver(host.matrix, max_coarse=10)
        setup["amg-pcg"] = time.perf_counter() - t
    records = []
    for kind, b in rhs.items():
        for rtol in args.rtols:
            for name in solvers:
                print(f"  {shape} {kind} rtol {rtol:g}: {name}", file=sys.stderr, flush=True)
                max_steps = args.dcdm_max_steps if name == "dcdm" else args.max_steps
                repeats = args.dcdm_repeats if name == "dcdm" else args.repeats
                if name in ("dcdm", "cg", "jacobi-pcg"):
                    rec = run_jax_solver(
                        name,
                        op,
                        b,
                        model=models.get(dim),
                        rtol=rtol,
                        max_steps=max_steps,
                        repeats=repeats,
                    )
                else:
                    rec = run_host_solver(
                        name,
                        op,
                        b,
                        host,
                        prepared=prepared[name],
                        rtol=rtol,
                        max_steps=max_steps,
                        repeats=repeats,
                    )
                    rec["setup_s"] = setup[name]
                records.append(
                    {"grid": list(shape), "kind": kind, "rtol": rtol, "solver": name, **rec}
                )
    fluid = int(np.sum(np.asarray(op.mask) == FLUID))
    return {"grid": list(shape), "fluid_cells": fluid, "rhs_s": rhs_s, "records": records}


def ratio_floor(results, shape, limit, label, *, rtol=1e-4):
    rows = [r for size in results for r in size["records"] if r["grid"] == list(shape)]
    ratios = {}
    for kind in {r["kind"] for r in rows}:
        d = [r for r in rows if r["kind"] == kind and r["rtol"] == rtol and r["solver"] == "dcdm"]
        c = [r for r in rows if r["kind"] == kind and r["rtol"] == rtol and r["solver"] == "cg"]
        if d and c:
            value = d[0]["iterations"] / max(c[0]["iterations"], 1)
            ratios[kind] = value if d[0]["converged"] else math.inf
    if not ratios:
        return {"name": label, "status": "skipped", "detail": "not measured"}
    worst = max(ratios.values())
    return {
        "name": label,
        "status": "met" if worst <= limit else "missed",
        "limit": limit,
        "worst_ratio": worst,
        "ratios": ratios,
    }


def smoke_demo(args, models):
    shape = parse_size(args.demo_size)
    out = []
    methods = [m for m in ("cg", "pcg", "dcdm", "amg") if m in args.demo_methods]
    for method in methods:
        print(f"  smoke demo {shape}: {method}", file=sys.stderr, flush=True)
        options = {"pressure_solver": method, "rtol": 1e-4, "max_steps": 2000}
        if method == "dcdm":
            options.update(model=models.get(len(shape)), max_steps=args.dcdm_max_steps)
        try:
            run = smoke_plume(shape, n_steps=args.demo_steps, throw=False, **options)
        except ImportError as error:
            out.append({"method": method, "status": f"skipped: {error}"})
            continue
        summary = run.summary()
        summary.pop("iterations")
        out.append(summary)
    return {"grid": list(shape), "n_steps": args.demo_steps, "runs": out}


# --------------------------------------------------------------------------------------------
# Output


def markdown(result) -> str:
    env = result["environment"]
    lines = [
        "# DCDM benchmark",
        "",
        f"{env.get('device_kind', '?')} ({env.get('backend', '?')}), jax "
        f"{env['versions'].get('jax')}, float64 vectors (the network computes in float32). "
        f"Models: {result['models']}.",
        "",
        "| grid | rhs | rtol | solver | iterations | converged | rel. residual | run [s] | "
        "compile/setup [s] |",
        "|---|---|---|---|---:|---|---:|---:|---:|",
    ]
    for size in result["sizes"]:
        for r in size["records"]:
            grid = "×".join(map(str, r["grid"]))
            extra = r["compile_s"] if r["compile_s"] is not None else r.get("setup_s")
            lines.append(
                f"| {grid} | {r['kind']} | {r['rtol']:g} | {r['solver']} | {r['iterations']} | "
                f"{'yes' if r['converged'] else 'NO'} | {r['rel_residual']:.1e} | "
                f"{r['run_s']:.3g} | {extra:.3g} |"
            )
    lines += ["", "## Floors", "", "| floor | status | detail |", "|---|---|---|"]
    for floor in result["floors"]:
        detail = floor.get("ratios") or floor.get("detail", "")
        if isinstance(detail, dict):
            detail = ", ".join(f"{k}: {v:.3f}" for k, v in sorted(detail.items()))
        lines.append(f"| {floor['name']} | {floor['status']} | {detail} |")
    demo = result.get("smoke_demo")
    if demo:
        grid = "×".join(map(str, demo["grid"]))
        lines += [
            "",
            f"## Smoke-plume demo ({grid}, {demo['n_steps']} steps, rtol 1e-4, scan mode)",
            "",
            "| pressure solver | converged | mean its | max its | total [s] | compile [s] |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for run in demo["runs"]:
            if "status" in run:
                lines.append(f"| {run['method']} | {run['status']} | | | | |")
                continue
            lines.append(
                f"| {run['method']} | {'yes' if run['converged'] else 'NO'} | "
                f"{run['iterations_mean']:.1f} | {run['iterations_max']} | "
                f"{run['total_s']:.3g} | {run['compile_s']:.3g} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2d64,3d32,3d64", help="e.g. 2d64,3d32,3d64")
    parser.add_argument("--kinds", default=",".join(KINDS), help="smoke,blobs,noise")
    parser.add_argument("--rtols", default="1e-4,1e-6")
    parser.add_argument("--solvers", default=",".join(SOLVERS))
    parser.add_argument("--weights-2d", default=None, help="DCDM model file (default: shipped)")
    parser.add_argument("--weights-3d", default=None, help="DCDM model file (default: shipped)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dcdm-repeats", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=5000)
    parser.add_argument("--dcdm-max-steps", type=int, default=300)
    parser.add_argument("--smoke-steps", type=int, default=24, help="plume steps before the rhs")
    parser.add_argument("--generalisation", default="auto", help="sizes at 2× training, or 'none'")
    parser.add_argument("--demo-size", default="2d64")
    parser.add_argument("--demo-steps", type=int, default=50)
    parser.add_argument("--demo-methods", default="cg,pcg,dcdm,amg")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (a test of the script)")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.demo_size, args.demo_steps = "2d16,3d8", "2d16", 4
        args.smoke_steps, args.repeats, args.dcdm_repeats = 4, 1, 1
        args.rtols, args.generalisation = "1e-4", "none"
    args.kinds = [k for k in args.kinds.split(",") if k]
    args.rtols = [float(r) for r in args.rtols.split(",")]
    args.demo_methods = args.demo_methods.split(",")
    solvers = [s for s in args.solvers.split(",") if s]
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]

    models, headers, sources = {}, {}, {}
    wants_dcdm = "dcdm" in solvers or ("dcdm" in args.demo_methods and args.demo_steps > 0)
    for dim, weights in ((2, args.weights_2d), (3, args.weights_3d)):
        if not wants_dcdm:
            break
        if any(len(s) == dim for s in sizes) or len(parse_size(args.demo_size)) == dim:
            models[dim], headers[dim], sources[dim] = model_for(dim, weights)

    # Sizes at twice the training resolution, for the generalisation floor.
    generalisation = []
    if args.generalisation == "auto":
        for dim, header in headers.items():
            n = training_size(header)
            if n:
                generalisation.append((dim, n, (2 * n,) * dim))
                if (2 * n,) * dim not in sizes:
                    sizes.append((2 * n,) * dim)

    results = []
    for shape in sizes:
        print(f"grid {shape}", file=sys.stderr, flush=True)
        results.append(bench_size(shape, args, models, solvers))
    floors = []
    for shape in [(64, 64), (32, 32, 32)] if not args.smoke else [(16, 16), (8, 8, 8)]:
        label = f"DCDM ≤ 1/5 of CG iterations at {'×'.join(map(str, shape))} (rtol 1e-4)"
        floors.append(ratio_floor(results, shape, 0.2, label))
    for dim, n, shape in generalisation:
        label = f"{dim}-D model trained at {n} keeps ≤ 1/3 of CG iterations at {2 * n}"
        floors.append(ratio_floor(results, shape, 1 / 3, label))
    result = {
        "environment": environment(),
        "models": {str(dim): f"{sources[dim]} ({headers[dim].get('variant')})" for dim in models},
        "model_headers": {str(dim): headers[dim] for dim in models},
        "sizes": results,
        "floors": floors,
    }
    if args.demo_steps > 0:
        result["smoke_demo"] = smoke_demo(args, models)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dcdm.json").write_text(json.dumps(result, indent=1, default=str))
    text = markdown(result)
    (args.out / "dcdm.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
