"""DCDM training data: Ritz vectors of the training operator and right-hand sides built from them.

The recipe of Kaneda et al.: run Lanczos with full re-orthogonalisation on the training matrix
(the obstacle-free box, pure Neumann), take the Ritz vectors, and form right-hand sides
b = Σ cᵢ qᵢ with cᵢ ~ N(0, 1), the coefficients of the lowest m/2 + θ Ritz values multiplied
by 9 (weighting the smooth end of the spectrum that CG resolves slowest), normalised to
‖b‖ = 1 and in the range of A.

Memory: the Lanczos basis is m × n. `lanczos_steps_for_budget` caps m so that it fits a byte
budget (by default a fraction of the device's memory); the Ritz vectors are formed from the basis
in row chunks, and right-hand sides are drawn on the fly from per-sample keys, so no set of
right-hand sides is ever stored. The Ritz basis is cached on disk as an `.npz` keyed by its
settings.
"""

import hashlib
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from ..linalg import poisson, project_to_range
from ..linalg._stencil import Laplacian

HIGHEST = lax.Precision.HIGHEST
LOW_WEIGHT = 9.0
_CACHE_VERSION = 2


def training_operator(dim: int, n: int, *, dtype: Any = jnp.float32) -> Laplacian:
    """The reference's training matrix: the obstacle-free n^dim box with solid walls.

    The integer 5/7-point stencil (h = 1) with pure Neumann faces: singular, its null space the
    constants.
    """
    if dim not in (2, 3):
        raise ValueError(f"`dim` must be 2 or 3, got {dim!r}.")
    if n < 4 or n % 2:
        raise ValueError(f"`n` must be an even grid side >= 4, got {n!r}.")
    return poisson((n,) * dim, bc="neumann", dtype=dtype)


def lanczos_steps_for_budget(n: int, m: int, *, itemsize: int, budget_bytes: int) -> int:
    """The number of Lanczos steps to run: `m`, capped by memory and by n − 1.

    The basis (m × n) lives on the device while Lanczos runs; the Ritz vectors (another m × n)
    are formed chunk by chunk on the host, so the device holds about one basis.

    Args:
        n: the vector length.
        m: the requested number of steps.
        itemsize: bytes per entry of the basis.
        budget_bytes: bytes the basis may use.

    Returns:
        The number of steps (at least 2).

    Raises:
        ValueError: if not even 2 vectors fit in the budget.
    """
    fit = budget_bytes // (n * itemsize)
    if fit < 2:
        raise ValueError(
            f"a Lanczos basis of vectors of length {n} does not fit in {budget_bytes} bytes; "
            f"raise the memory budget or use a smaller training grid."
        )
    return int(max(2, min(m, fit, n - 1)))


def default_memory_budget() -> int:
    """Bytes for the Lanczos basis: 40% of the first device's memory, or 2 GiB on CPU."""
    device = jax.devices()[0]
    try:
        stats = device.memory_stats() or {}
    except Exception:  # backends without memory statistics
        stats = {}
    limit = stats.get("bytes_limit")
    if limit:
        return int(0.4 * limit)
    return 2 << 30


@eqx.filter_jit
def lanczos(
    operator: Laplacian, start: Float[Array, " n"], steps: int
) -> tuple[Float[Array, "m n"], Float[Array, " m"], Float[Array, " m-1"]]:
    """Lanczos tridiagonalisation with full re-orthogonalisation (twice, Gram–Schmidt).

    Every new vector is also projected onto the range of the (grid Laplacian) operator, so a
    start vector in the range gives a basis in the range to working precision.

    If the Krylov space is exhausted (an invariant subspace: the residual vanishes to rounding),
    the iteration restarts from a new vector A·g orthogonalised against the basis, with a zero
    off-diagonal, so `W A Wᵀ = T` still holds and the basis keeps growing inside range(A).

    Args:
        operator: a symmetric operator.
        start: the start vector (it need not be normalised).
        steps: m, the number of basis vectors (static).

    Returns:
        `(W, alpha, beta)`: the orthonormal basis as rows (m × n), the diagonal and the
        off-diagonal of T.
    """
    n = start.shape[0]
    dtype = start.dtype
    basis = jnp.zeros((steps, n), dtype)
    v = start / jnp.linalg.norm(start)

    def reorthogonalise(w, basis):
        # Rounding feeds the null space (constants on floating regions) back in, and Lanczos
        # amplifies it as the low end converges; projecting it out keeps the basis in range(A).
        w = project_to_range(operator, w)
        for _ in range(2):
            w = w - jnp.matmul(jnp.matmul(basis, w, precision=HIGHEST), basis, precision=HIGHEST)
        return w

    def body(k, carry):
        basis, v, v_prev, beta_prev, alphas, betas, key = carry
        basis = basis.at[k].set(v)
        w = operator.mv(v)
        alpha = jnp.dot(v, w, precision=HIGHEST)
        w = w - alpha * v - beta_prev * v_prev
        w = reorthogonalise(w, basis)
        beta = jnp.linalg.norm(w)
        # An invariant subspace was found: continue from a fresh direction in range(A).
        key, sub = jax.random.split(key)
        exhausted = beta <= 1e3 * jnp.finfo(dtype).eps * jnp.maximum(jnp.abs(alpha), 1)

        def restart():
            fresh = reorthogonalise(operator.mv(jax.random.normal(sub, (n,), dtype)), basis)
            return fresh / jnp.linalg.norm(fresh)

        w = lax.cond(exhausted, restart, lambda: w / beta)
        beta = jnp.where(exhausted, 0, beta).astype(dtype)
        alphas = alphas.at[k].set(alpha)
        betas = betas.at[k].set(beta)
        return basis, w, v, beta, alphas, betas, key

    zero = jnp.zeros((), dtype)
    carry = (
        basis,
        v,
        jnp.zeros_like(v),
        zero,
        jnp.zeros(steps, dtype),
        jnp.zeros(steps, dtype),
        jax.random.key(1),
    )
    basis, _, _, _, alphas, betas, _ = lax.fori_loop(0, steps, body, carry)
    return basis, alphas, betas[:-1]


