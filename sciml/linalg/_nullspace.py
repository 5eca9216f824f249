"""The null space of singular (pure-Neumann) Laplacians and projection onto their range."""

import equinox as eqx
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, Int

from ._stencil import EMPTY, FLUID, Laplacian, _neighbour


@eqx.filter_jit
def fluid_components(op: Laplacian) -> tuple[Int[Array, "..."], Int[Array, "..."]]:
    """Label the connected fluid regions of a grid Laplacian and find the floating ones.

    A floating region touches no empty cell and no Dirichlet domain face: there the operator
    (with zero shift) annihilates constants, so A is singular and A x = b is solvable only for b
    with zero mean over the region.

    Args:
        op: a `Laplacian` (with or without a mask).

    Returns:
        `(labels, floating)`: `labels` over the grid (the smallest flat index of the cell's region
        for fluid cells, −1 elsewhere); `floating` over the grid, 1 on cells of floating regions.
    """
    shape = op.grid_shape
    fluid = jnp.ones(shape, bool) if op.mask is None else op.mask == FLUID
    size = op.n
    index = jnp.arange(size).reshape(shape)
    labels0 = jnp.where(fluid, index, size)

    def sweep(labels):
        # Min-label propagation between fluid neighbours; converges in O(diameter) sweeps.
        new = labels
        for axis in range(len(shape)):
            for side in (-1, 1):
                new = jnp.minimum(new, _neighbour(labels, axis, side, size))
        return jnp.where(fluid, new, size)

    def cond(carry):
        labels, previous = carry
        return jnp.any(labels != previous)

    def body(carry):
        labels, _ = carry
        return sweep(labels), labels

    labels, _ = lax.while_loop(cond, body, (sweep(labels0), labels0))
    # A region is anchored if any of its cells touches an empty cell or a Dirichlet face.
    anchored = jnp.zeros(shape, bool)
    for axis in range(len(shape)):
        for side in (-1, 1):
            boundary = op.bc[axis][0 if side < 0 else 1]
            if op.mask is None:
                edge = jnp.zeros(shape[axis], bool).at[0 if side < 0 else -1].set(True)
                touches = edge.reshape([-1 if a == axis else 1 for a in range(len(shape))])
                touches = jnp.broadcast_to(touches & (boundary == "dirichlet"), shape)
            else:
                fill = EMPTY if boundary == "dirichlet" else -1
                touches = _neighbour(op.mask, axis, side, fill) == EMPTY
            anchored = anchored | (fluid & touches)
    region_anchored = jnp.zeros(size + 1, bool).at[labels.reshape(-1)].max(anchored.reshape(-1))
    floating = fluid & ~region_anchored[labels]
    return jnp.where(fluid, labels, -1), floating.astype(jnp.int32)


@eqx.filter_jit
def project_to_range(op: Laplacian, b: Float[Array, " n"]) -> Float[Array, " n"]:
    """Project `b` onto the range of a (possibly singular) grid Laplacian with zero shift.

    Zeroes `b` on non-fluid cells and subtracts its mean over every floating fluid region, so
    that `A x = b` is consistent.

    Args:
        op: a `Laplacian` with zero shift.
        b: a flat right-hand side.

    Returns:
        The projected right-hand side.
    """
    labels, floating = fluid_components(op)
    labels, floating = labels.reshape(-1), floating.reshape(-1).astype(bool)
    b = jnp.where(labels >= 0, b, 0)
    segment = jnp.where(floating, labels, op.n)
    sums = jnp.zeros(op.n + 1, b.dtype).at[segment].add(b)
    counts = jnp.zeros(op.n + 1, b.dtype).at[segment].add(1)
    means = sums / jnp.maximum(counts, 1)
    return jnp.where(floating, b - means[segment], b)
