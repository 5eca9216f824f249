#!/usr/bin/env python
"""Gaunt tensor products (sciml grid, sciml Fourier) and CG products vs e3nn-jax, L = 1..8, CPU.

Same process, float32, interleaved runs, compile time apart from run time; see
`sciml/cli/_bench_equivariant.py` for what each product computes and which floors are checked.
This script is `sciml bench equivariant` with its own defaults (20 timed rounds) and a plot.

Examples:

    python benchmarks/bench_equivariant.py                       # L = 1..8, 1000x1 and 256x16
    python benchmarks/bench_equivariant.py --lmax 1,2,3 --configs 100x1 --out out/eq
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from sciml.cli._bench_equivariant import _configs, _ints

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lmax", type=_ints, default=list(range(1, 9)))
    parser.add_argument("--configs", type=_configs, default=[(1000, 1), (256, 16)])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--platform", default=None, help="cpu, gpu, ... (default: JAX's)")
    parser.add_argument("--out", type=Path, default=None, help="write equivariant.{json,md,png}")
    args = parser.parse_args(argv)
    if args.platform:
        os.environ["JAX_PLATFORMS"] = {"gpu": "cuda"}.get(args.platform, args.platform)

    from sciml._core._metrics import jsonable
    from sciml.cli import _bench_equivariant as B

    def log(line):
        print(line, file=sys.stderr, flush=True)

    results = B.run_suite(
        lmaxes=args.lmax,
        configs=args.configs,
        repeats=args.repeats,
        warmup=args.warmup,
        budget_s=args.budget,
        seed=args.seed,
        log=log,
    )
    table = B.format_table(results)
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "equivariant.json").write_text(json.dumps(jsonable(results), indent=2))
        (args.out / "equivariant.md").write_text(table + "\n")
        B.plot(results, args.out / "equivariant.png")
        log(f"wrote {args.out}/equivariant.json, .md and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
