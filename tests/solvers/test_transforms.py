"""The transform battery for cg and gmres: jit, vmap, dtypes, retracing, sharding."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml import linalg
from sciml._core import RESULTS, make_mesh, shard_batch
from sciml.solvers import cg, gmres, ssor

from . import _problems as P

SOLVERS = {"cg": (cg, P.jit_cg), "gmres": (gmres, P.jit_gmres)}


def _batch_of_rhs(problem):
    # Different right-hand sides need different iteration counts; a zero one needs none.
    b = problem.rhs
    smooth = problem.operator.mv(jnp.ones_like(b))
    noise = jax.random.normal(jax.random.key(9), b.shape, b.dtype)
    return jnp.stack([b, smooth, noise, jnp.zeros_like(b)])


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_jit_equals_eager(name):
    eager, jitted = SOLVERS[name]
    A = P.small_spd(8)
    b, x0 = jnp.linspace(-1.0, 1.0, 8), jnp.zeros(8)
    a = eager(A, b, x0=x0, rtol=1e-10, throw=False)
    j = jitted(A, b, x0=x0, rtol=1e-10, throw=False)
    assert int(a.stats["num_steps"]) == int(j.stats["num_steps"])
    np.testing.assert_allclose(a.value, j.value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        a.stats["residual_history"], j.stats["residual_history"], rtol=1e-10, atol=1e-300
    )


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_vmap_equals_loop_and_sharded_equals_single_device(name):
    _, jitted = SOLVERS[name]
    problem = P.poisson2d()
    bs = _batch_of_rhs(problem)
    # throw=False: an error raised inside a sharded computation would abort the process.
    solve = jax.jit(jax.vmap(lambda b: jitted(problem.operator, b, rtol=1e-8, throw=False)))
    batched = solve(bs)
    steps = [int(s) for s in batched.stats["num_steps"]]
    for i, b in enumerate(bs):
        single = jitted(problem.operator, b, rtol=1e-8, throw=False)
        assert single.result == RESULTS.successful
        assert steps[i] == int(single.stats["num_steps"])
        np.testing.assert_allclose(batched.value[i], single.value, rtol=1e-10, atol=1e-14)
        # Batched products may sum in another order; rounding differences of 1e-16 grow to
        # ~1e-8 relative over a hundred iterations, so the histories agree to 1e-6.
        np.testing.assert_allclose(
            batched.stats["residual_history"][i], single.stats["residual_history"], rtol=1e-6
        )
    assert steps[3] == 0 and len(set(steps[:3])) > 1
    np.testing.assert_array_equal(batched.result._value, RESULTS.successful._value)

    # The same batch split over 2 (simulated) devices gives the single-device answer.
    assert len(jax.devices()) >= 2, "tests/conftest.py should provide 2 CPU devices"
    sharded = solve(shard_batch(bs, make_mesh(2)))
    assert len(sharded.value.sharding.device_set) == 2
    np.testing.assert_allclose(sharded.value, batched.value, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(sharded.stats["num_steps"], batched.stats["num_steps"])
    np.testing.assert_array_equal(sharded.result._value, batched.result._value)


@pytest.mark.parametrize("name", sorted(SOLVERS))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtype_is_preserved(name, dtype):
    _, jitted = SOLVERS[name]
    if dtype == jnp.float64:
        op, b = P.poisson2d().operator, P.poisson2d().rhs
    else:
        op = linalg.poisson((16, 16), dtype=dtype)
        b = jnp.sin(jnp.arange(op.n)).astype(dtype)
    sol = jitted(op, b, rtol=1e-5, throw=False)
    assert sol.result == RESULTS.successful
    assert sol.value.dtype == dtype
    assert sol.stats["residual_history"].dtype == dtype
    assert sol.stats["residual_norm"].dtype == dtype
    residual = jnp.linalg.norm(b - op.mv(sol.value)) / jnp.linalg.norm(b)
    # The recursive (cg) or true (gmres) residual met 1e-5; in float32 the true residual can
    # drift from the recursive one by a few eps·cond(A) ≈ 1e-7·100.
    assert float(residual) < 2e-5


def test_changing_tolerances_does_not_retrace_cg():
    problem = P.poisson2d()

    @jax.jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def solve(op, b, rtol, atol):
        return cg(op, b, rtol=rtol, atol=atol, throw=False).stats["num_steps"]

    steps = [
        int(solve(problem.operator, problem.rhs, jnp.asarray(rtol), jnp.asarray(0.0)))
        for rtol in (1e-4, 1e-6, 1e-8)
    ]
    assert steps[0] < steps[1] < steps[2]
    assert int(solve(problem.operator, problem.rhs, jnp.asarray(1e-12), jnp.asarray(1e3))) == 0


def test_changing_tolerances_does_not_recompile_gmres():
    # A compilation counter on the shared jitted gmres (reusing the compilation of the other
    # tests on this problem rather than paying for another one).
    problem = P.poisson2d()
    steps = [int(P.jit_gmres(problem.operator, problem.rhs, rtol=1e-4).stats["num_steps"])]
    compiled = P._jit_gmres._cache_size()
    for rtol in (1e-6, 1e-8):
        steps.append(int(P.jit_gmres(problem.operator, problem.rhs, rtol=rtol).stats["num_steps"]))
    big_atol = P.jit_gmres(problem.operator, problem.rhs, rtol=1e-12, atol=1e3)
    assert P._jit_gmres._cache_size() == compiled
    assert steps[0] < steps[1] < steps[2]
    assert int(big_atol.stats["num_steps"]) == 0


def test_changing_ssor_omega_does_not_retrace():
    problem, matrix = P.darcy_lognormal(), P.csr(P.darcy_lognormal)

    @jax.jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def solve(op, b, M):
        return cg(op, b, rtol=1e-8, M=M, throw=False).stats["num_steps"]

    steps = [int(solve(problem.operator, problem.rhs, ssor(matrix, w))) for w in (1.0, 1.5)]
    assert steps[0] != steps[1]


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_forward_mode_matches_the_inverse_and_reverse_mode_is_refused(name):
    eager, _ = SOLVERS[name]
    A = P.small_spd(10)
    b, db = jnp.arange(10.0), jnp.ones(10)
    # Differentiating the converged iteration gives A⁻¹ db (to the solve's tolerance).
    _, dx = jax.jvp(lambda b: eager(A, b, rtol=1e-12).value, (b,), (db,))
    np.testing.assert_allclose(dx, np.linalg.solve(np.asarray(A), np.asarray(db)), atol=1e-10)
    # Reverse mode through the while loop is not supported (documented), and says so.
    with pytest.raises(ValueError, match="Reverse-mode"):
        jax.grad(lambda b: eager(A, b).value.sum())(b)
