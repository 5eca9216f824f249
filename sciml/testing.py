"""Helpers for testing code built on sciml: tolerances, tree comparison, finite differences."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PyTree

from ._core import tol_for as tol_for

__all__ = ["fd_grad", "tol_for", "tree_allclose"]


def tree_allclose(
    x: PyTree, y: PyTree, *, rtol: float | None = None, atol: float | None = None
) -> bool:
    """Whether two pytrees have the same structure, shapes, dtypes and close values.

    Tolerances default to `tol_for` of each leaf's dtype.
    """
    if jax.tree.structure(x) != jax.tree.structure(y):
        return False
    for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        default_rtol, default_atol = tol_for(a.dtype)
        if not np.allclose(
            a,
            b,
            rtol=default_rtol if rtol is None else rtol,
            atol=default_atol if atol is None else atol,
            equal_nan=True,
        ):
            return False
    return True


def fd_grad(f: Callable[[Array], Array], x: Array, *, step: float | None = None) -> Array:
    """The gradient of a scalar function by central differences, one coordinate at a time.

    Args:
        f: a scalar function of one array.
        x: the point (float64 recommended).
        step: the difference step; defaults to eps^(1/3)·max(1, |x|), the optimum for central
            differences.

    Returns:
        An array like `x` holding ∂f/∂x_i.
    """
    x = jnp.asarray(x)
    flat = x.reshape(-1)
    eps = float(jnp.finfo(x.dtype).eps)
    h = step if step is not None else eps ** (1 / 3) * jnp.maximum(1.0, jnp.abs(flat))
    h = jnp.broadcast_to(jnp.asarray(h, x.dtype), flat.shape)

    def partial(i):
        e = jnp.zeros_like(flat).at[i].set(h[i])
        return (f((flat + e).reshape(x.shape)) - f((flat - e).reshape(x.shape))) / (2 * h[i])

    return jnp.stack([partial(i) for i in range(flat.size)]).reshape(x.shape)
