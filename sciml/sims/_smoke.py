"""A small incompressible smoke simulation on a MAC grid with a pluggable pressure solve.

Chorin splitting for inviscid, incompressible flow with a Boussinesq buoyancy force, in cell
units (h = 1): each step advects the face velocities and the cell-centred smoke density
semi-Lagrangianly (second-order Runge–Kutta back-trace, multilinear interpolation), injects smoke
at a source near the floor, adds buoyancy to the vertical faces, and projects the velocity onto
divergence-free fields. The projection solves the pressure Poisson system of
`sciml.linalg.poisson(grid_shape, bc="neumann", mask=mask)` — solid walls and obstacles are
Neumann, the system is singular and its right-hand side (the negative net outflow of every fluid
cell) is projected onto the operator's range — with a solver chosen by name or given as a
callable. That solve is the step's bottleneck and what the learned DCDM solver targets.

Velocity component d lives on the faces normal to axis d: it has `grid_shape[d] + 1` entries
along axis d, and entry k sits at coordinate k along that axis (cell centres sit at i + 1/2).
The last axis points up.
"""

import dataclasses
import functools
import itertools
import operator
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from .._core import RESULTS, Solution, check_tolerances
from ..linalg import FLUID, SOLID, fluid_components, poisson
from ..linalg._stencil import Laplacian, _check_grid, _default_float_dtype

PRESSURE_SOLVERS = ("cg", "pcg", "dcdm", "amg")


class SmokeState(eqx.Module):
    """The state of a smoke simulation.

    Attributes:
        velocity: face-normal velocity components, one per axis; component d has shape
            `grid_shape` with one more entry along axis d (the faces), in cells per time unit.
        density: smoke density at the cell centres, shape `grid_shape`.
        pressure: the last pressure solution φ (flat, length prod(grid_shape)); used as the
            initial guess of the next solve when the simulation warm-starts.
        step: the number of steps taken.
    """

    velocity: tuple[Float[Array, "..."], ...]
    density: Float[Array, "..."]
    pressure: Float[Array, " n"]
    step: Int[Array, ""]


class StepInfo(eqx.Module):
    """What the pressure solve of one step did.

    Attributes:
        iterations: iterations of the pressure solver (−1 for a callable that returns a bare
            array).
        result: the solver's `RESULTS` code (as an int32; `successful` for a bare array).
        divergence_before: ‖∇·u‖₂ over the fluid cells before the projection.
        divergence_after: ‖∇·u‖₂ over the fluid cells after the projection (equal to the
            true residual ‖b − Aφ‖ of the pressure solve, up to rounding).
    """

    iterations: Int[Array, ""]
    result: Int[Array, ""]
    divergence_before: Float[Array, ""]
    divergence_after: Float[Array, ""]


class PressureSolver(eqx.Module):
    """The pressure solve of a projection step: `(A, b, x0) -> (x, iterations, result)`.

    Build it through `SmokeSim` (argument `pressure_solver`). `method` is "cg" (sciml CG),
    "pcg" (CG with the Jacobi preconditioner), "dcdm" (the learned Deep Conjugate Direction
    Method, `model` its network or None for the shipped default), "amg" (pyamg's smoothed
    aggregation AMG as a CG preconditioner, on the host through `jax.pure_callback`) or
    "callable" (`model` is a function `(A, b) -> Solution | array`).
    """

    method: str = eqx.field(static=True)
    rtol: Float[Array, ""]
    max_steps: int = eqx.field(static=True)
    model: Any
    host: Any = eqx.field(static=True, default=None)

    def __call__(self, A: Laplacian, b: Float[Array, " n"], x0: Float[Array, " n"] | None):
        if self.method == "amg":
            return self._amg(b, x0)
        if self.method == "callable":
            out = self.model(A, b)
            if isinstance(out, Solution):
                return (
                    out.value,
                    jnp.asarray(out.stats["num_steps"], jnp.int32),
                    jnp.asarray(out.result._value, jnp.int32),
                )
            return jnp.asarray(out), jnp.asarray(-1, jnp.int32), _success_code()
        if self.method == "dcdm":
            from ..solvers import dcdm

            sol = dcdm(
                A,
                b,
                model=self.model,
                x0=x0,
                rtol=self.rtol,
                max_steps=self.max_steps,
                throw=False,
            )
        else:
            from ..solvers import cg, jacobi

            sol = cg(
                A,
                b,
                x0=x0,
                rtol=self.rtol,
                atol=0.0,
                max_steps=self.max_steps,
                M=jacobi(A) if self.method == "pcg" else None,
                throw=False,
            )
        return (
            sol.value,
            jnp.asarray(sol.stats["num_steps"], jnp.int32),
            jnp.asarray(sol.result._value, jnp.int32),
        )

    def _amg(self, b, x0):
        shapes = (
            jax.ShapeDtypeStruct(b.shape, b.dtype),
            jax.ShapeDtypeStruct((), jnp.int32),
            jax.ShapeDtypeStruct((), jnp.int32),
        )
        x0 = jnp.zeros_like(b) if x0 is None else x0
        return jax.pure_callback(self.host, shapes, b, x0, vmap_method="sequential")


