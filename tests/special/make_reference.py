#!/usr/bin/env python
"""Generate the 50-digit log-Bessel references in `tests/special/data/` (run offline, ~minutes).

    python tests/special/make_reference.py [--processes 2]

mpmath's `besseli`/`besselk` use hypergeometric series that fail (NoConvergence) or take minutes
at large orders and arguments, so the references come from tanh-sinh quadrature of integrands
that are positive (or of one sign), each divided by its maximum before integrating — no
cancellation, no overflow at any order or argument:

- I_v(x) = (x/2)^v / (√π Γ(v + ½)) ∫_0^π e^{x cos θ} sin^{2v}θ dθ (DLMF 10.32.2), peak at
  cos θ* = (√(v² + x²) − v)/x;
- K_v(x) = ∫_0^∞ e^{−x cosh t} cosh(vt) dt (DLMF 10.32.9), peak at t* = 0 if v² ≤ x, else at the
  root of x sinh t = v tanh(vt).

The interval is split at the peak and at several multiples of the peak width on each side, so
the quadrature resolves peaks of any sharpness. Derivatives come from differentiating under the
integral sign:

- ∂/∂x log I = v/x + ⟨cos θ⟩,  ∂/∂v log I = log(x/2) − ψ(v + ½) + ⟨2 log sin θ⟩ (weights e^{g});
- ∂/∂x log K = −⟨cosh t⟩,       ∂/∂v log K = ⟨t tanh(vt)⟩ (weights e^{h});

all averages of one-signed functions. Every row is checked with the Wronskian
x(I_v K_{v+1} + I_{v+1} K_v) = 1 (evaluated at v and v + 1 with the same quadrature), and the
script refuses to write a table whose worst residual exceeds 1e-30.

`--band` writes `log_bessel_band.csv` instead (same columns): the band |log f| < 1 at large
s = √(v² + x²), where Debye's exponent nearly cancels (see `band_points`).

Output: `log_bessel_values.csv` (v, x, log I, log K, log I_{v+1}, log K_{v+1} at the exact order
v + 1, the Wronskian
residual and a label for the region the point probes) and `log_bessel_derivatives.csv`
(v, x and the four partial derivatives), every number to 30 significant digits.
"""

import argparse
import csv
import math
import multiprocessing
import sys
import time
from pathlib import Path

import mpmath as mp

DPS = 50
WRONSKIAN_BOUND = mp.mpf("1e-30")
DATA = Path(__file__).resolve().parent / "data"


# --------------------------------------------------------------------------------------------
# Quadrature


# Multiples of the peak width at which the interval is split; a row whose Wronskian check fails
# is recomputed with the finer set and a higher quadrature degree.
_SPLITS = ((1, 3, 8, 20, 50), (0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 35, 50, 100, 200))
_LEVEL = {"splits": _SPLITS[0], "degree": None}


def _quad(f, points):
    if _LEVEL["degree"] is None:
        return mp.quad(f, points)
    return mp.quad(f, points, maxdegree=_LEVEL["degree"])


def _split_points(peak, width, lo, hi):
    points = {lo, hi}
    if lo < peak < hi:
        points.add(peak)
    for k in _LEVEL["splits"]:
        for p in (peak - k * width, peak + k * width):
            if lo < p < hi:
                points.add(p)
    return sorted(points)


def _i_parts(v, x, derivatives=True):
    """(log I_v(x), ⟨cos θ⟩, ⟨2 log sin θ⟩) at the working precision."""
    v, x = mp.mpf(v), mp.mpf(x)
    theta_star = mp.acos((mp.sqrt(v * v + x * x) - v) / x)

    def g(theta):
        s = mp.sin(theta)
        if s == 0:
            return mp.ninf if v > 0 else x * mp.cos(theta)
        return x * mp.cos(theta) + 2 * v * mp.log(s)

    g_star = g(theta_star)
    if v == 0:
        curvature = x
    else:
        curvature = x * mp.cos(theta_star) + 2 * v / mp.sin(theta_star) ** 2
    width = 1 / mp.sqrt(curvature) if curvature > 0 else mp.mpf(1)
    points = _split_points(theta_star, width, mp.mpf(0), mp.pi)

    def weight(theta):
        return mp.exp(g(theta) - g_star)

    z = _quad(weight, points)
    mean_cos = mean_log_sin = None
    if derivatives:
        mean_cos = _quad(lambda t: weight(t) * mp.cos(t), points) / z
        mean_log_sin = _quad(lambda t: weight(t) * 2 * mp.log(mp.sin(t)), points) / z
    log_i = v * mp.log(x / 2) - mp.log(mp.sqrt(mp.pi)) - mp.loggamma(v + 0.5) + g_star + mp.log(z)
    return log_i, mean_cos, mean_log_sin


