"""Jacobi and SSOR preconditioner applications against explicit formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from jax.experimental import sparse as jsparse

from sciml import linalg
from sciml.solvers import jacobi, ssor

from . import _problems as P

# Preconditioners are pytrees: one compilation per structure, reused across tests.
apply = jax.jit(lambda M, r: M.mv(r))
apply_columns = jax.jit(jax.vmap(lambda M, r: M.mv(r), in_axes=(None, 1), out_axes=1))


def _ssor_matrix(A: np.ndarray, omega: float) -> np.ndarray:
    d = np.diag(A)
    lower = np.diag(d) + omega * np.tril(A, -1)
    upper = np.diag(d) + omega * np.triu(A, 1)
    return lower @ np.diag(1 / d) @ upper / (omega * (2 - omega))


def _ssor_apply_np(A, omega, r):
    return np.linalg.solve(_ssor_matrix(np.asarray(A), omega), np.asarray(r))


def _nonsymmetric(n=40, seed=3):
    rng = np.random.default_rng(seed)
    A = sp.random_array((n, n), density=0.15, rng=rng) + sp.eye_array(n) * 4
    return sp.csr_array(A)


def test_jacobi_forms_and_zero_diagonal():
    A = np.array([[4.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    r = jnp.array([1.0, 2.0, 3.0])
    expected = jnp.array([0.25, 0.0, 1.5])
    for form in (jnp.asarray(A), A, sp.csr_array(A), jsparse.BCOO.fromdense(jnp.asarray(A))):
        M = jacobi(form)
        np.testing.assert_array_equal(M(r), expected)
        np.testing.assert_array_equal(M.mv(r), expected)


def test_jacobi_of_stencil_operator_and_masked_cells():
    problem = P.masked_neumann()
    d = P.csr(P.masked_neumann).diagonal()
    M = jacobi(problem.operator)
    r = jnp.ones(problem.operator.n)
    expected = np.where(d == 0, 0.0, 1 / np.where(d == 0, 1, d))
    np.testing.assert_allclose(M(r), expected, rtol=1e-15)


def test_jacobi_needs_a_diagonal():
    with pytest.raises(ValueError, match="callable"):
        jacobi(lambda x: 2 * x)
    op = linalg.FunctionOperator(lambda x: 2 * x, 4, jnp.float64)
    with pytest.raises(ValueError, match="diagonal"):
        jacobi(op)


@pytest.mark.parametrize("omega", [1.0, 0.7, 1.6])
def test_ssor_matches_formula_dense_and_sparse(omega):
    A = P.csr(P.darcy_lognormal)[:200, :200]  # an SPD principal submatrix
    r = np.random.default_rng(0).standard_normal(200)
    expected = np.linalg.solve(_ssor_matrix(A.toarray(), omega), r)
    sparse_apply = apply(ssor(A, omega), jnp.asarray(r))
    dense_apply = apply(ssor(jnp.asarray(A.toarray()), omega), jnp.asarray(r))
    np.testing.assert_allclose(sparse_apply, expected, rtol=1e-10)
    np.testing.assert_allclose(dense_apply, expected, rtol=1e-10)


def test_ssor_nonsymmetric_and_bcoo():
    A = _nonsymmetric()
    r = np.linspace(-1, 1, A.shape[0])
    expected = np.linalg.solve(_ssor_matrix(A.toarray(), 1.2), r)
    np.testing.assert_allclose(apply(ssor(A, 1.2), jnp.asarray(r)), expected, rtol=1e-10)
    bcoo = jsparse.BCOO.from_scipy_sparse(A)
    np.testing.assert_allclose(apply(ssor(bcoo, 1.2), jnp.asarray(r)), expected, rtol=1e-10)


def test_ssor_is_symmetric_for_symmetric_a():
    op = linalg.poisson((5, 6, 4), dtype=jnp.float64)
    full = np.asarray(apply_columns(ssor(op, 1.3), jnp.eye(op.n)))
    np.testing.assert_allclose(full, full.T, atol=1e-13)
    assert np.all(np.linalg.eigvalsh(full) > 0)


def test_ssor_on_stencil_operator_matches_matrix():
    problem = P.poisson2d()
    r = jnp.sin(jnp.arange(problem.operator.n).astype(jnp.float64))
    np.testing.assert_allclose(
        apply(ssor(problem.operator, 1.1), r), apply(ssor(P.csr(P.poisson2d), 1.1), r), rtol=1e-13
    )


def test_ssor_masked_operator_decouples_zero_rows():
    problem = P.masked_neumann()
    A = P.csr(P.masked_neumann)
    fluid = A.diagonal() != 0
    r = np.cos(np.arange(A.shape[0]))
    out = np.asarray(apply(ssor(problem.operator, 1.0), jnp.asarray(r)))
    assert np.all(out[~fluid] == 0)
    reduced = A[fluid][:, fluid].toarray()
    expected = np.linalg.solve(_ssor_matrix(reduced, 1.0), r[fluid])
    np.testing.assert_allclose(out[fluid], expected, rtol=1e-10)
    dense_out = apply(ssor(jnp.asarray(A.toarray()), 1.0), jnp.asarray(r))
    np.testing.assert_allclose(dense_out, out, rtol=1e-10, atol=1e-14)


def test_ssor_reference_in_tests_agrees():
    # The SciPy-side reference used by the PCG tests is the same operator.
    from ._reference import ssor_inverse

    A = P.csr(P.darcy_lognormal)
    r = np.linspace(0, 1, A.shape[0])
    np.testing.assert_allclose(
        ssor_inverse(A, 1.4) @ r, apply(ssor(A, 1.4), jnp.asarray(r)), rtol=1e-10
    )


@pytest.mark.parametrize("omega", [0.0, 2.0, -0.5, 2.5])
def test_ssor_rejects_bad_omega(omega):
    with pytest.raises(ValueError, match="omega"):
        ssor(np.eye(3), omega)


def test_ssor_dense_traced_omega_and_sparse_inside_jit():
    A = jnp.asarray(_nonsymmetric(12).toarray())
    r = jnp.ones(12)

    @jax.jit
    def build_and_apply(A, omega, r):
        return ssor(A, omega)(r)

    np.testing.assert_allclose(build_and_apply(A, 1.2, r), _ssor_apply_np(A, 1.2, r), rtol=1e-12)
    with pytest.raises(ValueError, match="outside `jit`"):
        jax.jit(lambda A, r: ssor(A)(r))(jsparse.BCOO.fromdense(A), r)
    with pytest.raises(ValueError, match="callable"):
        ssor(lambda x: x)


def test_spla_reference_sanity():
    # Guard against a silently wrong reference: SSOR with ω=1 on a diagonal matrix is D⁻¹.
    A = sp.diags_array(np.array([2.0, 4.0, 5.0]))
    np.testing.assert_allclose(ssor(A)(jnp.ones(3)), [0.5, 0.25, 0.2])
    assert spla.norm(A) > 0
