# ruff: noqa: E741  (l is the standard name of the degree)
"""Real spherical harmonics in e3nn's convention (y is the polar axis).

With the unit vector r = (x, y, z) = (sin β sin α, cos β, sin β cos α), the orthonormal real
spherical harmonics are

    Y_l0 = Q̄_l^0(cos β),
    Y_lm = √2 Q̄_l^|m|(cos β) sin^|m| β cos(|m| α)   (m > 0),
    Y_lm = √2 Q̄_l^|m|(cos β) sin^|m| β sin(|m| α)   (m < 0),

where Q̄_l^m = N_lm P_l^m / sin^m (no Condon–Shortley phase) is a polynomial in cos β. In Cartesian
form sin^m β cos(mα) and sin^m β sin(mα) are the real and imaginary parts of (z + i x)^m, so every
Y_lm is a polynomial in (x, y, z): this is the table of standard real harmonics with the axes
relabelled (x, y, z) -> (z, x, y), e3nn's convention.

Q̄ is computed by the normalised three-term recurrence, which is stable to high degree (no
factorials, no cancellation): the diagonal Q̄_m^m is a constant, Q̄_{m+1}^m = √(2m+3) cos β Q̄_m^m,
and Q̄_l^m = a_lm (cos β Q̄_{l-1}^m - b_lm Q̄_{l-2}^m).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._core import float_dtype_of
from ._irreps import Irreps

__all__ = ["spherical_harmonics", "MAX_DEGREE"]

# The recurrence itself is stable far beyond this; the bound only keeps tables and compile times
# reasonable and is the range the tests cover.
MAX_DEGREE = 64


def check_lmax(lmax: Any, *, name: str = "lmax") -> int:
    """Validate a static maximal degree."""
    if isinstance(lmax, bool) or not isinstance(lmax, (int, np.integer)):
        raise ValueError(f"`{name}` must be a Python int (a static degree), got {lmax!r}.")
    if lmax < 0 or lmax > MAX_DEGREE:
        raise ValueError(
            f"`{name}={lmax}` is outside the supported range 0..{MAX_DEGREE}. Use a smaller degree."
        )
    return int(lmax)


@functools.cache
def _recurrence_constants(lmax: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diagonal values Q̄_m^m and the recurrence coefficients a_lm, b_lm (float64)."""
    diag = np.zeros(lmax + 1)
    diag[0] = 1.0 / math.sqrt(4 * math.pi)
    for m in range(1, lmax + 1):
        diag[m] = diag[m - 1] * math.sqrt((2 * m + 1) / (2 * m))
    a = np.zeros((lmax + 1, lmax + 1))
    b = np.zeros((lmax + 1, lmax + 1))
    for l in range(2, lmax + 1):
        for m in range(0, l - 1):
            a[l, m] = math.sqrt((4 * l * l - 1) / (l * l - m * m))
            b[l, m] = math.sqrt(((l - 1) ** 2 - m * m) / (4 * (l - 1) ** 2 - 1))
    return diag, a, b


def _expand(v, ndim: int):
    """A 1D constant reshaped to broadcast against the last axis of a rank-`ndim` array
    (explicitly, so that strict rank promotion is respected)."""
    return v.reshape((1,) * (ndim - 1) + (-1,))


@functools.cache
def _uniform_rows(lmax: int):
    """Per-degree rows so that one formula covers every m:
    Q̄_l = A_l ⊙ (z Q̄_{l-1}) - AB_l ⊙ (r² Q̄_{l-2}) + S_l z + D_l, where A_l, AB_l vanish for
    m > l - 2, S_l holds √(2l+1) Q̄_{l-1}^{l-1} at m = l - 1 and D_l holds Q̄_l^l at m = l."""
    diag, a, b = _recurrence_constants(lmax)
    n = lmax + 1
    A = a.copy()
    AB = a * b
    S = np.zeros((n, n))
    D = np.zeros((n, n))
    for l in range(n):
        D[l, l] = diag[l]
        if l >= 1:
            S[l, l - 1] = math.sqrt(2 * l + 1) * diag[l - 1]
    return A, AB, S, D