def _log_cosh(y):
    y = abs(y)
    return y + mp.log1p(mp.exp(-2 * y)) - mp.log(2)


def _k_parts(v, x, derivatives=True):
    """(log K_v(x), ⟨cosh t⟩, ⟨t tanh(vt)⟩) at the working precision."""
    v, x = mp.mpf(v), mp.mpf(x)
    if v * v <= x:
        t_star = mp.mpf(0)
    else:
        t_star = mp.findroot(lambda t: x * mp.sinh(t) - v * mp.tanh(v * t), mp.asinh(v / x))

    def h(t):
        return -x * mp.cosh(t) + _log_cosh(v * t)

    h_star = h(t_star)
    curvature = x * mp.cosh(t_star) - v * v / mp.cosh(v * t_star) ** 2
    width = 1 / mp.sqrt(curvature) if curvature > 0 else 1 / mp.sqrt(x + v * v + 1)
    # The integrand has dropped by e^{-200} once x cosh t − v t exceeds the peak value by 200.
    upper = t_star + 1
    while h(upper) - h_star > -250:
        upper = 2 * upper
    points = _split_points(t_star, width, mp.mpf(0), upper)

    def weight(t):
        return mp.exp(h(t) - h_star)

    z = _quad(weight, points)
    mean_cosh = mean_t_tanh = None
    if derivatives:
        mean_cosh = _quad(lambda t: weight(t) * mp.cosh(t), points) / z
        mean_t_tanh = _quad(lambda t: weight(t) * t * mp.tanh(v * t), points) / z
    return h_star + mp.log(z), mean_cosh, mean_t_tanh


def reference_row(args):
    """All reference numbers of one (v, x, label), refined until the Wronskian check holds."""
    for splits, degree in ((_SPLITS[0], None), (_SPLITS[1], 10), (_SPLITS[1], 14)):
        _LEVEL.update(splits=splits, degree=degree)
        row = _reference_row(args)
        if abs(row["wronskian"]) <= WRONSKIAN_BOUND:
            break
    return row


def _reference_row(args):
    v, x, label = args
    derivatives = label == "derivative"
    with mp.workdps(DPS):
        started = time.perf_counter()
        log_i, mean_cos, mean_log_sin = _i_parts(v, x, derivatives)
        log_k, mean_cosh, mean_t_tanh = _k_parts(v, x, derivatives)
        log_i1, _, _ = _i_parts(mp.mpf(v) + 1, x, False)
        log_k1, _, _ = _k_parts(mp.mpf(v) + 1, x, False)
        xm, vm = mp.mpf(x), mp.mpf(v)
        wronskian = xm * (mp.exp(log_i + log_k1) + mp.exp(log_i1 + log_k)) - 1
        row = {
            "v": v,
            "x": x,
            "label": label,
            "log_i": log_i,
            "log_k": log_k,
            "log_i_next": log_i1,
            "log_k_next": log_k1,
            "wronskian": wronskian,
        }
        if derivatives:
            row["dlogi_dx"] = vm / xm + mean_cos
            row["dlogi_dv"] = mp.log(xm / 2) - mp.digamma(vm + 0.5) + mean_log_sin
            row["dlogk_dx"] = -mean_cosh
            row["dlogk_dv"] = mean_t_tanh
        row["seconds"] = time.perf_counter() - started
    return row


# --------------------------------------------------------------------------------------------
# The points


def _f(a):
    """A Python float, exactly representable, so the tables hold the inputs the tests use."""
    return float(a)


