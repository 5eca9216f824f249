"""PDE families for data generation: a batch of parameters and a per-sample linear system.

A family is an `eqx.Module` holding the parameter fields of N instances (`params`, shape
(N, ...)) plus whatever the instances share. `family.system(param)` maps *one* parameter
array to `(operator, rhs)` and is traceable, so a `lax.scan` over a sorted chain can build
each system inside the compiled loop. `system` must not read `family.params` (the solvers
replace it by the chain's own parameters).
"""

import functools
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jaxtyping import Array, Float, PRNGKeyArray

from ...linalg import AbstractOperator, diffusion, poisson
from ...linalg._stencil import _default_float_dtype
from ...problems import darcy
from ...problems._fields import gaussian_random_field


class ShiftedOperator(AbstractOperator):
    """`scale · base + diag(shift)`: a stencil operator plus a (field-valued) diagonal shift.

    Used for implicit time steps (I + dt·L) and Helmholtz operators −Δ − k²(x).
    """

    base: AbstractOperator
    scale: Float[Array, ""]
    shift: Float[Array, " n"]

    def mv(self, x):
        return self.scale.astype(x.dtype) * self.base.mv(x) + self.shift.astype(x.dtype) * x

    @property
    def n(self) -> int:
        return self.base.n

    @property
    def dtype(self):
        return self.base.dtype

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return self.base.grid_shape

    def diagonal(self):
        return self.scale * self.base.diagonal() + self.shift

    def to_scipy(self) -> sp.csr_array:
        base = self.base.to_scipy()
        return sp.csr_array(float(self.scale) * base + sp.diags_array(np.asarray(self.shift)))


class AbstractFamily(eqx.Module):
    """A batch of related linear systems A(p_i) u_i = b(p_i), i = 1..N.

    Attributes:
        params: the per-sample parameter fields, shape (N, ...): what sorting compares and
            what a neural operator takes as input.
        name: the family's registry name.
        grid_shape: the grid of the unknowns (the solution u_i reshaped).
        spd: whether every system is symmetric positive definite (CG applies).
    """

    params: eqx.AbstractVar[Float[Array, "N ..."]]
    name: eqx.AbstractClassVar[str]
    spd: eqx.AbstractClassVar[bool]

    @property
    def grid_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def system(self, param: Float[Array, "..."]) -> tuple[AbstractOperator, Float[Array, " n"]]:
        """The operator and right-hand side of one instance, from its parameter array."""
        raise NotImplementedError

    @property
    def n(self) -> int:
        return int(np.prod(self.grid_shape))

    @property
    def n_samples(self) -> int:
        return self.params.shape[0]

    @property
    def dtype(self):
        return self.params.dtype

    def sample(self, i: int) -> tuple[AbstractOperator, Float[Array, " n"]]:
        """The system of sample `i`."""
        return self.system(self.params[i])


class DarcyFamily(AbstractFamily):
    """Darcy flow −∇·(a∇u) = f, u = 0 on ∂(0,1)²; params = a at all s×s nodes (N, s, s)."""

    params: Float[Array, "N s s"]
    forcing: Float[Array, ""]
    name = "darcy"
    spd = True

    @property
    def grid_shape(self):
        s = self.params.shape[-1]
        return (s - 2, s - 2)

    def system(self, param):
        op = diffusion(param)
        return op, jnp.full((op.n,), self.forcing, param.dtype)


class PoissonFamily(AbstractFamily):
    """−Δu = f with random sources f (the matrix is shared, only the right-hand side varies).

    params = f at the (s−2)² interior nodes, shape (N, s−2, s−2); 5-point stencil, h = 1/(s−1).
    """

    params: Float[Array, "N t t"]
    name = "poisson"
    spd = True

    @property
    def grid_shape(self):
        return tuple(self.params.shape[1:])

    def system(self, param):
        s = param.shape[0] + 2
        op = poisson(param.shape, spacing=1.0 / (s - 1), dtype=param.dtype)
        return op, param.reshape(-1)


class HeatFamily(AbstractFamily):
    """One backward-Euler step of reaction–diffusion: (I + dt(−∇·(a∇·) + c)) u = u₀.

    params = the diffusivity a at all s×s nodes, shape (N, s, s); u₀ is a fixed bump and c a
    constant reaction rate (0: the heat equation).
    """

    params: Float[Array, "N s s"]
    initial: Float[Array, " n"]
    dt: Float[Array, ""]
    reaction: Float[Array, ""]
    name = "heat"
    spd = True

    @property
    def grid_shape(self):
        s = self.params.shape[-1]
        return (s - 2, s - 2)

    def system(self, param):
        base = diffusion(param)
        shift = jnp.full((base.n,), 1 + self.dt * self.reaction, param.dtype)
        return ShiftedOperator(base, self.dt.astype(param.dtype), shift), self.initial


