# ruff: noqa: E741  (l is the standard name of the degree)
"""Wigner D matrices of O(3) in the real spherical-harmonic basis, and rotation helpers.

D_l(R) is defined by Y_l(R r) = D_l(R) Y_l(r) (real orthonormal harmonics of `spherical_harmonics`)
and computed exactly as the projection D_l(R)[m, m'] = ∫ Y_lm(R r) Y_lm'(r) dΩ on a Gauss–Legendre
× uniform grid that integrates degree-2l polynomials exactly ((l + 1) × (2l + 1) points). This works
for every R in O(3): for an improper R it gives the natural-parity matrix (-1)^l D_l(-R). For an
irrep (l, p) the representation is D_l(det(R) R) p^k with k = 1 for improper R (e3nn's convention).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._core import check_dtype, float_dtype_of
from ._irreps import Irreps
from ._sh import check_lmax, spherical_harmonics

__all__ = [
    "angles_to_matrix",
    "irreps_D",
    "random_rotation",
    "wigner_D",
    "wigner_D_from_angles",
]


@functools.cache
def _projection_grid(l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid points (n, 3), weights (n,) summing to 4π, and Y_l at the points (n, 2l + 1)."""
    y, w = np.polynomial.legendre.leggauss(l + 1)
    n_alpha = 2 * l + 1
    alpha = 2 * np.pi * np.arange(n_alpha) / n_alpha
    s = np.sqrt(1 - y**2)
    points = np.stack(
        [
            s[:, None] * np.sin(alpha)[None],
            np.broadcast_to(y[:, None], (l + 1, n_alpha)),
            s[:, None] * np.cos(alpha)[None],
        ],
        axis=-1,
    ).reshape(-1, 3)
    weights = np.repeat(w * (2 * np.pi / n_alpha), n_alpha)
    ylm = _sh_float64(l, points)
    return points, weights, ylm


def _sh_float64(l: int, points: np.ndarray) -> np.ndarray:
    """Y_l at fixed points in float64 NumPy (independent of JAX's x64 flag)."""
    from ._sh import _gather_indices, angular_table, legendre_table

    q = legendre_table(l, points[:, 1])
    cs = angular_table(l, points[:, 2], points[:, 0])
    q_idx, cs_idx, factor = _gather_indices((l,), l)
    return q.reshape(len(points), -1)[:, q_idx] * cs[:, cs_idx] * factor


def _check_matrix(R) -> tuple[Array, np.dtype]:
    R = jnp.asarray(R)
    dtype = float_dtype_of(R, name="R")
    if R.ndim < 2 or R.shape[-2:] != (3, 3):
        raise ValueError(f"`R` must have shape (..., 3, 3), got {R.shape}.")
    return R, dtype


def wigner_D(
    l: int, R: Float[Array, "*batch 3 3"], *, p: int | None = None
) -> Float[Array, "*batch d d"]:
    """Wigner D matrix of degree l for rotation matrices R (proper or improper).

    Args:
        l: the degree (static int).
        R: array of shape (..., 3, 3), orthogonal matrices.
        p: the parity of the irrep (l, p). Default: the natural parity (-1)^l, so that
            ``spherical_harmonics([l], R @ r) == wigner_D(l, R) @ spherical_harmonics([l], r)``
            for every R in O(3). With p given, D(R) = D_l(det(R) R) p^k, k = 1 if det R < 0
            (e3nn's `Irrep(l, p).D_from_matrix`).

    Returns:
        Array of shape (..., 2l + 1, 2l + 1) in the dtype of R.

    Raises:
        ValueError: for a bad shape, non-floating R, or a degree out of range.
    """
    l = check_lmax(l, name="l")
    R, dtype = _check_matrix(R)
    if p is not None and p not in (1, -1):
        raise ValueError(f"`p` must be ±1 or None, got {p!r}.")
    return _wigner_kernel(R, l, p)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _wigner_kernel(R, l, p):
    dtype = R.dtype
    points, weights, ylm = _projection_grid(l)
    rotated = jnp.einsum("...ij,nj->...ni", R, jnp.asarray(points, dtype))
    y_rot = spherical_harmonics([l], rotated, normalization="integral", normalize=False)
    D = jnp.einsum("...nm,nk->...mk", y_rot, jnp.asarray(ylm * weights[:, None], dtype))
    if p is not None and p != (-1) ** l:
        det = jnp.linalg.det(R)
        D = D * jnp.where(det < 0, -1.0, 1.0).astype(dtype)[..., None, None]
    return D


