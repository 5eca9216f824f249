"""Classical preconditioners: Jacobi and symmetric SOR.

Each returns an operator that *applies* the preconditioner, `r -> M⁻¹ r`, which is what the
`M` argument of `cg` and `gmres` expects (as in SciPy and `jax.scipy`). The returned objects
are `AbstractOperator`s and so also plain callables, and pytrees that pass through `jit`.
"""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jaxtyping import Array, ArrayLike, Inexact, Int, Real

from ..linalg._base import AbstractOperator, MatrixOperator, _LineaxOperator, as_operator


def _as_matrix_operator(A: Any, who: str) -> AbstractOperator:
    if callable(A) and not isinstance(A, AbstractOperator) and not hasattr(A, "in_structure"):
        raise ValueError(
            f"`{who}` needs the matrix entries, but got a plain callable. Pass a dense array, "
            f"a BCOO or SciPy sparse matrix, or a sciml operator with a diagonal (e.g. "
            f"`sciml.linalg.poisson`)."
        )
    return as_operator(A)


def _safe_inverse(d: Inexact[Array, " n"]) -> Inexact[Array, " n"]:
    zero = d == 0
    return jnp.where(zero, 0, 1 / jnp.where(zero, 1, d)).astype(d.dtype)


class JacobiPreconditioner(AbstractOperator):
    """`r -> D⁻¹ r` for the diagonal `D` of a matrix (zero diagonal entries map to 0)."""

    inverse_diagonal: Inexact[Array, " n"]

    def mv(self, x):
        return self.inverse_diagonal * x

    @property
    def n(self) -> int:
        return self.inverse_diagonal.shape[0]

    @property
    def dtype(self):
        return self.inverse_diagonal.dtype

    def diagonal(self):
        return self.inverse_diagonal


def jacobi(A: Any) -> JacobiPreconditioner:
    """The Jacobi (diagonal) preconditioner of `A`, as the application `r -> D⁻¹ r`.

    Rows whose diagonal entry is zero map to 0 instead of dividing by zero. In a masked grid
    operator these are the solid or empty cells, whose rows and columns are zero, so the
    preconditioner stays symmetric positive semi-definite on the fluid unknowns.

    Args:
        A: a dense array, a BCOO or SciPy sparse matrix, or a sciml operator that knows its
            diagonal (the stencil operators of `sciml.linalg` do).

    Returns:
        A `JacobiPreconditioner`: call it (or its `mv`) on a residual; pass it as `M=`.

    Raises:
        ValueError: if `A` is a plain callable or an operator without a diagonal.
    """
    op = _as_matrix_operator(A, "jacobi")
    return JacobiPreconditioner(_safe_inverse(op.diagonal()))


def _check_omega(omega: Any) -> None:
    if jnp.ndim(omega) != 0:
        raise ValueError(f"`omega` must be a scalar, got shape {jnp.shape(omega)}.")
    try:
        value = float(omega)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return  # traced: checked by the caller's own logic, if at all
    if not 0 < value < 2:
        raise ValueError(
            f"`omega` must be in (0, 2) for SSOR to be positive definite, got {value}. "
            f"omega = 1 (symmetric Gauss–Seidel) is a safe default."
        )


class DenseSSORPreconditioner(AbstractOperator):
    """SSOR applied with two dense triangular solves (see `ssor`)."""

    lower: Inexact[Array, "n n"]  # D + ωL, decoupled rows/columns removed, unit diagonal there
    upper: Inexact[Array, "n n"]  # D + ωU, likewise
    diag: Inexact[Array, " n"]  # D, zero on decoupled rows
    scale: Real[Array, ""]  # ω(2 − ω)
    upper_first: bool = eqx.field(static=True, default=False)  # see `SparseSSORPreconditioner`

    def mv(self, x):
        decoupled = self.diag == 0
        first, second = (self.upper, self.lower) if self.upper_first else (self.lower, self.upper)
        first_lower = not self.upper_first
        y = jax.scipy.linalg.solve_triangular(first, jnp.where(decoupled, 0, x), lower=first_lower)
        w = jax.scipy.linalg.solve_triangular(second, self.diag * y, lower=not first_lower)
        return self.scale.astype(w.dtype) * w

    @property
    def n(self) -> int:
        return self.diag.shape[0]

    @property
    def dtype(self):
        return self.diag.dtype


