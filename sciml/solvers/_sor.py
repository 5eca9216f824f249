"""Successive over-relaxation (SOR), SSOR-preconditioned CG and Young's optimal ω.

A sweep of SOR updates the unknowns one at a time in the operator's (lexicographic) order,

    x_i ← (1 − ω) x_i + ω (b_i − Σ_{j≠i} A_ij x_j) / A_ii,

using the already updated values for j < i. The sweep is sequential, but rows that do not
depend on each other can be updated together without changing a single iterate: a row is put
in the level after the last earlier row it is coupled to (in either direction), and the rows of
one level are then updated at once. On a 5-point grid the levels are the anti-diagonals
i + j = const (2s − 1 levels for an s × s grid), on a 7-point grid the planes i + j + k = const.
The arithmetic per row is the pointwise formula above, the one `pyamg.relaxation.relaxation.sor`
uses, so the sweep counts agree with pyamg's.

Red–black ordering colours the grid like a chessboard and updates all red then all black
cells: two fully parallel steps per sweep (the ordering for GPUs/TPUs). It is also consistently
ordered (same Young ω*, same asymptotic rate), but it is a different method, so its iterates
and sweep counts differ from lexicographic SOR.
"""

import dataclasses
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jaxtyping import Array, ArrayLike, Inexact, Int, Real

from .._core import RESULTS, Solution, is_concrete
from ..linalg._base import AbstractOperator, MatrixOperator, _LineaxOperator
from ..linalg._stencil import AbstractStencilOperator
from ._cg import cg
from ._common import finish, init_history, norm, prepare_system, set_entry
from ._preconditioners import SparseSSORPreconditioner, _check_omega, _levels, _safe_inverse


class _RowTable(NamedTuple):
    """A matrix as padded rows, plus the levels in which a sweep updates them.

    All arrays carry a trailing "sink" entry n (zero coefficient, unit diagonal) used for
    padding, so gathers and scatters need no masks.
    """

    diag: Inexact[Array, " n+1"]
    cols: Int[Array, "n+1 k"]  # off-diagonal columns of each row, padded with n
    vals: Inexact[Array, "n+1 k"]  # their values, padded with 0
    levels: Int[Array, "levels width"]  # rows updated together, padded with n


