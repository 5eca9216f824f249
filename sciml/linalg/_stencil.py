"""Matrix-free finite-difference operators on regular 2-D and 3-D grids.

Every operator here is a (2d+1)-point stencil: `stencil()` returns its coefficients as arrays over
the grid, from which the generic product, the diagonal and the SciPy CSR copy are built. The
constant-coefficient Laplacian overrides the product with a fused path that reads nothing but
`x` (and the cell mask when there is one), which is what makes large 3-D CG solves
memory-bandwidth bound rather than coefficient bound.

Vectors are flat, in C (row-major) order over `grid_shape`.
"""

from collections.abc import Sequence
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jax import lax
from jaxtyping import Array, ArrayLike, Float, Int

from .._core import check_dtype, is_concrete
from ._base import AbstractOperator

# Cell types of a fluid mask. Solid cells are walls/obstacles (zero normal flow: Neumann);
# empty cells are air at zero pressure (Dirichlet). Only fluid cells are unknowns.
SOLID = 0
FLUID = 1
EMPTY = 2

_BoundaryName = Literal["dirichlet", "neumann"]
BoundarySpec = _BoundaryName | Sequence[_BoundaryName | tuple[_BoundaryName, _BoundaryName]]


def _default_float_dtype(dtype) -> np.dtype:
    if dtype is None:
        return np.dtype(jnp.result_type(float))
    return check_dtype(dtype)


def _check_grid(grid_shape: Sequence[int], *, min_size: int = 1) -> tuple[int, ...]:
    grid_shape = tuple(int(s) for s in grid_shape)
    if len(grid_shape) not in (1, 2, 3):
        raise ValueError(f"grids must be 1-, 2- or 3-D, got grid_shape={grid_shape}.")
    if any(s < min_size for s in grid_shape):
        raise ValueError(f"every grid size must be at least {min_size}, got {grid_shape}.")
    return grid_shape


def _normalise_bc(bc: BoundarySpec, ndim: int) -> tuple[tuple[str, str], ...]:
    valid = ("dirichlet", "neumann")

    def check(name):
        if name not in valid:
            raise ValueError(f"boundary conditions must be 'dirichlet' or 'neumann', got {name!r}.")
        return name

    if isinstance(bc, str):
        return ((check(bc), check(bc)),) * ndim
    bc = tuple(bc)
    if len(bc) != ndim:
        raise ValueError(
            f"give one boundary condition per axis ({ndim}), or one string for all; got {bc!r}."
        )
    faces = []
    for item in bc:
        if isinstance(item, str):
            faces.append((check(item), check(item)))
        else:
            low, high = item
            faces.append((check(low), check(high)))
    return tuple(faces)


def _spacing(spacing, ndim: int, default: Sequence[float]) -> tuple[float, ...]:
    if spacing is None:
        return tuple(float(h) for h in default)
    if np.ndim(spacing) == 0:
        spacing = (spacing,) * ndim
    spacing = tuple(float(h) for h in spacing)
    if len(spacing) != ndim or any(not h > 0 for h in spacing):
        raise ValueError(f"`spacing` must be positive, one per axis, got {spacing}.")
    return spacing


def _neighbour(u: Array, axis: int, side: int, fill) -> Array:
    """`u` shifted so that entry i holds u[i + side] along `axis`, `fill` past the edge."""
    config = [(0, 0, 0)] * u.ndim
    config[axis] = (-1, 1, 0) if side > 0 else (1, -1, 0)
    return lax.pad(u, jnp.asarray(fill, u.dtype), config)


def _face_slice(grid_shape: tuple[int, ...], axis: int, side: int) -> tuple[slice, ...]:
    """The slice of a once-padded grid array that holds each cell's neighbour at `side`."""
    index = [slice(1, s + 1) for s in grid_shape]
    index[axis] = slice(1 + side, 1 + side + grid_shape[axis])
    return tuple(index)