def legendre_table(lmax: int, cos_beta, r2=None, *, xp=np):
    """Q̄_l^m(cos β) for 0 <= m <= l <= lmax, shape (..., lmax + 1, lmax + 1) indexed [l, m]
    (zero for m > l). With `r2` given, `cos_beta` is the unnormalised coordinate y and the
    result is the homogeneous version r^(l-m) Q̄_l^m(y / r).

    With xp=jax.numpy the recurrence runs as one `lax.scan` over l (compile time independent
    of lmax); with NumPy as a Python loop (tables are built once, in float64)."""
    A, AB, S, D = _uniform_rows(lmax)
    z = cos_beta[..., None]
    rr = r2[..., None] if r2 is not None else xp.ones_like(z)
    shape = cos_beta.shape + (lmax + 1,)
    if xp is np:
        rows, q1, q2 = [], np.zeros(shape), np.zeros(shape)
        for l in range(lmax + 1):
            q = A[l] * (z * q1) - AB[l] * (rr * q2) + S[l] * z + D[l]
            rows.append(q)
            q1, q2 = q, q1
        return np.stack(rows, axis=-2)
    dtype = cos_beta.dtype
    nd = len(shape)

    def step(carry, row):
        q1, q2 = carry
        a_l, ab_l, s_l, d_l = (_expand(r, nd) for r in row)
        q = a_l * (z * q1) - ab_l * (rr * q2) + s_l * z + d_l
        return (q, q1), q

    zeros = jnp.zeros(shape, dtype)
    rows = tuple(jnp.asarray(t, dtype) for t in (A, AB, S, D))
    _, qs = jax.lax.scan(step, (zeros, zeros), rows)
    return jnp.moveaxis(qs, 0, -2)


def angular_table(lmax: int, c, s, *, xp=np):
    """(C_m, S_m) = Re, Im (c + i s)^m for m = 0..lmax, as one (..., 2 lmax + 1) array indexed
    m + lmax with S_|m| at negative m and C_m at m >= 0."""
    if xp is np or lmax == 0:
        cos_parts = [xp.ones_like(c)]
        sin_parts = [xp.zeros_like(c)]
        for _ in range(lmax):
            cm, sm = cos_parts[-1], sin_parts[-1]
            cos_parts.append(c * cm - s * sm)
            sin_parts.append(c * sm + s * cm)
        return xp.stack(sin_parts[:0:-1] + cos_parts, axis=-1)

    def step(carry, _):
        cm, sm = carry
        nxt = (c * cm - s * sm, c * sm + s * cm)
        return nxt, nxt

    _, (cs, ss) = jax.lax.scan(step, (jnp.ones_like(c), jnp.zeros_like(c)), None, length=lmax)
    cs = jnp.moveaxis(cs, 0, -1)
    ss = jnp.moveaxis(ss, 0, -1)
    return jnp.concatenate([jnp.flip(ss, -1), jnp.ones_like(c)[..., None], cs], -1)


@functools.cache
def _gather_indices(ls: tuple[int, ...], lmax: int):
    """For each output component (l, m): the flat index of Q̄[l, |m|], the index of the angular
    factor (C_|m| or S_|m| in a (2 lmax + 1) vector indexed m + lmax) and the √2 factor."""
    q_idx, cs_idx, factor = [], [], []
    for l in ls:
        for m in range(-l, l + 1):
            q_idx.append(l * (lmax + 1) + abs(m))
            cs_idx.append(m + lmax)
            factor.append(1.0 if m == 0 else math.sqrt(2.0))
    return np.array(q_idx), np.array(cs_idx), np.array(factor)


def _normalization_factors(ls, normalization: str) -> np.ndarray:
    if normalization == "integral":
        per_l = {l: 1.0 for l in ls}
    elif normalization == "component":
        per_l = {l: math.sqrt(4 * math.pi) for l in ls}
    elif normalization == "norm":
        per_l = {l: math.sqrt(4 * math.pi / (2 * l + 1)) for l in ls}
    else:
        raise ValueError(
            f"`normalization` must be 'integral', 'component' or 'norm', got {normalization!r}."
        )
    return np.array([per_l[l] for l in ls for _ in range(2 * l + 1)])


