#!/usr/bin/env python
"""The GPU check of `sciml.special` (called by gpu_check_special.sh; runs on any JAX backend).

1. Throughput of log_iv / log_kv on N points (default 1e8) per dtype and workload, inputs drawn
   on the device with the note's distributions, jit warm (compile time reported apart), against
   single-threaded SciPy on a host subsample (default 1e6 points) of the same distribution; the
   issue's floor is ≥ 20× SciPy.
2. Accuracy on the device: the 50-digit reference table (`tests/special/data`, parsed as
   float64; no mpmath needed), float64 and float32 mixed errors, non-finite counts.
3. vMF: sample n points in d = 32768 (κ = d/4, d, 4d), fit (Newton from Banerjee's start), and
   take jax.grad of log_prob with respect to κ and μ.

Writes `special_gpu.json` and `special_gpu.md` into --out and prints everything.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=float, default=1e8)
    parser.add_argument("--scipy-n", type=float, default=1e6)
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--workloads", default="small,wide")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vmf-d", type=int, default=32768)
    parser.add_argument("--vmf-n", type=int, default=1000)
    parser.add_argument("--budget", type=float, default=200.0, help="stop starting steps after")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_out")))
    args = parser.parse_args(argv)
    started = time.perf_counter()

    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    import scipy.special as sc

    from sciml.cli import _report_special as S
    from sciml.special import log_iv, log_kv, vmf

    args.out.mkdir(parents=True, exist_ok=True)
    device = jax.devices()[0]
    result = {
        "device": f"{device.platform}: {device.device_kind}",
        "jax": jax.__version__,
        "n": int(args.n),
        "scipy_n": int(args.scipy_n),
        "throughput": [],
        "accuracy": [],
        "vmf": [],
        "notes": [],
    }
    print(f"device {result['device']}, jax {jax.__version__}", flush=True)

    def left():
        return args.budget - (time.perf_counter() - started)

    def draw(name, n, dtype, key):
        k1, k2 = jax.random.split(key)
        if name == "small":
            v = jax.random.uniform(k1, (n,), dtype, 0, 20)
            x = 10 ** jax.random.uniform(k2, (n,), dtype, -3, 2)
        else:
            v = 10 ** jax.random.uniform(k1, (n,), dtype, -1, 4)
            x = 10 ** jax.random.uniform(k2, (n,), dtype, -3, 5)
        return v, x

    # SciPy first (host, single thread), on the note's workloads.
    scipy_rate = {}
    for name in args.workloads.split(","):
        v, x = S.workload(name, int(args.scipy_n), seed=1)
        for function, fn in (
            ("log_iv", lambda v, x: np.log(sc.ive(v, x)) + x),
            ("log_kv", lambda v, x: np.log(sc.kve(v, x)) - x),
        ):
            with np.errstate(all="ignore"):
                t0 = time.perf_counter()
                out = fn(v, x)
                elapsed = time.perf_counter() - t0
            scipy_rate[name, function] = v.size / elapsed / 1e6
            print(
                f"scipy {name} {function}: {scipy_rate[name, function]:.2f} Mpts/s "
                f"(non-finite {np.mean(~np.isfinite(out)):.1%})",
                flush=True,
            )

    n = int(args.n)
    key = jax.random.key(0)
    for dtype in args.dtypes.split(","):
        for name in args.workloads.split(","):
            if left() < 30:
                result["notes"].append(f"skipped {dtype} {name}: budget")
                continue
            key, sub = jax.random.split(key)
            draw_jit = jax.jit(draw, static_argnums=(0, 1, 2))
            v, x = jax.block_until_ready(draw_jit(name, n, dtype, sub))
            for function, fn in (("log_iv", log_iv), ("log_kv", log_kv)):
                compiled_at = time.perf_counter()
                compiled = jax.jit(fn).lower(v, x).compile()
                compile_s = time.perf_counter() - compiled_at
                out = jax.block_until_ready(compiled(v, x))
                times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    out = jax.block_until_ready(compiled(v, x))
                    times.append(time.perf_counter() - t0)
                nonfinite = float(jnp.mean(~jnp.isfinite(out)))
                rate = n / statistics.median(times) / 1e6
                ratio = rate / scipy_rate[name, function]
                row = {
                    "dtype": dtype,
                    "workload": name,
                    "function": function,
                    "mpts_per_s": rate,
                    "scipy_mpts_per_s": scipy_rate[name, function],
                    "ratio_vs_scipy": ratio,
                    "floor_20x": "met" if ratio >= 20 else "MISSED",
                    "compile_s": compile_s,
                    "times_s": times,
                    "nonfinite_fraction": nonfinite,
                }
                result["throughput"].append(row)
                print(
                    f"{dtype} {name} {function}: {rate:.0f} Mpts/s = {ratio:.0f}x SciPy "
                    f"(floor 20x {row['floor_20x']}), compile {compile_s:.1f} s, "
                    f"non-finite {nonfinite:.2%}",
                    flush=True,
                )
                del out
            del v, x

    table = S.reference_table()
    if table is None:
        result["notes"].append("reference table not found; accuracy skipped")
    else:
        for dtype in args.dtypes.split(","):
            for function, fn, key_ in (("log_iv", log_iv, "log_i"), ("log_kv", log_kv, "log_k")):
                out = jax.jit(fn)(jnp.asarray(table["v"], dtype), jnp.asarray(table["x"], dtype))
                err = S.mixed_error(np.asarray(out, np.float64), table[key_])
                finite = np.isfinite(err)
                row = {
                    "dtype": dtype,
                    "function": function,
                    "points": int(err.size),
                    "nonfinite": int((~finite).sum()),
                    "max": float(err[finite].max()),
                    "median": float(np.median(err[finite])),
                    "note": "float32 inputs are the rounded float64 ones (input rounding included)"
                    if dtype == "float32"
                    else "",
                }
                result["accuracy"].append(row)
                print(
                    f"accuracy {dtype} {function}: max mixed {row['max']:.1e}, median "
                    f"{row['median']:.1e}, non-finite {row['nonfinite']}",
                    flush=True,
                )

    if left() > 40:
        for dtype in args.dtypes.split(","):
            rows = S.vmf_fits((args.vmf_d,), (0.25, 1.0, 4.0), args.vmf_n, dtype=dtype)
            for row in rows:
                row["dtype"] = dtype
                result["vmf"].append(row)
                print(
                    f"vmf {dtype} d={row['d']} n={row['n']} kappa={row['kappa_true']:.0f} "
                    f"hat={row['kappa_hat']:.3f} rel={row['relative_error']:+.1e} "
                    f"steps={row['newton_steps']} residual={row['residual']:.1e} "
                    f"scipy={row['scipy_kappa_hat']} sample {row['sample_s']:.2f} s "
                    f"fit {row['fit_s']:.2f} s",
                    flush=True,
                )
        d = args.vmf_d
        mu = jnp.zeros(d).at[0].set(1.0)
        X = vmf.sample(jax.random.key(3), mu, float(d), (64,))
        grad = jax.jit(jax.grad(lambda k, m: vmf.log_prob(X, m, k).sum(), argnums=(0, 1)))
        g_kappa, g_mu = grad(jnp.asarray(float(d)), mu)
        finite = bool(jnp.isfinite(g_kappa)) and bool(jnp.all(jnp.isfinite(g_mu)))
        result["vmf_grad_finite"] = finite
        print(f"vmf grad of log_prob in d={d}: finite={finite}, d/dkappa={float(g_kappa):.6e}")
    else:
        result["notes"].append("vMF skipped: budget")

    result["elapsed_s"] = time.perf_counter() - started
    (args.out / "special_gpu.json").write_text(json.dumps(result, indent=2, default=float))
    lines = [
        f"Device: {result['device']} (jax {result['jax']}), N = {n}, SciPy subsample "
        f"{int(args.scipy_n)} (single thread, host CPU).",
        "",
        "| dtype | workload | function | Mpts/s | × SciPy | floor 20× | compile [s] | non-finite |",
        "|---|---|---|---:|---:|---|---:|---:|",
    ]
    for r in result["throughput"]:
        lines.append(
            f"| {r['dtype']} | {r['workload']} | {r['function']} | {r['mpts_per_s']:.0f} | "
            f"{r['ratio_vs_scipy']:.0f} | {r['floor_20x']} | {r['compile_s']:.1f} | "
            f"{r['nonfinite_fraction']:.2%} |"
        )
    lines += ["", "| dtype | function | max mixed | median | non-finite |"]
    lines += ["|---|---|---:|---:|---:|"]
    for r in result["accuracy"]:
        lines.append(
            f"| {r['dtype']} | {r['function']} | {r['max']:.1e} | {r['median']:.1e} | "
            f"{r['nonfinite']} |"
        )
    if result["vmf"]:
        lines += ["", "| dtype | d | κ | κ̂ | rel. error | steps | residual | fit [s] |"]
        lines += ["|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in result["vmf"]:
            lines.append(
                f"| {r['dtype']} | {r['d']} | {r['kappa_true']:.0f} | {r['kappa_hat']:.3f} | "
                f"{r['relative_error']:+.1e} | {r['newton_steps']} | {r['residual']:.1e} | "
                f"{r['fit_s']:.2f} |"
            )
    lines += [f"- {note}" for note in result["notes"]]
    (args.out / "special_gpu.md").write_text("\n".join(lines) + "\n")
    print(f"done in {result['elapsed_s']:.0f} s; wrote {args.out}/special_gpu.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