class AbstractStencilOperator(AbstractOperator):
    """A (2d+1)-point stencil on a regular grid of `grid_shape` cells.

    Subclasses define `stencil()`; the product, diagonal and CSR copy follow from it.
    """

    @property
    def grid_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def n(self) -> int:
        return int(np.prod(self.grid_shape))

    def stencil(self) -> tuple[Array, dict[tuple[int, int], Array]]:
        """The coefficients of the stencil.

        Returns:
            `(centre, off)`: `centre` holds A[i, i] over the grid; `off[(axis, side)]` holds
            A[i, i + side·e_axis] over the grid (side = ±1), zero where that neighbour is outside
            the grid or not coupled.
        """
        raise NotImplementedError

    def mv(self, x):
        centre, off = self.stencil()
        u = x.reshape(self.grid_shape)
        padded = jnp.pad(u, 1)
        y = centre * u
        for (axis, side), coeff in off.items():
            y = y + coeff * padded[_face_slice(self.grid_shape, axis, side)]
        return y.reshape(x.shape)

    def diagonal(self):
        return self.stencil()[0].reshape(-1)

    def to_scipy(self) -> sp.csr_array:
        centre, off = self.stencil()
        index = np.arange(self.n).reshape(self.grid_shape)
        rows, cols, vals = [index.ravel()], [index.ravel()], [np.asarray(centre).ravel()]
        for (axis, side), coeff in off.items():
            coeff = np.asarray(coeff)
            here = [slice(None)] * len(self.grid_shape)
            there = [slice(None)] * len(self.grid_shape)
            here[axis] = slice(0, -1) if side > 0 else slice(1, None)
            there[axis] = slice(1, None) if side > 0 else slice(0, -1)
            rows.append(index[tuple(here)].ravel())
            cols.append(index[tuple(there)].ravel())
            vals.append(coeff[tuple(here)].ravel())
        matrix = sp.coo_array(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(self.n, self.n),
        ).tocsr()
        matrix.eliminate_zeros()
        return matrix


class Laplacian(AbstractStencilOperator):
    """The cell-centred finite-difference −Δ + shift, with a fluid/solid/empty cell mask.

    On cell i and each of its 2d faces: a fluid neighbour j couples as (u_i − u_j)/h²; an empty
    cell or a Dirichlet domain face (zero value beyond the face) contributes u_i/h²; a solid cell
    or a Neumann domain face contributes nothing (zero flux). Rows and columns of non-fluid cells
    are zero, as in the pressure systems of incompressible fluid simulation. With spacing 1 this is
    the integer stencil (2d on the diagonal, −1 off it).

    Construct with `poisson` or `helmholtz`.
    """

    shape_: tuple[int, ...] = eqx.field(static=True)
    spacing: tuple[float, ...] = eqx.field(static=True)
    bc: tuple[tuple[str, str], ...] = eqx.field(static=True)
    mask: Int[Array, "..."] | None
    shift: Float[Array, ""]

    @property
    def grid_shape(self):
        return self.shape_

    @property
    def dtype(self):
        return self.shift.dtype

    def _face_types(self, axis: int, side: int):
        boundary = self.bc[axis][0 if side < 0 else 1]
        if self.mask is None:
            return None
        fill = EMPTY if boundary == "dirichlet" else SOLID
        return _neighbour(self.mask, axis, side, fill)

    def _boundary_weight(self, axis: int, side: int) -> np.ndarray:
        # 1 where the face leads to a fluid or Dirichlet neighbour, 0 at a Neumann domain face;
        # a constant over the grid, folded into the compiled product.
        size = self.shape_[axis]
        weight = np.ones(size)
        if self.bc[axis][0 if side < 0 else 1] == "neumann":
            weight[0 if side < 0 else -1] = 0.0
        shape = [1] * len(self.shape_)
        shape[axis] = size
        return weight.reshape(shape)

    def mv(self, x):
        u = x.reshape(self.shape_)
        dtype = u.dtype
        y = self.shift.astype(dtype) * u
        # Pad once and slice every neighbour out of the padded array: XLA fuses the slices into
        # one pass, where a pad per face would materialise 2d shifted copies on CPU.
        padded = jnp.pad(u, 1)
        if self.mask is not None:
            fill = [
                tuple(EMPTY if face == "dirichlet" else SOLID for face in faces)
                for faces in self.bc
            ]
            padded_mask = jnp.pad(self.mask, 1, constant_values=fill)
        for axis, h in enumerate(self.spacing):
            inv_h2 = jnp.asarray(1.0 / h**2, dtype)
            for side in (-1, 1):
                neighbour = padded[_face_slice(self.shape_, axis, side)]
                if self.mask is None:
                    weight = self._boundary_weight(axis, side)
                    if np.all(weight == 1):
                        y = y + inv_h2 * (u - neighbour)
                    else:
                        y = y + inv_h2 * (jnp.asarray(weight, dtype) * u - neighbour)
                else:
                    types = padded_mask[_face_slice(self.shape_, axis, side)]
                    couples = (types != SOLID).astype(dtype)
                    neighbour = jnp.where(types == FLUID, neighbour, 0)
                    y = y + inv_h2 * (couples * u - neighbour)
        if self.mask is not None:
            y = jnp.where(self.mask == FLUID, y, 0)
        return y.reshape(x.shape)

    def stencil(self):
        dtype = self.dtype
        centre = jnp.zeros(self.shape_, dtype)
        off = {}
        fluid = None if self.mask is None else (self.mask == FLUID)
        for axis, h in enumerate(self.spacing):
            inv_h2 = 1.0 / h**2
            for side in (-1, 1):
                if self.mask is None:
                    couples = jnp.asarray(self._boundary_weight(axis, side), dtype)
                    coupled_to_unknown = jnp.ones(self.shape_, dtype)
                else:
                    types = self._face_types(axis, side)
                    couples = (types != SOLID).astype(dtype)
                    coupled_to_unknown = (types == FLUID).astype(dtype)
                centre = centre + inv_h2 * couples
                off[(axis, side)] = -inv_h2 * coupled_to_unknown
        # The shift last, rounded once (MATLAB's `delsq + c*speye`): added first, eager code
        # rounds after every face while XLA, under `jit`, folds the constant faces together,
        # so the same operator had two diagonals an ulp apart.
        centre = centre + self.shift
        if fluid is not None:
            centre = jnp.where(fluid, centre, 0)
            off = {k: jnp.where(fluid, v, 0) for k, v in off.items()}
        return centre, off