class RitzBasis(NamedTuple):
    """Ritz pairs of a training operator (host arrays).

    Attributes:
        values: Ritz values, ascending (null-space values dropped), float64.
        vectors: the matching Ritz vectors as rows, float32 (k × n).
        grid_shape: the training grid.
        settings: how they were made (dim, n, m, seed, dtype, orthogonality error, ...).
    """

    values: np.ndarray
    vectors: np.ndarray
    grid_shape: tuple[int, ...]
    settings: dict[str, Any]


def ritz_basis(
    operator: Laplacian,
    *,
    m: int,
    key: PRNGKeyArray,
    memory_budget: int | None = None,
    min_value: float | None = None,
    chunk: int = 256,
) -> RitzBasis:
    """Lanczos (m steps, full re-orthogonalisation) and the Ritz vectors of the operator.

    Args:
        operator: the symmetric positive semi-definite training operator.
        m: the requested number of Lanczos steps (capped by the memory budget and n − 1).
        key: PRNG key of the start vector A·g, g ~ N(0, I) (so it lies in range(A)).
        memory_budget: bytes the Lanczos basis may occupy on the device (default:
            `default_memory_budget()`).
        min_value: Ritz values below this are dropped (the null space). Default: the
            reference's 1e-8, raised to 100·eps·(largest Ritz value) for the dtype, since in
            float32 the null space leaks into the Krylov space at about that level.
        chunk: rows of Ritz vectors formed per device call.

    Returns:
        A `RitzBasis`.
    """
    n = operator.n
    dtype = operator.dtype
    budget = default_memory_budget() if memory_budget is None else int(memory_budget)
    steps = lanczos_steps_for_budget(n, m, itemsize=np.dtype(dtype).itemsize, budget_bytes=budget)
    start = operator.mv(jax.random.normal(key, (n,), dtype))
    basis, alphas, betas = lanczos(operator, start, steps)
    tridiagonal = np.diag(np.asarray(alphas, np.float64))
    off = np.asarray(betas, np.float64)
    tridiagonal += np.diag(off, 1) + np.diag(off, -1)
    values, eigvecs = np.linalg.eigh(tridiagonal)
    if min_value is None:
        min_value = max(1e-8, 100 * float(np.finfo(dtype).eps) * float(values[-1]))
    keep = np.flatnonzero(values >= min_value)
    values = values[keep]
    coefficients = jnp.asarray(eigvecs[:, keep].T, dtype)  # k × m
    vectors = np.empty((keep.size, n), np.float32)
    for lo in range(0, keep.size, chunk):
        block = jnp.matmul(coefficients[lo : lo + chunk], basis, precision=HIGHEST)
        vectors[lo : lo + chunk] = np.asarray(block, np.float32)
    gram_error = _orthogonality_error(basis)
    del basis
    settings = {
        "grid_shape": list(operator.grid_shape),
        "m_requested": int(m),
        "m": int(steps),
        "kept": int(keep.size),
        "dtype": np.dtype(dtype).name,
        "orthogonality_error": gram_error,
        "ritz_min": float(values[0]) if values.size else None,
        "ritz_max": float(values[-1]) if values.size else None,
    }
    return RitzBasis(values, vectors, tuple(operator.grid_shape), settings)


def _orthogonality_error(basis: Array, chunk: int = 512) -> float:
    """max |W Wᵀ − I| over the basis, in row chunks (the full Gram matrix is m × m)."""
    m = basis.shape[0]
    worst = 0.0
    for lo in range(0, m, chunk):
        gram = jnp.matmul(basis[lo : lo + chunk], basis.T, precision=HIGHEST)
        eye = jnp.eye(m, dtype=basis.dtype)[lo : lo + chunk]
        worst = max(worst, float(jnp.max(jnp.abs(gram - eye))))
    return worst