def _as_ls(lmax: Any) -> tuple[int, ...]:
    if isinstance(lmax, (str, Irreps)):
        irreps = Irreps(lmax)
        for _, ir in irreps:
            if ir.p != (-1) ** ir.l:
                raise ValueError(
                    f"Spherical harmonics have parity (-1)^l; {irreps} contains {ir}. Use e.g. "
                    f"'0e+1o+2e'."
                )
        ls = tuple(ir.l for mul, ir in irreps for _ in range(mul))
    elif isinstance(lmax, (list, tuple)):
        ls = tuple(check_lmax(l, name="l") for l in lmax)
    else:
        ls = tuple(range(check_lmax(lmax) + 1))
    if not ls:
        raise ValueError("No degrees requested.")
    for l in ls:
        check_lmax(l, name="l")
    return ls


def spherical_harmonics(
    lmax: int | str | Irreps | list[int],
    vectors: Float[Array, "*batch 3"],
    *,
    normalization: str = "component",
    normalize: bool = True,
) -> Float[Array, "*batch dim"]:
    """Real spherical harmonics of 3D vectors, in e3nn-jax's convention.

    Args:
        lmax: the maximal degree (all l = 0..lmax, output dimension (lmax + 1)^2), or a list of
            degrees, or irreps such as "0e+1o+2e" (parities must be (-1)^l).
        vectors: array of shape (..., 3), components (x, y, z); y is the polar axis.
        normalization: "integral" (orthonormal on the sphere: ∫ Y_lm² dΩ = 1), "component"
            (each component has mean square 1 over the sphere: √(4π) × integral, the default) or
            "norm" (each degree has unit norm on unit vectors: √(4π/(2l+1)) × integral).
        normalize: divide the vectors by their norm first. With False the result is the
            homogeneous polynomial |r|^l Y(r/|r|).

    Returns:
        Array of shape (..., dim) with the degrees concatenated, m = -l..l within each degree.

    Raises:
        ValueError: for a last axis other than 3, non-floating input, an unknown normalisation
            or a degree outside 0..MAX_DEGREE.

    References:
        e3nn-jax `spherical_harmonics` (same convention); the normalised associated-Legendre
        recurrence (e.g. Limpanuparb & Milthorpe 2014, eqs. 10-12).
    """
    ls = _as_ls(lmax)
    vectors = jnp.asarray(vectors)
    float_dtype_of(vectors, name="vectors")
    if vectors.ndim < 1 or vectors.shape[-1] != 3:
        raise ValueError(f"`vectors` must have shape (..., 3), got {vectors.shape}.")
    _normalization_factors(ls, normalization)  # validates
    return _sh_kernel(vectors, ls, normalization, bool(normalize))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _sh_kernel(vectors, ls, normalization, normalize):
    dtype = vectors.dtype
    factors = _normalization_factors(ls, normalization)
    lm = max(ls)
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    if normalize:
        # The zero vector has no direction: every degree l > 0 is 0 there (as in e3nn-jax;
        # anything else breaks equivariance, e.g. for self-pairs of relative positions).
        # The square root is taken of a safe value so that its gradient is finite there too.
        r2 = x * x + y * y + z * z
        nonzero = r2 > 0
        r_safe = jnp.sqrt(jnp.where(nonzero, r2, jnp.ones_like(r2)))
        x, y, z = x / r_safe, y / r_safe, z / r_safe
        q = legendre_table(lm, y, xp=jnp)
    else:
        q = legendre_table(lm, y, x * x + y * y + z * z, xp=jnp)
    cs = angular_table(lm, z, x, xp=jnp)
    q_idx, cs_idx, factor = _gather_indices(ls, lm)
    q_flat = q.reshape(q.shape[:-2] + ((lm + 1) ** 2,))
    coef = jnp.asarray(factor * factors, dtype)
    out = q_flat[..., q_idx] * cs[..., cs_idx]
    out = out * _expand(coef, out.ndim)
    if normalize:
        directional = _expand(
            jnp.asarray(np.concatenate([np.full(2 * l + 1, l > 0) for l in ls])), out.ndim
        )
        out = jnp.where(directional & ~nonzero[..., None], jnp.zeros((), dtype), out)
    return out