def poisson(
    grid_shape: Sequence[int],
    *,
    spacing: float | Sequence[float] = 1.0,
    bc: BoundarySpec = "dirichlet",
    mask: ArrayLike | None = None,
    shift: float | ArrayLike = 0.0,
    dtype=None,
) -> Laplacian:
    """The cell-centred 5-point (2-D) or 7-point (3-D) Laplacian −Δ_h (+ shift·I).

    Args:
        grid_shape: cells per axis.
        spacing: cell size h (one per axis or one for all). The default 1 gives the integer stencil
            of pressure solvers (2d on the diagonal); use 1/N for the unit cube.
        bc: "dirichlet" (zero value beyond the domain face) or "neumann" (zero flux), for all
            faces, one per axis, or a (low, high) pair per axis.
        mask: optional integer cell types over the grid: `FLUID` (1, unknown), `SOLID` (0,
            wall/obstacle: Neumann), `EMPTY` (2, air at zero pressure: Dirichlet). A boolean mask
            means fluid (True) / solid (False). Non-fluid cells get zero rows and columns.
        shift: added to the diagonal of fluid cells (negative for Helmholtz, positive for a
            shifted Laplacian). May be a traced array.
        dtype: floating dtype of the coefficients; JAX's default float if omitted.

    Returns:
        A `Laplacian` operator on flat vectors of length prod(grid_shape).

    Raises:
        ValueError: for a bad grid, spacing, boundary specification, mask shape or mask value.
    """
    grid_shape = _check_grid(grid_shape)
    dtype = _default_float_dtype(dtype)
    ndim = len(grid_shape)
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.shape != grid_shape:
            raise ValueError(f"mask shape {mask.shape} does not match grid_shape {grid_shape}.")
        if mask.dtype == jnp.bool_:
            mask = jnp.where(mask, FLUID, SOLID)
        elif is_concrete(mask):
            values = np.unique(np.asarray(mask))
            unknown = values[~np.isin(values, (SOLID, FLUID, EMPTY))]
            if unknown.size:
                raise ValueError(
                    f"mask values must be SOLID (0), FLUID (1) or EMPTY (2), got "
                    f"{unknown.tolist()}."
                )
        mask = mask.astype(jnp.int8)
    return Laplacian(
        shape_=grid_shape,
        spacing=_spacing(spacing, ndim, (1.0,) * ndim),
        bc=_normalise_bc(bc, ndim),
        mask=mask,
        shift=jnp.asarray(shift, dtype),
    )