def reference_points():
    """(v, x, label) triples: a grid, region boundaries, random points, vMF orders."""
    pts = []
    orders = [0, 0.25, 0.5, 1, 2.5, 5, 12.5, 20, 50, 100, 300, 1e3, 3e3, 1e4, 3e4, 1e5]
    args = [1e-6, 1e-4, 1e-2, 0.1, 0.5, 1, 2, 5, 10, 20, 50, 100, 1e3, 1e4, 1e5, 1e6]
    pts += [(_f(v), _f(x), "grid") for v in orders for x in args]

    # sciml's own thresholds: the Debye circle s = 20 (both sides, several angles), Temme's
    # x = 2 switch, the μ = v − round(v) flip at half-integers, the asinh form switch at v = x.
    eps = 1e-9
    for angle in (0.0, 0.05, 0.2, 0.4, 0.6, 0.785398, 1.0, 1.3, 1.5, 1.5707):
        for r in (20 * (1 - eps), 20 * (1 + eps), 19.5, 20.5):
            v, x = r * math.sin(angle), r * math.cos(angle)
            if x > 0:
                pts.append((_f(v), _f(x), "debye-threshold"))
    for v in (0, 0.3, 0.5, 1.7, 3.719047211852386, 7.5, 12.2, 19.4):
        for x in (2 * (1 - eps), 2 * (1 + eps), 2.01, 2.5, 3.0):
            pts.append((_f(v), _f(x), "temme-switch"))
    for n in (0, 1, 3, 9, 18):
        for x in (1e-6, 0.3, 1.9, 2.1, 9.0):
            for dv in (-eps, eps):
                pts.append((_f(n + 0.5 + dv), _f(x), "half-integer-order"))
    for v in (25, 80, 1000, 5e4):
        for f in (1 - eps, 1 + eps):
            pts.append((_f(v), _f(v * f), "v-equals-x"))

    # The paper's region table (Plesner et al., as in the note §1.3), both sides of each edge.
    paper = []
    for x in (30, 59.6925, 84.4153, 35.9074, 19.6931, 274.2377, 1400):
        for v in (0.3, 0.46, 0.6, 0.7, 3.05, 15.3919):
            paper += [(v, x * (1 - eps)), (v, x * (1 + eps)), (v * (1 + eps), x)]
    for v in (12.6964, 20.1534, 56.9971, 163.6993):
        for x in (1e-3, 1, 10, 100):
            paper += [(v * (1 - eps), x), (v * (1 + eps), x)]
    for x in (100, 1000, 1e4):
        v_edge = math.exp(0.5113 * math.log(x) + 0.7939)
        v_mu3 = math.exp(0.6229 * math.log(x) - 3.2318)
        paper += [(v_edge * (1 - eps), x), (v_edge * (1 + eps), x), (v_mu3, x)]
    paper += [(75.6, 1000.0), (60.0, 700.0), (70.0, 900.0)]
    pts += [(_f(v), _f(x), "paper-threshold") for v, x in paper]

    # x/v transitions at large orders, vMF orders v = d/2 − 1 at κ ∈ {d/4, d, 4d}, spot values.
    for v in (30, 300, 3000, 3e4, 1e5):
        for f in (1e-3, 0.1, 0.5, 0.9, 1.1, 2, 10, 100):
            pts.append((_f(v), _f(v * f), "x-over-v"))
    for d in (3, 16, 128, 2048, 8192, 32768):
        for f in (0.25, 1, 4):
            pts.append((_f(d / 2 - 1), _f(d * f), "vmf"))
    pts += [
        (0.0, 1e-6, "spot"),
        (1000.0, 1000.0, "spot"),
        (12.5, 10.0, "spot"),
        (0.5, 1e5, "spot"),
        (1e4, 1e-6, "spot"),
        (1e4, 1e5, "spot"),
        (1e5, 1e5, "spot"),
    ]

    # Random log-uniform points: small orders, wide orders, and the s < 20 disc densely.
    import numpy as np

    rng = np.random.default_rng(20240913)
    for v, x in zip(rng.uniform(0, 25, 60), 10 ** rng.uniform(-6, 1.6, 60), strict=True):
        pts.append((_f(v), _f(x), "random-small"))
    for v, x in zip(10 ** rng.uniform(-2, 5, 60), 10 ** rng.uniform(-6, 6, 60), strict=True):
        pts.append((_f(v), _f(x), "random-wide"))
    radii, angles = 20 * np.sqrt(rng.uniform(0, 1, 60)), rng.uniform(0, np.pi / 2, 60)
    for r, angle in zip(radii, angles, strict=True):
        v, x = r * np.sin(angle), r * np.cos(angle)
        if x > 1e-6:
            pts.append((_f(v), _f(x), "random-disc"))
    seen, unique = set(), []
    for p in pts:
        if (p[0], p[1]) not in seen:
            seen.add((p[0], p[1]))
            unique.append(p)
    return unique


