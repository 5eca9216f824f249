#!/usr/bin/env python
"""sciml log I_v / log K_v vs SciPy (`log(ive)+x`, `log(kve)−x`) vs TFP's JAX substrate.

Same process, jit warm (compile time reported apart), both workloads of the method note §3
("small": v ~ U[0, 20], x ~ logU[1e-3, 1e2]; "wide": v ~ logU[0.1, 1e4], x ~ logU[1e-3, 1e5]).
Reports throughput (Mpts/s), the fraction of non-finite answers on the workload, and the number
of non-finite and wrong answers on the 50-digit reference table (`tests/special/data`), and
checks the issue's floors. SciPy is single-threaded C; JAX uses every core of the device.

TensorFlow Probability is optional: only `tfp-nightly` imports with current JAX. Without it the
TFP columns and the floors that need it are reported as skipped. `--tfp-path DIR` adds DIR to
`sys.path` first (for a TFP installed with `pip install --target DIR`).

Examples:

    python benchmarks/bench_special.py                          # 1e6 points, float64 + float32
    python benchmarks/bench_special.py --n 100000 --out out/special
    python benchmarks/bench_special.py --platform gpu --n 100000000 --scipy-n 1000000
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=float, default=1e6, help="points per workload (default 1e6)")
    parser.add_argument(
        "--scipy-n",
        type=float,
        default=None,
        help="points for SciPy (a subsample; default: --n, capped at 2e6)",
    )
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--workloads", default="small,wide")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per measurement")
    parser.add_argument("--platform", default=None, help="cpu, gpu, ... (default: JAX's)")
    parser.add_argument("--no-tfp", action="store_true", help="skip the TFP baseline")
    parser.add_argument("--tfp-path", default=os.environ.get("SCIML_TFP_PATH"))
    parser.add_argument("--vmf-dims", default="", help="also fit vMF in these d, e.g. 32768")
    parser.add_argument("--vmf-n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write special.json / special.md")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    if args.platform:
        os.environ["JAX_PLATFORMS"] = {"gpu": "cuda"}.get(args.platform, args.platform)
    if args.tfp_path:
        sys.path.insert(0, args.tfp_path)
    import jax

    dtypes = tuple(args.dtypes.split(","))
    if "float64" in dtypes:
        jax.config.update("jax_enable_x64", True)
    import numpy as np

    from sciml.cli import _report_special as S

    n = int(args.n)
    scipy_n = int(args.scipy_n) if args.scipy_n else min(n, 2_000_000)
    all_methods = S.methods(dtypes, with_tfp=not args.no_tfp)
    have_tfp = any(m.name.startswith("tfp") for m in all_methods)
    device = jax.devices()[0]
    info = {
        "device": f"{device.platform}: {device.device_kind}",
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "numpy": np.__version__,
            "scipy": __import__("scipy").__version__,
            "tfp": S.tfp_jax().__version__ if have_tfp else None,
        },
        "n": n,
        "scipy_n": scipy_n,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    print(f"device {info['device']}, {info['cpu_count']} CPUs, load {info['load_average']}")
    print(f"versions {info['versions']}; TFP {'found' if have_tfp else 'not found (skipped)'}")

    rows = []
    for name in args.workloads.split(","):
        v, x = S.workload(name, n, seed=args.seed)
        v_sub, x_sub = v[:scipy_n], x[:scipy_n]
        for method in all_methods:
            sub = method.kind == "host"
            row = S.throughput(
                method,
                v_sub if sub else v,
                x_sub if sub else x,
                repeats=args.repeats,
                budget_s=args.budget,
            )
            row["workload"] = name
            rows.append(row)
            compile_s = f", compile {row['compile_s']:.1f} s" if row["compile_s"] else ""
            print(
                f"{name:5s} {method.function} {method.name:14s} {row['mpts_per_s']:8.2f} Mpts/s "
                f"(n={row['n']}, non-finite {row['nonfinite_fraction']:.1%}{compile_s})",
                flush=True,
            )

    accuracy = []
    table = S.reference_table()
    if table is not None:
        for method in all_methods:
            acc = S.table_accuracy(method, table)
            accuracy.append(acc)
            print(
                f"table {method.function} {method.name:14s} non-finite {acc['nonfinite']:4d} "
                f"wrong {acc['wrong']:4d} (>{acc['wrong_bound']:.0e}) median {acc['median']:.1e} "
                f"max {acc['max_finite']:.1e}"
            )

    floors = _floors(rows, dtypes, have_tfp)
    for floor in floors:
        print(f"floor {floor['name']}: {floor['status']} ({floor['detail']})")

    vmf_rows = []
    if args.vmf_dims:
        dims = [int(d) for d in args.vmf_dims.split(",")]
        for dtype in dtypes:
            started = time.perf_counter()
            for row in S.vmf_fits(dims, (0.25, 1.0, 4.0), args.vmf_n, seed=args.seed, dtype=dtype):
                row["dtype"] = dtype
                vmf_rows.append(row)
                print(
                    f"vmf {dtype} d={row['d']} n={row['n']} kappa={row['kappa_true']:.0f} "
                    f"hat={row['kappa_hat']:.3f} rel={row['relative_error']:+.1e} "
                    f"steps={row['newton_steps']} residual={row['residual']:.1e} "
                    f"scipy={row['scipy_kappa_hat']:.3f} sample {row['sample_s']:.2f} s "
                    f"fit {row['fit_s']:.2f} s",
                    flush=True,
                )
            print(f"vmf {dtype} total {time.perf_counter() - started:.1f} s")

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        result = {
            "info": info,
            "throughput": rows,
            "accuracy": accuracy,
            "floors": floors,
            "vmf": vmf_rows,
        }
        (args.out / "special.json").write_text(json.dumps(result, indent=2, default=float))
        (args.out / "special.md").write_text(_markdown(info, rows, accuracy, floors, vmf_rows))
        print(f"wrote {args.out / 'special.json'} and {args.out / 'special.md'}")
    return 0


def _rate(rows, workload, function, method):
    for row in rows:
        if (row["workload"], row["function"], row["method"]) == (workload, function, method):
            return row
    return None


def _floors(rows, dtypes, have_tfp):
    """The issue's floors (float64 unless named), per workload."""
    checks = []
    workloads = sorted({r["workload"] for r in rows})

    def add(name, ours, theirs, factor):
        for workload in workloads:
            a, b = _rate(rows, workload, *ours), _rate(rows, workload, *theirs)
            label = f"{name} [{workload}]"
            if a is None or b is None:
                checks.append({"name": label, "status": "skipped", "detail": "baseline missing"})
                continue
            ratio = a["mpts_per_s"] / b["mpts_per_s"]
            status = "met" if ratio >= factor else "MISSED"
            detail = f"{ratio:.2f}x, floor {factor}x"
            checks.append({"name": label, "status": status, "ratio": ratio, "detail": detail})

    if "float64" in dtypes:
        add("log_iv >= 3x TFP", ("log_iv", "sciml float64"), ("log_iv", "tfp float64"), 3.0)
        add("log_iv >= 0.7x SciPy", ("log_iv", "sciml float64"), ("log_iv", "scipy float64"), 0.7)
        add("log_kv >= 1x TFP", ("log_kv", "sciml float64"), ("log_kv", "tfp float64"), 1.0)
    if "float32" in dtypes:
        add(
            "float32 log_iv >= 1.3x SciPy float64",
            ("log_iv", "sciml float32"),
            ("log_iv", "scipy float64"),
            1.3,
        )
    for workload in workloads:
        for function in ("log_iv", "log_kv"):
            ours = _rate(rows, workload, function, f"sciml {dtypes[0]}")
            if ours is not None:
                status = "met" if ours["nonfinite_fraction"] == 0 else "MISSED"
                checks.append(
                    {
                        "name": f"sciml {function} all finite [{workload}]",
                        "status": status,
                        "detail": f"{ours['nonfinite_fraction']:.2%} non-finite",
                    }
                )
    return checks