def _pad_levels(level: np.ndarray, n: int) -> np.ndarray:
    n_levels = int(level.max()) + 1 if n else 0
    counts = np.bincount(level, minlength=n_levels)
    width = max(int(counts.max()) if n else 1, 1)
    rows = np.full((n_levels, width), n, np.int32)
    order = np.argsort(level, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    rows[level[order], np.arange(n) - starts[level[order]]] = order
    return rows


def _stencil_table(op: AbstractStencilOperator, ordering: str) -> _RowTable:
    # Traceable: the pattern comes from the static grid shape, the values from `stencil()`.
    shape = op.grid_shape
    n = int(np.prod(shape))
    index = np.arange(n).reshape(shape)
    centre, off = op.stencil()
    strides = np.array(index.strides) // index.itemsize
    # Columns in increasing order of their offset, as in a sorted CSR row (pyamg sums them so).
    keys = sorted(off, key=lambda k: k[1] * strides[k[0]])
    cols, vals = [], []
    for axis, side in keys:
        neighbour = np.full(shape, n, np.int64)
        here = [slice(None)] * len(shape)
        there = [slice(None)] * len(shape)
        here[axis] = slice(0, -1) if side > 0 else slice(1, None)
        there[axis] = slice(1, None) if side > 0 else slice(0, -1)
        neighbour[tuple(here)] = index[tuple(there)]
        cols.append(neighbour.ravel())
        vals.append(jnp.where(neighbour == n, 0, off[(axis, side)]).reshape(-1))
    dtype = centre.dtype
    cols = np.concatenate([np.stack(cols, 1), np.full((1, len(keys)), n)], 0).astype(np.int32)
    vals = jnp.concatenate([jnp.stack(vals, 1), jnp.zeros((1, len(keys)), dtype)], 0)
    diag = jnp.concatenate([centre.reshape(-1), jnp.ones(1, dtype)])
    coords = np.indices(shape).reshape(len(shape), -1).sum(0)
    level = coords % 2 if ordering == "red_black" else coords
    # The pattern stays NumPy (static under tracing; `_stencil_ssor` reads it on the host).
    return _RowTable(diag, cols, vals, _pad_levels(level, n))


# The stencil set-ups (tens of small array operations) run as one compiled call each: eagerly,
# op by op, they took 3–10 ms per solve on the build CPU, more than a typical solve of a
# simulation loop that calls `sor` or `ssor_pcg` every time step. They stay separate from the
# solves, whose programs (and so iteration counts, to the last bit) are as before; the tables
# are bitwise those of the eager set-up (tested).
_compiled_stencil_table = eqx.filter_jit(_stencil_table)


def _sparse_table(matrix: sp.csr_array, dtype: np.dtype) -> _RowTable:
    matrix = sp.csr_array(matrix)
    matrix.sum_duplicates()
    matrix.sort_indices()
    n = matrix.shape[0]
    coo = matrix.tocoo()
    offdiag = (coo.row != coo.col) & (coo.data != 0)
    r, c, v = coo.row[offdiag], coo.col[offdiag], coo.data[offdiag].astype(dtype)
    # Row i must follow every earlier row j it is coupled to in either direction: it reads
    # x_j updated if A_ij ≠ 0 and j must read x_i not yet updated if A_ji ≠ 0.
    lo = np.minimum(r, c)
    hi = np.maximum(r, c)
    deps = sp.csr_array((np.ones(lo.size), (hi, lo)), shape=(n, n))
    deps.sum_duplicates()
    deps.sort_indices()
    level = _levels(deps, reverse=False)
    k = max(int(np.bincount(r, minlength=n).max()) if r.size else 0, 1)
    cols = np.full((n + 1, k), n, np.int32)
    vals = np.zeros((n + 1, k), dtype)
    pos = np.arange(r.size) - np.searchsorted(r, r)  # r is sorted (CSR order)
    cols[r, pos] = c
    vals[r, pos] = v
    diag = np.append(matrix.diagonal().astype(dtype), np.ones(1, dtype))
    return _RowTable(
        jnp.asarray(diag), jnp.asarray(cols), jnp.asarray(vals), jnp.asarray(_pad_levels(level, n))
    )


def _dense_table(matrix: Inexact[Array, "n n"]) -> _RowTable:
    # A traced dense matrix: every row is its own level (n sequential steps per sweep).
    n = matrix.shape[0]
    diag = jnp.concatenate([jnp.diagonal(matrix), jnp.ones(1, matrix.dtype)])
    off = matrix * (1 - jnp.eye(n, dtype=matrix.dtype))
    vals = jnp.concatenate([off, jnp.zeros((1, n), matrix.dtype)], 0)
    cols = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (n + 1, n))
    return _RowTable(diag, cols, vals, jnp.arange(n, dtype=jnp.int32)[:, None])


def _row_table(op: AbstractOperator, ordering: str) -> _RowTable:
    if isinstance(op, AbstractStencilOperator):
        return _compiled_stencil_table(op, ordering)
    if ordering == "red_black":
        raise ValueError(
            "`ordering='red_black'` needs a grid stencil operator from `sciml.linalg` (e.g. "
            "`poisson`), whose cells can be coloured like a chessboard; use "
            "`ordering='lexicographic'` for a general matrix."
        )
    if is_concrete(op):
        return _sparse_table(op.to_scipy(), np.dtype(op.dtype))
    if isinstance(op, (MatrixOperator, _LineaxOperator)):
        return _dense_table(op.as_matrix())
    raise ValueError(
        "`sor` reads the matrix entries of a general sparse operator on the host, so it must "
        "be concrete: call `sor` outside `jit` for it, or pass a dense array or a grid stencil "
        "operator of `sciml.linalg` (both work under `jit`)."
    )


