"""Run a learner (or a fixed ω) over a whole sequence of linear systems under `lax.scan`."""

from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from ..._core import RESULTS
from .._sor import sor, ssor_pcg, young_omega
from ._checks import as_omega_grid, check_run

Solver = Literal["sor", "sor_red_black", "ssor_pcg"] | Callable[..., Any]
_SOLVERS = ("sor", "sor_red_black", "ssor_pcg")


class RelaxResult(eqx.Module):
    """What a run over a sequence did.

    Attributes:
        omega: the relaxation factor used on each instance, shape (T,).
        iterations: the solver's iteration (sweep) count on each instance, shape (T,).
        cumulative: the cumulative cost, the running total of `iterations`, shape (T,).
        arm: the index of ω in the learner's grid, shape (T,) (−1 for fixed runs).
    """

    omega: Float[Array, " T"]
    iterations: Int[Array, " T"]
    cumulative: Int[Array, " T"]
    arm: Int[Array, " T"]

    @property
    def total(self) -> Int[Array, ""]:
        """The total cost, `cumulative[-1]`."""
        return self.cumulative[-1]


def _check_solver(solver: Any) -> None:
    if callable(solver):
        return
    if solver not in _SOLVERS:
        raise ValueError(
            f"`solver` (`method` of `fixed`/`run`) must be one of {_SOLVERS} or a callable "
            f"`solver(A, b, *, omega, x0, rtol, max_steps, throw) -> Solution`, got {solver!r}."
        )


def _check_learner(learner: Any) -> None:
    missing = [
        name for name in ("omegas", "init", "select", "update") if not hasattr(learner, name)
    ]
    if missing:
        raise ValueError(
            f"`learner` lacks {missing}: pass `TsallisINF`, `TsallisINFCB`, `ChebCB` or an object "
            f"with `omegas`, `init()`, `select(state, key, context)` and "
            f"`update(state, loss, context)`."
        )


def _solve_count(op, b, x0, omega, solver, rtol, max_steps):
    if solver in ("sor", "sor_red_black"):
        # The SOR cost of "Learning to Relax": sweeps from x0 = 0 until the residual drops
        # by rtol.
        ordering = "lexicographic" if solver == "sor" else "red_black"
        sol = sor(
            op, b, omega=omega, rtol=rtol, max_steps=max_steps, ordering=ordering, throw=False
        )
    elif solver == "ssor_pcg":
        sol = ssor_pcg(op, b, omega=omega, x0=x0, rtol=rtol, max_steps=max_steps, throw=False)
    else:
        sol = solver(op, b, omega=omega, x0=x0, rtol=rtol, max_steps=max_steps, throw=False)
    # A solve that failed (diverged to non-finite values, broke down) costs the whole budget:
    # its own count can be small (SSOR-PCG with an indefinite preconditioner stops at step
    # 0), and a learner must not mistake a failure for a cheap arm.
    count = jnp.asarray(sol.stats["num_steps"], jnp.int32)
    return jnp.where(sol.result == RESULTS.successful, count, max_steps)


def _instances(seq: Any):
    initial = getattr(seq, "initial", None)
    if initial is None:
        initial = jnp.zeros_like(seq.rhs)
    return seq.operators, seq.rhs, initial, seq.context