def default_theta(m: int) -> int:
    """θ = m/20, the reference's ratio (θ = 500 for m = 10,000)."""
    return max(1, m // 20)


def low_end_weights(k: int, m: int, theta: int, dtype: Any = jnp.float32) -> Array:
    """Coefficient weights: 9 for the lowest m/2 + θ Ritz values (of k kept), 1 for the rest."""
    count = min(k, m // 2 + theta)
    return jnp.where(jnp.arange(k) < count, LOW_WEIGHT, 1.0).astype(dtype)


def rhs_from_coefficients(
    coefficients: Float[Array, "batch k"],
    vectors: Float[Array, "k n"],
    operator: Laplacian,
) -> Float[Array, "batch n"]:
    """b = Σ cᵢ qᵢ, projected onto range(A) and normalised to ‖b‖ = 1 (one row per sample)."""
    rhs = jnp.matmul(coefficients, vectors, precision=HIGHEST)
    rhs = jax.vmap(lambda b: project_to_range(operator, b))(rhs)
    norms = jnp.linalg.norm(rhs, axis=1, keepdims=True)
    return rhs / norms


def sample_coefficients(
    key: PRNGKeyArray, indices: Sequence[int] | Array, weights: Float[Array, " k"]
) -> Float[Array, "batch k"]:
    """The weighted coefficients of samples `indices` of a fixed data set (one key per sample).

    Sample i always has the same coefficients (drawn from `fold_in(key, i)`), so a data set of
    any size is defined without storing it.
    """
    indices = jnp.asarray(indices)

    def one(i):
        return jax.random.normal(jax.random.fold_in(key, i), weights.shape, weights.dtype)

    return jax.vmap(one)(indices) * weights[None]


def ritz_rhs(
    key: PRNGKeyArray,
    basis: RitzBasis,
    operator: Laplacian,
    indices: Sequence[int] | Array,
    *,
    theta: int | None = None,
) -> Float[Array, "batch n"]:
    """Training right-hand sides number `indices` of the data set defined by `key` and `basis`.

    Args:
        key: the data set's key.
        basis: the Ritz basis of `operator`.
        operator: the training operator (for the projection onto its range).
        indices: sample numbers.
        theta: the θ of the 9× weighting (default m/20).

    Returns:
        Unit-norm right-hand sides in range(A), in the operator's dtype, one per row.
    """
    m = basis.settings["m"]
    theta = default_theta(m) if theta is None else int(theta)
    dtype = operator.dtype
    weights = low_end_weights(basis.values.size, m, theta, dtype)
    vectors = jnp.asarray(basis.vectors, dtype)
    return rhs_from_coefficients(sample_coefficients(key, indices, weights), vectors, operator)


# --------------------------------------------------------------------------------------------
# Disk cache


def default_cache_dir() -> Path:
    """`$SCIML_CACHE_DIR/dcdm`, or `~/.cache/sciml/dcdm`."""
    root = os.environ.get("SCIML_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "sciml"
    return base / "dcdm"


def cache_key(settings: dict[str, Any]) -> str:
    """A short stable hash of the settings that define a Ritz basis."""
    text = json.dumps({"version": _CACHE_VERSION, **settings}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def cached_ritz_basis(
    dim: int,
    n: int,
    *,
    m: int,
    seed: int,
    dtype: Any = jnp.float32,
    memory_budget: int | None = None,
    cache_dir: str | Path | None = None,
    log: Any = None,
) -> RitzBasis:
    """The Ritz basis of the n^dim training box, from the disk cache or computed and cached.

    The cache file is `ritz_{dim}d_n{n}_m{m}_{hash}.npz`, keyed by (dim, n, m requested, seed,
    dtype, memory budget); it is written atomically. `cache_dir` defaults to
    `default_cache_dir()`.

    Returns:
        The `RitzBasis`.
    """
    from .._core._metrics import atomic_write_bytes

    dtype = np.dtype(dtype)
    key_settings = {
        "dim": int(dim),
        "n": int(n),
        "m": int(m),
        "seed": int(seed),
        "dtype": dtype.name,
        "budget": None if memory_budget is None else int(memory_budget),
    }
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"ritz_{dim}d_n{n}_m{m}_{cache_key(key_settings)}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                settings = json.loads(str(data["settings"]))
                basis = RitzBasis(
                    data["values"], data["vectors"], tuple(settings["grid_shape"]), settings
                )
            if log:
                log(f"Ritz basis from cache {path}")
            return basis
        except (OSError, ValueError, KeyError) as error:
            if log:
                log(f"ignoring unreadable cache file {path}: {error}")
    operator = training_operator(dim, n, dtype=dtype)
    basis = ritz_basis(operator, m=m, key=jax.random.key(seed), memory_budget=memory_budget)
    basis.settings.update(key_settings)
    basis.settings["grid_shape"] = list(basis.grid_shape)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        values=basis.values,
        vectors=basis.vectors,
        settings=np.asarray(json.dumps(basis.settings)),
    )
    atomic_write_bytes(path, buffer.getvalue())
    if log:
        log(f"Ritz basis cached at {path}")
    return basis