def _check_diagonal(diag: Array) -> None:
    if not is_concrete(diag):
        return
    zero = np.flatnonzero(np.asarray(diag[:-1]) == 0)
    if zero.size:
        raise ValueError(
            f"`A` has {zero.size} zero diagonal entries (first at row {int(zero[0])}); SOR "
            f"divides by the diagonal. Remove decoupled rows and columns (e.g. solid cells of a "
            f"masked grid) or use `cg`/`gmres`."
        )


def _matvec(table: _RowTable, x: Array) -> Array:
    # x has the sink entry appended; returns A x (sink entry 0 dropped).
    return (table.diag * x + jnp.sum(table.vals * x[table.cols], axis=-1))[:-1]


def _sweep(table: _RowTable, b: Array, x: Array, omega: Array) -> Array:
    def level(i, x):
        rows = table.levels[i]
        coupling = jnp.sum(table.vals[rows] * x[table.cols[rows]], axis=-1)
        new = (1 - omega) * x[rows] + omega * ((b[rows] - coupling) / table.diag[rows])
        return x.at[rows].set(new)

    n_levels = table.levels.shape[0]
    # Red–black has two levels: unrolled, a sweep is straight-line code (no inner loop, which
    # on a GPU costs a host round trip per iteration).
    return jax.lax.fori_loop(0, n_levels, level, x, unroll=n_levels <= 2)


def _check_square(A: Any) -> None:
    shape = getattr(A, "shape", None)
    if shape is not None and (len(shape) != 2 or shape[0] != shape[1]):
        raise ValueError(
            f"`A` must be a square n × n matrix, got shape {tuple(shape)}. SOR and SSOR need "
            f"one diagonal entry per unknown."
        )


def sor(
    A: Any,
    b: Inexact[ArrayLike, " n"],
    *,
    omega: float | ArrayLike,
    x0: Inexact[ArrayLike, " n"] | None = None,
    rtol: float | ArrayLike = 1e-8,
    atol: float | ArrayLike = 0.0,
    max_steps: int = 10_000,
    ordering: Literal["lexicographic", "red_black"] = "lexicographic",
    throw: bool = True,
) -> Solution:
    r"""Solve `A x = b` by successive over-relaxation.

    Each sweep is $x \leftarrow x + (D/\omega + L)^{-1}(b - A x)$ with $D$ the diagonal and
    $L$ the strictly lower part of `A` in the chosen ordering, computed row by row with the
    pointwise update of `pyamg.relaxation.relaxation.sor`; rows that do not depend on each
    other are updated together (anti-diagonals of a 5-point grid), which leaves the iterates
    unchanged. The iteration stops after the first sweep with

    $$\|b - A x_k\| \le \max(\mathrm{rtol}\,\|b - A x_0\|, \mathrm{atol}),$$

    the cost measure of "Learning to Relax" (sweeps until the residual drops by `rtol`; atol =
    0). The test is relative to the initial residual: from a warm start that is already
    accurate, `rtol` asks for a residual below rounding, so give an `atol` (e.g. a small
    multiple of rtol·‖b‖) when warm-starting.

    Differentiable in forward mode (`jax.jvp`, `jax.jacfwd`) with respect to `b`, `omega`
    and the operator's entries; reverse mode is not available through the sweep loop (a
    `while_loop` of data-dependent length).

    Paths: grid stencil operators of `sciml.linalg` (fast, traceable: the levels come from the
    grid shape); concrete sparse, dense or other sciml operators (levels built on the host from
    `to_scipy()`); a dense matrix traced under `jit` (one row per level, n steps per sweep).

    Args:
        A: the operator: a sciml stencil operator, a dense `n × n` array, a SciPy sparse or
            BCOO matrix, or another sciml operator with `to_scipy()`. Its diagonal must be
            nonzero. SOR converges for symmetric positive definite `A` and `0 < ω < 2`.
        b: the right-hand side, a 1-D floating array.
        omega: the relaxation factor in (0, 2); a (traced) scalar, changing it never
            recompiles.
        x0: the initial guess (zeros by default).
        rtol: the residual reduction to reach, relative to $\|b - A x_0\|$ (traced allowed).
        atol: an absolute residual norm that also ends the iteration (traced allowed).
        max_steps: the maximum number of sweeps (static int).
        ordering: `"lexicographic"` (the operator's order; sweep counts equal pyamg's) or
            `"red_black"` (chessboard colouring, two parallel steps per sweep; grid stencil
            operators only; its counts differ from the lexicographic ones).
        throw: raise at run time if the solve did not reach `rtol`.

    Returns:
        A `Solution`: `stats["num_steps"]` is the number of sweeps (0 if $x_0$ already meets
        the test); `residual_norm` and `residual_history` (length `max_steps + 1`) as for
        `cg`. The solve runs in the dtype of `b`.

    Raises:
        ValueError: for a concrete `omega` outside (0, 2) (a traced one is not checked: out of
            range, the sweeps diverge and the result is `nonfinite` or `max_steps_reached`),
            a non-square `A`, a zero diagonal entry (when `A` is concrete), an unknown
            `ordering`, `red_black` with a non-grid operator, or the input errors of `cg`.

    References:
        D. M. Young, "Iterative Solution of Large Linear Systems", Academic Press (1971).
        Y. Saad, "Iterative Methods for Sparse Linear Systems", 2nd ed., SIAM (2003), §4.1.
    """
    _check_omega(omega)
    _check_square(A)
    if ordering not in ("lexicographic", "red_black"):
        raise ValueError(f"`ordering` must be 'lexicographic' or 'red_black', got {ordering!r}.")
    system = prepare_system(A, b, x0=x0, M=None, rtol=rtol, atol=atol, max_steps=max_steps)
    table = _row_table(system.operator, ordering)
    _check_diagonal(table.diag)
    # A Python int or float ω and an array ω of the solve's real dtype are one program.
    omega = jnp.asarray(omega, jnp.finfo(system.b.dtype).dtype)
    return _sor_solve(
        table, system.b, system.x0, omega, system.rtol, system.atol, system.max_steps, throw
    )