def _markdown(info, rows, accuracy, floors, vmf_rows):
    lines = [
        f"Device: {info['device']} ({info['cpu_count']} CPUs, load {info['load_average']}); "
        f"versions {info['versions']}; n = {info['n']} (SciPy {info['scipy_n']}).",
        "",
        "| workload | function | method | Mpts/s | non-finite | compile [s] |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        compile_s = f"{r['compile_s']:.1f}" if r["compile_s"] else "—"
        lines.append(
            f"| {r['workload']} | {r['function']} | {r['method']} | {r['mpts_per_s']:.2f} | "
            f"{r['nonfinite_fraction']:.1%} | {compile_s} |"
        )
    if accuracy:
        lines += [
            "",
            "| reference table | method | non-finite | wrong | median | max (finite) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for a in accuracy:
            lines.append(
                f"| {a['function']} | {a['method']} | {a['nonfinite']} | {a['wrong']} | "
                f"{a['median']:.1e} | {a['max_finite']:.1e} |"
            )
    lines += ["", "| floor | status | detail |", "|---|---|---|"]
    lines += [f"| {f['name']} | {f['status']} | {f['detail']} |" for f in floors]
    if vmf_rows:
        lines += [
            "",
            "| dtype | d | n | κ | κ̂ | rel. error | steps | residual | SciPy κ̂ | fit [s] |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in vmf_rows:
            lines.append(
                f"| {r['dtype']} | {r['d']} | {r['n']} | {r['kappa_true']:.0f} | "
                f"{r['kappa_hat']:.3f} | {r['relative_error']:+.1e} | {r['newton_steps']} | "
                f"{r['residual']:.1e} | {r['scipy_kappa_hat']:.3f} | {r['fit_s']:.2f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
