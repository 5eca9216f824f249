"""Poisson, fluid-pressure, Helmholtz and convection–diffusion problems from a key."""

from collections.abc import Sequence
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, PRNGKeyArray

from .._core import check_size
from ..linalg import (
    EMPTY,
    FLUID,
    SOLID,
    convection_diffusion,
    helmholtz,
    poisson,
    project_to_range,
)
from ..linalg._stencil import BoundarySpec, _check_grid, _default_float_dtype
from ._fields import cell_centres, gaussian_sources, smooth_field
from ._problem import LinearProblem


@eqx.filter_jit
def poisson_problem(
    key: PRNGKeyArray,
    grid_shape: Sequence[int],
    *,
    bc: BoundarySpec = "dirichlet",
    n_sources: int = 4,
    dtype=None,
) -> LinearProblem:
    """−Δu = f on the unit square/cube with a smooth random source f (Gaussian bumps).

    The operator is the cell-centred Laplacian with h = 1/N. For pure Neumann boundaries f is
    projected to zero mean so the (singular) system is consistent.

    Args:
        key: PRNG key; the same key gives the same problem.
        grid_shape: cells per axis (2-D or 3-D).
        bc: boundary conditions, as for `sciml.linalg.poisson`.
        n_sources: number of Gaussian bumps in f.
        dtype: floating dtype; JAX's default float if omitted.

    Returns:
        A `LinearProblem`.
    """
    grid_shape = _check_grid(grid_shape)
    dtype = _default_float_dtype(dtype)
    op = poisson(grid_shape, spacing=[1.0 / s for s in grid_shape], bc=bc, dtype=dtype)
    f = gaussian_sources(key, grid_shape, n_sources=n_sources, width=0.08, dtype=dtype)
    b = project_to_range(op, f.reshape(-1))
    return LinearProblem(op, b, name=f"poisson{len(grid_shape)}d")


@eqx.filter_jit
def obstacle_mask(
    key: PRNGKeyArray,
    grid_shape: Sequence[int],
    *,
    n_obstacles: int = 3,
    obstacle: Literal["sphere", "box", "mixed"] = "mixed",
    open_top: bool = False,
) -> Int[Array, "..."]:
    """Cell types of a box of fluid with random spherical and box obstacles (signed distances).

    Args:
        key: PRNG key.
        grid_shape: cells per axis.
        n_obstacles: number of obstacles (static).
        obstacle: "sphere", "box", or "mixed" (each obstacle picks one at random).
        open_top: mark the top layer (the last cells along the last axis) as empty
            (air at zero pressure), which anchors the pressure and makes the system nonsingular.

    Returns:
        An int8 array of `FLUID`, `SOLID` and `EMPTY` over the grid.
    """
    grid_shape = _check_grid(grid_shape, min_size=4)
    if obstacle not in ("sphere", "box", "mixed"):
        raise ValueError(f"`obstacle` must be 'sphere', 'box' or 'mixed', got {obstacle!r}.")
    ndim = len(grid_shape)
    dtype = jnp.float32
    ckey, rkey, kkey = jax.random.split(key, 3)
    centres = jax.random.uniform(ckey, (n_obstacles, ndim), dtype, 0.25, 0.75)
    sizes = jax.random.uniform(rkey, (n_obstacles, ndim), dtype, 0.05, 0.15)
    is_sphere = jax.random.bernoulli(kkey, 0.5, (n_obstacles,))
    if obstacle != "mixed":
        is_sphere = jnp.full((n_obstacles,), obstacle == "sphere")
    coords = cell_centres(grid_shape, dtype)
    solid = jnp.zeros(grid_shape, bool)
    for i in range(n_obstacles):
        offsets = [x - centres[i, d] for d, x in enumerate(coords)]
        sphere = jnp.sqrt(sum(o**2 for o in offsets)) - sizes[i, 0]
        box = jnp.max(jnp.stack([jnp.abs(o) - sizes[i, d] for d, o in enumerate(offsets)]), 0)
        solid = solid | (jnp.where(is_sphere[i], sphere, box) < 0)
    mask = jnp.where(solid, SOLID, FLUID).astype(jnp.int8)
    if open_top:
        top = [slice(None)] * ndim
        top[-1] = slice(grid_shape[-1] - 1, None)
        mask = mask.at[tuple(top)].set(EMPTY)
    return mask