@eqx.filter_jit
def _sor_solve(table, b, x0, omega, rtol, atol, max_steps, throw) -> Solution:
    dtype = b.dtype
    # An operator of another precision (a float64 stencil with a float32 `b`) runs in the
    # precision of `b`, as its matrix–vector product does in `cg`.
    table = table._replace(diag=table.diag.astype(dtype), vals=table.vals.astype(dtype))
    omega = omega.astype(dtype)
    bx = jnp.concatenate([b, jnp.zeros(1, dtype)])
    x = jnp.zeros_like(bx) if x0 is None else jnp.concatenate([x0, jnp.zeros(1, dtype)])
    r0 = norm(b - _matvec(table, x))
    tol = jnp.maximum(rtol * r0, atol)
    history = init_history(max_steps, r0)

    def cond(carry):
        k, _, res, _ = carry
        return (res > tol) & (k < max_steps)

    def body(carry):
        k, x, _, history = carry
        x = _sweep(table, bx, x, omega)
        res = norm(b - _matvec(table, x))
        k = k + 1
        return k, x, res, set_entry(history, k, res)

    k, x, res, history = jax.lax.while_loop(cond, body, (jnp.asarray(0, jnp.int32), x, r0, history))
    result = RESULTS.where(
        ~jnp.isfinite(r0),
        RESULTS.nonfinite_input,
        RESULTS.where(
            res <= tol,
            RESULTS.successful,
            RESULTS.where(jnp.isfinite(res), RESULTS.max_steps_reached, RESULTS.nonfinite),
        ),
    )
    stats = {
        "num_steps": k,
        "max_steps": jnp.asarray(max_steps, jnp.int32),
        "residual_norm": res,
        "residual_history": history,
    }
    return finish(x[:-1], result, stats, throw=throw)