def helmholtz(
    grid_shape: Sequence[int],
    kappa: float | ArrayLike,
    *,
    spacing: float | Sequence[float] | None = None,
    bc: BoundarySpec = "dirichlet",
    mask: ArrayLike | None = None,
    dtype=None,
) -> Laplacian:
    """The Helmholtz operator −Δ_h − κ² on the unit square/cube (indefinite for large κ).

    Args:
        grid_shape: cells per axis.
        kappa: wavenumber κ (may be a traced array).
        spacing: cell size; defaults to 1/N per axis (the unit domain).
        bc, mask, dtype: as for `poisson`.

    Returns:
        A `Laplacian` with shift −κ².
    """
    grid_shape = _check_grid(grid_shape)
    spacing = _spacing(spacing, len(grid_shape), [1.0 / s for s in grid_shape])
    dtype = _default_float_dtype(dtype)
    kappa = jnp.asarray(kappa, dtype)
    return poisson(grid_shape, spacing=spacing, bc=bc, mask=mask, shift=-(kappa**2), dtype=dtype)


class Diffusion(AbstractStencilOperator):
    """Variable-coefficient diffusion −∇·(a∇u) with zero Dirichlet boundary values.

    `a` is given at the nodes of a grid with s points per axis, boundary nodes included; the
    unknowns are the (s−2)^d interior nodes. The flux through the face between nodes p and q uses
    the mean coefficient (a_p + a_q)/2, so the matrix is symmetric positive definite. This is the
    Darcy-flow discretisation of the FNO benchmark data.

    Construct with `diffusion`.
    """

    coefficient: Float[Array, "..."]
    spacing: tuple[float, ...] = eqx.field(static=True)

    @property
    def grid_shape(self):
        return tuple(s - 2 for s in self.coefficient.shape)

    @property
    def dtype(self):
        return self.coefficient.dtype

    def stencil(self):
        a = self.coefficient
        ndim = a.ndim
        interior = tuple(slice(1, -1) for _ in range(ndim))
        centre = jnp.zeros(self.grid_shape, a.dtype)
        off = {}
        for axis, h in enumerate(self.spacing):
            inv_h2 = 1.0 / h**2
            for side in (-1, 1):
                # Mean of the coefficient at each interior node and its neighbour along the axis.
                shifted = list(interior)
                shifted[axis] = slice(1 + side, a.shape[axis] - 1 + side)
                face = 0.5 * (a[interior] + a[tuple(shifted)])
                centre = centre + inv_h2 * face
                inside = np.ones(self.grid_shape[axis])
                inside[0 if side < 0 else -1] = 0.0
                shape = [1] * ndim
                shape[axis] = -1
                off[(axis, side)] = -inv_h2 * face * jnp.asarray(inside.reshape(shape), a.dtype)
        return centre, off


