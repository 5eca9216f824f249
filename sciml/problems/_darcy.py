"""Darcy flow −∇·(a∇u) = f with random coefficients: the FNO benchmark family."""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..linalg import Diffusion, diffusion
from ..linalg._stencil import _default_float_dtype
from ._fields import gaussian_random_field
from ._problem import LinearProblem


class DarcyFamily(eqx.Module):
    """A batch of Darcy problems sharing the grid and forcing.

    Attributes:
        coefficients: the diffusion coefficients a at all s×s nodes, shape (n_samples, s, s).
        forcing: the constant source f.
        coefficient_kind: "lognormal" or "piecewise".

    `family.problem(i)` gives sample i as a `LinearProblem`; `family.operators` is one batched
    `Diffusion` operator (map over it with `jax.vmap`).
    """

    coefficients: Float[Array, "batch s s"]
    forcing: Float[Array, ""]
    coefficient_kind: str = eqx.field(static=True)

    @property
    def n_samples(self) -> int:
        return self.coefficients.shape[0]

    @property
    def operators(self) -> Diffusion:
        return jax.vmap(diffusion)(self.coefficients)

    def operator(self, i: int) -> Diffusion:
        return diffusion(self.coefficients[i])

    @property
    def rhs(self) -> Float[Array, " n"]:
        s = self.coefficients.shape[-1]
        return jnp.full(((s - 2) ** 2,), self.forcing)

    def problem(self, i: int) -> LinearProblem:
        return LinearProblem(self.operator(i), self.rhs, name=f"darcy-{self.coefficient_kind}")


@eqx.filter_jit
def darcy(
    key: PRNGKeyArray,
    n_samples: int,
    grid: int,
    *,
    coefficient: Literal["lognormal", "piecewise"] = "lognormal",
    alpha: float = 2.0,
    tau: float = 3.0,
    levels: tuple[float, float] = (12.0, 3.0),
    forcing: float = 1.0,
    dtype=None,
) -> DarcyFamily:
    """Sample Darcy problems −∇·(a∇u) = f on the unit square, u = 0 on the boundary.

    ψ is a Gaussian random field N(0, τ^{2α−2}(−Δ + τ²)^{−α}) on the grid's nodes; the
    coefficient is a = exp(ψ) ("lognormal") or a = levels[0] where ψ ≥ 0 and levels[1] elsewhere
    ("piecewise"). The operator uses face-averaged coefficients (see `sciml.linalg.diffusion`).

    Args:
        key: PRNG key; the same key gives the same samples.
        n_samples: number of problems.
        grid: nodes per axis s (boundary included); there are (s−2)² unknowns.
        coefficient: "lognormal" or "piecewise".
        alpha, tau: smoothness and inverse length scale of the field (FNO: α = 2, τ = 3).
        levels: the two values of the piecewise-constant coefficient.
        forcing: the constant source f.
        dtype: floating dtype; JAX's default float if omitted.

    Returns:
        A `DarcyFamily`.

    References:
        Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021, §5.2.
    """
    if coefficient not in ("lognormal", "piecewise"):
        raise ValueError(f"`coefficient` must be 'lognormal' or 'piecewise', got {coefficient!r}.")
    if n_samples < 1 or grid < 3:
        raise ValueError(f"need n_samples >= 1 and grid >= 3, got {n_samples} and {grid}.")
    dtype = _default_float_dtype(dtype)
    keys = jax.random.split(key, n_samples)
    psi = jax.vmap(lambda k: gaussian_random_field(k, grid, alpha=alpha, tau=tau, dtype=dtype))(
        keys
    )
    if coefficient == "lognormal":
        a = jnp.exp(psi)
    else:
        a = jnp.where(psi >= 0, levels[0], levels[1]).astype(dtype)
    return DarcyFamily(a, jnp.asarray(forcing, dtype), coefficient)