def _stencil_ssor(op: AbstractStencilOperator, omega: Array) -> SparseSSORPreconditioner:
    # The SSOR preconditioner of a grid stencil built from the grid shape, so it is traceable
    # (`ssor` builds its schedule on the host); same class, same arithmetic.
    table = _stencil_table(op, "lexicographic")
    shape = op.grid_shape
    n = int(np.prod(shape))
    coords = np.indices(shape).reshape(len(shape), -1).sum(0)
    cols = np.asarray(table.cols)[:-1]
    rows_of = np.arange(n)[:, None]
    lower = (cols < rows_of) & (cols != n)
    upper = (cols > rows_of) & (cols != n)

    def schedule(mask, level):
        rows = _pad_levels(level, n)
        c = np.where(mask, cols, n)[rows.clip(max=n - 1)]
        c = np.where((rows == n)[..., None], n, c)
        v = jnp.where(jnp.asarray(mask), table.vals[:-1], 0)[rows.clip(max=n - 1)]
        v = jnp.where(jnp.asarray(rows == n)[..., None], 0, v)
        return jnp.asarray(rows), jnp.asarray(c), v

    lower_rows, lower_cols, lower_vals = schedule(lower, coords)
    upper_rows, upper_cols, upper_vals = schedule(upper, coords.max() - coords)
    d = table.diag.at[-1].set(0)
    return SparseSSORPreconditioner(
        inverse_diag=_safe_inverse(d),
        diag=d,
        lower_rows=lower_rows,
        lower_cols=lower_cols,
        lower_vals=lower_vals,
        upper_rows=upper_rows,
        upper_cols=upper_cols,
        upper_vals=upper_vals,
        omega=omega,
        size=n,
    )


_compiled_stencil_ssor = eqx.filter_jit(_stencil_ssor)


def ssor_pcg(
    A: Any,
    b: Inexact[ArrayLike, " n"],
    *,
    omega: float | ArrayLike,
    x0: Inexact[ArrayLike, " n"] | None = None,
    rtol: float | ArrayLike = 1e-8,
    max_steps: int = 10_000,
    throw: bool = True,
) -> Solution:
    r"""Conjugate gradients preconditioned by SSOR(ω), with MATLAB `pcg` semantics.

    The preconditioner is $M = (D + \omega L^\top) D^{-1} (D + \omega L) / (\omega(2-\omega))$,
    MATLAB's `M1 * M2` with $M_1 = (D + \omega L)^\top D^{-1}$,
    $M_2 = (D + \omega L)/(\omega(2-\omega))$ as "Learning to Relax" passes them (a backward
    substitution, then a forward one; the factors of `sciml.solvers.ssor` in the reverse
    order, whose counts differ by one now and then); the iteration is `sciml.solvers.cg` with
    it. As in MATLAB `pcg(A, b, rtol, max_steps, M1, M2, x0)` the tolerance is relative to
    $\|b\|$ (not to the initial residual) and the count is 0 when the warm start `x0` already
    satisfies it, which is how "Learning to Relax" measures the cost of a time step.

    For grid stencil operators the preconditioner is built from the grid shape and traces
    (so `ssor_pcg` can run inside `jit`/`lax.scan` over a sequence of operators); other
    operators go through `sciml.solvers.ssor` (sparse ones must then be concrete).

    Args:
        A: a symmetric positive definite operator with nonzero diagonal.
        b: the right-hand side.
        omega: the relaxation factor in (0, 2); a (traced) scalar.
        x0: warm start (zeros by default).
        rtol: stop when the recursive residual satisfies $\|r\| \le \mathrm{rtol}\,\|b\|$.
        max_steps: the maximum number of CG iterations (static int).
        throw: raise at run time if unsuccessful.

    Returns:
        The `Solution` of `cg`; `stats["num_steps"]` is the number of PCG iterations.

    Raises:
        ValueError: for `omega` outside (0, 2), a non-square `A`, a zero diagonal entry, or
            the input errors of `cg`.

    References:
        O. Axelsson, "Iterative Solution Methods", Cambridge University Press (1994), §7.
    """
    from ._preconditioners import ssor

    _check_omega(omega)
    _check_square(A)
    system = prepare_system(A, b, x0=x0, M=None, rtol=rtol, atol=0.0, max_steps=max_steps)
    op = system.operator
    real = jnp.finfo(system.b.dtype).dtype
    omega = jnp.asarray(omega).astype(real)
    if isinstance(op, AbstractStencilOperator):
        inner = _compiled_stencil_ssor(op, omega)
        _check_diagonal(inner.diag)
    else:
        _check_diagonal(jnp.append(op.diagonal(), 1))
        inner = ssor(op, omega)
    # MATLAB's factor order (backward substitution first): see `SparseSSORPreconditioner`.
    M = dataclasses.replace(inner, upper_first=True)
    return cg(
        op, system.b, x0=system.x0, rtol=system.rtol, max_steps=system.max_steps, M=M, throw=throw
    )


