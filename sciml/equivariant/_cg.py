# ruff: noqa: E741  (l is the standard name of the degree)
"""Clebsch–Gordan and Gaunt coefficients in the real basis of the spherical harmonics.

Both are computed once per (l1, l2, l3) in float64 NumPy from exact integer arithmetic and cached.

Clebsch–Gordan: the complex (SU(2), Condon–Shortley) coefficients <l1 m1 l2 m2 | l3 m3> from
Racah's formula (each squared coefficient is an exact rational), transformed to the real basis with
the unitary change of basis of the real spherical harmonics times the phase (-i)^l that makes the
result real (the choice e3nn makes), then scaled to unit Frobenius norm. This reproduces
`e3nn_jax.clebsch_gordan` including its sign.

Gaunt: G(l1 m1, l2 m2, l3 m3) = ∫ Y_l1m1 Y_l2m2 Y_l3m3 dΩ (orthonormal real harmonics). For fixed
degrees it is proportional to the CG tensor (both span the one-dimensional space of invariant
tensors):  G = g(l1, l2, l3) C,  g = √((2l1+1)(2l2+1)(2l3+1)/(4π)) |(l1 l2 l3; 0 0 0)|, and it
vanishes when l1 + l2 + l3 is odd.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from ._sh import check_lmax

__all__ = [
    "clebsch_gordan",
    "gaunt_coefficients",
    "gaunt_factor",
    "wigner_3j_000",
]


def _triangle(l1: int, l2: int, l3: int) -> bool:
    return abs(l1 - l2) <= l3 <= l1 + l2


@functools.cache
def _factorials(n: int) -> tuple[int, ...]:
    out = [1]
    for k in range(1, n + 1):
        out.append(out[-1] * k)
    return tuple(out)


def _su2_cg_squared_signed(j1: int, m1: int, j2: int, m2: int, j3: int, m3: int):
    """<j1 m1 j2 m2 | j3 m3> as (sign, numerator, denominator) of its exact square, from Racah's
    formula (integer j), in plain integer arithmetic (no fraction reduction: only the ratio is
    used, by `_sqrt_ratio`)."""
    if m3 != m1 + m2 or not _triangle(j1, j2, j3):
        return 0, 0, 1
    f = _factorials(2 * (j1 + j2 + j3) + 2)
    pre_num = (
        (2 * j3 + 1)
        * f[j1 + j2 - j3]
        * f[j1 - j2 + j3]
        * f[-j1 + j2 + j3]
        * (f[j3 + m3] * f[j3 - m3] * f[j1 - m1] * f[j1 + m1] * f[j2 - m2] * f[j2 + m2])
    )
    pre_den = f[j1 + j2 + j3 + 1]
    kmin = max(0, j2 - j3 - m1, j1 - j3 + m2)
    kmax = min(j1 + j2 - j3, j1 - m1, j2 + m2)
    # Every term's denominator divides `common` (each factorial at its largest argument over
    # the k range), so the alternating sum is one exact integer sum.
    common = (
        f[kmax]
        * f[j1 + j2 - j3 - kmin]
        * f[j1 - m1 - kmin]
        * f[j2 + m2 - kmin]
        * f[j3 - j2 + m1 + kmax]
        * f[j3 - j1 - m2 + kmax]
    )
    numerator = 0
    for k in range(kmin, kmax + 1):
        den = (
            f[k]
            * f[j1 + j2 - j3 - k]
            * f[j1 - m1 - k]
            * f[j2 + m2 - k]
            * f[j3 - j2 + m1 + k]
            * f[j3 - j1 - m2 + k]
        )
        numerator += (-1) ** k * (common // den)
    if numerator == 0:
        return 0, 0, 1
    sign = 1 if numerator > 0 else -1
    return sign, pre_num * numerator * numerator, pre_den * common * common


def _sqrt_ratio(num: int, den: int) -> float:
    """√(num / den) for large exact integers, to float64 accuracy (avoids float overflow)."""
    # scale to keep 60+ significant bits before the integer square root
    shift = max(0, 128 - (num.bit_length() - den.bit_length()))
    shift += shift % 2
    root = math.isqrt((num << shift) // den)
    return math.ldexp(float(root), -shift // 2)


@functools.cache
def _real_to_complex(l: int) -> np.ndarray:
    """Unitary Q with Y_complex = Q Y_real, rows m = -l..l (complex), columns the real basis,
    times (-i)^l (the phase that makes the real-basis CG coefficients real)."""
    q = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    s = 1 / math.sqrt(2)
    for m in range(-l, 0):
        q[l + m, l + abs(m)] = s
        q[l + m, l - abs(m)] = -1j * s
    q[l, l] = 1.0
    for m in range(1, l + 1):
        q[l + m, l + m] = (-1) ** m * s
        q[l + m, l - m] = 1j * (-1) ** m * s
    return (-1j) ** l * q


@functools.cache
def _row_entries(l: int) -> tuple[np.ndarray, np.ndarray]:
    """The (at most two) non-zero entries of each row of `_real_to_complex(l)`: columns and
    values, shape (2l + 1, 2) (a zero value pads a row with one entry)."""
    q = _real_to_complex(l)
    cols = np.zeros((2 * l + 1, 2), np.int64)
    vals = np.zeros((2 * l + 1, 2), np.complex128)
    for row in range(2 * l + 1):
        nz = np.nonzero(q[row])[0]
        cols[row, : len(nz)] = nz
        vals[row, : len(nz)] = q[row, nz]
    return cols, vals


@functools.cache
def _clebsch_gordan_np(l1: int, l2: int, l3: int) -> np.ndarray:
    c = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    if not _triangle(l1, l2, l3):
        return c
    if l1 > l2:
        # exchange symmetry of the 3j symbols (the real-basis change acts on each index alone):
        # C(l1, l2, l3)[m1, m2, m3] = (-1)^(l1 + l2 + l3) C(l2, l1, l3)[m2, m1, m3]
        swapped = (-1.0) ** (l1 + l2 + l3) * _clebsch_gordan_np(l2, l1, l3).transpose(1, 0, 2)
        swapped = np.ascontiguousarray(swapped)
        swapped.setflags(write=False)
        return swapped
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            m3 = m1 + m2
            if abs(m3) > l3:
                continue
            sign, num, den = _su2_cg_squared_signed(l1, m1, l2, m2, l3, m3)
            if sign:
                c[l1 + m1, l2 + m2, l3 + m3] = sign * _sqrt_ratio(num, den)
    # real[j, l, m] = Σ_ikn q1[i, j] q2[k, l] conj(q3[n, m]) c[i, k, n]: c has one non-zero per
    # (m1, m2) and each row of q two, so scatter the 8 products of every non-zero
    (c1, v1), (c2, v2), (c3, v3) = (_row_entries(l) for l in (l1, l2, l3))
    i, k, n = np.nonzero(c)
    w = (
        c[i, k, n][:, None, None, None]
        * v1[i][:, :, None, None]
        * v2[k][:, None, :, None]
        * np.conj(v3[n])[:, None, None, :]
    )
    index = np.broadcast_arrays(
        c1[i][:, :, None, None], c2[k][:, None, :, None], c3[n][:, None, None, :]
    )
    real = np.zeros(c.shape, np.complex128)
    np.add.at(real, tuple(index), w)
    if np.abs(real.imag).max() > 1e-10:  # pragma: no cover (a basis bug, not bad input)
        raise AssertionError("real-basis Clebsch–Gordan coefficients are not real")
    real = real.real
    real[np.abs(real) < 1e-15] = 0.0
    real /= np.linalg.norm(real)
    real.setflags(write=False)
    return real


def _check_degrees(l1, l2, l3) -> tuple[int, int, int]:
    return (check_lmax(l1, name="l1"), check_lmax(l2, name="l2"), check_lmax(l3, name="l3"))


def clebsch_gordan(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real Clebsch–Gordan tensor C[m1, m2, m3] coupling degrees l1 ⊗ l2 → l3.

    Same basis, normalisation (unit Frobenius norm) and sign as `e3nn_jax.clebsch_gordan`, so
    that sum_{m1 m2} C[m1, m2, m3] x[m1] y[m2] transforms as degree l3 when x, y transform as
    degrees l1, l2. Zero when (l1, l2, l3) violate the triangle rule.

    Args:
        l1, l2, l3: degrees (Python ints, 0..MAX_DEGREE).

    Returns:
        A read-only float64 NumPy array of shape (2l1+1, 2l2+1, 2l3+1), computed once and
        cached (exact rational arithmetic, then one rounding).

    Raises:
        ValueError: for a degree that is not an int in the supported range.
    """
    return _clebsch_gordan_np(*_check_degrees(l1, l2, l3))


