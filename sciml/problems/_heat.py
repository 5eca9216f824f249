"""The 2-D heat equation with time-varying diffusion, as a sequence of linear systems."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._core import check_size
from ..linalg._stencil import AbstractStencilOperator, _default_float_dtype


class HeatOperator(AbstractStencilOperator):
    """`I + a·(−Δ_h)` on an s × s interior grid with Dirichlet 0 walls: centre 1 + 4a, off −a.

    `a = ½ κ dt / h²` is the Crank–Nicolson weight; batch it (shape (T,)) for a sequence.
    """

    weight: Float[Array, ""]
    size: int = eqx.field(static=True)

    @property
    def grid_shape(self):
        return (self.size, self.size)

    @property
    def dtype(self):
        return self.weight.dtype

    def stencil(self):
        shape = self.grid_shape
        a = self.weight
        centre = jnp.full(shape, 1 + 4 * a, self.dtype)
        off = {}
        for axis in (0, 1):
            for side in (-1, 1):
                coupled = np.ones(shape)
                edge = [slice(None)] * 2
                edge[axis] = 0 if side < 0 else -1
                coupled[tuple(edge)] = 0
                off[(axis, side)] = -a * jnp.asarray(coupled, self.dtype)
        return centre, off


class HeatSequence(eqx.Module):
    """T Crank–Nicolson steps A_t u_{t+1} = b_t of the 2-D heat equation.

    Attributes:
        operators: one batched `HeatOperator` (weight of shape (T,)); `operator(t)` picks one.
        rhs: right-hand sides b_t, shape (T, n).
        initial: warm starts, the previous step's solution u_t, shape (T, n).
        context: κ at the start of each step, shape (T,) (what a contextual learner observes).
        kappa: κ at the step midpoints, used in A_t, shape (T,).
    """

    operators: HeatOperator
    rhs: Float[Array, "T n"]
    initial: Float[Array, "T n"]
    context: Float[Array, " T"]
    kappa: Float[Array, " T"]

    def operator(self, t: int) -> HeatOperator:
        return eqx.tree_at(lambda op: op.weight, self.operators, self.operators.weight[t])

    def __len__(self) -> int:
        return self.rhs.shape[0]


def _bump(points, centre, radius):
    d2 = jnp.sum((points - centre[None, :]) ** 2, axis=-1) / radius**2
    inside = d2 < 1
    safe = jnp.where(inside, d2, 0.5)
    return jnp.where(inside, jnp.exp(1 - 1 / (1 - safe)), 0)


def heat_kappa(t):
    """κ(t) = max(0.1 sin 2πt, −10 sin 2πt) of the "Learning to Relax" heat runs."""
    s = jnp.sin(2 * jnp.pi * t)
    return jnp.maximum(0.1 * s, -10 * s)


def heat_sequence(
    nx: int,
    T: int,
    *,
    dt: float = 1e-3,
    rtol: float | None = None,
    dtype=None,
) -> HeatSequence:
    r"""The 2-D heat-equation sequence of "Learning to Relax" (Crank–Nicolson, moving source).

    On the unit square with $n = (n_x - 1)^2$ interior nodes ($h = 1/n_x$, Dirichlet 0):
    $u_t = \kappa(t)\,\Delta u + f(t)$, $\kappa(t) = \max(0.1\sin 2\pi t, -10\sin 2\pi t)$,
    $f = 32\,\mathrm{bump}(x; (\tfrac12 + \tfrac14\cos 16\pi t, \tfrac12 + \tfrac14\sin 16\pi t),
    0.125)$, $u_0 = \mathrm{bump}(x; (\tfrac12, \tfrac12), 0.25)$ with
    $\mathrm{bump}(x; c, r) = \exp(1 - 1/(1 - \min(1, \|x - c\|^2/r^2)))$. Step t (time t·dt)
    solves $A_t u_{t+1} = b_t$ with $A_t = I - \tfrac12\kappa\,dt\,\Delta_h$,
    $b_t = (I + \tfrac12\kappa\,dt\,\Delta_h) u_t + dt\,f$, κ and f at the midpoint t + dt/2.

    The states $u_t$ are computed here once (CG to `rtol`, under `lax.scan`), so the sequence
    is a fixed list of systems: a solver under test gets `rhs[t]` and the warm start
    `initial[t]` (= $u_t$), as the time-stepping loop would give it.

    Args:
        nx: grid intervals per axis (n = (nx − 1)² unknowns).
        T: number of time steps.
        dt: time step.
        rtol: tolerance of the solves that produce the states (default 1e-12 in float64,
            1e-6 in float32).
        dtype: floating dtype; JAX's default float if omitted.

    Returns:
        A `HeatSequence`.

    Raises:
        ValueError: for nx < 3, T < 1 (or not ints), or a `dt` that is not positive.

    References:
        Khodak, Chow, Balcan, Talwalkar, "Learning to Relax", ICLR 2024 (and the repository's
        `utils/Heat2D.m`).
    """
    from ..solvers import cg, jacobi

    nx = check_size(nx, "nx", minimum=3)  # at least one interior node per axis
    T = check_size(T, "T")
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"`dt` must be a positive time step, got {dt}.")
    dtype = _default_float_dtype(dtype)
    if rtol is None:
        rtol = 1e-12 if dtype.itemsize >= 8 else 1e-6
    s = nx - 1
    h = 1.0 / nx
    coords = jnp.arange(1, nx, dtype=dtype) * h
    points = jnp.stack(jnp.meshgrid(coords, coords, indexing="ij"), -1).reshape(-1, 2)
    u0 = _bump(points, jnp.asarray([0.5, 0.5], dtype), 0.25).astype(dtype)
    times = jnp.arange(T, dtype=dtype) * dt
    mid = times + dt / 2
    kappa = heat_kappa(mid).astype(dtype)
    weights = (0.5 * kappa * dt / h**2).astype(dtype)

    def step(u, inputs):
        t, w = inputs
        A = HeatOperator(w, s)
        centre = jnp.stack([0.5 + jnp.cos(16 * jnp.pi * t) / 4, 0.5 + jnp.sin(16 * jnp.pi * t) / 4])
        f = 32 * _bump(points, centre.astype(dtype), 0.125).astype(dtype)
        b = 2 * u - A.mv(u) + dt * f
        sol = cg(A, b, x0=u, rtol=rtol, max_steps=1000, M=jacobi(A), throw=False)
        return sol.value, (b, u)

    _, (rhs, initial) = jax.lax.scan(step, u0, (mid, weights))
    return HeatSequence(
        operators=HeatOperator(weights, s),
        rhs=rhs,
        initial=initial,
        context=heat_kappa(times).astype(dtype),
        kappa=kappa,
    )