def jacobi_spectral_radius(A: Any, *, symmetric: bool = True) -> Real[Array, ""]:
    r"""The spectral radius β = ρ(I − D⁻¹A) of the Jacobi iteration matrix.

    Computed from the eigenvalues of the dense matrix (traceable; meant for the small systems
    where Young's formula is used, n up to a few thousand). For symmetric `A` with positive
    diagonal the symmetric $D^{-1/2} A D^{-1/2}$ is used (`eigvalsh`), otherwise the general
    eigenvalues (`symmetric=False`, CPU only in JAX). Symmetry is not detected: say which.

    Args:
        A: a square matrix or sciml operator with nonzero diagonal.
        symmetric: whether `A` is symmetric with positive diagonal (the default); pass
            `False` for any other matrix.

    Returns:
        β as a real scalar.

    Raises:
        ValueError: for a non-square `A`, or (concrete) zero diagonal entries, or negative
            ones with `symmetric=True`.
    """
    from ..linalg._base import as_operator

    _check_square(A)
    beta, d = _jacobi_spectral_radius(as_operator(A), symmetric=symmetric)
    _check_diagonal(jnp.append(d, 1))
    if symmetric and is_concrete(d) and np.any(np.asarray(d) < 0):
        raise ValueError(
            "`A` has negative diagonal entries, so the symmetric route (which scales by "
            "D^(-1/2)) does not apply; pass `symmetric=False` for the general eigenvalues."
        )
    return beta


# One compiled call: eagerly, forming the matrix of a stencil operator took ~10 ms.
@eqx.filter_jit
def _jacobi_spectral_radius(op: AbstractOperator, *, symmetric: bool):
    matrix = op.as_matrix()
    d = jnp.diagonal(matrix)
    if symmetric:
        s = 1 / jnp.sqrt(d)
        eig = jnp.linalg.eigvalsh(s[:, None] * matrix * s[None, :])
    else:
        eig = jnp.linalg.eigvals(matrix / d[:, None])
    return jnp.max(jnp.abs(1 - eig)), d


def young_omega(A: Any, *, symmetric: bool = True) -> Real[Array, ""]:
    r"""Young's optimal SOR relaxation factor, ω* = 2 / (1 + √(1 − β²)), β = ρ(I − D⁻¹A).

    Exact for consistently ordered matrices with real Jacobi eigenvalues and β < 1 (e.g. the
    5-point Laplacian, shifted by c > −λ_min, in lexicographic or red–black order). For the
    unshifted 10 × 10 Laplacian β = cos(π/11) and ω* = 1.560388.

    Args:
        A: see `jacobi_spectral_radius`.
        symmetric: see `jacobi_spectral_radius`.

    Returns:
        ω* (a real scalar; NaN if β ≥ 1, where SOR does not converge for any ω).

    Raises:
        ValueError: see `jacobi_spectral_radius`.

    References:
        D. M. Young, "Iterative methods for solving partial difference equations of elliptic
        type", Trans. AMS 76 (1954).
    """
    beta = jacobi_spectral_radius(A, symmetric=symmetric)
    return 2 / (1 + jnp.sqrt(1 - beta**2))
