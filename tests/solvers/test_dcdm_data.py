"""DCDM training data (Lanczos, Ritz vectors, right-hand sides, cache) and training checkpoints."""

import functools
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml.linalg import project_to_range
from sciml.solvers._dcdm_data import (
    cached_ritz_basis,
    lanczos,
    lanczos_steps_for_budget,
    low_end_weights,
    ritz_basis,
    ritz_rhs,
    training_operator,
)


@functools.cache
def small_basis():
    op = training_operator(2, 8, dtype=jnp.float64)
    return op, ritz_basis(op, m=30, key=jax.random.key(0))


def test_lanczos_basis_is_orthonormal_and_tridiagonalises():
    op = training_operator(2, 8, dtype=jnp.float64)
    start = op.mv(jax.random.normal(jax.random.key(1), (op.n,), jnp.float64))
    W, alpha, beta = lanczos(op, start, 30)
    W = np.asarray(W)
    assert np.max(np.abs(W @ W.T - np.eye(30))) < 1e-12
    T = np.diag(np.asarray(alpha)) + np.diag(np.asarray(beta), 1) + np.diag(np.asarray(beta), -1)
    A = np.asarray(op.as_matrix())
    assert np.max(np.abs(W @ A @ W.T - T)) < 1e-11
    # The start vector lies in range(A) (zero mean: the null space is the constants) and so
    # does every basis vector.
    assert np.max(np.abs(W.sum(axis=1))) < 1e-12


def test_lanczos_continues_past_an_invariant_subspace():
    # 4×4 Neumann box: the Krylov space of one start vector has at most as many dimensions as
    # there are distinct nonzero eigenvalues (8 here, by symmetry), far fewer than 15 = n − 1.
    op = training_operator(2, 4, dtype=jnp.float64)
    start = op.mv(jax.random.normal(jax.random.key(2), (op.n,), jnp.float64))
    W, alpha, beta = lanczos(op, start, 15)
    W = np.asarray(W)
    assert np.max(np.abs(W @ W.T - np.eye(15))) < 1e-12
    assert np.min(np.abs(np.asarray(beta))) == 0  # a restart, marked by a zero off-diagonal
    T = np.diag(np.asarray(alpha)) + np.diag(np.asarray(beta), 1) + np.diag(np.asarray(beta), -1)
    assert np.max(np.abs(W @ np.asarray(op.as_matrix()) @ W.T - T)) < 1e-11


def test_ritz_vectors_are_orthonormal_in_range_and_ascending():
    op, basis = small_basis()
    Q = basis.vectors.astype(np.float64)
    assert Q.dtype == np.float64 and basis.vectors.dtype == np.float32
    assert np.max(np.abs(Q @ Q.T - np.eye(len(Q)))) < 1e-6  # stored as float32
    assert np.all(np.diff(basis.values) >= 0) and basis.values[0] > 1e-8
    assert np.max(np.abs(Q.sum(axis=1))) < 1e-5
    # Rayleigh quotients are the Ritz values.
    A = np.asarray(op.as_matrix())
    np.testing.assert_allclose(np.einsum("ij,jk,ik->i", Q, A, Q), basis.values, atol=1e-5)


def test_right_hand_sides_are_unit_and_in_range():
    op, basis = small_basis()
    B = ritz_rhs(jax.random.key(3), basis, op, jnp.arange(6))
    np.testing.assert_allclose(jnp.linalg.norm(B, axis=1), 1.0, rtol=1e-12)
    projected = jax.vmap(lambda b: project_to_range(op, b))(B)
    assert float(jnp.max(jnp.abs(projected - B))) < 1e-12
    # Sample i is the same whichever batch it is drawn in.
    again = ritz_rhs(jax.random.key(3), basis, op, jnp.array([4, 1]))
    np.testing.assert_allclose(again, B[jnp.array([4, 1])], rtol=1e-12)


def test_low_end_weighting():
    weights = np.asarray(low_end_weights(100, 100, 5))
    assert np.all(weights[:55] == 9) and np.all(weights[55:] == 1)
    # The low end of the spectrum dominates: on average 81× the energy per coefficient.
    op, basis = small_basis()
    B = np.asarray(ritz_rhs(jax.random.key(4), basis, op, jnp.arange(200)), np.float64)
    energy = (B @ basis.vectors.astype(np.float64).T) ** 2
    m = basis.settings["m"]
    low = m // 2 + max(1, m // 20)
    ratio = energy[:, :low].mean() / energy[:, low:].mean()
    assert 40 < ratio < 160


def test_memory_budget_caps_lanczos_steps():
    assert lanczos_steps_for_budget(1000, 500, itemsize=4, budget_bytes=4000 * 100) == 100
    assert lanczos_steps_for_budget(1000, 50, itemsize=4, budget_bytes=1 << 30) == 50
    assert lanczos_steps_for_budget(10, 50, itemsize=4, budget_bytes=1 << 30) == 9
    with pytest.raises(ValueError, match="does not fit"):
        lanczos_steps_for_budget(1000, 50, itemsize=8, budget_bytes=8000)


def test_ritz_basis_cache(tmp_path):
    first = cached_ritz_basis(2, 8, m=12, seed=1, dtype=jnp.float64, cache_dir=tmp_path)
    files = list(tmp_path.glob("ritz_2d_n8_m12_*.npz"))
    assert len(files) == 1
    second = cached_ritz_basis(2, 8, m=12, seed=1, dtype=jnp.float64, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.vectors, second.vectors)
    assert second.settings["seed"] == 1 and second.settings["m"] == 12
    # Other settings, another file.
    cached_ritz_basis(2, 8, m=12, seed=2, dtype=jnp.float64, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2


@pytest.mark.slow  # two training compilations; tests/cli/test_train.py covers resume quickly
def test_training_checkpoint_resume_equals_uninterrupted_run(tmp_path):
    from sciml.solvers import load_dcdm_model
    from sciml.solvers._dcdm_train import TrainSettings, train_dcdm

    settings = dict(dim=2, n=8, m=12, batch=2, chunk=2, lr=1e-3, samples=50)
    cache = tmp_path / "cache"
    train_dcdm(TrainSettings(steps=4, **settings), tmp_path / "a", cache_dir=cache, evaluate=False)
    train_dcdm(TrainSettings(steps=2, **settings), tmp_path / "b", cache_dir=cache, evaluate=False)
    state = json.loads((tmp_path / "b" / "checkpoint.json").read_text())
    assert state["step"] == 2 and len(state["losses"]) == 2
    with pytest.raises(ValueError, match="settings differ"):
        train_dcdm(
            TrainSettings(steps=4, **{**settings, "lr": 2e-3}),
            tmp_path / "b",
            resume=True,
            cache_dir=cache,
            evaluate=False,
        )
    train_dcdm(
        TrainSettings(steps=4, **settings),
        tmp_path / "b",
        resume=True,
        cache_dir=cache,
        evaluate=False,
    )
    a, b = (load_dcdm_model(tmp_path / name / "model.eqx") for name in "ab")
    for x, y in zip(
        jax.tree.leaves(eqx.filter(a, eqx.is_array)),
        jax.tree.leaves(eqx.filter(b, eqx.is_array)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["results"]["steps_done"] == 4
    # The first run's outputs are not overwritten without force.
    from sciml._core import OutputExistsError

    with pytest.raises(OutputExistsError):
        train_dcdm(TrainSettings(steps=4, **settings), tmp_path / "a", cache_dir=cache)
