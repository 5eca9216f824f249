"""Input checks shared by the learners and the sequence drivers (run eagerly, before `jit`)."""

from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..._core import check_tolerances, is_concrete
from .._common import _as_max_steps


def as_omega_grid(
    omegas: Any, *, name: str = "omegas", increasing: bool = False, dtype: Any = None
) -> Float[Array, " k"]:
    """A 1-D, non-empty grid of relaxation factors in (0, 2), as a floating array.

    A solve with ω outside (0, 2) diverges (SOR) or breaks down at once (SSOR-PCG), so a
    learner or comparator given such an arm would be fed failures; the grid is refused here.
    Integer grids are cast to the default float (or `dtype`), so they neither recompile nor
    truncate the learners' state.
    """
    omegas = jnp.asarray(omegas)
    if omegas.ndim != 1 or omegas.shape[0] < 1:
        raise ValueError(f"`{name}` must be a non-empty 1-D grid of ω, got shape {omegas.shape}.")
    if dtype is not None:
        omegas = omegas.astype(dtype)
    elif not jnp.issubdtype(omegas.dtype, jnp.floating):
        omegas = omegas.astype(jnp.result_type(float))
    if is_concrete(omegas):  # traced values are not known here (as in `sor`)
        values = np.asarray(omegas)
        bad = np.flatnonzero(~((values > 0) & (values < 2)))
        if bad.size:
            raise ValueError(
                f"`{name}` must lie in (0, 2), where SOR converges for symmetric positive "
                f"definite A; entry {int(bad[0])} is {values[bad[0]]}."
            )
        if increasing and np.any(np.diff(values) <= 0):
            raise ValueError(
                f"`{name}` must be strictly increasing (the search brackets the minimum by "
                f"index), got {values}; sort it, e.g. `jnp.sort({name})`."
            )
    return omegas


def context_interval(lo: Any, hi: Any, dtype: Any) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """The context interval [lo, hi] of a contextual learner, as scalars with lo < hi."""
    lo, hi = jnp.asarray(lo, dtype), jnp.asarray(hi, dtype)
    if lo.ndim or hi.ndim:
        raise ValueError(f"`lo` and `hi` must be scalars, got shapes {lo.shape} and {hi.shape}.")
    if is_concrete((lo, hi)) and not lo < hi:
        raise ValueError(f"need `lo` < `hi` (the context interval), got lo={lo}, hi={hi}.")
    return lo, hi


def check_run(seq: Any, rtol: Any, max_steps: Any) -> int:
    """Check a driver's tolerance against the sequence's dtype, as the solvers do eagerly.

    Inside the drivers' `jit` the tolerance is traced, so the solvers' own check cannot see
    its value; without this a float32 sequence with rtol = 1e-8 would run every instance to
    `max_steps`. Returns `max_steps` as an int.
    """
    for attribute in ("rhs", "operators", "context"):
        if not hasattr(seq, attribute):
            raise ValueError(
                f"the sequence lacks `{attribute}`: pass a sequence pytree with batched "
                f"`operators`, `rhs` (T, n) and `context` (T,), e.g. "
                f"`sciml.problems.shifted_laplacians` or `sciml.problems.heat_sequence`."
            )
    check_tolerances(rtol, 0.0, seq.rhs.dtype)
    return _as_max_steps(max_steps, seq.rhs.shape[-1])
