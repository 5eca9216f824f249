"""Sorting for SKR: greedy nearest-neighbour chains, FFT/PCA features, chain splitting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml.operators.datagen import (
    fft_features,
    sort_features,
    sort_fft,
    sort_greedy,
    split_chains,
)


def _greedy_reference(x):
    # The definition, written out: from index 0, repeatedly step to the nearest unused row.
    x = np.asarray(x).reshape(len(x), -1)
    order, used = [0], {0}
    for _ in range(len(x) - 1):
        d = np.linalg.norm(x - x[order[-1]], axis=1)
        d[list(used)] = np.inf
        nxt = int(np.argmin(d))
        order.append(nxt)
        used.add(nxt)
    return np.asarray(order)


def _is_permutation(perm, n):
    return sorted(np.asarray(perm).tolist()) == list(range(n))


def test_greedy_matches_definition_and_shortens_the_path():
    x = np.random.default_rng(0).standard_normal((40, 5, 5))
    perm = sort_greedy(jnp.asarray(x))
    assert _is_permutation(perm, 40) and int(perm[0]) == 0
    np.testing.assert_array_equal(np.asarray(perm), _greedy_reference(x))

    def path(order):
        flat = x.reshape(40, -1)[np.asarray(order)]
        return np.linalg.norm(np.diff(flat, axis=0), axis=1).sum()

    assert path(perm) < path(np.arange(40))


def test_greedy_recovers_a_shuffled_one_parameter_family():
    # Fields a(θ) = θ·φ for shuffled θ: the greedy chain from sample 0 walks θ monotonically
    # to one end, then jumps and walks the rest, so it has at most one direction change.
    theta = np.random.default_rng(1).permutation(np.linspace(-1, 1, 30))
    phi = np.random.default_rng(2).standard_normal((6, 6))
    params = jnp.asarray(theta[:, None, None] * phi[None])
    walked = theta[np.asarray(sort_greedy(params))]
    signs = np.sign(np.diff(walked))
    assert np.count_nonzero(np.diff(signs)) <= 1


@pytest.mark.parametrize("sorter", [sort_fft, sort_features])
def test_feature_sorts_are_permutations(sorter):
    params = jax.random.normal(jax.random.key(0), (25, 12, 12), jnp.float64)
    perm = sorter(params)
    assert _is_permutation(perm, 25) and int(perm[0]) == 0


def test_fft_features_shapes():
    fields = jnp.ones((3, 10, 10))
    assert fft_features(fields, n_modes=4).shape == (3, 2 * 16)
    vectors = jnp.ones((3, 50))
    assert fft_features(vectors, n_modes=12).shape == (3, 24)
    # More modes than the grid has: clipped to the grid.
    assert fft_features(fields, n_modes=40).shape == (3, 2 * 100)


def test_split_chains_covers_every_sample_once():
    perm = np.random.default_rng(3).permutation(11)
    chains = split_chains(perm, 3)
    assert chains.indices.shape == (3, 4) and chains.valid.shape == (3, 4)
    kept = np.asarray(chains.indices)[np.asarray(chains.valid)]
    assert sorted(kept.tolist()) == list(range(11))
    # Contiguous pieces of the order, in order; padding repeats the chain's last sample.
    np.testing.assert_array_equal(kept, perm)
    assert np.asarray(chains.valid).sum(axis=1).tolist() == [4, 4, 3]
    assert int(chains.indices[2, 3]) == int(chains.indices[2, 2])


def test_bad_input_errors():
    with pytest.raises(ValueError, match="floating"):
        sort_greedy(jnp.arange(6).reshape(3, 2))
    with pytest.raises(ValueError, match="at least one sample"):
        sort_greedy(jnp.zeros((0, 3)))
    with pytest.raises(ValueError, match="cannot exceed"):
        split_chains(np.arange(3), 4)
    with pytest.raises(ValueError, match="n_chains"):
        split_chains(np.arange(3), 0)
    with pytest.raises(ValueError, match="1-D integer"):
        split_chains(np.zeros((2, 2), int), 1)
    with pytest.raises(ValueError, match="n_modes"):
        sort_fft(jnp.ones((3, 4, 4)), n_modes=0)
    with pytest.raises(ValueError, match="non-finite"):
        sort_greedy(jnp.asarray([[0.0, 1.0], [jnp.nan, 0.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="permutation"):
        split_chains(np.array([0, 0, 2, 3]), 2)