def diffusion(
    coefficient: ArrayLike, *, spacing: float | Sequence[float] | None = None
) -> Diffusion:
    """The operator −∇·(a∇u) on the interior nodes of a grid, u = 0 on the boundary.

    Args:
        coefficient: a > 0 at all s^d nodes (boundary included), s ≥ 3. Its dtype is the
            operator's.
        spacing: node spacing; defaults to 1/(s−1) (the unit square/cube).

    Returns:
        A `Diffusion` operator on the (s−2)^d interior unknowns.

    Raises:
        ValueError: for a non-floating coefficient, a grid below 3 per side, or (when the
            coefficient is concrete) a value that is not positive.

    References:
        Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021 (Darcy data).
    """
    a = jnp.asarray(coefficient)
    check_dtype(a.dtype, name="coefficient")
    _check_grid(a.shape, min_size=3)
    if is_concrete(a) and not bool(jnp.all(a > 0)):
        raise ValueError(
            "the diffusion coefficient must be positive at every node (the operator is then "
            "SPD); got "
            f"min {float(jnp.min(a))}."
        )
    spacing = _spacing(spacing, a.ndim, [1.0 / (s - 1) for s in a.shape])
    return Diffusion(coefficient=a, spacing=spacing)


class ConvectionDiffusion(AbstractStencilOperator):
    """Convection–diffusion −ν Δu + w·∇u with zero Dirichlet values, on a cell grid (nonsymmetric).

    Construct with `convection_diffusion`.
    """

    shape_: tuple[int, ...] = eqx.field(static=True)
    spacing: tuple[float, ...] = eqx.field(static=True)
    scheme: str = eqx.field(static=True)
    velocity: tuple[Float[Array, "..."], ...]
    viscosity: Float[Array, ""]

    @property
    def grid_shape(self):
        return self.shape_

    @property
    def dtype(self):
        return self.viscosity.dtype

    def stencil(self):
        dtype = self.dtype
        ndim = len(self.shape_)
        centre = jnp.zeros(self.shape_, dtype)
        off = {}
        for axis, h in enumerate(self.spacing):
            w = jnp.broadcast_to(self.velocity[axis], self.shape_)
            diff = self.viscosity / h**2
            if self.scheme == "central":
                low, high, middle = -diff - w / (2 * h), -diff + w / (2 * h), 2 * diff
            else:  # first-order upwind: differences taken against the flow
                wp, wm = jnp.maximum(w, 0), jnp.minimum(w, 0)
                low, high = -diff - wp / h, -diff + wm / h
                middle = 2 * diff + (wp - wm) / h
            centre = centre + middle
            for side, coeff in ((-1, low), (1, high)):
                inside = np.ones(self.shape_[axis])
                inside[0 if side < 0 else -1] = 0.0
                shape = [1] * ndim
                shape[axis] = -1
                off[(axis, side)] = coeff * jnp.asarray(inside.reshape(shape), dtype)
        return centre, off


def convection_diffusion(
    grid_shape: Sequence[int],
    *,
    velocity: Sequence[float | ArrayLike],
    viscosity: float | ArrayLike = 1.0,
    spacing: float | Sequence[float] | None = None,
    scheme: Literal["central", "upwind"] = "central",
    dtype=None,
) -> ConvectionDiffusion:
    """The convection–diffusion operator −ν Δu + w·∇u on the unit square/cube, u = 0 outside.

    Args:
        grid_shape: unknowns per axis (interior nodes).
        velocity: w, one component per axis: a scalar or an array over the grid each.
        viscosity: ν > 0.
        spacing: defaults to 1/(N+1) per axis.
        scheme: "central" (second order; oscillates at cell Péclet numbers |w|h/(2ν) > 1) or
            "upwind" (first order, an M-matrix for any Péclet number).
        dtype: floating dtype; JAX's default float if omitted.

    Returns:
        A nonsymmetric `ConvectionDiffusion` operator.
    """
    grid_shape = _check_grid(grid_shape)
    dtype = _default_float_dtype(dtype)
    if scheme not in ("central", "upwind"):
        raise ValueError(f"`scheme` must be 'central' or 'upwind', got {scheme!r}.")
    velocity = tuple(jnp.asarray(w, dtype) for w in velocity)
    if len(velocity) != len(grid_shape):
        raise ValueError(
            f"give one velocity component per axis ({len(grid_shape)}), got {len(velocity)}."
        )
    return ConvectionDiffusion(
        shape_=grid_shape,
        spacing=_spacing(spacing, len(grid_shape), [1.0 / (s + 1) for s in grid_shape]),
        scheme=scheme,
        velocity=velocity,
        viscosity=jnp.asarray(viscosity, dtype),
    )