def relax(
    sequence: Any,
    solver: Solver,
    learner: Any,
    *,
    key: PRNGKeyArray,
    rtol: float = 1e-8,
    max_steps: int = 10_000,
) -> RelaxResult:
    """Solve every system of a sequence with the ω a learner picks, learning from the counts.

    Instance t: `arm, state = learner.select(state, key_t, context_t)`, solve with
    ω = `learner.omegas[arm]`, then `state = learner.update(state, iterations, context_t)`.
    The whole sequence is one `lax.scan` inside one `jit`; round t uses the key
    `jax.random.split(key, T)[t]`.

    Determinism: the actions are a pure function of the key, the contexts and the iteration
    counts observed so far. On one backend the same inputs give bitwise the same actions, and
    `replay(learner, result.iterations, key=key, context=sequence.context)` reproduces them
    from the recorded counts. Across backends (CPU, GPU, TPU), the arm is drawn by
    `sample_arm` (an exact uniform from the key's raw bits against a fixed-order CDF), and
    `TsallisINF` / `TsallisINFCB` compute their distribution with IEEE +, −, ×, ÷, √ and
    fixed-order sums only (no backend reductions, transcendental functions, rsqrt or
    contractible multiply–adds; bitwise agreement matters, as the learner state amplifies a
    one-ulp difference until the actions part). A replay on an NVIDIA H200 of the previous
    version still parted from the CPU's after ~1500 rounds: XLA had rewritten L = K/s as
    K·(1/s) and a backend contracted K·(1/s) − x into an FMA (reproduced on the CPU by
    capping XLA at AVX, and removed; a test now checks the optimised programs and compares
    runs with and without FMA). The fixed version has not been replayed on a GPU yet.
    `ChebCB` refits with `pinv`/`eigvalsh` and matrix products, whose last bits are up to
    each backend's LAPACK/BLAS, so its choices can differ when a draw lands within rounding of a CDF
    boundary or two predictions tie to rounding. The counts may not be portable either: a
    solve whose last residual is within rounding of the tolerance can stop one iteration
    earlier on one backend (the solver's reductions and kernels differ), and from that round
    on the learner sees different losses. Replaying one backend's counts on another
    separates the two effects.

    Args:
        sequence: a sequence pytree with batched `operators`, `rhs` (T, n), `context` (T,) and
            optionally `initial` (T, n) warm starts (e.g. `sciml.problems.shifted_laplacians`,
            `sciml.problems.heat_sequence`).
        solver: `"sor"` (lexicographic SOR, sweeps from x0 = 0 until ‖b − Ax‖ ≤ rtol‖b‖; the
            cost of "Learning to Relax"), `"sor_red_black"` (the same with the red–black
            ordering: fully parallel, for GPUs/TPUs; grid stencil sequences only; its counts
            differ from the lexicographic ones), `"ssor_pcg"` (SSOR-PCG warm-started at
            `initial`, MATLAB `pcg` semantics), or a callable with the signature of `sor`:
            `solver(A, b, *, omega, x0, rtol, max_steps, throw) -> Solution`, called with the
            warm start (zeros if the sequence has none) and `throw=False`; its cost is
            `stats["num_steps"]`.
        learner: `TsallisINF`, `TsallisINFCB`, `ChebCB` or any object with `omegas`, `init`,
            `select` and `update`.
        key: PRNG key.
        rtol: solver tolerance (traced: changing it does not recompile); checked against
            the sequence's dtype, as the solvers check it.
        max_steps: solver iteration cap (static int). A solve that fails (reaches it,
            breaks down or diverges) costs `max_steps`.

    Returns:
        A `RelaxResult`: per-instance `omega`, `iterations`, `cumulative` cost and `arm`.

    Raises:
        ValueError: for an unknown `solver`, a learner without the state-machine methods, a
            sequence without `operators`, `rhs` and `context`, or a bad `rtol`/`max_steps`.

    References:
        Khodak, Chow, Balcan, Talwalkar, "Learning to Relax: Setting Solver Parameters Across a
        Sequence of Linear System Instances", ICLR 2024.
    """
    _check_solver(solver)
    _check_learner(learner)
    max_steps = check_run(sequence, rtol, max_steps)
    return _relax(sequence, learner, key, solver, jnp.asarray(rtol), max_steps)


def run(
    seq: Any,
    learner: Any,
    *,
    key: PRNGKeyArray,
    method: Solver = "sor",
    rtol: float = 1e-8,
    max_steps: int = 10_000,
) -> RelaxResult:
    """`relax(seq, method, learner, key=key, rtol=rtol, max_steps=max_steps)` (an alias).

    Kept for the keyword form `run(seq, learner, key=..., method="ssor_pcg")`; see `relax`.
    """
    return relax(seq, method, learner, key=key, rtol=rtol, max_steps=max_steps)


def _round_keys(key, T):
    # One key per instance, shared by `relax` and `replay` so that a replay draws the same
    # uniforms as the run it reproduces.
    return jax.random.split(key, T)


def _learn_step(learner, state, key, context, observe):
    """One round: draw an arm, observe its loss (`observe(arm, omega)`), update the learner."""
    arm, state = learner.select(state, key, context)
    omega = learner.omegas[arm]
    count = jnp.asarray(observe(arm, omega), jnp.int32)
    state = learner.update(state, count, context)
    return state, (omega, count, arm)


@eqx.filter_jit
def _relax(seq, learner, key, solver, rtol, max_steps):
    keys = _round_keys(key, seq.rhs.shape[0])

    def step(state, inputs):
        k, op, b, x0, c = inputs

        def observe(arm, omega):
            return _solve_count(op, b, x0, omega, solver, rtol, max_steps)

        return _learn_step(learner, state, k, c, observe)

    _, (omega, counts, arms) = jax.lax.scan(step, learner.init(), (keys, *_instances(seq)))
    return RelaxResult(omega, counts, jnp.cumsum(counts), arms)


