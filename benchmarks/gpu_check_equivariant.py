#!/usr/bin/env python
"""The GPU check of `sciml.equivariant` (called by gpu_check_equivariant.sh; any JAX backend).

Batch 10000 (one channel), float32, L = 1..10: sciml's grid and Fourier Gaunt products and its
CG product restricted to the same (even) paths, against e3nn-jax's `tensor_product` on the same
paths and e3nn-jax's own to_s2grid/from_s2grid product, compiled then timed interleaved in one
process (`sciml/cli/_bench_equivariant.py`). The outputs are cross-checked (Fourier vs grid,
e3nn grid vs sciml grid, e3nn CG vs sciml CG).

e3nn-jax is optional (the GPU image lacks it): install its pure-Python wheel with sympy, mpmath
and attrs (`pip install --no-deps e3nn_jax-*.whl sympy-*.whl mpmath-*.whl attrs-*.whl`) or
pass `--e3nn-path DIR` (a folder on sys.path that holds them); without it the e3nn columns are
skipped and the reason is printed. No new case starts after `--budget` seconds (default 120),
so the script ends well inside 150 s; skipped degrees are listed.

Writes `equivariant_gpu.json` and `equivariant_gpu.md` into --out and prints the table.
`--smoke` runs L = 1, 2 at batch 64 (a CPU check of the script).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lmax", default="1,2,3,4,5,6,7,8,9,10")
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--budget", type=float, default=120.0, help="start no case after this")
    parser.add_argument("--e3nn-path", default=os.environ.get("SCIML_E3NN_PATH"))
    parser.add_argument("--smoke", action="store_true", help="L = 1, 2 at batch 64")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_out")))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.e3nn_path:
        sys.path.insert(0, args.e3nn_path)
    lmaxes = [1, 2] if args.smoke else [int(v) for v in args.lmax.split(",") if v]
    batch = 64 if args.smoke else args.batch

    import jax

    from sciml._core._metrics import jsonable
    from sciml.cli import _bench_equivariant as B

    e3nn_note = None
    try:
        import e3nn_jax

        e3nn_version = e3nn_jax.__version__
    except Exception as error:  # ImportError, or a missing dependency of e3nn-jax
        e3nn_version = None
        e3nn_note = f"e3nn-jax not importable ({type(error).__name__}: {error}); columns skipped"
        print(e3nn_note, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    device = jax.devices()[0]
    print(
        f"device {device.platform}: {device.device_kind}, jax {jax.__version__}, "
        f"e3nn-jax {e3nn_version}",
        flush=True,
    )

    cases, skipped = [], []
    for lmax in lmaxes:
        elapsed = time.perf_counter() - started
        if elapsed > args.budget:
            skipped.append(lmax)
            continue
        try:
            case = B.run_case(
                lmax, batch, 1, repeats=args.repeats, warmup=args.warmup, budget_s=10.0
            )
        except Exception as error:  # report and go on: one failing degree must not hide the rest
            print(f"L={lmax}: failed with {type(error).__name__}: {error}", flush=True)
            cases.append(
                {
                    "lmax": lmax,
                    "batch": batch,
                    "channels": 1,
                    "products": {},
                    "max_rel_diff": {},
                    "error": f"{type(error).__name__}: {error}",
                }
            )
            continue
        cases.append(case)
        cells = ", ".join(
            f"{n} {t['min_s'] * 1e3:.3g} ms (compile {t['compile_s']:.1f} s)"
            for n, t in case["products"].items()
        )
        print(f"L={lmax}: {cells}; max rel diff {case['max_rel_diff']}", flush=True)

    from sciml._core._metrics import environment

    good = [c for c in cases if c["products"]]
    results = {
        "suite": "equivariant-gpu",
        "environment": environment(),
        "device": f"{device.platform}: {device.device_kind}",
        "e3nn_jax": e3nn_version,
        "notes": [n for n in (e3nn_note,) if n],
        "config": {
            "lmax": lmaxes,
            "configs": [[batch, 1]],
            "dtype": "float32",
            "repeats": args.repeats,
            "warmup": args.warmup,
        },
        "cases": cases,
        "skipped_lmax": skipped,
        "slopes": B.slopes(good),
        "floors": B.check_floors(good),
        "total_s": time.perf_counter() - started,
    }
    results["config"]["configs"] = [[batch, 1]]
    table_input = dict(results, cases=good)
    table = B.format_table(table_input)
    if skipped:
        table += f"\n\nNot run (budget of {args.budget:g} s reached): L = {skipped}."
    (args.out / "equivariant_gpu.json").write_text(json.dumps(jsonable(results), indent=2))
    (args.out / "equivariant_gpu.md").write_text(table + "\n")
    print(table)
    print(f"total {results['total_s']:.0f} s; wrote {args.out}/equivariant_gpu.json and .md")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