def irreps_D(irreps, R: Float[Array, "*batch 3 3"]) -> Float[Array, "*batch dim dim"]:
    """Block-diagonal representation of O(3) on an irreps array (e3nn's `D_from_matrix`).

    ``x @ irreps_D(irreps, R).T`` rotates an array x of shape (..., irreps.dim) in the mul_ir
    layout; for an improper R each irrep (l, p) picks up its parity p.

    Args:
        irreps: `Irreps` or a string such as "2x0e+1o".
        R: array of shape (..., 3, 3).

    Returns:
        Array of shape (..., dim, dim).
    """
    irreps = Irreps(irreps)
    R, dtype = _check_matrix(R)
    return _irreps_D_kernel(R, irreps)


@functools.partial(jax.jit, static_argnums=(1,))
def _irreps_D_kernel(R, irreps):
    dtype = R.dtype
    batch = R.shape[:-2]
    blocks = {}
    for _, ir in irreps:
        if ir not in blocks:
            blocks[ir] = _wigner_kernel(R, ir.l, ir.p)
    out = jnp.zeros(batch + (irreps.dim, irreps.dim), dtype)
    start = 0
    for mul, ir in irreps:
        for _ in range(mul):
            sl = slice(start, start + ir.dim)
            out = out.at[..., sl, sl].set(blocks[ir])
            start += ir.dim
    return out


def _matrix_x(angle):
    c, s = jnp.cos(angle), jnp.sin(angle)
    o, z = jnp.ones_like(angle), jnp.zeros_like(angle)
    return jnp.stack(
        [jnp.stack([o, z, z], -1), jnp.stack([z, c, -s], -1), jnp.stack([z, s, c], -1)], -2
    )


def _matrix_y(angle):
    c, s = jnp.cos(angle), jnp.sin(angle)
    o, z = jnp.ones_like(angle), jnp.zeros_like(angle)
    return jnp.stack(
        [jnp.stack([c, z, s], -1), jnp.stack([z, o, z], -1), jnp.stack([-s, z, c], -1)], -2
    )


def angles_to_matrix(alpha, beta, gamma) -> Array:
    """Rotation matrix R = R_y(α) R_x(β) R_y(γ) (e3nn's Euler convention: γ about y first,
    then β about x, then α about y)."""
    alpha, beta, gamma = jnp.broadcast_arrays(
        jnp.asarray(alpha), jnp.asarray(beta), jnp.asarray(gamma)
    )
    float_dtype_of(alpha, name="alpha")
    return _matrix_y(alpha) @ _matrix_x(beta) @ _matrix_y(gamma)


def wigner_D_from_angles(l: int, alpha, beta, gamma, *, p: int | None = None) -> Array:
    """Wigner D matrix of degree l for the rotation `angles_to_matrix(alpha, beta, gamma)`.

    Equal to e3nn's ``Irrep(l, p).D_from_angles(alpha, beta, gamma)`` (proper rotations).
    """
    return wigner_D(l, angles_to_matrix(alpha, beta, gamma), p=p)


def random_rotation(
    key: PRNGKeyArray, shape: tuple[int, ...] = (), *, improper: bool = False, dtype=None
) -> Float[Array, "*shape 3 3"]:
    """Uniformly random rotation matrices (Haar measure, via normalised Gaussian quaternions).

    Args:
        key: PRNG key.
        shape: batch shape.
        improper: multiply by -1 (a rotation followed by inversion; det = -1).
        dtype: float32 or float64 (default: JAX's default float dtype).
    """
    dtype = check_dtype(dtype if dtype is not None else jnp.zeros(()).dtype)
    q = jax.random.normal(key, tuple(shape) + (4,), dtype)
    q = q / jnp.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    R = jnp.stack(
        [
            jnp.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            jnp.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            jnp.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )
    return -R if improper else R