def replay(
    learner: Any,
    iterations: Int[ArrayLike, " T"],
    *,
    key: PRNGKeyArray,
    context: Float[ArrayLike, " T"] | None = None,
) -> RelaxResult:
    """Play a learner against recorded losses: the actions of a `relax` run, without solving.

    Round t draws an arm exactly as `relax` does (key `jax.random.split(key, T)[t]`, context
    `context[t]`), then feeds the learner `iterations[t]` instead of solving. The learners are
    pure functions of (key, contexts, losses so far), so replaying the `iterations` of a
    `relax(sequence, solver, learner, key=key)` run with that key and `sequence.context`
    reproduces its `arm` and `omega` exactly (bitwise, on the same backend; see `relax` for
    other backends). Use it to audit a run, or to check on another backend that the learner
    makes the same choices when it sees the same counts.

    Args:
        learner: `TsallisINF`, `TsallisINFCB`, `ChebCB` or any object with `omegas`, `init`,
            `select` and `update`.
        iterations: the recorded loss of every round, shape (T,) (integer counts).
        key: the PRNG key of the run.
        context: the contexts of the run, shape (T,) (`sequence.context`); zeros if omitted
            (enough for `TsallisINF`, which ignores them).

    Returns:
        A `RelaxResult` with the replayed `omega` and `arm`, and `iterations` / `cumulative`
        from the recorded losses.

    Raises:
        ValueError: for a learner without the state-machine methods, or `iterations` and
            `context` that are not 1-D of the same length.
    """
    _check_learner(learner)
    iterations = jnp.asarray(iterations)
    if iterations.ndim != 1 or iterations.shape[0] < 1:
        raise ValueError(
            f"`iterations` must be the 1-D recorded losses of a run, got shape {iterations.shape}."
        )
    if context is None:
        context = jnp.zeros(iterations.shape, learner.omegas.dtype)
    context = jnp.asarray(context)
    if context.shape != iterations.shape:
        raise ValueError(
            f"`context` must have the shape of `iterations` {iterations.shape} (one per round), "
            f"got {context.shape}."
        )
    return _replay(learner, iterations.astype(jnp.int32), key, context)


@eqx.filter_jit
def _replay(learner, iterations, key, context):
    keys = _round_keys(key, iterations.shape[0])

    def step(state, inputs):
        k, loss, c = inputs
        return _learn_step(learner, state, k, c, lambda arm, omega: loss)

    _, (omega, counts, arms) = jax.lax.scan(step, learner.init(), (keys, iterations, context))
    return RelaxResult(omega, counts, jnp.cumsum(counts), arms)


def fixed(
    seq: Any,
    omega: Any,
    *,
    method: Solver = "sor",
    rtol: float = 1e-8,
    max_steps: int = 10_000,
) -> RelaxResult:
    """The iteration counts of a fixed ω (scalar) or per-instance ω (shape (T,)) on a sequence.

    Args:
        seq: see `relax`.
        omega: a scalar or one ω per instance, in (0, 2); traced (changing it never
            recompiles).
        method: the solver, as `relax`'s `solver`.
        rtol, max_steps: see `relax`.

    Returns:
        A `RelaxResult` (arm = −1).

    Raises:
        ValueError: for an unknown `method`, ω outside (0, 2) or of a shape other than ()
            or (T,), or the errors of `relax`.
    """
    _check_solver(method)
    max_steps = check_run(seq, rtol, max_steps)
    T = seq.rhs.shape[0]
    if jnp.shape(omega) not in ((), (T,)):
        raise ValueError(
            f"`omega` must be a scalar or one ω per instance, shape ({T},), got shape "
            f"{jnp.shape(omega)}."
        )
    omegas = jnp.broadcast_to(
        as_omega_grid(jnp.ravel(omega), name="omega", dtype=seq.rhs.dtype), (T,)
    )
    counts = _fixed_counts(seq, omegas, method, jnp.asarray(rtol), max_steps)
    return RelaxResult(omegas, counts, jnp.cumsum(counts), jnp.full(T, -1, jnp.int32))


@eqx.filter_jit
def _fixed_counts(seq, omegas, method, rtol, max_steps):
    def step(_, inputs):
        w, op, b, x0, _c = inputs
        return None, _solve_count(op, b, x0, w, method, rtol, max_steps)

    return jax.lax.scan(step, None, (omegas, *_instances(seq)))[1]