def _success_code() -> Int[Array, ""]:
    return jnp.asarray(RESULTS.successful._value, jnp.int32)


class _AMGHost:
    """pyamg's SA-AMG-preconditioned CG on the fluid unknowns (host side of `pure_callback`).

    The hierarchy is built once, for the fixed obstacle geometry. Non-fluid cells (zero rows
    of the grid operator) are left out, as for every host solver of singular grid systems.
    """

    def __init__(self, A: Laplacian, *, rtol: float, max_steps: int):
        try:
            import pyamg
        except ImportError as error:  # an optional (test/benchmark) dependency
            raise ImportError(
                "pressure_solver='amg' needs pyamg (`pip install pyamg`); it is not a runtime "
                "dependency of sciml. Use 'cg', 'pcg' or 'dcdm' instead."
            ) from error
        matrix = A.to_scipy().tocsr().astype(np.float64)
        self.active = np.flatnonzero(np.asarray(A.mask).reshape(-1) == FLUID)
        self.matrix = matrix[self.active][:, self.active].tocsr()
        self.hierarchy = pyamg.smoothed_aggregation_solver(self.matrix, max_coarse=10)
        self.rtol = float(rtol)
        self.max_steps = int(max_steps)

    def __call__(self, b, x0):
        b = np.asarray(b)
        residuals: list[float] = []
        rhs = b.astype(np.float64)[self.active]
        x_sub = self.hierarchy.solve(
            rhs,
            x0=np.asarray(x0, np.float64)[self.active],
            tol=self.rtol,
            maxiter=self.max_steps,
            accel="cg",
            residuals=residuals,
        )
        x = np.zeros(b.shape, np.float64)
        x[self.active] = x_sub
        iterations = len(residuals) - 1
        norm_b = np.linalg.norm(rhs)
        ok = np.linalg.norm(rhs - self.matrix @ x_sub) <= 1.01 * self.rtol * max(norm_b, 1e-300)
        code = RESULTS.successful if ok else RESULTS.max_steps_reached
        return (
            x.astype(b.dtype),
            np.asarray(iterations, np.int32),
            np.asarray(code._value, np.int32),
        )


def plume_mask(
    grid_shape: Sequence[int],
    *,
    obstacle: Literal["sphere", "none"] = "sphere",
    centre: Sequence[float] | None = None,
    radius: float = 0.12,
) -> Int[Array, "..."]:
    """The cell types of a closed box with an optional spherical (2-D: disc) obstacle.

    Args:
        grid_shape: cells per axis (2-D or 3-D); the last axis points up.
        obstacle: "sphere" for one obstacle in the plume's path, "none" for an empty box.
        centre: the obstacle's centre in unit-box coordinates (default: horizontally centred,
            at 55 % of the height).
        radius: its radius as a fraction of the box height.

    Returns:
        An int8 array of `FLUID` and `SOLID` over the grid.
    """
    grid_shape = _check_grid(grid_shape, min_size=4)
    if obstacle not in ("sphere", "none"):
        raise ValueError(f"`obstacle` must be 'sphere' or 'none', got {obstacle!r}.")
    ndim = len(grid_shape)
    if ndim not in (2, 3):
        raise ValueError(f"smoke simulations are 2-D or 3-D, got grid_shape={grid_shape}.")
    mask = np.full(grid_shape, FLUID, np.int8)
    if obstacle == "sphere":
        centre = (0.5,) * (ndim - 1) + (0.55,) if centre is None else tuple(centre)
        if len(centre) != ndim:
            raise ValueError(f"`centre` needs {ndim} coordinates, got {centre}.")
        coords = np.meshgrid(*[(np.arange(s) + 0.5) / s for s in grid_shape], indexing="ij")
        # Distances in units of the height, so the obstacle is round on non-cubic grids.
        scale = [s / grid_shape[-1] for s in grid_shape]
        r2 = sum(((x - c) * k) ** 2 for x, c, k in zip(coords, centre, scale, strict=True))
        mask[r2 < radius**2] = SOLID
    return jnp.asarray(mask)


