"""The blocked Arnoldi basis: same projections as the dense masked basis, fewer rows read."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml import problems
from sciml.solvers import gmres
from sciml.solvers._arnoldi import BlockedBasis


def _filled(rows, n, cuts, seed=0):
    dense = np.random.default_rng(seed).standard_normal((rows, n))
    basis = BlockedBasis.zeros(rows, n, jnp.float64, cuts=cuts)
    for i in range(rows):
        phase = next(p for p, (a, b) in enumerate(basis.bounds) if a <= i < b)
        basis = basis.set_row(i, jnp.asarray(dense[i]), phase)
    return dense, basis


@pytest.mark.parametrize("cuts", [(), (5,), (3, 7, 9)])
def test_blocks_agree_with_the_dense_masked_basis(cuts):
    rows, n = 11, 6
    dense, basis = _filled(rows, n, cuts)
    assert basis.bounds[0][0] == 0 and basis.rows == rows
    np.testing.assert_array_equal(np.asarray(basis.dense()), dense)
    w = np.random.default_rng(1).standard_normal(n)
    for phase, (start, _) in enumerate(basis.bounds):
        # The steps of a phase: j from the row before the block to one before its last row.
        for j in range(max(start - 1, 0), basis.phase_end(phase)):
            j_ = jnp.asarray(j, jnp.int32)
            np.testing.assert_array_equal(np.asarray(basis.row(j_, phase)), dense[j])
            h_ref = np.where(np.arange(rows) <= j, dense @ w, 0)
            new_w, h = basis.project(jnp.asarray(w), j_, phase)
            np.testing.assert_allclose(np.asarray(h), h_ref, rtol=1e-13, atol=1e-13)
            np.testing.assert_allclose(np.asarray(new_w), w - h_ref @ dense, rtol=1e-12, atol=1e-12)
    y = np.random.default_rng(2).standard_normal(rows - 1)
    combined = basis.combine(jnp.asarray(y))
    np.testing.assert_allclose(np.asarray(combined), y @ dense[:-1], rtol=1e-12)


def test_gmres_keeps_no_whole_basis_array():
    # The basis lives as two blocks, so the steps of the first half of a cycle can read only
    # the first: no value in the compiled solve has the shape of the whole (restart + 1) × n
    # basis (the dense basis in the loop carry, which every step read, had it).
    family = problems.darcy(jax.random.key(0), 1, 18)
    op, b = jax.tree.map(lambda x: x[0], family.operators), family.rhs
    restart, n = 16, b.shape[0]
    hlo = jax.jit(lambda op, b: gmres(op, b, restart=restart)).lower(op, b).compile().as_text()
    assert re.search(rf"\[{(restart + 1) // 2},{n}\]", hlo)
    assert not re.search(rf"\[{restart + 1},{n}\]", hlo)
