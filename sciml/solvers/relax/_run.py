"""Run a learner (or a fixed ω) over a whole sequence of linear systems under `lax.scan`."""

from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._sor import sor, ssor_pcg, young_omega


class RelaxResult(eqx.Module):
    """What a run over a sequence did.

    Attributes:
        omega: the relaxation factor used on each instance, shape (T,).
        iterations: the solver's iteration (sweep) count on each instance, shape (T,).
        cumulative: the running total of `iterations`, shape (T,).
        arm: the index of ω in the learner's grid, shape (T,) (−1 for fixed runs).
    """

    omega: Float[Array, " T"]
    iterations: Int[Array, " T"]
    cumulative: Int[Array, " T"]
    arm: Int[Array, " T"]

    @property
    def total(self) -> Int[Array, ""]:
        return self.cumulative[-1]


def _check_method(method: str) -> None:
    if method not in ("sor", "ssor_pcg"):
        raise ValueError(f"`method` must be 'sor' or 'ssor_pcg', got {method!r}.")


def _solve_count(op, b, x0, omega, method, rtol, max_steps):
    if method == "sor":
        # The SOR cost of "Learning to Relax": sweeps from x0 = 0 until the residual drops
        # by rtol.
        sol = sor(op, b, omega=omega, rtol=rtol, max_steps=max_steps, throw=False)
    else:
        sol = ssor_pcg(op, b, omega=omega, x0=x0, rtol=rtol, max_steps=max_steps, throw=False)
    return sol.stats["num_steps"]


def _instances(seq: Any):
    initial = getattr(seq, "initial", None)
    if initial is None:
        initial = jnp.zeros_like(seq.rhs)
    return seq.operators, seq.rhs, initial, seq.context


def run(
    seq: Any,
    learner: Any,
    *,
    key: PRNGKeyArray,
    method: Literal["sor", "ssor_pcg"] = "sor",
    rtol: float = 1e-8,
    max_steps: int = 10_000,
) -> RelaxResult:
    """Solve every system of a sequence with the ω a learner picks, learning from the counts.

    Instance t: `arm, state = learner.select(state, key_t, context_t)`, solve with
    ω = `learner.omegas[arm]`, then `state = learner.update(state, iterations, context_t)`.
    The loop is one `lax.scan`; the keys are `jax.random.split(key, T)`, so the same key gives
    the same actions on every backend (as long as the iteration counts agree).

    Args:
        seq: a sequence pytree with batched `operators`, `rhs` (T, n), `context` (T,) and
            optionally `initial` (T, n) warm starts (e.g. `sciml.problems.shifted_laplacians`,
            `sciml.problems.heat_sequence`).
        learner: `TsallisINF`, `TsallisINFCB`, `ChebCB` or any object with `omegas`, `init`,
            `select` and `update`.
        key: PRNG key.
        method: `"sor"` (sweeps from x0 = 0, tolerance relative to ‖b‖) or `"ssor_pcg"`
            (warm-started SSOR-PCG, MATLAB `pcg` semantics).
        rtol: solver tolerance.
        max_steps: solver iteration cap.

    Returns:
        A `RelaxResult`.

    Raises:
        ValueError: for an unknown `method`.
    """
    _check_method(method)
    return _run(seq, learner, key, method, jnp.asarray(rtol), max_steps)


@eqx.filter_jit
def _run(seq, learner, key, method, rtol, max_steps):
    keys = jax.random.split(key, seq.rhs.shape[0])

    def step(state, inputs):
        k, op, b, x0, c = inputs
        arm, state = learner.select(state, k, c)
        omega = learner.omegas[arm]
        count = _solve_count(op, b, x0, omega, method, rtol, max_steps)
        state = learner.update(state, count, c)
        return state, (omega, count, arm)

    _, (omega, counts, arms) = jax.lax.scan(step, learner.init(), (keys, *_instances(seq)))
    return RelaxResult(omega, counts, jnp.cumsum(counts), arms)


def fixed(
    seq: Any,
    omega: Any,
    *,
    method: Literal["sor", "ssor_pcg"] = "sor",
    rtol: float = 1e-8,
    max_steps: int = 10_000,
) -> RelaxResult:
    """The iteration counts of a fixed ω (scalar) or per-instance ω (shape (T,)) on a sequence.

    Args:
        seq: see `run`.
        omega: a scalar or one ω per instance; traced (changing it never recompiles).
        method, rtol, max_steps: see `run`.

    Returns:
        A `RelaxResult` (arm = −1).
    """
    _check_method(method)
    T = seq.rhs.shape[0]
    omegas = jnp.broadcast_to(jnp.asarray(omega, seq.rhs.dtype), (T,))
    return _fixed(seq, omegas, method, jnp.asarray(rtol), max_steps)


@eqx.filter_jit
def _fixed(seq, omegas, method, rtol, max_steps):
    T = omegas.shape[0]

    def step(_, inputs):
        w, op, b, x0, _c = inputs
        return None, _solve_count(op, b, x0, w, method, rtol, max_steps)

    _, counts = jax.lax.scan(step, None, (omegas, *_instances(seq)))
    return RelaxResult(omegas, counts, jnp.cumsum(counts), jnp.full(T, -1, jnp.int32))


def grid_iterations(
    seq: Any,
    omegas: Any,
    *,
    method: Literal["sor", "ssor_pcg"] = "sor",
    rtol: float = 1e-8,
    max_steps: int = 10_000,
) -> Int[Array, "G T"]:
    """Iteration counts of every ω of a grid on every instance, shape (len(omegas), T)."""
    return jnp.stack(
        [
            fixed(seq, w, method=method, rtol=rtol, max_steps=max_steps).iterations
            for w in jnp.asarray(omegas)
        ]
    )


def best_fixed(grid_counts: Int[Array, "G T"], omegas: Any) -> tuple[Any, Any]:
    """The best fixed ω in hindsight on a grid: `(omega, total)` from `grid_iterations`."""
    totals = jnp.sum(grid_counts, axis=1)
    i = jnp.argmin(totals)
    return jnp.asarray(omegas)[i], totals[i]


def instance_optimal(grid_counts: Int[Array, "G T"], omegas: Any) -> tuple[Any, Any]:
    """The per-instance best ω on a grid: `(omega (T,), iterations (T,))`."""
    i = jnp.argmin(grid_counts, axis=0)
    return jnp.asarray(omegas)[i], jnp.min(grid_counts, axis=0)


@eqx.filter_jit
def young(seq: Any) -> Float[Array, " T"]:
    """Young's ω*(A_t) for every instance (dense eigenvalues; for small systems)."""
    return jax.lax.map(young_omega, seq.operators, batch_size=64)