def _debye_leading(v, x, kind):
    """The leading Debye term of log I_v(x) or log K_v(x) (float64; only to place points)."""
    s = math.hypot(v, x)
    v_eta = s - v * math.asinh(v / x)
    if kind == "i":
        return v_eta - 0.5 * math.log(2 * math.pi * s)
    return -v_eta + 0.5 * math.log(math.pi / (2 * s))


def band_points():
    """(v, x, label): the band |log f| < 1 at large s = √(v² + x²), where f = I_v(x) or K_v(x).

    There the exponent of the Debye expansion nearly cancels (x ≈ 0.6627·v for large v), so the
    absolute error of log f is the relative error of f. Points on the curves log f ≈ c for
    c ∈ {−0.9, −0.2, 0.4} (placed with the leading Debye term, so |log f| < 1 but not exactly c)
    at orders 15 … 1e5, plus random points with x/v within ±0.03 of the zero of η.
    """
    import numpy as np
    from scipy.optimize import brentq

    pts = []
    for v in np.geomspace(15, 1e5, 20):
        v = float(v)
        for kind in ("i", "k"):
            for c in (-0.9, -0.2, 0.4):
                x = brentq(
                    lambda x, v=v, kind=kind, c=c: _debye_leading(v, x, kind) - c,
                    0.3 * v,
                    1.2 * v,
                    xtol=1e-14,
                )
                pts.append((_f(v), _f(x), f"band-{kind}"))
    rng = np.random.default_rng(20261126)
    z0 = 0.6627434193491816
    for v, z in zip(
        10 ** rng.uniform(1, 5, 40), rng.uniform(z0 - 0.03, z0 + 0.03, 40), strict=True
    ):
        pts.append((_f(v), _f(v * z), "band-random"))
    pts += [(389.41226369247846, 260.12290320552074, "band-random")]
    return pts


def derivative_points():
    """A subset for the derivative table."""
    pts = []
    for v in (0, 0.5, 1.3, 4.7, 12.5, 19.9, 20.1, 60, 1e3, 1e4):
        for x in (1e-6, 0.01, 0.7, 1.99, 2.01, 7.5, 19.9, 20.1, 150, 1e4):
            pts.append((float(v), float(x), "derivative"))
    return pts


# --------------------------------------------------------------------------------------------


def _fmt(value):
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    return mp.nstr(value, 30, min_fixed=-5, max_fixed=5)


def _write(path, rows, columns):
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_fmt(row[c]) for c in columns])
    tmp.replace(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="only the first N points")
    parser.add_argument(
        "--band", action="store_true", help="write only the band table (log_bessel_band.csv)"
    )
    args = parser.parse_args(argv)
    values = band_points() if args.band else reference_points()
    derivs = [] if args.band else derivative_points()
    if args.limit:
        values, derivs = values[: args.limit], derivs[: args.limit]
    jobs = values + derivs
    started = time.perf_counter()
    with multiprocessing.Pool(args.processes) as pool:
        rows = []
        for i, row in enumerate(pool.imap(reference_row, jobs, chunksize=4)):
            rows.append(row)
            if (i + 1) % 50 == 0:
                print(f"{i + 1}/{len(jobs)} in {time.perf_counter() - started:.0f} s", flush=True)
    worst = max(abs(r["wronskian"]) for r in rows)
    print(f"{len(rows)} rows in {time.perf_counter() - started:.0f} s; worst Wronskian {worst}")
    failed = [r for r in rows if abs(r["wronskian"]) > WRONSKIAN_BOUND]
    for r in failed:
        print(f"  Wronskian check failed at v={r['v']!r}, x={r['x']!r}: {r['wronskian']}")
    if failed:
        print("not writing the tables.", file=sys.stderr)
        return 1
    value_rows = rows[: len(values)]
    deriv_rows = rows[len(values) :]
    if args.band:
        columns = ["v", "x", "label", "log_i", "log_k", "log_i_next", "log_k_next", "wronskian"]
        _write(DATA / "log_bessel_band.csv", value_rows, columns)
        return 0
    _write(
        DATA / "log_bessel_values.csv",
        value_rows,
        ["v", "x", "label", "log_i", "log_k", "log_i_next", "log_k_next", "wronskian"],
    )
    _write(
        DATA / "log_bessel_derivatives.csv",
        deriv_rows,
        ["v", "x", "dlogi_dx", "dlogi_dv", "dlogk_dx", "dlogk_dv"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