class HelmholtzFamily(AbstractFamily):
    """Indefinite Helmholtz −Δu − k²(x) u = 1, u = 0 on ∂(0,1)², with a random k² field.

    params = k²(x) = κ²(1 + 0.3 tanh g(x)) at the (s−2)² interior nodes, κ uniform in
    `kappa_range` per sample and g a Gaussian random field. κ² above 2π² makes the operator
    indefinite: restarted GMRES stalls where recycling keeps converging.
    """

    params: Float[Array, "N t t"]
    name = "helmholtz"
    spd = False

    @property
    def grid_shape(self):
        return tuple(self.params.shape[1:])

    def system(self, param):
        s = param.shape[0] + 2
        base = poisson(param.shape, spacing=1.0 / (s - 1), dtype=param.dtype)
        one = jnp.asarray(1, param.dtype)
        op = ShiftedOperator(base, one, -param.reshape(-1))
        return op, jnp.ones((op.n,), param.dtype)


def _check_sizes(n_samples: int, grid: int) -> tuple[int, int]:
    for value, name, low in ((n_samples, "n_samples", 1), (grid, "grid", 4)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"`{name}` must be an int >= {low}, got {value!r}.")
    return int(n_samples), int(grid)


def _grf_batch(key, n_samples, s, *, alpha, tau, dtype):
    keys = jax.random.split(key, n_samples)
    return jax.vmap(lambda k: gaussian_random_field(k, s, alpha=alpha, tau=tau, dtype=dtype))(keys)


def darcy_family(
    key: PRNGKeyArray,
    n_samples: int,
    grid: int,
    *,
    coefficient: Literal["lognormal", "piecewise", "parametric"] = "lognormal",
    n_terms: int = 1,
    theta_range: float = 1.5,
    forcing: float = 1.0,
    dtype: Any = None,
) -> DarcyFamily:
    """Darcy instances −∇·(a∇u) = f (FNO benchmark) on an s×s node grid.

    Args:
        key: PRNG key; the same key gives the same family.
        n_samples: N.
        grid: nodes per axis s, boundary included ((s−2)² unknowns).
        coefficient: "lognormal" (a = exp ψ, ψ a GRF with α = 2, τ = 3), "piecewise"
            (a = 12 where ψ ≥ 0, else 3), both from `sciml.problems.darcy`, or "parametric":
            a = exp(Σ_{i<n_terms} θ_i φ_i) with fixed GRF modes φ_i and θ ~ U(−r, r)^n_terms,
            a low-dimensional family on which sorting pays off.
        n_terms: the number of modes of the "parametric" coefficient.
        theta_range: r of the "parametric" coefficient.
        forcing: the constant source f.
        dtype: floating dtype; JAX's default float if omitted.

    Returns:
        A `DarcyFamily`.

    Raises:
        ValueError: for an unknown `coefficient`, bad sizes, or `n_terms` / `theta_range`
            given to a coefficient other than "parametric".
    """
    n_samples, grid = _check_sizes(n_samples, grid)
    dtype = _default_float_dtype(dtype)
    if coefficient != "parametric" and (n_terms != 1 or theta_range != 1.5):
        raise ValueError(
            f"`n_terms` and `theta_range` shape the 'parametric' coefficient only; the "
            f"{coefficient!r} one does not use them."
        )
    if coefficient in ("lognormal", "piecewise"):
        fam = darcy(key, n_samples, grid, coefficient=coefficient, forcing=forcing, dtype=dtype)
        a = fam.coefficients
    elif coefficient == "parametric":
        if n_terms < 1:
            raise ValueError(f"`n_terms` must be >= 1, got {n_terms}.")
        mode_key, theta_key = jax.random.split(key)
        modes = _grf_batch(mode_key, n_terms, grid, alpha=2.0, tau=3.0, dtype=dtype)
        theta = jax.random.uniform(
            theta_key, (n_samples, n_terms), dtype, -theta_range, theta_range
        )
        a = jnp.exp(jnp.einsum("nt,tij->nij", theta, modes))
    else:
        raise ValueError(
            f"`coefficient` must be 'lognormal', 'piecewise' or 'parametric', got {coefficient!r}."
        )
    return DarcyFamily(params=a, forcing=jnp.asarray(forcing, dtype))