@functools.cache
def wigner_3j_000(l1: int, l2: int, l3: int) -> float:
    """The Wigner 3j symbol (l1 l2 l3; 0 0 0), exact closed form (zero for odd l1 + l2 + l3)."""
    l1, l2, l3 = _check_degrees(l1, l2, l3)
    if not _triangle(l1, l2, l3) or (l1 + l2 + l3) % 2:
        return 0.0
    j = l1 + l2 + l3
    g = j // 2
    f = math.factorial
    sq = (
        Fraction(f(j - 2 * l1) * f(j - 2 * l2) * f(j - 2 * l3), f(j + 1))
        * Fraction(f(g), f(g - l1) * f(g - l2) * f(g - l3)) ** 2
    )
    return (-1) ** g * _sqrt_ratio(sq.numerator, sq.denominator)


def gaunt_factor(l1: int, l2: int, l3: int) -> float:
    """g(l1, l2, l3) = √((2l1+1)(2l2+1)(2l3+1)/(4π)) |(l1 l2 l3; 0 0 0)| with G = g C.

    This is also the Frobenius norm of the Gaunt tensor (basis independent).
    """
    l1, l2, l3 = _check_degrees(l1, l2, l3)
    return math.sqrt((2 * l1 + 1) * (2 * l2 + 1) * (2 * l3 + 1) / (4 * math.pi)) * abs(
        wigner_3j_000(l1, l2, l3)
    )


@functools.cache
def _gaunt_np(l1: int, l2: int, l3: int) -> np.ndarray:
    out = gaunt_factor(l1, l2, l3) * _clebsch_gordan_np(l1, l2, l3)
    out.setflags(write=False)
    return out


def gaunt_coefficients(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real Gaunt coefficients G[m1, m2, m3] = ∫ Y_l1m1 Y_l2m2 Y_l3m3 dΩ (orthonormal real SH).

    Computed through the exact relation G = g(l1, l2, l3) C with C = `clebsch_gordan(l1, l2,
    l3)` and g = `gaunt_factor(l1, l2, l3)` (methods note §1.2; the sign of g is + in this
    basis, which the tests check by quadrature). Zero when l1 + l2 + l3 is odd.

    Returns:
        A read-only float64 NumPy array of shape (2l1+1, 2l2+1, 2l3+1).

    Raises:
        ValueError: for a degree that is not an int in the supported range.

    References:
        Luo, Chen, Krishnapriyan, "Enabling Efficient Equivariant Operations in the Fourier Basis
        via Gaunt Tensor Products", ICLR 2024, §3.
    """
    return _gaunt_np(*_check_degrees(l1, l2, l3))