class SparseSSORPreconditioner(AbstractOperator):
    """SSOR applied with level-scheduled sparse triangular solves (see `ssor`).

    The rows of each triangular factor are grouped into levels (wavefronts) such that a row
    depends only on rows of earlier levels; the rows of one level are then solved at once.
    This is the exact lexicographic substitution (the same arithmetic as a sequential one up
    to the summation order within a row), with as many sequential steps as there are levels
    (about `3s` for an `s³` grid with the 7-point stencil instead of `s³`).
    """

    inverse_diag: Inexact[Array, " n+1"]  # 1/D, 0 on decoupled rows and on the sink entry
    diag: Inexact[Array, " n+1"]
    lower_rows: Int[Array, "levels width"]  # rows per level, padded with the sink index n
    lower_cols: Int[Array, "levels width k"]  # strictly-lower columns per row, padded with n
    lower_vals: Inexact[Array, "levels width k"]  # their values, padded with 0
    upper_rows: Int[Array, "levels width"]
    upper_cols: Int[Array, "levels width k"]
    upper_vals: Inexact[Array, "levels width k"]
    omega: Real[Array, ""]
    size: int = eqx.field(static=True)
    # False: M = (D + ωL) D⁻¹ (D + ωU)/(ω(2−ω)), forward substitution first (textbook SSOR);
    # True: M = (D + ωU) D⁻¹ (D + ωL)/(ω(2−ω)), backward first (MATLAB's `pcg(A, b, …, M1, M2)`
    # with M1 = (D + ωL)ᵀD⁻¹, M2 = (D + ωL)/(ω(2−ω)), as "Learning to Relax" passes them).
    upper_first: bool = eqx.field(static=True, default=False)

    def _substitute(self, rhs, rows, cols, vals):
        omega = self.omega.astype(rhs.dtype)

        def level(i, y):
            level_rows = rows[i]
            coupling = jnp.sum(vals[i] * y[cols[i]], axis=-1)
            return y.at[level_rows].set(
                self.inverse_diag[level_rows] * (rhs[level_rows] - omega * coupling)
            )

        return jax.lax.fori_loop(0, rows.shape[0], level, jnp.zeros_like(rhs))

    def mv(self, x):
        rhs = jnp.concatenate([x, jnp.zeros(1, x.dtype)])
        lower = (self.lower_rows, self.lower_cols, self.lower_vals)
        upper = (self.upper_rows, self.upper_cols, self.upper_vals)
        first, second = (upper, lower) if self.upper_first else (lower, upper)
        y = self._substitute(rhs, *first)
        w = self._substitute(self.diag * y, *second)
        scale = (self.omega * (2 - self.omega)).astype(x.dtype)
        return scale * w[: self.size]

    @property
    def n(self) -> int:
        return self.size

    @property
    def dtype(self):
        return self.diag.dtype


def _levels(tri: sp.csr_array, reverse: bool) -> np.ndarray:
    # level[i] = 1 + max(level[j]) over the rows j that row i depends on (0 if none).
    n = tri.shape[0]
    level = np.zeros(n, np.int64)
    indptr, indices = tri.indptr, tri.indices
    order = range(n - 1, -1, -1) if reverse else range(n)
    for i in order:
        deps = indices[indptr[i] : indptr[i + 1]]
        if deps.size:
            level[i] = level[deps].max() + 1
    return level


def _level_schedule(tri: sp.csr_array, reverse: bool, dtype: np.dtype):
    n = tri.shape[0]
    level = _levels(tri, reverse)
    n_levels = int(level.max()) + 1 if n else 0
    order = np.argsort(level, kind="stable")
    counts = np.bincount(level, minlength=n_levels)
    width = int(counts.max()) if n else 1
    k = max(int(np.diff(tri.indptr).max()) if n else 0, 1)
    rows = np.full((n_levels, width), n, np.int32)
    cols = np.full((n_levels, width, k), n, np.int32)
    vals = np.zeros((n_levels, width, k), dtype)
    starts = np.concatenate([[0], np.cumsum(counts)])
    slot = np.arange(n) - starts[level[order]]
    rows[level[order], slot] = order
    row_nnz = np.diff(tri.indptr)
    entry_row = np.repeat(np.arange(n), row_nnz)
    entry_pos = np.arange(tri.nnz) - tri.indptr[entry_row]
    slot_of_row = np.empty(n, np.int64)
    slot_of_row[order] = slot
    cols[level[entry_row], slot_of_row[entry_row], entry_pos] = tri.indices
    vals[level[entry_row], slot_of_row[entry_row], entry_pos] = tri.data
    return jnp.asarray(rows), jnp.asarray(cols), jnp.asarray(vals)


