"""Restarted GMRES against SciPy's gmres(restart=40): counts, accuracy, failure codes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from equinox import EquinoxRuntimeError

from sciml._core import RESULTS
from sciml.solvers import gmres, jacobi, ssor

from . import _problems as P
from ._reference import direct_solve, relative_error, scipy_gmres, ssor_inverse

RUNTIME_ERRORS = (EquinoxRuntimeError, jax.errors.JaxRuntimeError)

PROBLEMS = {
    "poisson2d": P.poisson2d,
    "darcy-lognormal": P.darcy_lognormal,
    "convection-diffusion": P.convection_diffusion,
    "helmholtz-indefinite": P.helmholtz,
}


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_counts_and_solution_match_scipy(name):
    builder = PROBLEMS[name]
    problem, matrix = builder(), P.csr(builder)
    _, info, scipy_steps = scipy_gmres(matrix, problem.rhs, rtol=1e-8, restart=40)
    assert info == 0
    sol = P.jit_gmres(problem.operator, problem.rhs, rtol=1e-8, restart=40)
    assert sol.result == RESULTS.successful
    assert abs(int(sol.stats["num_steps"]) - scipy_steps) <= 1
    # Every problem here needs more than one cycle of 40, so restarts are exercised.
    assert int(sol.stats["num_restarts"]) >= 2
    b_norm = float(jnp.linalg.norm(problem.rhs))
    assert float(sol.stats["residual_norm"]) <= 1e-8 * b_norm
    true_residual = jnp.linalg.norm(problem.rhs - problem.operator.mv(sol.value))
    np.testing.assert_allclose(float(sol.stats["residual_norm"]), float(true_residual), rtol=1e-6)
    # The conditioning of these systems is at most ~1e4, so rtol 1e-12 is well inside 1e-8.
    tight = P.jit_gmres(problem.operator, problem.rhs, rtol=1e-12, restart=40)
    assert relative_error(tight.value, direct_solve(matrix, problem.rhs)) < 1e-8


@pytest.mark.parametrize("kind", ["jacobi", "ssor"])
def test_left_preconditioned_matches_scipy(kind):
    problem, matrix = P.convection_diffusion(), P.csr(P.convection_diffusion)
    if kind == "jacobi":
        M, scipy_M = jacobi(problem.operator), sp.diags_array(1 / matrix.diagonal())
    else:
        M, scipy_M = ssor(matrix, 1.0), ssor_inverse(matrix, 1.0)
    _, info, scipy_steps = scipy_gmres(matrix, problem.rhs, rtol=1e-8, M=scipy_M)
    assert info == 0
    sol = P.jit_gmres(problem.operator, problem.rhs, rtol=1e-8, M=M)
    assert sol.result == RESULTS.successful
    assert abs(int(sol.stats["num_steps"]) - scipy_steps) <= 1
    assert float(sol.stats["residual_norm"]) <= 1e-8 * float(jnp.linalg.norm(problem.rhs))
    # The history holds the preconditioned residual, starting from ‖M⁻¹ b‖.
    np.testing.assert_allclose(
        float(sol.stats["residual_history"][0]),
        np.linalg.norm(scipy_M @ np.asarray(problem.rhs)),
        rtol=1e-12,
    )


def test_max_steps_counts_arnoldi_iterations():
    problem = P.poisson2d()
    sol = P.jit_gmres(
        problem.operator, problem.rhs, rtol=1e-10, restart=5, max_steps=7, throw=False
    )
    assert sol.result == RESULTS.max_steps_reached
    assert int(sol.stats["num_steps"]) == 7
    assert int(sol.stats["num_restarts"]) == 2
    history = np.asarray(sol.stats["residual_history"])
    assert history.shape == (8,) and np.all(np.isfinite(history))
    assert np.all(np.diff(history[:6]) <= 0)  # monotone within the first cycle


def test_cycle_stops_early_and_history_padding():
    # Three distinct eigenvalues: GMRES is exact after 3 iterations (a "lucky breakdown").
    A = jnp.diag(jnp.array([1.0, 2.0, 5.0, 1.0, 2.0, 5.0, 1.0, 2.0]))
    b = jnp.linspace(1.0, 2.0, 8)
    _, _, scipy_steps = scipy_gmres(np.asarray(A), b, rtol=1e-10)
    sol = P.jit_gmres(A, b, x0=jnp.zeros(8), rtol=1e-10, throw=False)
    assert sol.result == RESULTS.successful
    assert int(sol.stats["num_steps"]) == scipy_steps == 3
    assert int(sol.stats["num_restarts"]) == 1
    history = np.asarray(sol.stats["residual_history"])
    assert history.shape == (81,)  # default max_steps = 10·n
    assert np.all(np.isfinite(history[:4])) and np.all(np.isnan(history[4:]))
    np.testing.assert_allclose(sol.value, b / jnp.diag(A), rtol=1e-12)


def test_x0_matches_scipy():
    rng = np.random.default_rng(2)
    A = jnp.asarray(0.5 * rng.standard_normal((8, 8)) + 3 * np.eye(8))  # nonsymmetric
    x0 = jnp.asarray(rng.standard_normal(8))
    b = jnp.arange(8.0)
    _, _, scipy_steps = scipy_gmres(np.asarray(A), b, rtol=1e-10, x0=np.asarray(x0), restart=4)
    sol = P.jit_gmres(A, b, x0=x0, rtol=1e-10, restart=4, throw=False)
    assert sol.result == RESULTS.successful
    assert abs(int(sol.stats["num_steps"]) - scipy_steps) <= 1
    np.testing.assert_allclose(sol.value, jnp.linalg.solve(A, b), rtol=1e-8)


def test_stagnation_is_detected():
    # The cyclic shift with b = e_1: GMRES(m) makes no progress at all for m < n (the minimal
    # residual over any Krylov space of dimension < n is b itself).
    n = 8
    A = jnp.roll(jnp.eye(n), 1, axis=0)
    b = jnp.zeros(n).at[0].set(1.0)
    sol = P.jit_gmres(A, b, x0=jnp.zeros(n), restart=4, throw=False)
    assert sol.result == RESULTS.stagnation
    assert int(sol.stats["num_restarts"]) == 1
    assert int(sol.stats["num_steps"]) == 4
    # With a full-length cycle the same system is solved exactly.
    full = P.jit_gmres(A, b, x0=jnp.zeros(n), throw=False)
    assert full.result == RESULTS.successful
    np.testing.assert_allclose(full.value, jnp.linalg.solve(A, b), atol=1e-12)


def test_inconsistent_singular_reports_breakdown():
    A = jnp.diag(jnp.array([1.0, 2.0, 0.0, 1.0, 2.0, 1.0, 2.0, 1.0]))
    sol = P.jit_gmres(A, jnp.ones(8), x0=jnp.zeros(8), throw=False)
    assert sol.result == RESULTS.breakdown
    assert bool(jnp.all(jnp.isfinite(sol.value)))


def test_nonfinite_operator():
    # Products overflow to inf inside the iteration (A @ x0 = 0 is still finite).
    A = P.small_spd(8) * 1e300
    sol = P.jit_gmres(A, jnp.full(8, 1e100, dtype=jnp.float64), x0=jnp.zeros(8), throw=False)
    assert sol.result == RESULTS.nonfinite
    assert bool(jnp.all(jnp.isfinite(sol.value)))
    # A NaN already visible in A @ x0 is reported as non-finite input.
    A = P.small_spd(8).at[3, 3].set(jnp.nan)
    sol = P.jit_gmres(A, jnp.ones(8), x0=jnp.zeros(8), throw=False)
    assert sol.result == RESULTS.nonfinite_input


@pytest.mark.parametrize("where", ["b", "x0"])
def test_nonfinite_input_returns_immediately(where):
    b, x0 = jnp.ones(8), jnp.zeros(8)
    if where == "b":
        b = b.at[0].set(jnp.nan)
    else:
        x0 = x0.at[0].set(jnp.inf)
    sol = P.jit_gmres(P.small_spd(8), b, x0=x0, throw=False)
    assert sol.result == RESULTS.nonfinite_input
    assert int(sol.stats["num_steps"]) == 0
    with pytest.raises(RUNTIME_ERRORS, match="non-finite"):
        jax.block_until_ready(P.jit_gmres(P.small_spd(8), b, x0=x0, throw=True))


def test_zero_rhs_and_zero_max_steps():
    A = P.small_spd(8)
    sol = P.jit_gmres(A, jnp.zeros(8), x0=jnp.ones(8), throw=False)
    assert sol.result == RESULTS.successful and bool(jnp.all(sol.value == 0))
    sol = gmres(A, jnp.ones(8), max_steps=0, throw=False)
    assert sol.result == RESULTS.max_steps_reached
    assert sol.stats["residual_history"].shape == (1,)


def test_complex_nonhermitian():
    rng = np.random.default_rng(1)
    n = 16
    A = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)) + 8 * np.eye(n)
    b = np.arange(n).astype(np.complex128)
    sol = gmres(jnp.asarray(A), jnp.asarray(b), rtol=1e-12)
    assert sol.value.dtype == jnp.complex128
    np.testing.assert_allclose(sol.value, np.linalg.solve(A, b), rtol=1e-9, atol=1e-10)
    _, _, scipy_steps = scipy_gmres(A, b, rtol=1e-12)
    assert abs(int(sol.stats["num_steps"]) - scipy_steps) <= 1


def test_lock_step_vmap_equals_plain_vmap():
    # `axis_name` changes how the batch loops, not what each member computes: bit for bit.
    problem = P.darcy_lognormal()
    A = problem.operator
    M = jacobi(A)
    b = problem.rhs
    # Solves that end differently: converged at different steps, already solved (b = 0), and
    # refused at the start (a NaN).
    noise = jax.random.normal(jax.random.key(3), b.shape, b.dtype)
    bs = jnp.stack([b, noise, jnp.zeros_like(b), b.at[0].set(jnp.nan)])

    def solve(b, axis_name=None):
        return gmres(A, b, rtol=1e-10, restart=15, M=M, throw=False, axis_name=axis_name)

    plain = jax.jit(jax.vmap(solve))(bs)
    lock_step = jax.jit(jax.vmap(lambda b: solve(b, "batch"), axis_name="batch"))(bs)
    steps = np.asarray(plain.stats["num_steps"])
    assert steps[0] != steps[1] and steps[2] == steps[3] == 0  # members part ways
    for got, want in zip(jax.tree.leaves(lock_step), jax.tree.leaves(plain), strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
