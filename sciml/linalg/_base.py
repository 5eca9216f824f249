"""Linear operators: the one interface every sciml solver accepts.

Solvers take `A` as a sciml operator, a dense array, a `jax.experimental.sparse.BCOO`, a SciPy
sparse matrix (converted once, on the host), a lineax operator, or a plain callable `x -> A x`;
`as_operator` turns any of them into an `AbstractOperator`. Operators act on flat vectors of
length `n`; grid operators also know their `grid_shape`.
"""

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jax.experimental import sparse as jsparse
from jaxtyping import Array, Float, Shaped

_MAX_DENSE = 1 << 16  # largest n whose dense matrix `as_matrix` forms


class AbstractOperator(eqx.Module):
    """A square linear operator on vectors of length `n`.

    Subclasses implement `mv`, `n`, `dtype` and, where they can, `diagonal` and `to_scipy`.
    Operators are pytrees: they pass through `jit`, `vmap` and `grad` like arrays.
    """

    @abc.abstractmethod
    def mv(self, x: Shaped[Array, " n"]) -> Shaped[Array, " n"]:
        """The product `A @ x` for a flat vector `x` of length `n`."""

    @property
    @abc.abstractmethod
    def n(self) -> int:
        """The number of unknowns (the operator is `n × n`)."""

    @property
    @abc.abstractmethod
    def dtype(self) -> np.dtype:
        """The dtype of the operator's coefficients."""

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    def __call__(self, x: Shaped[Array, " n"]) -> Shaped[Array, " n"]:
        return self.mv(x)

    def diagonal(self) -> Shaped[Array, " n"]:
        """The main diagonal of the operator (used by Jacobi and SSOR preconditioners)."""
        raise ValueError(
            f"{type(self).__name__} does not know its diagonal, so Jacobi/SSOR preconditioners "
            f"cannot be built from it. Pass a dense array, a BCOO matrix or a sciml grid operator, "
            f"or give the preconditioner explicitly (`M=lambda r: r / d`)."
        )

    def as_matrix(self) -> Shaped[Array, "n n"]:
        """The dense `n × n` matrix (for small operators: it costs `n` products).

        Raises:
            ValueError: for n above 2¹⁶ (the matrix alone would take 32 GiB or more in
                float64): use the operator matrix-free.
        """
        if self.n > _MAX_DENSE:
            raise ValueError(
                f"`as_matrix` would form a dense {self.n} × {self.n} matrix; refused above "
                f"n = {_MAX_DENSE}. Use the operator matrix-free (`mv`) instead."
            )
        eye = jnp.eye(self.n, dtype=self.dtype)
        return jax.vmap(self.mv, in_axes=1, out_axes=1)(eye)

    def to_scipy(self) -> sp.csr_array:
        """The operator as a SciPy CSR matrix, for reference checks against SciPy."""
        return sp.csr_array(np.asarray(self.as_matrix()))


class MatrixOperator(AbstractOperator):
    """A dense matrix. Products use `precision=HIGHEST` (no TF32/bf16 passes on GPU/TPU)."""

    matrix: Float[Array, "n n"]

    def __check_init__(self):
        if self.matrix.ndim != 2 or self.matrix.shape[0] != self.matrix.shape[1]:
            raise ValueError(
                f"a matrix operator must be square, got shape {self.matrix.shape}. sciml's "
                f"solvers handle square systems only; for least squares use `jnp.linalg.lstsq`."
            )

    def mv(self, x):
        return jnp.matmul(self.matrix, x, precision=jax.lax.Precision.HIGHEST)

    @property
    def n(self) -> int:
        return self.matrix.shape[0]

    @property
    def dtype(self):
        return self.matrix.dtype

    def diagonal(self):
        return jnp.diagonal(self.matrix)

    def as_matrix(self):
        return self.matrix

    def to_scipy(self):
        return sp.csr_array(np.asarray(self.matrix))


class SparseOperator(AbstractOperator):
    """A `jax.experimental.sparse.BCOO` matrix."""

    matrix: jsparse.BCOO

    def __check_init__(self):
        shape = self.matrix.shape
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(
                f"a sparse operator must be a square 2-D BCOO matrix, got shape {shape}."
            )

    def mv(self, x):
        return self.matrix @ x

    @property
    def n(self) -> int:
        return self.matrix.shape[0]

    @property
    def dtype(self):
        return self.matrix.dtype

    def diagonal(self):
        rows, cols = self.matrix.indices[:, 0], self.matrix.indices[:, 1]
        on_diag = jnp.where(rows == cols, self.matrix.data, 0)
        return jnp.zeros(self.n, self.dtype).at[rows].add(on_diag)

    def as_matrix(self):
        return self.matrix.todense()

    def to_scipy(self):
        rows, cols = np.asarray(self.matrix.indices).T
        return sp.csr_array((np.asarray(self.matrix.data), (rows, cols)), shape=self.matrix.shape)


class FunctionOperator(AbstractOperator):
    """A matrix-free operator given by a callable `x -> A x`."""

    # Static, so that the operator passes through plain `jax.jit`; arrays a closure captures
    # become compile-time constants (pass a sciml operator to keep them as arguments).
    fn: Callable[[Array], Array] = eqx.field(static=True)
    size: int = eqx.field(static=True)
    coefficient_dtype: Any = eqx.field(static=True)

    def mv(self, x):
        return self.fn(x)

    @property
    def n(self) -> int:
        return self.size

    @property
    def dtype(self):
        return np.dtype(self.coefficient_dtype)


class _LineaxOperator(AbstractOperator):
    # Wraps a lineax operator without importing lineax (it is not a dependency).
    operator: Any

    def mv(self, x):
        return self.operator.mv(x)

    @property
    def n(self) -> int:
        return self.operator.in_size()

    @property
    def dtype(self):
        return np.dtype(jax.tree.leaves(self.operator.in_structure())[0].dtype)

    def as_matrix(self):
        return self.operator.as_matrix()


def as_operator(A: Any, like: Array | None = None) -> AbstractOperator:
    """Turn any supported representation of a square matrix into an `AbstractOperator`.

    Args:
        A: a sciml operator, a dense 2-D array, a `BCOO` matrix, a SciPy sparse matrix, a lineax
            operator, or a callable `x -> A x`.
        like: a vector of the system (the right-hand side); needed for a callable, whose size
            and dtype are taken from it.

    Returns:
        The operator.

    Raises:
        ValueError: for anything else, or a non-square matrix.
    """
    if isinstance(A, AbstractOperator):
        return A
    if isinstance(A, jsparse.BCOO):
        return SparseOperator(A)
    if sp.issparse(A):
        return SparseOperator(jsparse.BCOO.from_scipy_sparse(sp.coo_array(A)))
    if hasattr(A, "mv") and hasattr(A, "in_structure") and hasattr(A, "in_size"):
        return _LineaxOperator(A)
    if isinstance(A, (jax.Array, np.ndarray)):
        return MatrixOperator(jnp.asarray(A))
    if isinstance(getattr(A, "__self__", None), AbstractOperator) and (
        getattr(A, "__name__", None) in ("mv", "__call__")
    ):
        return A.__self__  # `op.mv` was passed for `op`
    if callable(A):
        if like is None:
            raise ValueError("a callable operator needs the right-hand side to know its size.")
        return FunctionOperator(A, like.shape[-1], like.dtype)
    raise ValueError(
        f"cannot use an object of type {type(A).__name__} as a linear operator. Pass a sciml "
        f"operator, a dense square array, a jax.experimental.sparse.BCOO, a SciPy sparse matrix, "
        f"a lineax operator, or a callable x -> A @ x."
    )
