"""Transform battery of SOR, SSOR-PCG and the relax learners: jit, vmap, jvp, dtypes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml.linalg import poisson
from sciml.solvers import relax, sor, ssor_pcg

SOLVERS = {
    "sor": lambda A, b, w, **kw: sor(A, b, omega=w, **kw),
    "sor_red_black": lambda A, b, w, **kw: sor(A, b, omega=w, ordering="red_black", **kw),
    "ssor_pcg": lambda A, b, w, **kw: ssor_pcg(A, b, omega=w, **kw),
}


def _system(dtype=jnp.float64):
    op = poisson((6, 6), shift=0.2, dtype=dtype)
    b = jnp.asarray(np.random.default_rng(0).standard_normal((3, 36)), dtype)
    return op, b


@pytest.mark.parametrize(
    "name", ["sor", "ssor_pcg", pytest.param("sor_red_black", marks=pytest.mark.slow)]
)
def test_jit_equals_eager_and_vmap_equals_loop(name):
    solve = SOLVERS[name]
    op, b = _system()
    eager = solve(op, b[0], 1.4)
    jitted = jax.jit(lambda v, w: solve(op, v, w))(b[0], jnp.asarray(1.4))
    assert int(eager.stats["num_steps"]) == int(jitted.stats["num_steps"])
    np.testing.assert_allclose(jitted.value, eager.value, rtol=1e-12, atol=1e-14)
    # vmap over right-hand sides and over ω: per-member counts equal the single solves
    omegas = jnp.asarray([1.0, 1.4, 1.8])
    batched = jax.vmap(lambda v, w: solve(op, v, w))(b, omegas)
    for i in range(3):
        single = solve(op, b[i], omegas[i])
        assert int(batched.stats["num_steps"][i]) == int(single.stats["num_steps"])
        np.testing.assert_allclose(batched.value[i], single.value, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "name",
    ["sor", *(pytest.param(n, marks=pytest.mark.slow) for n in ("sor_red_black", "ssor_pcg"))],
)
def test_float32_in_float32_out(name):
    op, b = _system(jnp.float32)
    sol = SOLVERS[name](op, b[0], 1.4, rtol=1e-4)
    assert sol.value.dtype == jnp.float32
    assert sol.converged
    residual = np.linalg.norm(np.asarray(op.mv(sol.value) - b[0]))
    assert residual <= 2e-4 * np.linalg.norm(np.asarray(b[0]))


@pytest.mark.parametrize("name", ["sor", pytest.param("ssor_pcg", marks=pytest.mark.slow)])
def test_forward_mode_through_the_solve(name):
    # x is linear in b, so the tangent of x along db is (up to the tolerance) A⁻¹ db.
    op, b = _system()
    db = b[1]
    _, tangent = jax.jvp(lambda v: SOLVERS[name](op, v, 1.5).value, (b[0],), (db,))
    exact = jnp.linalg.solve(op.as_matrix(), db)
    np.testing.assert_allclose(tangent, exact, atol=1e-6 * float(jnp.linalg.norm(exact)))


@pytest.mark.parametrize(
    "make",
    [
        lambda g: relax.TsallisINF(g),
        lambda g: relax.TsallisINFCB(g, 3, 0.0, 1.0),
        pytest.param(lambda g: relax.ChebCB(g, 4, 0.0, 1.0), marks=pytest.mark.slow),
    ],
)
def test_learner_jit_equals_eager_and_state_is_a_pytree(make):
    learner = make(jnp.linspace(1.0, 1.9, 5))
    losses = [40.0, 12.0, 25.0, 60.0]
    contexts = [0.1, 0.7, 0.4, 0.9]
    keys = jax.random.split(jax.random.key(0), len(losses))

    def play(state, key, loss, context):
        arm, state = learner.select(state, key, context)
        return arm, learner.update(state, loss, context)

    eager_state = jitted_state = learner.init()
    jitted = jax.jit(play)
    for k, loss, c in zip(keys, losses, contexts, strict=True):
        a1, eager_state = play(eager_state, k, jnp.asarray(loss), jnp.asarray(c))
        a2, jitted_state = jitted(jitted_state, k, jnp.asarray(loss), jnp.asarray(c))
        assert int(a1) == int(a2)
    leaves, tree = jax.tree.flatten(jitted_state)
    rebuilt = jax.tree.unflatten(tree, leaves)
    for x, y in zip(jax.tree.leaves(eager_state), jax.tree.leaves(rebuilt), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)
    # float32 grids keep float32 state
    state32 = make(jnp.linspace(1.0, 1.9, 5, dtype=jnp.float32)).init()
    floats = [x for x in jax.tree.leaves(state32) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert floats and all(x.dtype == jnp.float32 for x in floats)
