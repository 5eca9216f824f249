"""The heat-equation sequence: operator, Crank–Nicolson states and context."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from sciml.problems import heat_sequence
from sciml.problems._heat import heat_kappa


def _laplacian_1d(s, h):
    return sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(s, s), dtype=np.float64) / h**2


def test_heat_operator_and_states_are_crank_nicolson():
    nx, T, dt = 8, 40, 1e-3
    seq = heat_sequence(nx, T, dt=dt)
    s, h = nx - 1, 1 / nx
    eye = sp.identity(s)
    neg_lap = sp.kron(_laplacian_1d(s, h), eye) + sp.kron(eye, _laplacian_1d(s, h))
    assert seq.rhs.shape == (T, s * s) and seq.initial.shape == (T, s * s)
    for t in (0, 17, T - 1):
        kappa = float(heat_kappa(t * dt + dt / 2))
        expected = (sp.identity(s * s) + 0.5 * kappa * dt * neg_lap).toarray()
        np.testing.assert_allclose(seq.operator(t).as_matrix(), expected, rtol=1e-12)
        np.testing.assert_allclose(seq.kappa[t], kappa, rtol=1e-12)
        np.testing.assert_allclose(seq.context[t], float(heat_kappa(t * dt)), atol=1e-15)
    for t in range(T - 1):
        # the warm start of step t+1 solves step t
        A = seq.operator(t)
        residual = np.linalg.norm(A.mv(seq.initial[t + 1]) - seq.rhs[t])
        assert residual <= 1e-10 * np.linalg.norm(seq.rhs[t])
    # u0 is the bump centred at (1/2, 1/2) with radius 1/4: peak 1 at the centre node
    np.testing.assert_allclose(seq.initial[0].reshape(s, s)[3, 3], 1.0)


def test_kappa_profile():
    t = jnp.asarray([0.25, 0.75, 0.5])
    np.testing.assert_allclose(heat_kappa(t), [0.1, 10.0, 0.0], atol=1e-12)


def test_bad_sizes():
    with pytest.raises(ValueError, match="nx"):
        heat_sequence(2, 5)
    with pytest.raises(ValueError, match="T"):
        heat_sequence(5, 0)
    with pytest.raises(ValueError, match="T"):
        heat_sequence(5, 2.0)
    with pytest.raises(ValueError, match="dt"):
        heat_sequence(5, 2, dt=0.0)


def test_float32_has_a_float32_tolerance():
    seq = heat_sequence(5, 3, dtype=jnp.float32)  # the float64 default 1e-12 would be refused
    assert seq.rhs.dtype == seq.initial.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(seq.initial)))
