"""The container every problem generator returns."""

import equinox as eqx
from jaxtyping import Array, Float

from ..linalg import AbstractOperator


class LinearProblem(eqx.Module):
    """A linear system A x = b.

    Attributes:
        operator: the matrix-free operator A.
        rhs: the flat right-hand side b.
        name: a short label for tables and plots.
    """

    operator: AbstractOperator
    rhs: Float[Array, " n"]
    name: str = eqx.field(static=True, default="")
