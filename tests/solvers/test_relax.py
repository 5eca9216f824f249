"""Learning to relax: normaliser, learners on synthetic bandits, the sequence driver."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml.problems import heat_sequence, shifted_laplacians
from sciml.solvers import relax, sor, ssor_pcg


@pytest.mark.parametrize("spread", [0.0, 1.0, 1e2, 1e4])
@pytest.mark.parametrize("t", [1, 300, 5000])
def test_normaliser_sums_to_one_below_the_pole(spread, t):
    rng = np.random.default_rng(int(spread) + t)
    estimates = jnp.asarray(spread * rng.uniform(size=20))
    eta = jnp.asarray(2 / np.sqrt(t))
    p = relax.tsallis_probabilities(estimates, eta)
    assert abs(float(jnp.sum(p)) - 1) <= 1e-8
    assert bool(jnp.all(p > 0)) and bool(jnp.all(jnp.isfinite(p)))
    # the lowest estimate gets the most mass (a collapse onto another arm would break this)
    assert int(jnp.argmax(p)) == int(jnp.argmin(estimates))


def _synthetic(learner, means, T, key, context_fn=None, noise=0.2):
    """Plays `learner` on losses 1 + 10·(mean(arm, context) + noise·N(0,1)), ≥ 1."""
    state = learner.init()

    def step(state, k):
        k_ctx, k_sel, k_noise = jax.random.split(k, 3)
        c = jax.random.uniform(k_ctx) if context_fn is not None else jnp.asarray(0.0)
        arm, state = learner.select(state, k_sel, c)
        mean = means(arm, c)
        loss = jnp.maximum(1 + 10 * (mean + noise * jax.random.normal(k_noise)), 1)
        p_sum = jnp.sum(state.prob) if hasattr(state, "prob") else jnp.asarray(1.0)
        return learner.update(state, jnp.round(loss), c), (arm, c, p_sum)

    _, out = jax.lax.scan(step, state, jax.random.split(key, T))
    return out


def test_tsallis_inf_concentrates_on_the_best_arm():
    grid = jnp.linspace(1.0, 1.8, 5)
    table = jnp.asarray([5.0, 3.0, 1.0, 4.0, 6.0])
    arms, _, p_sums = jax.jit(
        lambda k: _synthetic(relax.TsallisINF(grid), lambda a, c: table[a], 900, k)
    )(jax.random.key(0))
    arms = np.asarray(arms)
    early, late = np.mean(arms[:300] == 2), np.mean(arms[-300:] == 2)
    assert late > early and late > 0.6, (early, late)
    np.testing.assert_allclose(np.asarray(p_sums), 1.0, atol=1e-8)


def test_tsallis_inf_cb_learns_a_best_arm_per_bin():
    grid = jnp.linspace(1.0, 1.8, 4)
    best = lambda c: jnp.where(c < 0.5, 0, 3)  # noqa: E731

    def means(a, c):
        return jnp.where(a == best(c), 1.0, 4.0)

    learner = relax.TsallisINFCB(grid, 2, 0.0, 1.0)
    arms, contexts, _ = jax.jit(lambda k: _synthetic(learner, means, 900, k, context_fn=True))(
        jax.random.key(1)
    )
    hit = np.asarray(arms) == np.asarray(best(contexts))
    assert hit[-300:].mean() > hit[:300].mean() and hit[-300:].mean() > 0.6


@pytest.mark.parametrize(
    "learner",
    [
        relax.TsallisINF(jnp.linspace(1.0, 1.95, 20)),
        relax.TsallisINFCB(jnp.linspace(1.0, 1.95, 20), 5, -0.15, 0.65),
        relax.ChebCB(jnp.linspace(1.0, 1.95, 20), 6, -0.15, 0.65),
    ],
    ids=lambda learner: type(learner).__name__,
)
def test_eager_rounds_compile_nothing_after_the_first(learner, caplog):
    # A simulation loop calls the learner between its solves, eagerly. Eager loops inside the
    # methods would compile on every call (~60-120 ms per round on the build CPU).
    state = learner.init()
    arm, state = learner.select(state, jax.random.key(0), 0.1)
    state = learner.update(state, 30, 0.1)
    control = jnp.zeros(3)
    with jax.log_compiles(), caplog.at_level("WARNING", logger="jax"):
        for i in range(3):
            arm, state = learner.select(state, jax.random.key(i + 1), 0.2 + 0.1 * i)
            state = learner.update(state, 31 + i, 0.2 + 0.1 * i)
        jax.block_until_ready(state)
        jax.jit(lambda x: x + 1)(control)  # a fresh function: its compile is logged
    compiled = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
    assert len(compiled) == 1 and "lambda" in compiled[0], compiled


def test_chebcb_tracks_a_context_dependent_best_arm():
    grid = jnp.linspace(1.0, 1.9, 10)

    def means(a, c):
        return 20 * (grid[a] - (1.0 + 0.9 * c)) ** 2  # best ω moves with the context

    learner = relax.ChebCB(grid, 4, 0.0, 1.0)
    arms, contexts, _ = jax.jit(
        lambda k: _synthetic(learner, means, 600, k, context_fn=True, noise=0.05)
    )(jax.random.key(2))
    regret = np.asarray(jax.vmap(means)(arms, contexts)) - np.asarray(
        jax.vmap(lambda c: jnp.min(jax.vmap(means, in_axes=(0, None))(jnp.arange(10), c)))(contexts)
    )
    assert regret[-200:].mean() < 0.5 * regret[:200].mean(), (
        regret[:200].mean(),
        regret[-200:].mean(),
    )


@pytest.fixture(scope="module")
def small_sequence():
    return shifted_laplacians(jax.random.key(3), 12, variance="high", grid=6)


def test_run_is_deterministic_and_matches_direct_solves(small_sequence):
    seq = small_sequence
    learner = relax.TsallisINF(jnp.linspace(1.0, 1.9, 4))
    a = relax.run(seq, learner, key=jax.random.key(0))
    b = relax.run(seq, learner, key=jax.random.key(0))
    c = relax.run(seq, learner, key=jax.random.key(7))
    np.testing.assert_array_equal(a.arm, b.arm)
    assert not np.array_equal(np.asarray(a.arm), np.asarray(c.arm))
    for t in (0, 5, 11):
        direct = sor(seq.operator(t), seq.rhs[t], omega=a.omega[t])
        assert int(direct.stats["num_steps"]) == int(a.iterations[t])
    np.testing.assert_array_equal(a.cumulative, np.cumsum(a.iterations))


def test_vmap_over_keys_and_comparators(small_sequence):
    seq = small_sequence
    grid = jnp.linspace(1.0, 1.9, 4)
    learner = relax.ChebCB(grid, 3, -0.15, 0.45)
    batched = jax.vmap(lambda k: relax.run(seq, learner, key=k).iterations)(
        jax.random.split(jax.random.key(0), 2)
    )
    single = relax.run(seq, learner, key=jax.random.split(jax.random.key(0), 2)[1]).iterations
    np.testing.assert_array_equal(batched[1], single)
    counts = relax.grid_iterations(seq, grid)
    assert counts.shape == (4, 12)
    w, total = relax.best_fixed(counts, grid)
    assert int(total) == int(relax.fixed(seq, w).total) == int(counts.sum(1).min())
    w_inst, it_inst = relax.instance_optimal(counts, grid)
    np.testing.assert_array_equal(relax.fixed(seq, w_inst).iterations, it_inst)
    young = relax.young(seq)
    assert young.shape == (12,) and bool(jnp.all((young > 1) & (young < 2)))


def test_heat_run_uses_warm_starts():
    seq = heat_sequence(6, 8)
    res = relax.fixed(seq, 1.3, method="ssor_pcg")
    for t in (0, 7):
        direct = ssor_pcg(seq.operator(t), seq.rhs[t], omega=1.3, x0=seq.initial[t])
        assert int(direct.stats["num_steps"]) == int(res.iterations[t])
    learner = relax.TsallisINFCB(jnp.linspace(1.0, 1.9, 4), 3, 0.0, 10.0)
    out = relax.run(seq, learner, key=jax.random.key(0), method="ssor_pcg")
    assert out.iterations.shape == (8,)


def test_an_eager_simulation_loop_plays_as_relax_does():
    # The loop of docs/relax.md: the learner and the solver called step by step, eagerly.
    seq = heat_sequence(12, 60)
    lo, hi = float(jnp.min(seq.context)), float(jnp.max(seq.context))
    learner = relax.TsallisINFCB(jnp.linspace(1.0, 1.95, 20), 6, lo, hi)
    keys = jax.random.split(jax.random.key(0), len(seq))
    state, arms, costs = learner.init(), [], []
    for t in range(len(seq)):
        arm, state = learner.select(state, keys[t], seq.context[t])
        sol = ssor_pcg(seq.operator(t), seq.rhs[t], omega=learner.omegas[arm], x0=seq.initial[t])
        state = learner.update(state, sol.stats["num_steps"], seq.context[t])
        arms.append(int(arm))
        costs.append(int(sol.stats["num_steps"]))
    out = relax.relax(seq, "ssor_pcg", learner, key=jax.random.key(0))
    np.testing.assert_array_equal(arms, np.asarray(out.arm))
    np.testing.assert_array_equal(costs, np.asarray(out.iterations))


def test_bad_config():
    with pytest.raises(ValueError, match="omegas"):
        relax.TsallisINF(jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="bins"):
        relax.TsallisINFCB(jnp.ones(3), 0, 0.0, 1.0)
    with pytest.raises(ValueError, match="lo"):
        relax.ChebCB(jnp.ones(3), 4, 1.0, 0.0)
    with pytest.raises(ValueError, match="lo"):
        relax.TsallisINFCB(jnp.ones(3), 3, 1.0, 1.0)  # every context would fall in one bin
    with pytest.raises(ValueError, match="bins"):
        relax.TsallisINFCB(jnp.ones(3), 2.7, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"\(0, 2\)"):
        relax.TsallisINF(jnp.asarray([0.5, 2.5]))
    with pytest.raises(ValueError, match=r"\(0, 2\)"):
        relax.ChebCB(jnp.asarray([1.0, jnp.nan]), 4, 0.0, 1.0)
    # An integer grid becomes floating (the learners' estimates take the grid's dtype).
    assert jnp.issubdtype(relax.TsallisINF([1]).omegas.dtype, jnp.floating)
    seq = shifted_laplacians(jax.random.key(0), 2, grid=3)
    with pytest.raises(ValueError, match="method"):
        relax.fixed(seq, 1.0, method="jacobi")
