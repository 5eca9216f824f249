"""Sequences of related linear systems, as a time-stepping code would solve them."""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._core import check_size
from ..linalg import Laplacian, poisson
from ..linalg._stencil import _default_float_dtype


class ShiftedLaplacianSequence(eqx.Module):
    """T systems (L + c_t I) x = b_t sharing the 2-D Laplacian L.

    Attributes:
        operators: one batched `Laplacian` whose shift has shape (T,) (map with `jax.vmap`).
        rhs: right-hand sides, shape (T, n).
        context: the shifts c_t, shape (T,) (what a contextual learner observes).
    """

    operators: Laplacian
    rhs: Float[Array, "T n"]
    context: Float[Array, " T"]

    def operator(self, t: int) -> Laplacian:
        return eqx.tree_at(lambda op: op.shift, self.operators, self.operators.shift[t])

    def __len__(self) -> int:
        return self.rhs.shape[0]


def shifted_laplacians(
    key: PRNGKeyArray,
    T: int,
    *,
    variance: Literal["high", "low"] = "high",
    grid: int = 10,
    dtype=None,
) -> ShiftedLaplacianSequence:
    """The shifted-Laplacian sequence of "Learning to Relax".

    A = 5-point integer Laplacian on a grid×grid interior (MATLAB `delsq(numgrid('S', grid+2))`),
    A_t = A + c_t I with c_t = −0.15 + 0.6·Beta(0.5, 1.5) ("high" variance) or
    −0.15 + 0.6·Beta(2, 6) ("low"), and b_t ~ N(0, I) conditioned on ‖b_t‖ ≤ √n (by rejection).

    Args:
        key: PRNG key.
        T: number of systems.
        variance: "high" or "low".
        grid: interior points per axis (n = grid²).
        dtype: floating dtype; JAX's default float if omitted.

    Returns:
        A `ShiftedLaplacianSequence`.

    Raises:
        ValueError: for an unknown `variance`, or `T` or `grid` that is not a positive int.

    References:
        Khodak, Chow, Balcan, Talwalkar, "Learning to Relax: Setting Solver Parameters Across a
        Sequence of Linear System Instances", ICLR 2024.
    """
    if variance not in ("high", "low"):
        raise ValueError(f"`variance` must be 'high' or 'low', got {variance!r}.")
    T = check_size(T, "T")
    grid = check_size(grid, "grid")
    return _shifted_laplacians(key, T, variance, grid, _default_float_dtype(dtype))


@eqx.filter_jit
def _shifted_laplacians(key, T, variance, grid, dtype):
    a, b = (0.5, 1.5) if variance == "high" else (2.0, 6.0)
    ckey, bkey = jax.random.split(key)
    shifts = -0.15 + 0.6 * jax.random.beta(ckey, a, b, (T,), dtype)
    n = grid * grid

    def truncated_normal(k):
        def cond(carry):
            return jnp.linalg.norm(carry[1]) > jnp.sqrt(jnp.asarray(n, dtype))

        def body(carry):
            k, _ = carry
            k, sub = jax.random.split(k)
            return k, jax.random.normal(sub, (n,), dtype)

        k, sub = jax.random.split(k)
        return jax.lax.while_loop(cond, body, (k, jax.random.normal(sub, (n,), dtype)))[1]

    rhs = jax.vmap(truncated_normal)(jax.random.split(bkey, T))
    operators = jax.vmap(lambda c: poisson((grid, grid), shift=c, dtype=dtype))(shifts)
    return ShiftedLaplacianSequence(operators, rhs, shifts)
