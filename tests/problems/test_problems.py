"""Problem generators: determinism, consistency of singular systems, and the documented recipes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
import scipy.sparse.linalg as sla

from sciml.linalg import EMPTY, FLUID, fluid_components, poisson, project_to_range
from sciml.problems import (
    convection_diffusion_problem,
    darcy,
    fluid_pressure,
    helmholtz_problem,
    obstacle_mask,
    poisson_problem,
    shifted_laplacians,
)


def test_same_key_same_problem_and_new_key_new_problem():
    a = fluid_pressure(jax.random.key(1), (16, 16))
    b = fluid_pressure(jax.random.key(1), (16, 16))
    c = fluid_pressure(jax.random.key(2), (16, 16))
    np.testing.assert_array_equal(a.rhs, b.rhs)
    np.testing.assert_array_equal(a.operator.mask, b.operator.mask)
    assert not np.array_equal(a.operator.mask, c.operator.mask)


@pytest.mark.parametrize("shape", [(24, 20), (10, 12, 8)])
def test_fluid_components_match_scipy_labelling(shape):
    rng = np.random.default_rng(0)
    mask = np.where(rng.random(shape) < 0.35, 0, FLUID)
    op = poisson(shape, bc="neumann", mask=mask)
    labels, floating = fluid_components(op)
    structure = scipy.ndimage.generate_binary_structure(len(shape), 1)
    reference, count = scipy.ndimage.label(mask == FLUID, structure)
    labels = np.asarray(labels)
    # Same partition: a bijection between our labels and SciPy's on the fluid cells.
    pairs = {(a, b) for a, b in zip(labels[mask == FLUID], reference[mask == FLUID], strict=True)}
    assert len(pairs) == count == len({a for a, _ in pairs})
    assert np.asarray(floating).sum() == (mask == FLUID).sum()  # all Neumann: every region floats


def test_projected_rhs_is_consistent_with_the_singular_operator():
    problem = fluid_pressure(jax.random.key(3), (20, 20), n_obstacles=5)
    A = problem.operator.to_scipy()
    labels, floating = map(np.asarray, fluid_components(problem.operator))
    b = np.asarray(problem.rhs)
    for label in np.unique(labels[floating.astype(bool)]):
        indicator = (labels == label).ravel().astype(float)
        np.testing.assert_allclose(A @ indicator, 0, atol=1e-12)  # a null vector
        assert abs(indicator @ b) < 1e-12 * np.abs(b).sum()  # b is orthogonal to it
    assert np.all(b[np.asarray(problem.operator.mask).ravel() != FLUID] == 0)
    x, info = sla.cg(A, b, rtol=1e-10, maxiter=4000)
    assert info == 0 and np.linalg.norm(A @ x - b) <= 1e-10 * np.linalg.norm(b)


def test_open_top_anchors_the_pressure():
    problem = fluid_pressure(jax.random.key(4), (12, 12, 12), open_top=True)
    mask = np.asarray(problem.operator.mask)
    assert np.all(mask[..., -1] == EMPTY)
    _, floating = fluid_components(problem.operator)
    fluid = mask == FLUID
    labels, count = scipy.ndimage.label(fluid)
    touching = set(np.unique(labels[..., -2][fluid[..., -2]]))
    # Only regions cut off from the air may float.
    assert np.asarray(floating).sum() == sum(
        (labels == k).sum() for k in range(1, count + 1) if k not in touching
    )


def test_obstacle_shapes():
    spheres = obstacle_mask(jax.random.key(0), (32, 32), n_obstacles=2, obstacle="sphere")
    boxes = obstacle_mask(jax.random.key(0), (32, 32), n_obstacles=2, obstacle="box")
    assert 0 < int((spheres == 0).sum()) < int((boxes == 0).sum())  # a box holds its inscribed disc
    with pytest.raises(ValueError, match="obstacle"):
        obstacle_mask(jax.random.key(0), (8, 8), obstacle="torus")


def test_darcy_recipe():
    fam = darcy(jax.random.key(0), 8, 33)
    assert fam.coefficients.shape == (8, 33, 33) and np.all(fam.coefficients > 0)
    # ψ = log a has zero mean (no mean mode) and is smooth: neighbouring nodes correlate.
    psi = np.log(np.asarray(fam.coefficients))
    np.testing.assert_allclose(psi.mean(axis=(1, 2)), 0, atol=1e-12)
    corr = np.corrcoef(psi[:, :-1, :].ravel(), psi[:, 1:, :].ravel())[0, 1]
    assert corr > 0.9
    pw = darcy(jax.random.key(0), 2, 17, coefficient="piecewise")
    assert set(np.unique(np.asarray(pw.coefficients))) == {3.0, 12.0}
    problem = fam.problem(0)
    assert problem.operator.n == 31 * 31 and np.all(problem.rhs == 1)
    u = sla.spsolve(problem.operator.to_scipy().tocsc(), np.asarray(problem.rhs))
    assert np.all(u > 0)  # maximum principle for f > 0
    batched = jax.vmap(lambda op, b: op.mv(b))(fam.operators, jnp.ones((8, 31 * 31)))
    np.testing.assert_allclose(batched[3], fam.operator(3).mv(jnp.ones(31 * 31)))
    with pytest.raises(ValueError, match="coefficient"):
        darcy(jax.random.key(0), 2, 17, coefficient="uniform")


def test_other_families_are_well_formed():
    key = jax.random.key(5)
    h = helmholtz_problem(key, (24, 24), kappa=15.0)
    eig = np.linalg.eigvalsh(h.operator.to_scipy().toarray())
    assert eig[0] < 0 < eig[-1]
    c = convection_diffusion_problem(key, (12, 12))
    A = c.operator.to_scipy().toarray()
    assert not np.allclose(A, A.T)
    p = poisson_problem(key, (12, 12), bc="neumann")
    assert abs(float(p.rhs.sum())) < 1e-12
    assert poisson_problem(key, (6, 6, 6)).operator.n == 216
    for prob in (h, c, p):
        assert prob.rhs.shape == (prob.operator.n,) and prob.rhs.dtype == jnp.float64


def test_shifted_laplacian_sequence():
    seq = shifted_laplacians(jax.random.key(0), 400, variance="high")
    assert seq.rhs.shape == (400, 100) and len(seq) == 400
    assert np.all(np.linalg.norm(seq.rhs, axis=1) <= 10)
    c = np.asarray(seq.context)
    assert c.min() >= -0.15 and c.max() <= 0.45
    # Beta(0.5, 1.5) has mean 0.25; Beta(2, 6) has mean 0.25 but a smaller variance.
    low = np.asarray(shifted_laplacians(jax.random.key(1), 400, variance="low").context)
    assert abs(c.mean() - (-0.15 + 0.15)) < 0.03 and abs(low.mean() - 0.0) < 0.02
    assert c.std() > 1.5 * low.std()
    op = seq.operator(7)
    np.testing.assert_allclose(
        op.to_scipy().toarray(), poisson((10, 10)).to_scipy().toarray() + c[7] * np.eye(100)
    )


def test_project_to_range_leaves_anchored_systems_alone():
    op = poisson((6, 6), bc="dirichlet")
    b = jnp.arange(36.0)
    np.testing.assert_array_equal(project_to_range(op, b), b)


def test_problems_follow_dtype():
    p = fluid_pressure(jax.random.key(0), (8, 8), dtype=jnp.float32)
    assert p.rhs.dtype == jnp.float32 and p.operator.dtype == jnp.float32
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="x64"):
            darcy(jax.random.key(0), 1, 9, dtype=jnp.float64)