def poisson_family(
    key: PRNGKeyArray, n_samples: int, grid: int, *, dtype: Any = None
) -> PoissonFamily:
    """Poisson −Δu = f with Gaussian-random-field sources f (α = 2, τ = 3), u = 0 on ∂Ω.

    Args:
        key: PRNG key.
        n_samples: N.
        grid: nodes per axis s, boundary included ((s−2)² unknowns).
        dtype: floating dtype; JAX's default float if omitted.

    Returns:
        A `PoissonFamily`: one shared matrix, N right-hand sides.
    """
    n_samples, grid = _check_sizes(n_samples, grid)
    dtype = _default_float_dtype(dtype)
    f = _grf_batch(key, n_samples, grid, alpha=2.0, tau=3.0, dtype=dtype)[:, 1:-1, 1:-1]
    return PoissonFamily(params=f)


def heat_family(
    key: PRNGKeyArray,
    n_samples: int,
    grid: int,
    *,
    dt: float = 0.01,
    reaction: float = 0.0,
    dtype: Any = None,
) -> HeatFamily:
    """One implicit step of heat / reaction–diffusion with a lognormal diffusivity per sample.

    (I + dt(−∇·(a∇·) + c)) u = u₀ with a = exp(GRF α = 2, τ = 3), u₀ a smooth bump centred in
    the unit square, c = `reaction` (≥ 0 keeps the system SPD).

    Args:
        key: PRNG key.
        n_samples: N.
        grid: nodes per axis s, boundary included.
        dt: the time step.
        reaction: the constant reaction rate c.
        dtype: floating dtype; JAX's default float if omitted.

    Returns:
        A `HeatFamily`.

    Raises:
        ValueError: for bad sizes, `dt` <= 0, or `reaction` < 0 (the systems could then be
            indefinite, while the family promises SPD systems, e.g. to `cg`).
    """
    n_samples, grid = _check_sizes(n_samples, grid)
    dtype = _default_float_dtype(dtype)
    if not float(dt) > 0:
        raise ValueError(f"`dt` must be a positive time step, got {dt}.")
    if not float(reaction) >= 0:
        raise ValueError(
            f"`reaction` must be >= 0 (a negative rate can make I + dt(−∇·a∇ + c) "
            f"indefinite), got {reaction}."
        )
    a = jnp.exp(_grf_batch(key, n_samples, grid, alpha=2.0, tau=3.0, dtype=dtype))
    x = jnp.linspace(0, 1, grid, dtype=dtype)[1:-1]
    xx, yy = jnp.meshgrid(x, x, indexing="ij")
    r2 = ((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.25**2
    inside = r2 < 1
    safe = jnp.where(inside, r2, 0)
    bump = jnp.where(inside, jnp.exp(1 - 1 / (1 - safe)), 0).astype(dtype)
    return HeatFamily(
        params=a,
        initial=bump.reshape(-1),
        dt=jnp.asarray(dt, dtype),
        reaction=jnp.asarray(reaction, dtype),
    )


def helmholtz_family(
    key: PRNGKeyArray,
    n_samples: int,
    grid: int,
    *,
    kappa_range: tuple[float, float] = (3.1, 5.9),
    dtype: Any = None,
) -> HelmholtzFamily:
    """Indefinite Helmholtz −Δu − κ²(1 + 0.3 tanh g)u = 1 with random κ and field g.

    Args:
        key: PRNG key.
        n_samples: N.
        grid: nodes per axis s, boundary included.
        kappa_range: κ is uniform in this interval per sample (κ > √2·π ≈ 4.44 is indefinite
            on the unit square).
        dtype: floating dtype; JAX's default float if omitted.

    Returns:
        A `HelmholtzFamily`.
    """
    n_samples, grid = _check_sizes(n_samples, grid)
    dtype = _default_float_dtype(dtype)
    low, high = (float(v) for v in kappa_range)
    if not 0 <= low <= high:
        raise ValueError(
            f"`kappa_range` must be (low, high) with 0 <= low <= high, got {kappa_range}."
        )
    kkey, gkey = jax.random.split(key)
    kappa = jax.random.uniform(kkey, (n_samples, 1, 1), dtype, low, high)
    g = _grf_batch(gkey, n_samples, grid, alpha=2.0, tau=3.0, dtype=dtype)[:, 1:-1, 1:-1]
    return HelmholtzFamily(params=kappa**2 * (1 + 0.3 * jnp.tanh(g)))


FAMILIES: dict[str, Callable[..., AbstractFamily]] = {
    "darcy": functools.partial(darcy_family, coefficient="lognormal"),
    "darcy-piecewise": functools.partial(darcy_family, coefficient="piecewise"),
    "darcy-parametric": functools.partial(darcy_family, coefficient="parametric"),
    "poisson": poisson_family,
    "heat": heat_family,
    "helmholtz": helmholtz_family,
}
"""Family constructors by name: `FAMILIES[name](key, n_samples, grid, *, dtype=None)`."""