def fine_grid(lo: float = 1.0, hi: float = 1.95, step: float = 0.01, *, dtype=None):
    """The comparators' grid of ω: `lo, lo + step, …, hi` (default 1.00…1.95, 96 points).

    The method note's "0.01 grid" of the shifted-Laplacian best fixed ω and the 96-point grid
    of the heat runs.
    """
    if not (step > 0 and hi >= lo):
        raise ValueError(f"need `step` > 0 and `lo` <= `hi`, got lo={lo}, hi={hi}, step={step}.")
    count = int(round((hi - lo) / step)) + 1
    return jnp.asarray(np.linspace(lo, hi, count), dtype)


def grid_iterations(
    seq: Any,
    omegas: Any,
    *,
    method: Solver = "sor",
    rtol: float = 1e-8,
    max_steps: int = 10_000,
    batch_size: int | None = None,
) -> Int[Array, "G T"]:
    """Iteration counts of every ω of a grid on every instance, shape (len(omegas), T).

    One jitted computation: `lax.map` over the grid, `batch_size` ω at a time under `vmap`
    (the vmapped solves run in lockstep to the slowest member's count: worth it on GPUs, or
    when the overhead of small sweeps dominates).
    """
    _check_solver(method)
    max_steps = check_run(seq, rtol, max_steps)
    omegas = as_omega_grid(omegas, dtype=seq.rhs.dtype)
    return _grid_counts(seq, omegas, method, jnp.asarray(rtol), max_steps, batch_size)


@eqx.filter_jit
def _grid_counts(seq, omegas, method, rtol, max_steps, batch_size):
    T = seq.rhs.shape[0]

    def one(w):
        return _fixed_counts(seq, jnp.broadcast_to(w, (T,)), method, rtol, max_steps)

    return jax.lax.map(one, omegas, batch_size=batch_size)


def best_fixed(grid_counts: Int[Array, "G T"], omegas: Any) -> tuple[Any, Any]:
    """The best fixed ω in hindsight on a grid: `(omega, total)` from `grid_iterations`."""
    totals = jnp.sum(grid_counts, axis=1)
    i = jnp.argmin(totals)
    return jnp.asarray(omegas)[i], totals[i]


def instance_optimal(grid_counts: Int[Array, "G T"], omegas: Any) -> tuple[Any, Any]:
    """The per-instance best ω on a grid: `(omega (T,), iterations (T,))`."""
    i = jnp.argmin(grid_counts, axis=0)
    return jnp.asarray(omegas)[i], jnp.min(grid_counts, axis=0)


_WORST = np.iinfo(np.int32).max  # the value of grid points past the end


def _fibonacci(n: int) -> list[int]:
    fib = [0, 1, 1, 2, 3]
    while fib[-1] < n - 1:
        fib.append(fib[-1] + fib[-2])
    return fib


def golden_section_index(
    evaluate: Callable[[Int[Array, ""]], Int[Array, ""]], n: int
) -> tuple[Int[Array, ""], Int[Array, ""]]:
    """Minimise an integer-valued function of a grid index 0 … n−1 by Fibonacci search.

    The discrete golden-section search: the bracket [a, a + F_m] shrinks to
    [a, a + F_{m−1}] per step with one new evaluation, until four points are left, which are
    compared directly; m evaluations in all for n ≤ F_m + 1 (12 for n = 96, instead of 96).
    Exact for unimodal functions (ties go left). Iteration counts as a function of ω are
    often but not always unimodal: the heat-sequence totals (nx = 25, SSOR-PCG) have local
    minima at ω = 1.02, 1.21, 1.34 and 1.40, and this search stops at 1.34 (29,606) while the
    grid's minimum is at 1.40 (29,454). Indices past the end count as int32 max. Jittable
    and vmappable (the loop length is static).

    Args:
        evaluate: index (int32 scalar) -> value (integer scalar).
        n: grid size (static int ≥ 1).

    Returns:
        `(index, value)` of the minimum found.
    """
    fib = _fibonacci(n)
    m_top = len(fib) - 1
    fib_table = jnp.asarray(fib, jnp.int32)

    def value(i):
        inside = i < n
        v = evaluate(jnp.minimum(i, n - 1).astype(jnp.int32))
        return jnp.where(inside, jnp.asarray(v, jnp.int32), _WORST)

    def both(i, j):
        return jax.vmap(value)(jnp.stack([i, j]))

    a = jnp.asarray(0, jnp.int32)
    f1, f2 = both(fib_table[m_top - 2], fib_table[m_top - 1])

    def step(s, carry):
        a, f1, f2 = carry
        m = m_top - s
        go_left = f1 <= f2
        # Left: the bracket becomes [a, a + F_{m-1}], old x1 is the new x2.
        # Right: it becomes [x1, x1 + F_{m-1}], old x2 is the new x1.
        new_a = jnp.where(go_left, a, a + fib_table[m - 2])
        probe = jnp.where(go_left, a + fib_table[m - 3], new_a + fib_table[m - 2])
        f_new = value(probe)
        return (
            new_a,
            jnp.where(go_left, f_new, f2),
            jnp.where(go_left, f1, f_new),
        )

    a, f1, f2 = jax.lax.fori_loop(0, m_top - 4, step, (a, f1, f2))
    # Four points a … a + 3 remain; f1, f2 are the values at a + 1, a + 2.
    f0, f3 = both(a, a + 3)
    values = jnp.stack([f0, f1, f2, f3])
    best = jnp.argmin(values)
    return a + best.astype(jnp.int32), values[best]


