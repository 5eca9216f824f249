# ruff: noqa: E741  (l is the standard name of the degree)
"""Signals on a spherical grid: Gauss–Legendre (or SOFT) in β, uniform in α (e3nn-jax's grid).

Grid points are r = (sin β sin α, cos β, sin β cos α) with cos β_j the Gauss–Legendre nodes in
ascending order (β from near π to near 0) and α_k = 2πk / res_alpha, exactly e3nn-jax's layout of
`SphericalSignal.grid_values` (shape (..., res_beta, res_alpha)).

The transforms are separable: a Legendre transform in β (one matrix product per m block) and a
Fourier transform in α (a small dense DFT matrix product, or a real FFT with ``fft=True``).
Exactness: a band-limited signal of degree L is sampled exactly; `from_s2grid` recovers degree
<= lout exactly from a signal of degree <= L when res_beta >= ⌈(L + lout + 1)/2⌉ (Gauss–Legendre)
and res_alpha >= L + lout + 1. A product of two signals of degrees L1, L2 has degree L1 + L2, hence
`s2grid_resolution`.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._core import float_dtype_of
from ._sh import check_lmax, legendre_table

__all__ = ["from_s2grid", "s2grid", "s2grid_resolution", "to_s2grid"]


def s2grid_resolution(l1: int, l2: int = 0, lout: int | None = None) -> tuple[int, int]:
    """Minimal exact Gauss–Legendre grid for projecting a product of degree l1 × l2 signals
    onto degrees <= lout.

    The integrand Y_l1 Y_l2 Y_lout has degree <= l1 + l2 + lout in cos β and frequency
    <= l1 + l2 + lout in α, so res_beta = ⌈(l1 + l2 + lout + 1)/2⌉ Gauss–Legendre nodes and
    res_alpha >= l1 + l2 + lout + 1 uniform points integrate it exactly (methods note §1.4).
    res_alpha is rounded up to the next odd number so that the grid also serves ``fft=True``.

    Args:
        l1, l2: degrees of the two factors (use l2=0 for a single signal).
        lout: the largest output degree (default l1 + l2).

    Returns:
        (res_beta, res_alpha).
    """
    l1 = check_lmax(l1, name="l1")
    l2 = check_lmax(l2, name="l2")
    lout = l1 + l2 if lout is None else check_lmax(lout, name="lout")
    total = l1 + l2 + lout
    res_beta = (total + 2) // 2  # ceil((total + 1) / 2)
    res_alpha = total + 1
    if res_alpha % 2 == 0:
        res_alpha += 1
    return res_beta, res_alpha


def _soft_weights(res_beta: int) -> np.ndarray:
    j = np.arange(res_beta)
    k = np.arange(res_beta // 2)
    terms = np.sin((2 * j[:, None] + 1) * (2 * k[None] + 1) * np.pi / (2 * res_beta)) / (2 * k + 1)
    return (4.0 / res_beta) * np.sin(np.pi * (2 * j + 1) / (2 * res_beta)) * terms.sum(1)


@functools.cache
def _beta_nodes(res_beta: int, quadrature: str) -> tuple[np.ndarray, np.ndarray]:
    """cos β nodes (ascending) and weights summing to 1."""
    if quadrature == "gausslegendre":
        y, w = np.polynomial.legendre.leggauss(res_beta)
    elif quadrature == "soft":
        if res_beta % 2:
            raise ValueError(f"The SOFT quadrature needs an even res_beta, got {res_beta}.")
        y = -np.cos((np.arange(res_beta) + 0.5) / res_beta * np.pi)
        w = _soft_weights(res_beta)
    else:
        raise ValueError(f"`quadrature` must be 'gausslegendre' or 'soft', got {quadrature!r}.")
    return y, w / 2.0


def s2grid(res_beta: int, res_alpha: int, *, quadrature: str = "gausslegendre"):
    """The grid: (vectors of shape (res_beta, res_alpha, 3), quadrature weights in β of shape
    (res_beta,) summing to 1). ∫ f dΩ ≈ 4π Σ_j w_j mean_k f(j, k)."""
    y, w = _beta_nodes(_check_res(res_beta, "res_beta"), quadrature)
    res_alpha = _check_res(res_alpha, "res_alpha")
    alpha = 2 * np.pi * np.arange(res_alpha) / res_alpha
    s = np.sqrt(1 - y**2)
    vectors = np.stack(
        [
            s[:, None] * np.sin(alpha),
            np.broadcast_to(y[:, None], (res_beta, res_alpha)),
            s[:, None] * np.cos(alpha),
        ],
        -1,
    )
    return vectors, w


def _check_res(res, name):
    if isinstance(res, bool) or not isinstance(res, (int, np.integer)) or res < 1:
        raise ValueError(f"`{name}` must be a positive Python int, got {res!r}.")
    return int(res)


def _degree_factors(lmax: int, normalization: str, direction: str, lmax_in: int | None):
    """Per-degree factor n_l of the signal f = Σ n_l c_lm Y_lm (orthonormal Y) for `to`, and
    its inverse for `from` (e3nn-jax's three conventions)."""
    ls = np.arange(lmax + 1)
    four_pi = math.sqrt(4 * math.pi)
    if normalization == "integral":
        n = np.full(lmax + 1, four_pi)
    elif normalization == "component":
        n = four_pi / (np.sqrt(2 * ls + 1) * math.sqrt(lmax + 1))
    elif normalization == "norm":
        lm = lmax if lmax_in is None else lmax_in
        n = np.full(lmax + 1, four_pi / math.sqrt(lm + 1))
    else:
        raise ValueError(
            f"`normalization` must be 'integral', 'component' or 'norm', got {normalization!r}."
        )
    return n if direction == "to" else 1.0 / n


@functools.cache
def _beta_table(lmax: int, res_beta: int, quadrature: str) -> np.ndarray:
    """P[j, l, m] = Q̄_l^m(cos β_j) sin^m β_j (float64), m >= 0."""
    y, _ = _beta_nodes(res_beta, quadrature)
    q = legendre_table(lmax, y)  # (res_beta, l, m)
    s = np.sqrt(np.clip(1 - y**2, 0, None))
    return q * s[:, None, None] ** np.arange(lmax + 1)[None, None, :]


@functools.cache
def _alpha_table(lmax: int, res_alpha: int) -> np.ndarray:
    """Φ[m + lmax, k] = cos(m α_k) (m >= 0) or sin(|m| α_k) (m < 0)."""
    alpha = 2 * np.pi * np.arange(res_alpha) / res_alpha
    m = np.arange(-lmax, lmax + 1)[:, None]
    return np.where(m >= 0, np.cos(m * alpha), np.sin(-m * alpha))


@functools.cache
def synthesis_matrix(
    lmax: int, res_beta: int, quadrature: str, normalization: str = "integral"
) -> np.ndarray:
    """A[(l, m), j, m + lmax]: coefficients (flat l, m) -> per-β Fourier components in α."""
    P = _beta_table(lmax, res_beta, quadrature)
    n = _degree_factors(lmax, normalization, "to", None)
    A = np.zeros(((lmax + 1) ** 2, res_beta, 2 * lmax + 1))
    i = 0
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            fac = 1.0 if m == 0 else math.sqrt(2.0)
            A[i, :, m + lmax] = n[l] * fac * P[:, l, abs(m)]
            i += 1
    return A


@functools.cache
def analysis_blocks(
    lmax: int, res_beta: int, quadrature: str, normalization: str, lmax_in: int | None
) -> np.ndarray:
    """B[m + lmax, j, l]: per-β α-Fourier components -> coefficient (l, m) (zero for l < |m|),
    including the quadrature weight w_j and the factor 4π of ∫ dΩ."""
    P = _beta_table(lmax, res_beta, quadrature)
    _, w = _beta_nodes(res_beta, quadrature)
    n = _degree_factors(lmax, normalization, "from", lmax_in)
    B = np.zeros((2 * lmax + 1, res_beta, lmax + 1))
    for m in range(-lmax, lmax + 1):
        fac = 1.0 if m == 0 else math.sqrt(2.0)
        for l in range(abs(m), lmax + 1):
            B[m + lmax, :, l] = 4 * math.pi * n[l] * fac * w * P[:, l, abs(m)]
    return B


@functools.cache
def flat_index(lmax: int) -> np.ndarray:
    """Index into a flattened (2 lmax + 1, lmax + 1) [m, l] array for each flat (l, m)."""
    return np.array(
        [(m + lmax) * (lmax + 1) + l for l in range(lmax + 1) for m in range(-l, l + 1)]
    )


def check_lmax_of(x, lmax: int, name: str) -> None:
    if x.ndim < 1 or x.shape[-1] != (lmax + 1) ** 2:
        raise ValueError(
            f"`{name}` must have (lmax + 1)^2 = {(lmax + 1) ** 2} components on its last axis "
            f"(all degrees 0..{lmax}), got shape {x.shape}."
        )


def infer_lmax(x, name: str) -> int:
    d = x.shape[-1] if x.ndim else 0
    lmax = math.isqrt(d) - 1
    if d == 0 or (lmax + 1) ** 2 != d:
        raise ValueError(
            f"`{name}` must hold all degrees 0..lmax on its last axis ((lmax + 1)^2 components), "
            f"got {d} components."
        )
    return check_lmax(lmax)


def _alpha_synthesis(b, lmax: int, res_alpha: int, fft: bool):
    """(..., res_beta, 2 lmax + 1) α-Fourier components -> (..., res_beta, res_alpha)."""
    dtype = b.dtype
    if not fft:
        return b @ jnp.asarray(_alpha_table(lmax, res_alpha), dtype)
    if res_alpha % 2 == 0:
        raise ValueError(
            f"`res_alpha` must be odd when fft=True (the real FFT then has no Nyquist term), got "
            f"{res_alpha}. Use an odd res_alpha (s2grid_resolution returns one) or fft=False."
        )
    half = res_alpha // 2
    cos_part = b[..., lmax:]  # m = 0..lmax
    sin_part = jnp.flip(b[..., :lmax], -1)  # |m| = 1..lmax
    sin_part = jnp.concatenate([jnp.zeros_like(cos_part[..., :1]), sin_part], -1)
    spec = jax.lax.complex(cos_part, -sin_part) * (res_alpha / 2)
    spec = spec.at[..., 0].multiply(2)
    pad = half + 1 - (lmax + 1)
    spec = jnp.concatenate([spec, jnp.zeros(spec.shape[:-1] + (pad,), spec.dtype)], -1)
    return jnp.fft.irfft(spec, res_alpha, axis=-1).astype(dtype)


def _alpha_analysis(f, lmax: int, fft: bool):
    """(..., res_beta, res_alpha) -> (..., res_beta, 2 lmax + 1): mean over α of f Φ_m."""
    res_alpha = f.shape[-1]
    dtype = f.dtype
    if not fft:
        return f @ jnp.asarray(_alpha_table(lmax, res_alpha).T / res_alpha, dtype)
    if res_alpha % 2 == 0:
        raise ValueError(
            f"`res_alpha` must be odd when fft=True, got {res_alpha}. Use an odd res_alpha or "
            f"fft=False."
        )
    spec = jnp.fft.rfft(f, axis=-1)[..., : lmax + 1] / res_alpha
    cos_part = jnp.real(spec)
    sin_part = -jnp.imag(spec[..., 1:])
    return jnp.concatenate([jnp.flip(sin_part, -1), cos_part], -1).astype(dtype)


@functools.partial(
    jax.jit, static_argnames=("res_beta", "res_alpha", "quadrature", "normalization", "fft")
)
def to_s2grid(
    coeffs: Float[Array, "*batch dim"],
    *,
    res_beta: int,
    res_alpha: int,
    quadrature: str = "gausslegendre",
    normalization: str = "integral",
    fft: bool = False,
) -> Float[Array, "*batch res_beta res_alpha"]:
    """Evaluate f = Σ_lm n_l c_lm Y_lm on the spherical grid (e3nn-jax's `to_s2grid`).

    Args:
        coeffs: array (..., (lmax + 1)^2), all degrees 0..lmax (the parity labels do not
            change the values).
        res_beta, res_alpha: grid size; res_alpha must be >= 2 lmax + 1 and odd when fft=True.
        quadrature: "gausslegendre" (default) or "soft".
        normalization: e3nn-jax's "integral" (n_l = √(4π): the l = 0 coefficient is the mean of f
            times √(4π)), "component" or "norm".
        fft: α synthesis by a real FFT instead of a dense DFT matrix product.

    Returns:
        Array (..., res_beta, res_alpha).

    Raises:
        ValueError: for a last axis that is not a square, res_alpha < 2 lmax + 1, or an even
            res_alpha with fft=True.
    """
    coeffs = jnp.asarray(coeffs)
    dtype = float_dtype_of(coeffs, name="coeffs")
    lmax = infer_lmax(coeffs, "coeffs")
    res_beta = _check_res(res_beta, "res_beta")
    res_alpha = _check_res(res_alpha, "res_alpha")
    if res_alpha < 2 * lmax + 1:
        raise ValueError(
            f"`res_alpha={res_alpha}` cannot represent degree {lmax}; use res_alpha >= "
            f"{2 * lmax + 1}."
        )
    A = synthesis_matrix(lmax, res_beta, quadrature, normalization)
    b = coeffs @ jnp.asarray(A.reshape(A.shape[0], -1), dtype)
    b = b.reshape(coeffs.shape[:-1] + (res_beta, 2 * lmax + 1))
    return _alpha_synthesis(b, lmax, res_alpha, fft)


@functools.partial(
    jax.jit, static_argnames=("lmax", "quadrature", "normalization", "fft", "lmax_in")
)
def from_s2grid(
    signal: Float[Array, "*batch res_beta res_alpha"],
    *,
    lmax: int,
    quadrature: str = "gausslegendre",
    normalization: str = "integral",
    fft: bool = False,
    lmax_in: int | None = None,
) -> Float[Array, "*batch dim"]:
    """Project a grid signal on the spherical harmonics of degree 0..lmax (inverse of
    `to_s2grid` for band-limited signals; e3nn-jax's `from_s2grid`).

    Args:
        signal: array (..., res_beta, res_alpha).
        lmax: largest output degree (static int).
        quadrature, normalization, fft: as in `to_s2grid`.
        lmax_in: for normalization="norm" only: the lmax the signal was made from (default lmax).

    Returns:
        Array (..., (lmax + 1)^2).

    Raises:
        ValueError: for res_alpha < 2 lmax + 1 or an even res_alpha with fft=True.
    """
    signal = jnp.asarray(signal)
    float_dtype_of(signal, name="signal")
    lmax = check_lmax(lmax)
    if signal.ndim < 2:
        raise ValueError(
            f"`signal` must have shape (..., res_beta, res_alpha), got {signal.shape}."
        )
    res_beta, res_alpha = signal.shape[-2:]
    if res_alpha < 2 * lmax + 1:
        raise ValueError(
            f"res_alpha={res_alpha} cannot resolve degree {lmax}; use res_alpha >= {2 * lmax + 1}."
        )
    g = _alpha_analysis(signal, lmax, fft)
    return _beta_analysis(g, lmax, res_beta, quadrature, normalization, lmax_in)


def _beta_analysis(g, lmax, res_beta, quadrature, normalization="integral", lmax_in=None):
    """(..., res_beta, 2 lmax + 1) -> (..., (lmax + 1)^2), one small product per m."""
    B = analysis_blocks(lmax, res_beta, quadrature, normalization, lmax_in)
    c = jnp.einsum("...jm,mjl->...ml", g, jnp.asarray(B, g.dtype))
    c = c.reshape(c.shape[:-2] + (-1,))
    return c[..., flat_index(lmax)]