@eqx.filter_jit
def fluid_pressure(
    key: PRNGKeyArray,
    shape: Sequence[int],
    *,
    n_obstacles: int = 3,
    obstacle: Literal["sphere", "box", "mixed"] = "mixed",
    open_top: bool = False,
    dtype=None,
) -> LinearProblem:
    """The pressure Poisson system of one projection step of an incompressible fluid solver.

    A box of fluid with solid walls (Neumann) and random obstacles; the right-hand side is the
    divergence of a smooth random velocity field on the fluid cells, projected onto the range of
    the operator (zero mean on every region not anchored by an empty cell), so the singular
    pure-Neumann system is consistent. The operator is the integer stencil (h = 1) used by
    pressure solvers, with zero rows for solid and empty cells.

    Args:
        key: PRNG key; the same key gives the same problem.
        shape: cells per axis (2-D or 3-D), each at least 4.
        n_obstacles: number of obstacles.
        obstacle: "sphere", "box" or "mixed".
        open_top: make the top layer air (Dirichlet), which removes the null space.
        dtype: floating dtype; JAX's default float if omitted.

    Returns:
        A `LinearProblem` whose operator carries the cell mask.

    Raises:
        ValueError: for a shape that is not 2-D or 3-D with at least 4 cells per axis, or a
            negative `n_obstacles`.

    References:
        Kaneda et al., "A Deep Conjugate Direction Method for Iteratively Solving Linear
        Systems", ICML 2023 (the smoke-flow pressure systems).
    """
    shape = _check_grid(shape, min_size=4)
    if len(shape) not in (2, 3):
        raise ValueError(f"`shape` must be 2-D or 3-D (cells per axis), got {shape}.")
    n_obstacles = check_size(n_obstacles, "n_obstacles", minimum=0)
    dtype = _default_float_dtype(dtype)
    mkey, vkey = jax.random.split(key)
    mask = obstacle_mask(mkey, shape, n_obstacles=n_obstacles, obstacle=obstacle, open_top=open_top)
    op = poisson(shape, bc="neumann", mask=mask, dtype=dtype)
    # Central-difference divergence of a smooth velocity field that vanishes in solids.
    fluid = (mask == FLUID).astype(dtype)
    divergence = jnp.zeros(shape, dtype)
    for axis, vkey_d in enumerate(jax.random.split(vkey, len(shape))):
        velocity = smooth_field(vkey_d, shape, length_scale=0.1, dtype=dtype) * fluid
        divergence = divergence + 0.5 * (
            jnp.roll(velocity, -1, axis).at[_last(axis, len(shape))].set(0)
            - jnp.roll(velocity, 1, axis).at[_first(axis, len(shape))].set(0)
        )
    b = project_to_range(op, -divergence.reshape(-1))
    return LinearProblem(op, b, name=f"fluid-pressure{len(shape)}d")


def _first(axis: int, ndim: int):
    index = [slice(None)] * ndim
    index[axis] = 0
    return tuple(index)


def _last(axis: int, ndim: int):
    index = [slice(None)] * ndim
    index[axis] = -1
    return tuple(index)


@eqx.filter_jit
def helmholtz_problem(
    key: PRNGKeyArray,
    grid_shape: Sequence[int],
    *,
    kappa: float = 20.0,
    n_sources: int = 2,
    dtype=None,
) -> LinearProblem:
    """−Δu − κ²u = f on the unit square/cube, u = 0 on the boundary: an indefinite system.

    Args:
        key: PRNG key.
        grid_shape: cells per axis. Keep at least ~10 cells per wavelength 2π/κ.
        kappa: wavenumber κ.
        n_sources: number of narrow Gaussian sources in f.
        dtype: floating dtype; JAX's default float if omitted.

    Returns:
        A `LinearProblem` (use GMRES: CG does not apply to indefinite systems).
    """
    grid_shape = _check_grid(grid_shape)
    dtype = _default_float_dtype(dtype)
    op = helmholtz(grid_shape, kappa, dtype=dtype)
    f = gaussian_sources(key, grid_shape, n_sources=n_sources, width=0.03, dtype=dtype)
    return LinearProblem(op, f.reshape(-1), name=f"helmholtz{len(grid_shape)}d")


@eqx.filter_jit
def convection_diffusion_problem(
    key: PRNGKeyArray,
    grid_shape: Sequence[int],
    *,
    speed: float = 20.0,
    viscosity: float = 1.0,
    scheme: Literal["central", "upwind"] = "central",
    dtype=None,
) -> LinearProblem:
    """−νΔu + w·∇u = f with a constant wind w of random direction: a nonsymmetric system.

    Args:
        key: PRNG key (picks the wind direction and the sources).
        grid_shape: unknowns per axis.
        speed: |w|. The global Péclet number is |w|/ν.
        viscosity: ν.
        scheme: "central" or "upwind" differences for the convection term.
        dtype: floating dtype; JAX's default float if omitted.

    Returns:
        A `LinearProblem` (use GMRES).
    """
    grid_shape = _check_grid(grid_shape)
    dtype = _default_float_dtype(dtype)
    wkey, fkey = jax.random.split(key)
    direction = jax.random.normal(wkey, (len(grid_shape),), dtype)
    direction = direction / jnp.linalg.norm(direction)
    op = convection_diffusion(
        grid_shape,
        velocity=tuple(speed * direction[d] for d in range(len(grid_shape))),
        viscosity=viscosity,
        scheme=scheme,
        dtype=dtype,
    )
    f = gaussian_sources(fkey, grid_shape, n_sources=3, width=0.08, dtype=dtype)
    return LinearProblem(op, f.reshape(-1), name=f"convection-diffusion{len(grid_shape)}d")