def _grid(seq, omegas):
    if omegas is None:
        return fine_grid(dtype=seq.rhs.dtype)
    return as_omega_grid(omegas, increasing=True, dtype=seq.rhs.dtype)


def search_best_fixed(
    seq: Any,
    omegas: Any = None,
    *,
    method: Solver = "sor",
    rtol: float = 1e-8,
    max_steps: int = 10_000,
) -> tuple[Float[Array, ""], Int[Array, ""]]:
    """The best fixed ω in hindsight over a fine grid, by golden-section search on the total.

    Each evaluation runs the whole sequence at one ω (`fixed`); the Fibonacci search
    (`golden_section_index`) needs 12 of them for the default 96-point grid 1.00, 1.01, …,
    1.95 instead of 96. The answer is exact only if the total is unimodal in ω, which it
    need not be (see `golden_section_index`): use `grid_iterations` + `best_fixed` for the
    brute-force answer, as `benchmarks/bench_relax.py` does.

    Args:
        seq: see `relax`.
        omegas: an increasing grid of ω (default `fine_grid()`).
        method, rtol, max_steps: see `fixed`.

    Returns:
        `(omega, total)`.
    """
    _check_solver(method)
    max_steps = check_run(seq, rtol, max_steps)
    omegas = _grid(seq, omegas)
    return _search_best_fixed(seq, omegas, method, jnp.asarray(rtol), max_steps)


@eqx.filter_jit
def _search_best_fixed(seq, omegas, method, rtol, max_steps):
    T = seq.rhs.shape[0]

    def total(i):
        w = jnp.broadcast_to(omegas[i], (T,))
        return jnp.sum(_fixed_counts(seq, w, method, rtol, max_steps))

    i, value = golden_section_index(total, omegas.shape[0])
    return omegas[i], value


def search_instance_optimal(
    seq: Any,
    omegas: Any = None,
    *,
    method: Solver = "sor",
    rtol: float = 1e-8,
    max_steps: int = 10_000,
    batch_size: int | None = None,
) -> tuple[Float[Array, " T"], Int[Array, " T"]]:
    """The instance-optimal ω over a fine grid: a golden-section search per instance.

    Exact only where each instance's count is unimodal in ω (see `golden_section_index`);
    `grid_iterations` + `instance_optimal` is the brute-force answer.

    Args:
        seq: see `relax`.
        omegas: an increasing grid of ω (default `fine_grid()`).
        method, rtol, max_steps: see `fixed`.
        batch_size: instances searched together under `vmap` (`lax.map`'s `batch_size`;
            default one at a time).

    Returns:
        `(omega (T,), iterations (T,))`.
    """
    _check_solver(method)
    max_steps = check_run(seq, rtol, max_steps)
    omegas = _grid(seq, omegas)
    return _search_instances(seq, omegas, method, jnp.asarray(rtol), max_steps, batch_size)


@eqx.filter_jit
def _search_instances(seq, omegas, method, rtol, max_steps, batch_size):
    def one(inputs):
        op, b, x0, _c = inputs

        def count(i):
            return _solve_count(op, b, x0, omegas[i], method, rtol, max_steps)

        i, value = golden_section_index(count, omegas.shape[0])
        return omegas[i], value

    return jax.lax.map(one, _instances(seq), batch_size=batch_size)


@eqx.filter_jit
def young(seq: Any) -> Float[Array, " T"]:
    """Young's ω*(A_t) for every instance (dense eigenvalues; for small systems)."""
    return jax.lax.map(young_omega, seq.operators, batch_size=64)