def _sample(field: Array, origin: Sequence[float], points: Array) -> Array:
    """Multilinear interpolation of `field` (entry idx at idx + origin) at `points` (..., d).

    Points outside the samples are clamped to the nearest one. All 2^d corners are read by one
    gather (XLA compiles one gather much faster than 2^d of them).
    """
    dtype = field.dtype
    ndim = field.ndim
    strides = [int(np.prod(field.shape[axis + 1 :])) for axis in range(ndim)]
    base = jnp.zeros(points.shape[:-1], jnp.int32)
    fracs = []
    for axis, size in enumerate(field.shape):
        g = jnp.clip(points[..., axis] - origin[axis], 0, size - 1)
        low = jnp.clip(jnp.floor(g).astype(jnp.int32), 0, max(size - 2, 0))
        base = base + strides[axis] * low
        fracs.append(g - low.astype(dtype))
    corners = list(itertools.product((0, 1), repeat=ndim))
    offsets = np.array(
        [sum(c * s for c, s in zip(corner, strides, strict=True)) for corner in corners]
    )
    index = base[..., None] + jnp.asarray(offsets, jnp.int32).reshape((1,) * base.ndim + (-1,))
    values = field.reshape(-1)[index]
    weights = jnp.stack(
        [
            functools.reduce(
                operator.mul, [f if c else 1 - f for f, c in zip(fracs, corner, strict=True)]
            )
            for corner in corners
        ],
        axis=-1,
    )
    return jnp.sum(values * weights, axis=-1)


def _extrapolate(field: Array, inside: Array) -> Array:
    """`field` with each outside cell replaced by the mean of its inside face-neighbours."""
    total = jnp.zeros_like(field)
    count = jnp.zeros_like(field)
    padded = jnp.pad(field, 1)
    padded_inside = jnp.pad(inside, 1).astype(field.dtype)
    interior = [slice(1, -1)] * field.ndim
    for axis in range(field.ndim):
        for side in (-1, 1):
            index = list(interior)
            index[axis] = slice(1 + side, field.shape[axis] + 1 + side)
            weight = padded_inside[tuple(index)]
            total = total + weight * padded[tuple(index)]
            count = count + weight
    return jnp.where(inside, field, total / jnp.maximum(count, 1))


def _origin(ndim: int, face_axis: int | None) -> tuple[float, ...]:
    # Cell centres sit at index + 1/2; faces normal to `face_axis` at the integer index there.
    return tuple(0.0 if axis == face_axis else 0.5 for axis in range(ndim))


def _positions(shape: Sequence[int], origin: Sequence[float], dtype) -> Array:
    axes = [jnp.arange(s, dtype=dtype) + o for s, o in zip(shape, origin, strict=True)]
    return jnp.stack(jnp.meshgrid(*axes, indexing="ij"), axis=-1)


def _face_shape(grid_shape: Sequence[int], axis: int) -> tuple[int, ...]:
    return tuple(s + (1 if a == axis else 0) for a, s in enumerate(grid_shape))


def _pad_axis(u: Array, axis: int) -> Array:
    """Pad one zero on both ends of `axis` (cell differences → face array)."""
    widths = [(0, 0)] * u.ndim
    widths[axis] = (1, 1)
    return jnp.pad(u, widths)


