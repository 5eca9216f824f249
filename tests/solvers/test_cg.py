"""Conjugate gradients against SciPy: iteration counts, accuracy, preconditioning, failures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from equinox import EquinoxRuntimeError
from jax.experimental import sparse as jsparse

from sciml._core import RESULTS
from sciml.solvers import cg, jacobi, ssor

from . import _problems as P
from ._reference import direct_solve, relative_error, scipy_cg, ssor_inverse

# Under `jax.jit` the error surfaces as a JaxRuntimeError carrying Equinox's message; eagerly and
# under `eqx.filter_jit` as an EquinoxRuntimeError.
RUNTIME_ERRORS = (EquinoxRuntimeError, jax.errors.JaxRuntimeError)


@pytest.mark.parametrize("name", sorted(P.SPD_PROBLEMS))
def test_counts_and_solution_match_scipy(name):
    builder = P.SPD_PROBLEMS[name]
    problem, matrix = builder(), P.csr(builder)
    _, info, scipy_steps = scipy_cg(matrix, problem.rhs, rtol=1e-8)
    assert info == 0
    sol = P.jit_cg(problem.operator, problem.rhs, rtol=1e-8)
    assert sol.result == RESULTS.successful
    assert abs(int(sol.stats["num_steps"]) - scipy_steps) <= 1
    # A tight solve reproduces the direct solution (cond(A) ≲ 1e4 here, so rtol 1e-12 leaves
    # an error well below 1e-8).
    tight = P.jit_cg(problem.operator, problem.rhs, rtol=1e-12)
    assert relative_error(tight.value, direct_solve(matrix, problem.rhs)) < 1e-8


def test_singular_consistent_pressure_system():
    # Pure-Neumann pressure system with an obstacle: singular (zero rows for solid cells, a
    # constant null space) but consistent, which CG handles; counts still match SciPy.
    problem = P.masked_neumann()
    _, info, scipy_steps = scipy_cg(P.csr(P.masked_neumann), problem.rhs, rtol=1e-8)
    assert info == 0
    sol = P.jit_cg(problem.operator, problem.rhs, rtol=1e-8)
    assert sol.result == RESULTS.successful
    assert abs(int(sol.stats["num_steps"]) - scipy_steps) <= 1
    residual = problem.rhs - problem.operator.mv(sol.value)
    assert float(jnp.linalg.norm(residual)) <= 1.01e-8 * float(jnp.linalg.norm(problem.rhs))


@pytest.mark.parametrize("form", ["bcoo", "scipy", "dense", "callable"])
def test_operator_forms_agree(form):
    problem = P.poisson2d()
    csr = P.csr(P.poisson2d)
    A = {
        "bcoo": jsparse.BCOO.from_scipy_sparse(csr),
        "scipy": csr,
        "dense": jnp.asarray(csr.toarray()),
        "callable": lambda x: problem.operator.mv(x),
    }[form]
    reference = P.jit_cg(problem.operator, problem.rhs, rtol=1e-8)
    sol = cg(A, problem.rhs, rtol=1e-8)
    assert abs(int(sol.stats["num_steps"]) - int(reference.stats["num_steps"])) <= 1
    assert relative_error(sol.value, reference.value) < 1e-6


@pytest.mark.parametrize("name", ["poisson3d", "darcy-piecewise"])
def test_jacobi_pcg_matches_scipy(name):
    builder = P.SPD_PROBLEMS[name]
    problem, matrix = builder(), P.csr(builder)
    _, info, scipy_steps = scipy_cg(
        matrix, problem.rhs, rtol=1e-8, M=sp.diags_array(1 / matrix.diagonal())
    )
    assert info == 0
    sol = P.jit_cg(problem.operator, problem.rhs, rtol=1e-8, M=jacobi(problem.operator))
    assert sol.result == RESULTS.successful
    assert abs(int(sol.stats["num_steps"]) - scipy_steps) <= 1


@pytest.mark.parametrize("omega", [1.0, 1.5])
def test_ssor_pcg_matches_scipy(omega):
    problem, matrix = P.darcy_lognormal(), P.csr(P.darcy_lognormal)
    _, info, scipy_steps = scipy_cg(matrix, problem.rhs, rtol=1e-8, M=ssor_inverse(matrix, omega))
    assert info == 0
    sol = P.jit_cg(problem.operator, problem.rhs, rtol=1e-8, M=ssor(matrix, omega))
    assert sol.result == RESULTS.successful
    assert abs(int(sol.stats["num_steps"]) - scipy_steps) <= 1
    plain = P.jit_cg(problem.operator, problem.rhs, rtol=1e-8)
    assert int(sol.stats["num_steps"]) < int(plain.stats["num_steps"])


def test_jacobi_on_masked_operator():
    # Solid cells have zero diagonal: Jacobi maps them to 0 and PCG still converges.
    problem, matrix = P.masked_neumann(), P.csr(P.masked_neumann)
    assert np.count_nonzero(matrix.diagonal() == 0) == 30
    sol = P.jit_cg(problem.operator, problem.rhs, rtol=1e-8, M=jacobi(problem.operator))
    assert sol.result == RESULTS.successful
    assert bool(jnp.all(jnp.isfinite(sol.value)))


def test_x0_and_history():
    problem, matrix = P.poisson2d(), P.csr(P.poisson2d)
    b = problem.rhs
    x_exact = jnp.asarray(direct_solve(matrix, b))
    x0 = x_exact + 1e-3 * jnp.sin(jnp.arange(b.shape[0], dtype=b.dtype))
    _, _, scipy_steps = scipy_cg(matrix, b, rtol=1e-8, x0=np.asarray(x0))
    sol = P.jit_cg(problem.operator, b, x0=x0, rtol=1e-8, max_steps=500)
    steps = int(sol.stats["num_steps"])
    assert abs(steps - scipy_steps) <= 1
    history = np.asarray(sol.stats["residual_history"])
    assert history.shape == (501,)
    np.testing.assert_allclose(
        history[0], np.linalg.norm(np.asarray(b - problem.operator.mv(x0))), rtol=1e-12
    )
    assert np.all(np.isfinite(history[: steps + 1])) and np.all(np.isnan(history[steps + 1 :]))
    assert history[steps] == float(sol.stats["residual_norm"])
    assert history[steps] <= 1e-8 * float(jnp.linalg.norm(b))
    assert int(sol.stats["max_steps"]) == 500


def test_atol_governs_when_larger():
    problem = P.poisson2d()
    b_norm = float(jnp.linalg.norm(problem.rhs))
    _, _, scipy_steps = scipy_cg(P.csr(P.poisson2d), problem.rhs, rtol=1e-12, atol=1e-4 * b_norm)
    sol = P.jit_cg(problem.operator, problem.rhs, rtol=1e-12, atol=1e-4 * b_norm)
    assert abs(int(sol.stats["num_steps"]) - scipy_steps) <= 1
    assert float(sol.stats["residual_norm"]) <= 1e-4 * b_norm


def test_zero_rhs_returns_zero():
    A = P.small_spd(8)
    sol = P.jit_cg(A, jnp.zeros(8), x0=jnp.ones(8), throw=False)
    assert sol.result == RESULTS.successful
    assert int(sol.stats["num_steps"]) == 0
    assert bool(jnp.all(sol.value == 0))


def test_max_steps_reached():
    problem = P.poisson2d()
    sol = P.jit_cg(problem.operator, problem.rhs, rtol=1e-10, max_steps=5, throw=False)
    assert sol.result == RESULTS.max_steps_reached
    assert int(sol.stats["num_steps"]) == 5
    assert np.all(np.isfinite(np.asarray(sol.stats["residual_history"])))
    with pytest.raises(RUNTIME_ERRORS, match="max_steps"):
        jax.block_until_ready(
            P.jit_cg(problem.operator, problem.rhs, rtol=1e-10, max_steps=5, throw=True)
        )


def _indefinite():
    # p0 = b and p0ᵀ A p0 = 1 − 4 < 0: CG cannot take its first step.
    A = jnp.diag(jnp.array([1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]))
    b = jnp.zeros(8).at[:2].set(jnp.array([1.0, 2.0]))
    return A, b


def test_indefinite_reports_breakdown():
    A, b = _indefinite()
    sol = P.jit_cg(A, b, x0=jnp.zeros(8), throw=False)
    assert sol.result == RESULTS.breakdown
    assert int(sol.stats["num_steps"]) == 0
    assert bool(jnp.all(jnp.isfinite(sol.value)))


def test_indefinite_helmholtz_is_not_reported_as_success_with_garbage():
    problem = P.helmholtz()
    sol = P.jit_cg(problem.operator, problem.rhs, rtol=1e-8, throw=False)
    assert sol.result in (RESULTS.breakdown, RESULTS.max_steps_reached)
    assert bool(jnp.all(jnp.isfinite(sol.value)))


def test_preconditioner_not_spd_reports_breakdown():
    sol = cg(P.small_spd(8), jnp.ones(8), M=lambda r: -r, throw=False)
    assert sol.result == RESULTS.breakdown
    assert int(sol.stats["num_steps"]) == 0


def test_nonfinite_operator():
    # Products overflow to inf inside the iteration (A @ x0 = 0 is still finite).
    A = P.small_spd(8) * 1e300
    sol = P.jit_cg(A, jnp.full(8, 1e100, dtype=jnp.float64), x0=jnp.zeros(8), throw=False)
    assert sol.result == RESULTS.nonfinite
    assert bool(jnp.all(jnp.isfinite(sol.value)))
    # A NaN already visible in A @ x0 is reported as non-finite input.
    A = P.small_spd(8).at[3, 3].set(jnp.nan)
    sol = P.jit_cg(A, jnp.ones(8), x0=jnp.zeros(8), throw=False)
    assert sol.result == RESULTS.nonfinite_input


@pytest.mark.parametrize("where", ["b", "x0"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_input_returns_immediately(where, bad):
    b, x0 = jnp.ones(8), jnp.zeros(8)
    if where == "b":
        b = b.at[2].set(bad)
    else:
        x0 = x0.at[2].set(bad)
    sol = P.jit_cg(P.small_spd(8), b, x0=x0, throw=False)
    assert sol.result == RESULTS.nonfinite_input
    assert int(sol.stats["num_steps"]) == 0


def test_throw_raises_the_result_message():
    A, b = _indefinite()
    with pytest.raises(RUNTIME_ERRORS, match="not symmetric positive"):
        jax.block_until_ready(P.jit_cg(A, b, x0=jnp.zeros(8), throw=True))
    with pytest.raises(RUNTIME_ERRORS, match="non-finite"):
        jax.block_until_ready(P.jit_cg(A, b.at[0].set(jnp.nan), x0=jnp.zeros(8), throw=True))
    # Eagerly the error is Equinox's own.
    with pytest.raises(EquinoxRuntimeError, match="non-finite"):
        jax.block_until_ready(cg(A, b.at[0].set(jnp.nan)))


def test_complex_hermitian():
    rng = np.random.default_rng(0)
    n = 20
    q = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    A = q @ q.conj().T / n + np.eye(n)
    b = np.arange(n) * (1 + 2j)
    sol = cg(jnp.asarray(A), jnp.asarray(b), rtol=1e-12)
    assert sol.value.dtype == jnp.complex128
    assert sol.stats["residual_history"].dtype == jnp.float64
    np.testing.assert_allclose(sol.value, np.linalg.solve(A, b), rtol=1e-9, atol=1e-10)
