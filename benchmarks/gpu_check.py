#!/usr/bin/env python
"""Diagnostics for the GPU check: where one CG iteration's time goes, sciml vs jax.scipy.

Run by `benchmarks/gpu_check.sh` after the Krylov benchmark. On one grid (256³ float32 by default)
and in one process it times, interleaved and with more repeats than the benchmark:

- sciml `cg` and `jax.scipy.sparse.linalg.cg`, K iterations each (K = jax.scipy's count at
  rtol 1e-5), sciml with `throw=False` (as benchmarked) and, in rtol mode, `throw=True` (the
  default users get);
- the building blocks of an iteration, each in a loop of K: the matrix-free product, one inner
  product, one axpy, and a streaming copy;

and writes the compiled HLO of both solvers with a count of the kernels (fusions, reductions)
their loops launch, so that a missed floor can be traced to extra passes or launches.

    PYTHONPATH=. python benchmarks/gpu_check.py --size 256 --out gpu_out
"""

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


_FREE_OPS = {"parameter", "get-tuple-element", "tuple", "bitcast", "constant"}


def _computation(hlo: str, name: str) -> list[str]:
    lines = hlo.splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"\s*(ENTRY\s+)?%?{re.escape(name)}\s", line) and line.rstrip().endswith("{"):
            body = []
            for inner in lines[i + 1 :]:
                if inner.strip() == "}":
                    return body
                body.append(inner)
    return []


def loop_kernels(hlo: str) -> dict[str, dict[str, int]]:
    """Per while loop of an optimised HLO module: its body's instructions by opcode.

    Each instruction other than parameters, tuples, bitcasts and constants is roughly one kernel
    launch per iteration on GPU (a fusion, a reduction, a dynamic-update-slice, a copy).
    """
    loops = {}
    for match in re.finditer(r"while\(.*?condition=%?([\w.\-]+), body=%?([\w.\-]+)", hlo):
        cond, body = match.groups()
        ops: dict[str, int] = {}
        for part, name in (("body", body), ("cond", cond)):
            for line in _computation(hlo, name):
                op = re.search(r"=\s*(?:\([^=]*\)|[\w\[\]{}:,\s]+?)\s+([\w\-]+)\(", line)
                if op and op.group(1) not in _FREE_OPS:
                    key = f"{part}:{op.group(1)}"
                    ops[key] = ops.get(key, 0) + 1
        loops[body] = ops
    return loops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="grid side N (default 256)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument("--out", type=Path, default=Path("gpu_out"))
    args = parser.parse_args(argv)
    if args.dtype == "float64":
        import os

        os.environ.setdefault("JAX_ENABLE_X64", "1")

    import jax
    import jax.numpy as jnp
    from jax import lax

    from sciml._core._metrics import describe_environment, environment, write_json
    from sciml._core._timing import time_jitted_interleaved
    from sciml.cli._bench_krylov import (
        DEFAULT_RTOL,
        count_jax_scipy_iterations,
        jax_scipy_solver,
        make_problem,
        sciml_solver,
    )

    args.out.mkdir(parents=True, exist_ok=True)
    env = environment()
    print(describe_environment(env), flush=True)
    rtol = DEFAULT_RTOL[args.dtype]
    dtype = jnp.dtype(args.dtype)
    eps = float(jnp.finfo(dtype).eps)
    max_steps = 20 * args.size
    op, b = make_problem(args.size, args.dtype)
    started = time.perf_counter()
    steps = count_jax_scipy_iterations(op, b, rtol, max_steps)
    print(f"{args.size}^3 {args.dtype}: jax.scipy needs {steps} iterations to rtol {rtol}")
    opts = {"repeats": args.repeats, "warmup": 2, "budget_s": args.budget}

    scale = jnp.asarray(1.0 - 2.0**-12, dtype)
    tiny = jnp.asarray(2.0**-40, dtype)

    def vector_loop(step):
        return jax.jit(lambda op, b: lax.fori_loop(0, steps, lambda _, v: step(op, v, b), b))

    def dot_loop(op, b):
        # Two vectors read per pass, as in CG's inner products; the carried scalar keeps the
        # reduction inside the loop (it is not loop-invariant).
        other = b[::-1]
        return lax.fori_loop(0, steps, lambda _, s: 1 + tiny * jnp.vdot(b, other * s), scale)

    blocks = {
        "sciml": sciml_solver(eps, steps),
        "jax.scipy": jax_scipy_solver(eps, steps),
        "matvec": vector_loop(lambda op, v, b: op.mv(v) * scale),
        "dot": jax.jit(dot_loop),
        "axpy": vector_loop(lambda op, v, b: b + scale * v),
        "copy": vector_loop(lambda op, v, b: v * scale),
    }
    timings, outputs = time_jitted_interleaved(blocks, op, b, **opts)
    sciml_steps = int(outputs["sciml"].stats["num_steps"])
    per_iter = {
        name: t.median_s / (sciml_steps if name == "sciml" else steps)
        for name, t in timings.items()
    }
    print(f"fixed mode, {steps} iterations; per iteration / pass (median of interleaved runs):")
    for name, seconds in per_iter.items():
        print(f"  {name:10s} {seconds * 1e3:9.4f} ms   compile {timings[name].compile_s:.2f} s")
    ratio = per_iter["sciml"] / per_iter["jax.scipy"]
    print(f"  sciml / jax.scipy per iteration: {ratio:.3f}")
    print(f"  sciml iteration = {per_iter['sciml'] / per_iter['copy']:.1f} copy passes")

    throw_timings, throw_out = time_jitted_interleaved(
        {
            "sciml_throw": sciml_solver(rtol, max_steps, throw=True),
            "sciml": sciml_solver(rtol, max_steps),
            "jax.scipy": jax_scipy_solver(rtol, max_steps),
        },
        op,
        b,
        **opts,
    )
    print("rtol mode, whole solve (median):")
    for name, t in throw_timings.items():
        print(f"  {name:12s} {t.median_s * 1e3:9.3f} ms   compile {t.compile_s:.2f} s")

    hlo = {}
    for name in ("sciml", "jax.scipy"):
        text = blocks[name].lower(op, b).compile().as_text()
        (args.out / f"hlo_{name}_{args.size}_{args.dtype}.txt").write_text(text)
        hlo[name] = loop_kernels(text)
        print(f"  HLO {name}: {hlo[name]}")

    write_json(
        args.out / "gpu_diag.json",
        {
            "environment": env,
            "size": args.size,
            "dtype": args.dtype,
            "rtol": rtol,
            "iterations": steps,
            "sciml_fixed_steps": sciml_steps,
            "timings": {name: t.as_dict() for name, t in timings.items()},
            "per_iteration_s": per_iter,
            "ratio_per_iteration": ratio,
            "rtol_mode": {name: t.as_dict() for name, t in throw_timings.items()},
            "rtol_mode_steps": int(throw_out["sciml"].stats["num_steps"]),
            "hlo_counts": hlo,
            "wall_s": time.perf_counter() - started,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