class SmokeSim(eqx.Module):
    """A rising smoke plume in a closed box with obstacles, on a MAC grid (2-D or 3-D).

    Everything is in cell units (h = 1). A step advects velocity and density (semi-Lagrangian,
    RK2 back-trace, multilinear interpolation), sets the density of the source cells to
    `source_density` and the vertical velocity on their faces to `inflow`, adds the buoyancy
    `buoyancy · density` to the vertical faces, and projects. The projection solves
    `A φ = b` with `A = poisson(grid_shape, bc="neumann", mask=mask)` (the integer stencil, zero
    rows for solid cells) and `b` the negative net outflow of each fluid cell projected onto
    the range of `A`, then subtracts the face differences of φ from the open faces, so that
    the new net outflow of every fluid cell is the solve's residual.

    The step and `run` are pure and jittable; `run` is a `lax.scan` over the steps (with the
    "amg" solver the solve is a host callback inside the scan).

    Args:
        grid_shape: cells per axis, 2-D or 3-D, each at least 4; the last axis points up.
        mask: cell types over the grid (`FLUID`, `SOLID`, `EMPTY`; a boolean mask means fluid
            (True) / solid (False)). Default: `plume_mask(grid_shape)` (one round obstacle).
            Domain faces are always solid walls.
        pressure_solver: "cg", "pcg" (Jacobi-preconditioned CG), "dcdm", "amg" (needs pyamg;
            runs on the host) or a callable `(A, b) -> Solution | array`.
        model: the DCDM network (any callable `r -> direction` that `sciml.solvers.dcdm`
            accepts); None uses the shipped default for the grid's dimension.
        rtol: relative tolerance of every pressure solve (‖b − Aφ‖ ≤ rtol‖b‖).
        max_steps: the iteration limit of every pressure solve (a static int).
        dt: the time step (cells travel |u|·dt per step).
        buoyancy: upward acceleration per unit density.
        source_density: the density held in the source cells.
        inflow: the vertical velocity held on the faces of the source cells.
        source_radius: the source's radius as a fraction of the box height (at least one
            cell); the source is centred horizontally, its centre at 10 % of the height.
        warm_start: start each solve from the previous step's pressure (default: from zero,
            as in the DCDM reference harness).
        dtype: floating dtype of the fields; JAX's default float if omitted.

    Raises:
        ValueError: for a bad grid, mask, solver name or parameter.
        ImportError: for "amg" without pyamg.
    """

    operator: Laplacian
    solver: PressureSolver
    open_faces: tuple[Bool[Array, "..."], ...]
    source: Bool[Array, "..."]
    dt: Float[Array, ""]
    buoyancy: Float[Array, ""]
    source_density: Float[Array, ""]
    inflow: Float[Array, ""]
    region: Int[Array, " n"]
    region_size: Float[Array, " n+1"]
    warm_start: bool = eqx.field(static=True)

    def __init__(
        self,
        grid_shape: Sequence[int] = (64, 64),
        *,
        mask: ArrayLike | None = None,
        pressure_solver: str | Callable[..., Any] = "cg",
        model: Any = None,
        rtol: float | ArrayLike = 1e-4,
        max_steps: int = 500,
        dt: float | ArrayLike = 1.0,
        buoyancy: float | ArrayLike = 0.05,
        source_density: float | ArrayLike = 1.0,
        inflow: float | ArrayLike = 1.0,
        source_radius: float = 0.08,
        warm_start: bool = False,
        dtype: Any = None,
    ):
        grid_shape = _check_grid(grid_shape, min_size=4)
        ndim = len(grid_shape)
        if ndim not in (2, 3):
            raise ValueError(f"smoke simulations are 2-D or 3-D, got grid_shape={grid_shape}.")
        dtype = _default_float_dtype(dtype)
        if mask is None:
            mask = plume_mask(grid_shape)
        mask = jnp.asarray(mask)
        if mask.shape != grid_shape:
            raise ValueError(f"mask shape {mask.shape} does not match grid_shape {grid_shape}.")
        if mask.dtype == jnp.bool_:
            mask = jnp.where(mask, FLUID, SOLID)
        mask = mask.astype(jnp.int8)
        if not bool(jnp.any(mask == FLUID)):
            raise ValueError("the mask has no fluid cells; mark the fluid region with FLUID (1).")
        if not (isinstance(max_steps, int) and not isinstance(max_steps, bool) and max_steps > 0):
            raise ValueError(f"`max_steps` must be a positive Python int, got {max_steps!r}.")
        if not 0 < source_radius < 0.5:
            raise ValueError(f"`source_radius` must lie in (0, 0.5), got {source_radius}.")
        rtol_value = float(np.asarray(rtol))
        if not 0 < rtol_value < 1:
            raise ValueError(f"`rtol` must lie in (0, 1), got {rtol_value}.")

        self.operator = poisson(grid_shape, bc="neumann", mask=mask, dtype=dtype)
        # The solvers' own check cannot see `rtol` (it becomes an array leaf of the state):
        # check it against the dtype here, before a run spends `max_steps` on every step.
        check_tolerances(rtol_value, 0.0, self.operator.dtype)
        # The geometry is fixed, so the floating fluid regions (where the rhs must have zero
        # mean) are found once here rather than in every step.
        labels, floating = fluid_components(self.operator)
        n = self.operator.n
        region = np.where(np.asarray(floating).reshape(-1) > 0, np.asarray(labels).reshape(-1), n)
        self.region = jnp.asarray(region, jnp.int32)
        self.region_size = jnp.asarray(np.maximum(np.bincount(region, minlength=n + 1), 1), dtype)
        self.solver = _pressure_solver(
            pressure_solver, self.operator, model=model, rtol=rtol, max_steps=max_steps
        )

        nonsolid = np.asarray(mask) != SOLID
        open_faces = []
        for axis in range(ndim):
            # A face carries flow when neither neighbour is solid; domain faces are walls.
            lo = [slice(None)] * ndim
            hi = [slice(None)] * ndim
            lo[axis], hi[axis] = slice(None, -1), slice(1, None)
            inner = nonsolid[tuple(lo)] & nonsolid[tuple(hi)]
            widths = [(0, 0)] * ndim
            widths[axis] = (1, 1)
            open_faces.append(jnp.asarray(np.pad(inner, widths)))
        self.open_faces = tuple(open_faces)

        coords = np.meshgrid(*[np.arange(s) + 0.5 for s in grid_shape], indexing="ij")
        height = grid_shape[-1]
        centre = [s / 2 for s in grid_shape[:-1]] + [0.1 * height]
        r2 = sum((x - c) ** 2 for x, c in zip(coords, centre, strict=True))
        # At least one cell wide, so coarse grids still have a source.
        radius = max(source_radius * height, 1.0)
        source = (r2 <= radius**2) & (np.asarray(mask) == FLUID)
        if not source.any():
            raise ValueError(
                "the smoke source covers no fluid cell; enlarge `source_radius` or free the "
                "cells near the bottom centre of the mask."
            )
        self.source = jnp.asarray(source)
        self.dt = jnp.asarray(dt, dtype)
        self.buoyancy = jnp.asarray(buoyancy, dtype)
        self.source_density = jnp.asarray(source_density, dtype)
        self.inflow = jnp.asarray(inflow, dtype)
        self.warm_start = bool(warm_start)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return self.operator.grid_shape

    @property
    def mask(self) -> Int[Array, "..."]:
        return self.operator.mask

    @property
    def dtype(self):
        return self.operator.dtype

    def init(self) -> SmokeState:
        """The state at rest: zero velocity and density, zero pressure."""
        shape, dtype = self.grid_shape, self.dtype
        return SmokeState(
            velocity=tuple(
                jnp.zeros(_face_shape(shape, axis), dtype) for axis in range(len(shape))
            ),
            density=jnp.zeros(shape, dtype),
            pressure=jnp.zeros(int(np.prod(shape)), dtype),
            step=jnp.asarray(0, jnp.int32),
        )

    def project_to_range(self, b: Float[Array, " n"]) -> Float[Array, " n"]:
        """`sciml.linalg.project_to_range(self.operator, b)`, with the regions found once."""
        b = jnp.where(self.mask.reshape(-1) == FLUID, b, 0)
        sums = jnp.zeros(self.operator.n + 1, b.dtype).at[self.region].add(b)
        means = sums / self.region_size
        return jnp.where(self.region < self.operator.n, b - means[self.region], b)

    def divergence(self, velocity: Sequence[Array]) -> Float[Array, "..."]:
        """The net outflow Σ_d (u_d[i+1] − u_d[i]) of every cell (zero outside fluid cells)."""
        div = sum(jnp.diff(u, axis=axis) for axis, u in enumerate(velocity))
        return jnp.where(self.mask == FLUID, div, 0)

    def _velocity_at(self, velocity: Sequence[Array], points: Array) -> Array:
        ndim = len(self.grid_shape)
        return jnp.stack(
            [_sample(u, _origin(ndim, axis), points) for axis, u in enumerate(velocity)], axis=-1
        )

    def _backtrace(self, velocity: Sequence[Array], points: Array) -> Array:
        # Second-order Runge–Kutta (midpoint) back along the flow.
        half = points - 0.5 * self.dt * self._velocity_at(velocity, points)
        return points - self.dt * self._velocity_at(velocity, half)

    def advance(self, state: SmokeState) -> tuple[SmokeState, Float[Array, " n"]]:
        """Advection, source and buoyancy: the state before projection and the pressure rhs."""
        shape, dtype = self.grid_shape, self.dtype
        ndim = len(shape)
        velocity = state.velocity
        centres = _positions(shape, _origin(ndim, None), dtype)
        # Back-traced points near an obstacle interpolate between fluid and solid cells; the
        # solid cells take the mean density of their fluid neighbours, not zero, so that the
        # interpolation does not drain smoke into the obstacle.
        source = _extrapolate(state.density, self.mask != SOLID)
        density = _sample(source, _origin(ndim, None), self._backtrace(velocity, centres))
        new_velocity = []
        for axis, u in enumerate(velocity):
            origin = _origin(ndim, axis)
            faces = _positions(u.shape, origin, dtype)
            new_velocity.append(_sample(u, origin, self._backtrace(velocity, faces)))

        # Sources: hold the density in the source cells, blow upwards through their faces.
        density = jnp.where(self.source, self.source_density, density)
        density = jnp.where(self.mask == SOLID, 0, density)
        up = ndim - 1
        w = new_velocity[up]
        below = [(1, 0) if a == up else (0, 0) for a in range(ndim)]
        above = [(0, 1) if a == up else (0, 0) for a in range(ndim)]
        source_faces = jnp.pad(self.source, below) | jnp.pad(self.source, above)
        w = jnp.where(source_faces, self.inflow, w)
        # Buoyancy: the mean density of the two cells beside each vertical face.
        face_density = 0.5 * (jnp.pad(density, below) + jnp.pad(density, above))
        w = w + self.dt * self.buoyancy * face_density
        new_velocity[up] = w
        new_velocity = tuple(
            jnp.where(open_, u, 0) for open_, u in zip(self.open_faces, new_velocity, strict=True)
        )
        rhs = self.project_to_range(-self.divergence(new_velocity).reshape(-1))
        new_state = SmokeState(new_velocity, density, state.pressure, state.step)
        return new_state, rhs

    def project(self, state: SmokeState, pressure: Float[Array, " n"]) -> SmokeState:
        """Subtract the face differences of `pressure` (fluid cells only) from the open faces."""
        shape = self.grid_shape
        phi = jnp.where(self.mask == FLUID, pressure.reshape(shape), 0)
        velocity = tuple(
            jnp.where(open_, u - _pad_axis(jnp.diff(phi, axis=axis), axis), 0)
            for axis, (open_, u) in enumerate(zip(self.open_faces, state.velocity, strict=True))
        )
        return SmokeState(velocity, state.density, phi.reshape(-1), state.step + 1)

    def solve_pressure(self, state: SmokeState, rhs: Float[Array, " n"]):
        """`(φ, iterations, result)` of the pressure system for `rhs`."""
        x0 = state.pressure if self.warm_start else None
        return self.solver(self.operator, rhs, x0)

    def step(self, state: SmokeState) -> tuple[SmokeState, StepInfo]:
        """One time step: advance, solve for the pressure, project."""
        moved, rhs = self.advance(state)
        pressure, iterations, result = self.solve_pressure(moved, rhs)
        new_state = self.project(moved, pressure)
        fluid = (self.mask == FLUID).reshape(-1)
        before = jnp.linalg.norm(jnp.where(fluid, rhs, 0))
        after = jnp.linalg.norm(self.divergence(new_state.velocity))
        return new_state, StepInfo(iterations, result, before, after)

    def run(
        self, state: SmokeState, n_steps: int, *, record_every: int | None = None
    ) -> tuple[SmokeState, StepInfo, Float[Array, "frames ..."]]:
        """Take `n_steps` steps under `lax.scan`.

        Args:
            state: the initial state (`self.init()`).
            n_steps: number of steps (static).
            record_every: keep the density every this many steps (static; must divide
                `n_steps`); default: only the final one.

        Returns:
            `(final_state, info, frames)`: `info` a `StepInfo` of arrays of length `n_steps`;
            `frames` the density after every `record_every` steps,
            shape `(n_steps // record_every, *grid_shape)`.
        """
        n_steps, record_every = _check_steps(n_steps, record_every)

        def inner(carry, _):
            return self.step(carry)

        def outer(carry, _):
            carry, info = lax.scan(inner, carry, None, length=record_every)
            return carry, (info, carry.density)

        state, (info, frames) = lax.scan(outer, state, None, length=n_steps // record_every)
        info = jax.tree.map(lambda x: x.reshape((n_steps,) + x.shape[2:]), info)
        return state, info, frames


def _check_steps(n_steps: Any, record_every: Any) -> tuple[int, int]:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 1:
        raise ValueError(f"`n_steps` must be a positive Python int, got {n_steps!r}.")
    n_steps = int(n_steps)
    record_every = n_steps if record_every is None else record_every
    if (
        isinstance(record_every, bool)
        or not isinstance(record_every, int | np.integer)
        or record_every < 1
        or n_steps % record_every
    ):
        raise ValueError(
            f"`record_every` must be a positive int that divides n_steps = {n_steps}, got "
            f"{record_every!r}."
        )
    return n_steps, int(record_every)


def _pressure_solver(
    pressure_solver: Any, A: Laplacian, *, model: Any, rtol: Any, max_steps: int
) -> PressureSolver:
    rtol_array = jnp.asarray(rtol, A.dtype)
    if callable(pressure_solver) and not isinstance(pressure_solver, str):
        return PressureSolver("callable", rtol_array, max_steps, pressure_solver)
    if pressure_solver not in PRESSURE_SOLVERS:
        raise ValueError(
            f"`pressure_solver` must be one of {', '.join(map(repr, PRESSURE_SOLVERS))} or a "
            f"callable (A, b) -> Solution | array, got {pressure_solver!r}."
        )
    if model is not None and pressure_solver != "dcdm":
        raise ValueError(
            f"`model` is only used with pressure_solver='dcdm', not {pressure_solver!r}."
        )
    host = None
    if pressure_solver == "amg":
        host = _AMGHost(A, rtol=float(np.asarray(rtol)), max_steps=max_steps)
    if pressure_solver == "dcdm":
        try:
            from ..solvers._dcdm import default_dcdm_model
        except ImportError as error:
            raise ImportError(
                "pressure_solver='dcdm' needs sciml.solvers.dcdm, which this installation "
                "lacks; use 'cg' or 'pcg'."
            ) from error
        if model is None:
            # Loaded once here rather than inside every traced solve.
            model = default_dcdm_model(len(A.grid_shape))
    return PressureSolver(pressure_solver, rtol_array, max_steps, model, host)


@dataclasses.dataclass
class SmokeRun:
    """A finished smoke simulation, on the host.

    Attributes:
        method: the pressure solver's name ("callable" for a user function).
        grid_shape: cells per axis.
        n_steps: steps taken.
        mode: "scan" (one compiled `lax.scan` over all steps) or "loop" (a Python loop of
            compiled pieces, so that each solve can be timed).
        frames: density frames, shape (n_frames, *grid_shape).
        iterations: pressure-solver iterations per step.
        results: `RESULTS` codes per step (int).
        divergence_before, divergence_after: ‖∇·u‖₂ over the fluid cells around each projection.
        solve_s: wall time of each pressure solve (loop mode; None in scan mode).
        total_s: wall time of the whole simulation, compiled (the steady-state run).
        compile_s: the first run's extra time over the steady state (scan mode: whole run;
            loop mode: one step), i.e. tracing and compilation; about 0 when the same
            configuration was compiled before in this process.
        sim: the `SmokeSim` that ran.
        final_state: the last `SmokeState`.
    """

    method: str
    grid_shape: tuple[int, ...]
    n_steps: int
    mode: str
    frames: np.ndarray
    iterations: np.ndarray
    results: np.ndarray
    divergence_before: np.ndarray
    divergence_after: np.ndarray
    solve_s: np.ndarray | None
    total_s: float
    compile_s: float
    sim: SmokeSim
    final_state: SmokeState

    @property
    def converged(self) -> bool:
        """Whether every pressure solve met its tolerance."""
        return bool(np.all(self.results == RESULTS.successful._value))

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (no arrays but the per-step iterations)."""
        return {
            "method": self.method,
            "grid_shape": list(self.grid_shape),
            "n_steps": self.n_steps,
            "mode": self.mode,
            "converged": self.converged,
            "iterations_mean": float(np.mean(self.iterations)),
            "iterations_max": int(np.max(self.iterations)),
            "iterations": [int(i) for i in self.iterations],
            "max_relative_divergence": float(
                np.max(self.divergence_after / np.maximum(self.divergence_before, 1e-300))
            ),
            "total_s": self.total_s,
            "compile_s": self.compile_s,
            "solve_s_total": None if self.solve_s is None else float(np.sum(self.solve_s)),
        }


@eqx.filter_jit
def _run_steps(sim: SmokeSim, state: SmokeState, n_steps: int, record_every: int):
    return sim.run(state, n_steps, record_every=record_every)


@eqx.filter_jit
def _advance(sim: SmokeSim, state: SmokeState):
    return sim.advance(state)


@eqx.filter_jit
def _solve_pressure(sim: SmokeSim, state: SmokeState, rhs: Array):
    return sim.solve_pressure(state, rhs)


@eqx.filter_jit
def _project(sim: SmokeSim, state: SmokeState, pressure: Array):
    return sim.project(state, pressure)


@eqx.filter_jit
def _divergence_norms(sim: SmokeSim, rhs: Array, state: SmokeState):
    fluid = sim.mask.reshape(-1) == FLUID
    return jnp.linalg.norm(jnp.where(fluid, rhs, 0)), jnp.linalg.norm(
        sim.divergence(state.velocity)
    )


def smoke_plume(
    grid_shape: Sequence[int] = (64, 64),
    *,
    n_steps: int = 100,
    record_every: int | None = None,
    mode: Literal["scan", "loop"] = "scan",
    throw: bool = True,
    **sim_options: Any,
) -> SmokeRun:
    """Simulate a rising smoke plume and time it.

    Args:
        grid_shape: cells per axis (2-D or 3-D).
        n_steps: number of time steps (static).
        record_every: keep the density every this many steps (must divide `n_steps`).
        mode: "scan" compiles the whole run as one `lax.scan` (fastest; per-step solve times
            are not observable); "loop" runs compiled advance / solve / project pieces from
            Python and times every solve. Scan mode runs the simulation twice (the first run
            compiles), loop mode one extra step.
        throw: raise a `RuntimeError` after the run if any pressure solve failed.
        **sim_options: passed to `SmokeSim` (mask, pressure_solver, model, rtol, max_steps,
            dt, buoyancy, ...).

    Returns:
        A `SmokeRun`.

    Raises:
        ValueError: for bad options.
        RuntimeError: if `throw` and a pressure solve did not converge.

    References:
        R. Bridson, "Fluid Simulation for Computer Graphics", 2nd ed., CRC Press (2015), ch. 2–5
        (MAC grid, semi-Lagrangian advection, pressure projection); Kaneda et al., "A Deep
        Conjugate Direction Method for Iteratively Solving Linear Systems", ICML 2023 (the
        smoke-plume pressure systems).
    """
    if mode not in ("scan", "loop"):
        raise ValueError(f"`mode` must be 'scan' or 'loop', got {mode!r}.")
    n_steps, record_every = _check_steps(n_steps, record_every)
    sim = SmokeSim(grid_shape, **sim_options)
    state = sim.init()
    method = sim.solver.method
    if mode == "scan":
        # The first call compiles (unless this configuration ran before) and runs; the second
        # is the steady-state run.
        start = time.perf_counter()
        jax.block_until_ready(_run_steps(sim, state, n_steps, record_every))
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        final, info, frames = jax.block_until_ready(_run_steps(sim, state, n_steps, record_every))
        total_s = time.perf_counter() - start
        compile_s = max(first_s - total_s, 0.0)
        solve_s = None
    else:
        if method == "amg":

            def solve(moved, rhs):
                return sim.solve_pressure(moved, rhs)
        else:

            def solve(moved, rhs):
                return _solve_pressure(sim, moved, rhs)

        def one_step(current):
            moved, rhs = jax.block_until_ready(_advance(sim, current))
            start = time.perf_counter()
            pressure, iterations, result = jax.block_until_ready(solve(moved, rhs))
            elapsed = time.perf_counter() - start
            new = _project(sim, moved, pressure)
            before, after = _divergence_norms(sim, rhs, new)
            return new, (iterations, result, before, after), elapsed

        # A first, untimed step compiles every piece (the shapes never change).
        start = time.perf_counter()
        jax.block_until_ready(one_step(state))
        first_s = time.perf_counter() - start
        frames_list, records, solve_times = [], [], []
        final = state
        start_all = time.perf_counter()
        for k in range(n_steps):
            final, record, elapsed = one_step(final)
            records.append(record)
            solve_times.append(elapsed)
            if (k + 1) % record_every == 0:
                frames_list.append(final.density)
        jax.block_until_ready(final)
        total_s = time.perf_counter() - start_all
        compile_s = max(first_s - total_s / n_steps, 0.0)
        info = StepInfo(*(jnp.stack([r[i] for r in records]) for i in range(4)))
        frames = jnp.stack(frames_list)
        solve_s = np.asarray(solve_times)
    out = SmokeRun(
        method=method,
        grid_shape=sim.grid_shape,
        n_steps=n_steps,
        mode=mode,
        frames=np.asarray(frames),
        iterations=np.asarray(info.iterations),
        results=np.asarray(info.result),
        divergence_before=np.asarray(info.divergence_before),
        divergence_after=np.asarray(info.divergence_after),
        solve_s=solve_s,
        total_s=total_s,
        compile_s=compile_s,
        sim=sim,
        final_state=final,
    )
    if throw and not out.converged:
        bad = int(np.sum(out.results != RESULTS.successful._value))
        raise RuntimeError(
            f"{bad} of {n_steps} pressure solves ({method}) did not converge (e.g. step "
            f"{int(np.argmax(out.results != RESULTS.successful._value))}: max iterations "
            f"{int(out.iterations.max())}); raise `max_steps`, loosen `rtol` or choose another "
            f"pressure_solver. Pass throw=False to get the run anyway."
        )
    return out
