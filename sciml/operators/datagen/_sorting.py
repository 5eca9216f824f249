"""Ordering a batch of PDE instances so that neighbours are similar (the "S" of SKR)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from ..._core import check_size, is_concrete

HIGHEST = jax.lax.Precision.HIGHEST


def _as_batch(params: ArrayLike, name: str = "params") -> Float[Array, "N d"]:
    params = jnp.asarray(params)
    if params.ndim < 1 or params.shape[0] < 1:
        raise ValueError(
            f"`{name}` must have a leading batch axis with at least one sample, got shape "
            f"{params.shape}."
        )
    if not jnp.issubdtype(params.dtype, jnp.inexact):
        raise ValueError(
            f"`{name}` must be floating, got dtype {params.dtype}; cast it, e.g. "
            f"`{name}.astype(float)`."
        )
    params = params.reshape(params.shape[0], -1)
    if is_concrete(params) and not bool(jnp.all(jnp.isfinite(params))):
        raise ValueError(
            f"`{name}` has non-finite entries (NaN or inf): nearest neighbours are undefined."
        )
    return params


@jax.jit
def _greedy_chain(features: Float[Array, "N d"]) -> Int[Array, " N"]:
    n = features.shape[0]
    # Squared distances from the Gram matrix: one matmul instead of N passes over the data.
    # The cancellation error (~eps·‖x‖²) only matters for near-duplicates, whose order is
    # immaterial.
    gram = jnp.matmul(features, jnp.conj(features).T, precision=HIGHEST).real
    sq = jnp.diagonal(gram)

    def step(i, state):
        perm, used = state
        current = perm[i - 1]
        dist = sq + sq[current] - 2 * gram[current]
        dist = jnp.where(used, jnp.inf, dist)
        nxt = jnp.argmin(dist).astype(jnp.int32)
        return perm.at[i].set(nxt), used.at[nxt].set(True)

    perm = jnp.zeros(n, jnp.int32)  # the chain starts at the first generated system
    used = jnp.zeros(n, bool).at[0].set(True)
    perm, _ = jax.lax.fori_loop(1, n, step, (perm, used))
    return perm


def sort_greedy(params: Float[ArrayLike, "N ..."]) -> Int[Array, " N"]:
    """Greedy nearest-neighbour chain over the flattened parameters (SKR's default sort).

    Starts at the first generated system (index 0) and repeatedly appends the unused system
    whose parameter array is closest in the Frobenius norm ‖W_cur − W_j‖_F to the current
    one. O(N²·d) work through one N×N Gram matrix (memory N², fine up to some 10⁴ samples;
    for more, sort `sort_features` / `sort_fft` features instead, d is then tiny).

    Args:
        params: the parameter fields, shape (N, ...) (e.g. Darcy coefficients (N, s, s)).

    Returns:
        `perm`, an int32 permutation of `arange(N)` with `perm[0] = 0`: solve the systems in
        the order `params[perm]`.

    Raises:
        ValueError: for an empty, non-floating or non-finite `params`.

    References:
        H. Wang et al., "Accelerating Data Generation for Neural Operators via Krylov
        Subspace Recycling", ICLR 2024, §3 (sorting algorithm; greedy in the released code).
    """
    return _greedy_chain(_as_batch(params))


def fft_features(params: Float[ArrayLike, "N ..."], *, n_modes: int) -> Float[Array, "N f"]:
    """Low-frequency Fourier features: the centred `n_modes`^d block of each field's FFT.

    For fields of shape (N, s1, ..., sd) the d-dimensional FFT is taken and the centred block
    of `n_modes` frequencies per axis (clipped to the axis size) is kept; for flat parameter
    vectors (N, d) the first `n_modes` coefficients of the 1-D FFT. Real and imaginary parts
    are stacked, so the features are real.
    """
    n_modes = check_size(n_modes, "n_modes")
    params = jnp.asarray(params)
    _as_batch(params)
    if params.ndim == 2:
        spectrum = jnp.fft.fft(params, axis=1)[:, : min(n_modes, params.shape[1])]
    else:
        axes = tuple(range(1, params.ndim))
        spectrum = jnp.fft.fftshift(jnp.fft.fftn(params, axes=axes), axes=axes)
        index = [slice(None)]
        for size in params.shape[1:]:
            keep = min(n_modes, size)
            start = size // 2 - keep // 2
            index.append(slice(start, start + keep))
        spectrum = spectrum[tuple(index)]
    spectrum = spectrum.reshape(params.shape[0], -1)
    return jnp.concatenate([spectrum.real, spectrum.imag], axis=1)


def sort_fft(params: Float[ArrayLike, "N ..."], *, n_modes: int = 8) -> Int[Array, " N"]:
    """The greedy chain on low-frequency FFT features (`fft_features`) instead of raw fields.

    Cheaper than `sort_greedy` for large grids (d = 2·n_modes^2 instead of s^2) and less
    sensitive to small-scale detail that does not change the spectrum much.

    Args:
        params: the parameter fields, shape (N, ...).
        n_modes: frequencies kept per axis.

    Returns:
        A permutation of `arange(N)` starting at 0.
    """
    return _greedy_chain(fft_features(params, n_modes=n_modes))


def sort_features(
    params: Float[ArrayLike, "N ..."], *, n_modes: int = 12, n_components: int = 7
) -> Int[Array, " N"]:
    """The greedy chain on a PCA "address" of the low-frequency FFT features.

    The FFT features (`fft_features`) are centred and projected on their `n_components`
    leading principal directions (SVD), each component min–max normalised to [0, 1], and the
    greedy chain runs in that low-dimensional space. Defaults follow SKR's vector variant
    (12 frequencies, 7 PCA dimensions).

    Args:
        params: the parameter fields, shape (N, ...).
        n_modes: frequencies kept per axis before the PCA.
        n_components: PCA dimensions (clipped to the number of features and samples).

    Returns:
        A permutation of `arange(N)` starting at 0.
    """
    n_components = check_size(n_components, "n_components")
    features = fft_features(params, n_modes=n_modes)
    centred = features - jnp.mean(features, axis=0, keepdims=True)
    _, _, vt = jnp.linalg.svd(centred, full_matrices=False)
    q = min(n_components, vt.shape[0])
    coords = jnp.matmul(centred, vt[:q].T, precision=HIGHEST)
    low = jnp.min(coords, axis=0, keepdims=True)
    high = jnp.max(coords, axis=0, keepdims=True)
    coords = (coords - low) / jnp.where(high > low, high - low, 1)
    return _greedy_chain(coords)


class Chains(NamedTuple):
    """A sorted order split into equal-length chains (see `split_chains`).

    Attributes:
        indices: (n_chains, L) sample indices; padded chains repeat their last sample.
        valid: (n_chains, L) False on the padding entries.
    """

    indices: Int[Array, "chains L"]
    valid: Bool[Array, "chains L"]


def split_chains(perm: Int[ArrayLike, " N"], n_chains: int) -> Chains:
    """Split an order into `n_chains` contiguous chains of equal length L = ceil(N / n_chains).

    Contiguous pieces of a sorted order keep the neighbour similarity inside each chain, and
    equal lengths let the chains be solved in parallel (`vmap`, or sharded over devices).
    The first `N mod n_chains` chains get one sample more; the others are padded by repeating
    their last sample (a repeated system costs almost nothing when recycled) and marked
    invalid.

    Args:
        perm: the solving order, a permutation of `arange(N)` (e.g. from `sort_greedy`).
        n_chains: the number of chains, 1 <= n_chains <= N.

    Returns:
        `Chains(indices, valid)`, both of shape (n_chains, L).

    Raises:
        ValueError: for `n_chains` out of range or a `perm` that is not a permutation.
    """
    n_chains = check_size(n_chains, "n_chains")
    perm = np.asarray(perm)
    if perm.ndim != 1 or not np.issubdtype(perm.dtype, np.integer):
        raise ValueError(f"`perm` must be a 1-D integer array, got {perm.dtype} {perm.shape}.")
    n = perm.shape[0]
    if not np.array_equal(np.sort(perm), np.arange(n)):
        raise ValueError(
            "`perm` must be a permutation of arange(N) (each sample once), e.g. from `sort_greedy`."
        )
    if n_chains > n:
        raise ValueError(
            f"`n_chains` ({n_chains}) cannot exceed the number of samples ({n}); use at most {n}."
        )
    pieces = np.array_split(perm, n_chains)
    length = len(pieces[0])
    indices = np.stack([np.pad(p, (0, length - len(p)), mode="edge") for p in pieces])
    valid = np.stack([np.arange(length) < len(p) for p in pieces])
    return Chains(jnp.asarray(indices, jnp.int32), jnp.asarray(valid))
