"""Loading the 50-digit reference tables written by `make_reference.py`, and error metrics."""

import csv
import functools
from pathlib import Path

import mpmath as mp
import numpy as np

DATA = Path(__file__).resolve().parent / "data"


@functools.cache
def _rows(name: str) -> tuple[dict[str, str], ...]:
    with open(DATA / name, newline="") as fh:
        return tuple(csv.DictReader(fh))


def values(name: str = "log_bessel_values.csv") -> dict[str, np.ndarray]:
    """The value table as float64 arrays (`name="log_bessel_band.csv"`: the band table).

    Derived columns (computed at 50 digits from the 30-digit entries, then rounded):
    `log_ive` = log I − x, `log_kve` = log K + x, `iv_ratio` = I_{v+1}/I_v and
    `kv_ratio` = K_{v+1}/K_v.
    """
    rows = _rows(name)
    out = {key: np.array([float(r[key]) for r in rows]) for key in ("v", "x")}
    out["label"] = np.array([r["label"] for r in rows])
    with mp.workdps(50):
        for key in ("log_i", "log_k", "log_i_next", "log_k_next", "wronskian"):
            out[key] = np.array([float(mp.mpf(r[key])) for r in rows])
        # x is the double that the decimal string rounds to, not the decimal itself.
        out["log_ive"] = np.array([float(mp.mpf(r["log_i"]) - mp.mpf(float(r["x"]))) for r in rows])
        out["log_kve"] = np.array([float(mp.mpf(r["log_k"]) + mp.mpf(float(r["x"]))) for r in rows])
        out["iv_ratio"] = np.array(
            [float(mp.exp(mp.mpf(r["log_i_next"]) - mp.mpf(r["log_i"]))) for r in rows]
        )
        out["kv_ratio"] = np.array(
            [float(mp.exp(mp.mpf(r["log_k_next"]) - mp.mpf(r["log_k"]))) for r in rows]
        )
    return out


def derivatives() -> dict[str, np.ndarray]:
    """The derivative table as float64 arrays."""
    rows = _rows("log_bessel_derivatives.csv")
    keys = ("v", "x", "dlogi_dx", "dlogi_dv", "dlogk_dx", "dlogk_dv")
    return {key: np.array([float(r[key]) for r in rows]) for key in keys}


def mixed_error(computed, reference) -> np.ndarray:
    """|Δ log f| / max(1, |log f|): the relative error of f itself where |log f| < 1."""
    computed = np.asarray(computed, np.float64)
    reference = np.asarray(reference, np.float64)
    return np.abs(computed - reference) / np.maximum(1.0, np.abs(reference))


# --------------------------------------------------------------------------------------------
# Evaluation in fixed-size chunks: every call of a function (or of its gradient) with the same
# dtype reuses one compiled executable, which keeps the suite's compile time bounded.

CHUNK = 1024


@functools.cache
def _gradient_fn(fn):
    import jax

    return jax.jit(jax.vmap(jax.grad(fn, argnums=(0, 1))))


def _chunked(apply, v, x, dtype, n_out):
    import jax.numpy as jnp

    v, x = np.broadcast_arrays(np.asarray(v, np.float64), np.asarray(x, np.float64))
    shape = v.shape
    v, x = v.ravel(), x.ravel()
    outs = [[] for _ in range(n_out)]
    for start in range(0, v.size, CHUNK):
        vc = np.ones(CHUNK)
        xc = np.ones(CHUNK)
        m = min(CHUNK, v.size - start)
        vc[:m], xc[:m] = v[start : start + m], x[start : start + m]
        res = apply(jnp.asarray(vc, dtype), jnp.asarray(xc, dtype))
        res = res if isinstance(res, tuple) else (res,)
        for out, r in zip(outs, res, strict=True):
            out.append(np.asarray(r)[:m])
    return [np.concatenate(o).reshape(shape) for o in outs]


def evaluate(fn, v, x, dtype=np.float64):
    """fn(v, x) elementwise, computed in chunks of CHUNK in `dtype`, returned as NumPy."""
    return _chunked(fn, v, x, dtype, 1)[0]


def gradients(fn, v, x, dtype=np.float64):
    """(∂fn/∂v, ∂fn/∂x) elementwise by jax.grad, in chunks."""
    return tuple(_chunked(_gradient_fn(fn), v, x, dtype, 2))
