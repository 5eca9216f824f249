#!/usr/bin/env python
"""sciml `cg` vs `jax.scipy.sparse.linalg.cg` vs SciPy `cg` on 3-D Poisson.

A thin wrapper of `sciml bench krylov` (the suite lives in `sciml/cli/_bench_krylov.py`); it
takes the same options. Examples:

    python benchmarks/bench_krylov.py                       # 32³, 64³, 128³; float32 and float64
    python benchmarks/bench_krylov.py --sizes 32,64 --dtypes float64 --out out/bench
    python benchmarks/bench_krylov.py --platform gpu --sizes 128,256 --dtypes float32
"""

import sys
from pathlib import Path

# Runs from a checkout without installing sciml.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciml.cli import main  # noqa: E402  (JAX is imported only once the options are applied)

if __name__ == "__main__":
    sys.exit(main(["bench", "krylov", *sys.argv[1:]]))
