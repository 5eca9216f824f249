"""Random fields shared by the problem generators."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


def cell_centres(grid_shape: Sequence[int], dtype) -> list[Array]:
    """Coordinates of the cell centres of the unit square/cube, one array per axis."""
    axes = [(jnp.arange(s, dtype=dtype) + 0.5) / s for s in grid_shape]
    return jnp.meshgrid(*axes, indexing="ij")


def smooth_field(
    key: PRNGKeyArray, grid_shape: Sequence[int], *, length_scale: float, dtype
) -> Float[Array, "..."]:
    """A smooth periodic random field with unit variance: white noise under a Gaussian filter."""
    noise = jax.random.normal(key, tuple(grid_shape), dtype)
    frequencies = jnp.meshgrid(*[jnp.fft.fftfreq(s) * s for s in grid_shape], indexing="ij")
    k2 = sum(f.astype(dtype) ** 2 for f in frequencies)
    spectrum = jnp.fft.fftn(noise)
    gaussian = jnp.exp(-2 * (np.pi * length_scale) ** 2 * k2).astype(spectrum.dtype)
    field = jnp.fft.ifftn(spectrum * gaussian).real.astype(dtype)
    return field / jnp.maximum(jnp.std(field), jnp.finfo(dtype).tiny)


def gaussian_sources(
    key: PRNGKeyArray, grid_shape: Sequence[int], *, n_sources: int, width: float, dtype
) -> Float[Array, "..."]:
    """A sum of `n_sources` Gaussian bumps with random centres in [0.2, 0.8]^d and signs ±1."""
    ckey, skey = jax.random.split(key)
    centres = jax.random.uniform(ckey, (n_sources, len(grid_shape)), dtype, 0.2, 0.8)
    signs = jnp.where(jax.random.bernoulli(skey, 0.5, (n_sources,)), 1.0, -1.0).astype(dtype)
    coords = cell_centres(grid_shape, dtype)
    field = jnp.zeros(tuple(grid_shape), dtype)
    for i in range(n_sources):
        r2 = sum((x - centres[i, d]) ** 2 for d, x in enumerate(coords))
        field = field + signs[i] * jnp.exp(-r2 / (2 * width**2))
    return field


def gaussian_random_field(
    key: PRNGKeyArray, s: int, *, alpha: float = 2.0, tau: float = 3.0, ndim: int = 2, dtype
) -> Float[Array, "..."]:
    """A Gaussian random field N(0, τ^{2α−2}(−Δ + τ²)^{−α}) on s^d nodes, Neumann boundaries.

    Sampled by the inverse orthonormal DCT of its Karhunen–Loève coefficients
    s·τ^{α−1}(π²|k|² + τ²)^{−α/2}·ξ, ξ ~ N(0, 1), with the mean mode set to zero — the recipe of
    the FNO Darcy data.

    References:
        Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021 (data generator).
    """
    xi = jax.random.normal(key, (s,) * ndim, dtype)
    k = jnp.meshgrid(*[jnp.arange(s, dtype=dtype)] * ndim, indexing="ij")
    k2 = sum(ki**2 for ki in k)
    coeff = s * tau ** (alpha - 1) * (np.pi**2 * k2 + tau**2) ** (-alpha / 2)
    coeff = coeff.at[(0,) * ndim].set(0)
    return jax.scipy.fft.idctn(coeff * xi, type=2, norm="ortho")
