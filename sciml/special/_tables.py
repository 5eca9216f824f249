"""Coefficient tables of the log-Bessel algorithms, generated at import (nothing typed in).

- The Debye polynomials U_k(p) of DLMF 10.41.10 are built exactly with rational arithmetic from
  U_0 = 1 and U_{k+1} = ½p²(1 − p²)U_k′ + ⅛∫_0^p (1 − 5t²)U_k(t)dt. U_k is p^k times a
  polynomial P_k in q = p², which is what the evaluation uses, so the expansion can be written in
  powers of 1/s with s = √(v² + x²) (U_k(p)/v^k = P_k(q)/s^k) and stays finite at v = 0.
- The polynomials Q_k(q) = (k − ½)P_{k−1}(q) + 2qP′_{k−1}(q) give the derivative expansion
  through V_k − U_k = −(1 − p²)p^k Q_k(q) (DLMF 10.41.11), used for the ratios I_{v+1}/I_v and
  K_{v+1}/K_v without cancellation.
- The Taylor coefficients of 1/Γ(1 + z) come from log Γ(1 + z) = −γz + Σ_{j≥2} (−1)^j ζ(j) z^j/j
  (DLMF 5.7.3) by the power-series exponential recurrence; their float64 rounding only touches
  coefficients that are negligible on |z| ≤ ½.
- The zero z0 = 0.6627… of Debye's exponent η(z) = √(1 + z²) − asinh(1/z) (the curve I_v(x) ≈ 1
  for large v, x ≈ z0·v; Laplace's limit constant), rounded to the dtype, split into two halves
  whose products with a half-split order are exact, together with η at the rounded value — all
  computed at 50 digits with the standard library's `decimal`.
"""

import decimal
import functools
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import scipy.special


@functools.cache
def _debye_u_exact(n_terms: int) -> tuple[dict[int, Fraction], ...]:
    """U_0 … U_{n_terms−1} as {power of p: exact coefficient}."""
    polys = [{0: Fraction(1)}]
    for _ in range(n_terms - 1):
        current, nxt = polys[-1], {}
        for power, coef in current.items():
            if power > 0:
                # ½ p² (1 − p²) d/dp (coef p^power)
                half_derivative = coef * power / 2
                nxt[power + 1] = nxt.get(power + 1, 0) + half_derivative
                nxt[power + 3] = nxt.get(power + 3, 0) - half_derivative
            # ⅛ ∫_0^p (1 − 5t²) coef t^power dt
            nxt[power + 1] = nxt.get(power + 1, 0) + coef / (8 * (power + 1))
            nxt[power + 3] = nxt.get(power + 3, 0) - 5 * coef / (8 * (power + 3))
        polys.append(nxt)
    return tuple(polys)


@functools.cache
def debye_tables(n_terms: int) -> tuple[tuple[tuple[float, ...], ...], ...]:
    """Coefficients of P_k(q) and Q_k(q), k < n_terms, lowest power of q first.

    Returns:
        `(P, Q)`: `P[k]` holds the coefficients of P_k (degree k in q) and `Q[k]` those of Q_k
        (degree k − 1; `Q[0]` is empty, since V_0 = U_0).
    """
    exact_u = _debye_u_exact(n_terms)
    p_exact = []
    for k, u in enumerate(exact_u):
        coefs = [Fraction(0)] * (k + 1)
        for power, coef in u.items():
            # U_k has only the powers p^k, p^{k+2}, …, p^{3k}.
            coefs[(power - k) // 2] += coef
        p_exact.append(coefs)
    q_exact = [[]]
    for k in range(1, n_terms):
        prev = p_exact[k - 1]
        q_exact.append([(Fraction(2 * k - 1, 2) + 2 * j) * c for j, c in enumerate(prev)])
    as_float = lambda polys: tuple(tuple(float(c) for c in poly) for poly in polys)  # noqa: E731
    return as_float(p_exact), as_float(q_exact)


@functools.cache
def rgamma_taylor(n_terms: int) -> tuple[float, ...]:
    """Taylor coefficients a_k of 1/Γ(1 + z) = Σ a_k z^k, k < n_terms."""
    log_gamma = np.zeros(n_terms)
    if n_terms > 1:
        log_gamma[1] = -np.euler_gamma
    for j in range(2, n_terms):
        log_gamma[j] = (-1) ** j * scipy.special.zeta(j) / j
    # 1/Γ(1+z) = exp(g(z)) with g = −log Γ(1+z); k a_k = Σ_j j g_j a_{k−j}.
    g = -log_gamma
    coefs = np.zeros(n_terms)
    coefs[0] = 1.0
    for k in range(1, n_terms):
        coefs[k] = sum(j * g[j] * coefs[k - j] for j in range(1, k + 1)) / k
    return tuple(float(c) for c in coefs)


class EtaZero(NamedTuple):
    """The zero of η(z) = √(1 + z²) − asinh(1/z) rounded to a float dtype, and what goes with it."""

    z0: float  # the dtype's number nearest the zero of η
    z0_high: float  # z0 with the low mantissa half cleared (exact products with a half-split v)
    z0_low: float  # z0 − z0_high, exactly
    sqrt1p: float  # √(1 + z0²), rounded
    eta_at_z0: float  # η(z0) at the rounded z0 (tiny, |η| ≲ ulp), rounded


def _eta_decimal(z: decimal.Decimal) -> decimal.Decimal:
    root = (1 + z * z).sqrt()
    return root - ((1 + root) / z).ln()


@functools.cache
def eta_zero(dtype_name: str) -> EtaZero:
    """The zero of Debye's exponent η and its float splitting, for "float32" or "float64"."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        z = decimal.Decimal("0.66")
        for _ in range(60):
            # Newton on η, η′(z) = √(1 + z²)/z.
            step = _eta_decimal(z) * z / (1 + z * z).sqrt()
            z -= step
            if abs(step) < decimal.Decimal("1e-55"):
                break
        ftype = np.dtype(dtype_name).type
        z0 = float(ftype(float(z)))
        # Clear the low half of the mantissa (27 of 52 bits, 12 of 23), as the evaluation does
        # for the order.
        uint, low_bits = {"float64": (np.uint64, 27), "float32": (np.uint32, 12)}[dtype_name]
        raw = np.array([z0], dtype=ftype).view(uint)
        high = float((raw & uint(np.iinfo(uint).max ^ ((1 << low_bits) - 1))).view(ftype)[0])
        eta = _eta_decimal(decimal.Decimal(z0))
        sqrt1p = (1 + decimal.Decimal(z0) ** 2).sqrt()
    return EtaZero(
        z0=z0,
        z0_high=high,
        z0_low=float(ftype(z0 - high)),
        sqrt1p=float(ftype(float(sqrt1p))),
        eta_at_z0=float(eta),
    )