def _sparse_ssor(op: AbstractOperator, omega: Any) -> SparseSSORPreconditioner:
    try:
        matrix = sp.csr_array(op.to_scipy())
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError) as err:
        raise ValueError(
            "`ssor` builds the level schedule of a sparse or matrix-free operator on the host, "
            "so the operator must be concrete: call `ssor(A)` outside `jit` (the result can "
            "then be passed into jitted code), or pass a dense array."
        ) from err
    matrix.sum_duplicates()
    matrix.sort_indices()
    dtype = np.dtype(op.dtype)
    d = matrix.diagonal().astype(dtype)
    decoupled = d == 0
    coo = matrix.tocoo()
    r, c, v = coo.row, coo.col, coo.data.astype(dtype)
    keep = ~decoupled[r] & ~decoupled[c] & (v != 0)
    n = matrix.shape[0]
    lower_mask = keep & (r > c)
    upper_mask = keep & (r < c)
    lower = sp.csr_array((v[lower_mask], (r[lower_mask], c[lower_mask])), shape=(n, n))
    upper = sp.csr_array((v[upper_mask], (r[upper_mask], c[upper_mask])), shape=(n, n))
    lower.sort_indices()
    upper.sort_indices()
    inverse_diag = np.where(decoupled, 0, 1 / np.where(decoupled, 1, d)).astype(dtype)
    lower_rows, lower_cols, lower_vals = _level_schedule(lower, False, dtype)
    upper_rows, upper_cols, upper_vals = _level_schedule(upper, True, dtype)
    real = np.dtype(jnp.finfo(dtype).dtype)
    return SparseSSORPreconditioner(
        inverse_diag=jnp.asarray(np.append(inverse_diag, 0).astype(dtype)),
        diag=jnp.asarray(np.append(np.where(decoupled, 0, d), 0).astype(dtype)),
        lower_rows=lower_rows,
        lower_cols=lower_cols,
        lower_vals=lower_vals,
        upper_rows=upper_rows,
        upper_cols=upper_cols,
        upper_vals=upper_vals,
        omega=jnp.asarray(omega).astype(real),
        size=n,
    )


def _dense_ssor(op: AbstractOperator, omega: Any) -> DenseSSORPreconditioner:
    matrix = op.as_matrix()
    real = jnp.finfo(matrix.dtype).dtype
    omega = jnp.asarray(omega).astype(real)
    d = jnp.diagonal(matrix)
    decoupled = d == 0
    coupled = ~decoupled[:, None] & ~decoupled[None, :]
    off = jnp.where(coupled, matrix, 0) * omega.astype(matrix.dtype)
    unit = jnp.diag(jnp.where(decoupled, 1, d).astype(matrix.dtype))
    return DenseSSORPreconditioner(
        lower=jnp.tril(off, -1) + unit,
        upper=jnp.triu(off, 1) + unit,
        diag=jnp.where(decoupled, 0, d).astype(matrix.dtype),
        scale=omega * (2 - omega),
    )


def ssor(A: Any, omega: float | ArrayLike = 1.0) -> AbstractOperator:
    r"""The symmetric SOR preconditioner of `A`, as the application `r -> M⁻¹ r`.

    With `A = D + L + U` (diagonal, strictly lower, strictly upper parts, in the operator's
    lexicographic order),

    $$M = \frac{1}{\omega(2-\omega)} (D + \omega L)\, D^{-1} (D + \omega U),$$

    which is symmetric positive definite for SPD `A` and `0 < ω < 2`, so it is a valid `cg`
    preconditioner; `ω = 1` is symmetric Gauss–Seidel. Applying it costs one forward and one
    backward triangular solve, done exactly (no approximate sweeps):

    - dense matrices (and lineax operators): `jax.scipy.linalg.solve_triangular`, `O(n²)`
      per application; traceable, so `ssor` can be called inside `jit`;
    - BCOO and SciPy sparse matrices and sciml operators: level-scheduled sparse substitution
      (rows of one wavefront solved together; about `3s` sequential steps for an `s³` grid).
      The schedule is built on the host from `to_scipy()`, so call `ssor` outside `jit` (the
      result is a pytree that can be passed into jitted code). Set-up is a Python loop over
      the rows, fine up to some 10⁵ unknowns.

    Rows whose diagonal entry is zero (the solid/empty cells of a masked grid operator) are
    decoupled: their rows and columns are dropped from the factors and their output is 0.

    Args:
        A: a dense array, a BCOO or SciPy sparse matrix, or a sciml operator with `to_scipy`.
        omega: the relaxation factor in (0, 2); may be a traced scalar (for the dense path,
            and as a stored array for the sparse path, so changing it never recompiles the
            solve).

    Returns:
        An `AbstractOperator` (callable) applying $M^{-1}$; pass it as `M=`.

    Raises:
        ValueError: for `omega` outside (0, 2), a plain callable `A`, or a sparse `A` traced
            inside `jit`.

    References:
        Y. Saad, "Iterative Methods for Sparse Linear Systems", 2nd ed., SIAM (2003), §10.2
        (SSOR preconditioning) and §11.6 (level scheduling of triangular solves).
    """
    _check_omega(omega)
    op = _as_matrix_operator(A, "ssor")
    if isinstance(op, (MatrixOperator, _LineaxOperator)):
        return _dense_ssor(op, omega)
    return _sparse_ssor(op, omega)
