"""The `Solution` returned by every numerical entry point."""

from typing import Any

import equinox as eqx
from jaxtyping import Array, PyTree

from ._results import RESULTS


class Solution(eqx.Module):
    """The result of a solve.

    Attributes:
        value: the computed solution.
        result: a `RESULTS` code; `RESULTS[result]` is its human-readable message.
        stats: a dict of arrays. Iterative solvers always fill `num_steps` (iterations done),
            `max_steps`, `residual_norm` (final ‖b − A x‖, the recursively updated one where the
            method keeps one) and `residual_history` of length `max_steps + 1` (entry 0 is the
            initial residual norm, entry k the one after k iterations, NaN after the last), so
            shapes stay static under `jit`/`vmap` and plots come from one place.
    """

    value: PyTree[Array]
    result: RESULTS
    stats: dict[str, Any]

    @property
    def converged(self) -> Array:
        """Boolean array: did the solve meet its tolerance?"""
        return self.result == RESULTS.successful
