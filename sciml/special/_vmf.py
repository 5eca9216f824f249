"""The von Mises–Fisher distribution on the unit sphere S^{d−1} ⊂ R^d.

Density f(x; μ, κ) = C_d(κ) exp(κ μᵀx) with
log C_d(κ) = (d/2 − 1) log κ − (d/2) log(2π) − log I_{d/2−1}(κ). Everything goes through the
log-scale Bessel functions of `sciml.special`, so it stays finite for d in the tens of thousands
and any κ (SciPy's `ive` underflows to 0 there, and its ratio is 0/0).
"""

import functools
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._core import RESULTS, Solution, check_dtype, is_concrete
from ._log_bessel import _prepare, iv_ratio, log_iv, log_ive

__all__ = [
    "VonMisesFisher",
    "entropy",
    "fit",
    "kappa_mle",
    "kl",
    "log_normalizer",
    "log_prob",
    "mean_resultant_length",
    "sample",
]


class VonMisesFisher(eqx.Module):
    """Parameters of a von Mises–Fisher distribution.

    Attributes:
        mu: the mean direction, a unit vector of shape (d,).
        kappa: the concentration κ ≥ 0 (a scalar array).
    """

    mu: Float[Array, " d"]
    kappa: Float[Array, ""]


def _checked(fn):
    """Refuse float64 arguments while x64 is off before `fn` (jitted) would truncate them."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for a in (*args, *kwargs.values()):
            dtype = getattr(a, "dtype", None)
            if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
                if np.dtype(dtype) == np.float64:
                    check_dtype(dtype)
        return fn(*args, **kwargs)

    return wrapper


def _dimension(d: Any) -> int:
    if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)):
        raise ValueError(
            f"`d` (the dimension of the ambient space) must be a Python int >= 2, got {d!r}."
        )
    if d < 2:
        raise ValueError(f"`d` must be >= 2 (the sphere S^(d-1) in R^d), got {d}.")
    return int(d)


# --------------------------------------------------------------------------------------------
# Normaliser, moments


@jax.custom_jvp
def _log_normalizer(kappa, order):
    positive = kappa > 0
    kappa_safe = jnp.where(positive, kappa, 1.0)
    general = order * jnp.log(kappa_safe) - log_iv(order, kappa_safe)
    # κ → 0: (κ/2)^v / I_v(κ) → Γ(v + 1), so log C = v log 2 + log Γ(v + 1) − (v + 1) log 2π.
    at_zero = order * math.log(2.0) + jax.lax.lgamma(order + 1)
    value = jnp.where(positive, general, at_zero) - (order + 1) * math.log(2 * math.pi)
    return jnp.where((kappa < 0) | jnp.isnan(kappa), jnp.nan, value)


def _log_normalizer_jvp(primals, tangents):
    kappa, order = primals
    kappa_dot, order_dot = tangents
    value = _log_normalizer(kappa, order)
    tangent = jnp.zeros_like(value)
    if not isinstance(kappa_dot, SymbolicZero):
        # d/dκ log C_d(κ) = −A_d(κ), exactly, instead of v/κ − (v/κ + A) by autodiff.
        tangent = tangent - iv_ratio(order, kappa) * kappa_dot
    if not isinstance(order_dot, SymbolicZero):
        kappa_safe = jnp.where(kappa > 0, kappa, 1.0)
        _, d_order = jax.jvp(
            lambda o: (
                o * jnp.log(kappa_safe) - log_iv(o, kappa_safe) - (o + 1) * math.log(2 * math.pi)
            ),
            (order,),
            (order_dot,),
        )
        tangent = tangent + d_order
    return value, tangent


_log_normalizer.defjvp(_log_normalizer_jvp, symbolic_zeros=True)
_log_normalizer_jit = jax.jit(_log_normalizer)


def log_normalizer(kappa: ArrayLike, d: int) -> Float[Array, "..."]:
    """log C_d(κ), the log normalising constant of the vMF density on S^{d−1}.

    Args:
        kappa: the concentration, κ ≥ 0 (any shape; NaN for κ < 0). κ = 0 gives the uniform
            density's log(Γ(d/2) / (2π^{d/2})).
        d: the dimension of the ambient space (a Python int ≥ 2).

    Returns:
        log C_d(κ), with the dtype of `kappa`. Its κ-derivative is −A_d(κ), computed by
        `iv_ratio` (no cancellation).

    Raises:
        ValueError: for d < 2 or a non-integer d.
    """
    d = _dimension(d)
    _checked(lambda k: None)(kappa)
    order, kappa = _prepare(d / 2 - 1, kappa)
    return _log_normalizer_jit(kappa, order)


def mean_resultant_length(kappa: ArrayLike, d: int) -> Float[Array, "..."]:
    """A_d(κ) = I_{d/2}(κ)/I_{d/2−1}(κ) = E[μᵀx], the mean resultant length.

    Args:
        kappa: the concentration, κ ≥ 0.
        d: the dimension (a Python int ≥ 2).

    Returns:
        A_d(κ) ∈ [0, 1).

    Raises:
        ValueError: for d < 2 or a non-integer d.
    """
    d = _dimension(d)
    return iv_ratio(d / 2 - 1, kappa)


@_checked
@jax.jit
def log_prob(x: ArrayLike, mu: ArrayLike, kappa: ArrayLike) -> Float[Array, "..."]:
    """log f(x; μ, κ) = log C_d(κ) + κ μᵀx.

    Args:
        x: points on the sphere, shape (..., d) (not renormalised).
        mu: the mean direction, shape (d,) or broadcastable to `x` (assumed unit norm; the
            gradient with respect to `mu` is the unconstrained one, κx).
        kappa: the concentration, broadcastable to `x.shape[:-1]`.

    Returns:
        The log density, shape `x.shape[:-1]` broadcast with `kappa`.

    Raises:
        ValueError: if the last axes of `x` and `mu` differ, or d < 2.
    """
    x, mu = jnp.asarray(x), jnp.asarray(mu)
    if x.ndim == 0 or mu.ndim == 0 or x.shape[-1] != mu.shape[-1]:
        raise ValueError(
            f"`x` and `mu` need the same last axis (the dimension d), got shapes {x.shape} and "
            f"{mu.shape}."
        )
    d = _dimension(x.shape[-1])
    x, mu = jnp.broadcast_arrays(x, mu)
    cosine = jnp.sum(x * mu, axis=-1)
    kappa, cosine = _prepare(kappa, cosine)
    return log_normalizer(kappa, d) + kappa * cosine


def entropy(kappa: ArrayLike, d: int) -> Float[Array, "..."]:
    """The differential entropy −log C_d(κ) − κ A_d(κ) (nats, w.r.t. the surface measure).

    Args:
        kappa: the concentration, κ ≥ 0.
        d: the dimension (a Python int ≥ 2).

    Returns:
        The entropy; log of the sphere's area at κ = 0.

    Raises:
        ValueError: for d < 2 or a non-integer d.
    """
    d = _dimension(d)
    order, kappa = _prepare(d / 2 - 1, kappa)
    return -_log_normalizer_jit(kappa, order) - kappa * iv_ratio(order, kappa)


@_checked
@jax.jit
def kl(
    mu_p: ArrayLike, kappa_p: ArrayLike, mu_q: ArrayLike, kappa_q: ArrayLike
) -> Float[Array, "..."]:
    """KL(p ‖ q) between two vMF distributions on the same sphere.

    KL = log C_d(κ_p) − log C_d(κ_q) + A_d(κ_p)(κ_p − κ_q μ_qᵀμ_p).

    Args:
        mu_p: mean direction of p, shape (..., d).
        kappa_p: concentration of p.
        mu_q: mean direction of q, shape (..., d).
        kappa_q: concentration of q.

    Returns:
        The divergence (≥ 0), shape of the broadcast batch; absolute rounding error about
        eps·(1 + (d/2 − 1)|log κ|), free of the O(eps·κ) cancellation of the formula above.

    Raises:
        ValueError: if the dimensions of `mu_p` and `mu_q` differ, or d < 2.
    """
    mu_p, mu_q = jnp.asarray(mu_p), jnp.asarray(mu_q)
    if mu_p.ndim == 0 or mu_q.ndim == 0 or mu_p.shape[-1] != mu_q.shape[-1]:
        raise ValueError(
            f"`mu_p` and `mu_q` need the same last axis d, got {mu_p.shape} and {mu_q.shape}."
        )
    d = _dimension(mu_p.shape[-1])
    mu_p, mu_q = jnp.broadcast_arrays(mu_p, mu_q)
    cosine = jnp.sum(mu_p * mu_q, axis=-1)
    kappa_p, kappa_q, cosine = jnp.broadcast_arrays(
        *(a.astype(cosine.dtype) for a in map(jnp.asarray, (kappa_p, kappa_q))), cosine
    )
    a_p = mean_resultant_length(kappa_p, d)
    direct = (
        log_normalizer(kappa_p, d) - log_normalizer(kappa_q, d) + a_p * (kappa_p - kappa_q * cosine)
    )
    # For κ > 0 the same terms without their O(κ) parts: log C_d(κ) = v log κ − log ive_v(κ)
    # − κ − (d/2) log 2π, so the κ's cancel analytically and
    # KL = v log(κ_p/κ_q) − (log ive_v(κ_p) − log ive_v(κ_q)) − (1 − A_p)(κ_p − κ_q)
    #      + A_p κ_q (1 − μ_qᵀμ_p).
    # The direct form loses ~eps·κ to cancellation (at κ = 1e8 a KL of 5e-17 came out as
    # −2e-8); this one ~eps·(v |log κ| + 1).
    v = d / 2 - 1
    positive = (kappa_p > 0) & (kappa_q > 0)
    safe_p = jnp.where(positive, kappa_p, 1)
    safe_q = jnp.where(positive, kappa_q, 1)
    cancelled = (
        v * (jnp.log(safe_p) - jnp.log(safe_q))
        - (log_ive(v, safe_p) - log_ive(v, safe_q))
        - (1 - a_p) * (safe_p - safe_q)
        + a_p * safe_q * (1 - cosine)
    )
    # Rounding can still leave a true KL below that error slightly negative: KL ≥ 0.
    return jnp.maximum(jnp.where(positive, cancelled, direct), 0)


# --------------------------------------------------------------------------------------------
# Sampling (Wood 1994)


def _sample_cosines(key, kappa, d: int, shape, dtype, max_rounds: int):
    """w = μᵀx by Wood's rejection sampler, returned with 1 − w (accurate when w → 1)."""
    m = d - 1
    kappa = jnp.asarray(kappa, dtype)
    # b = (−2κ + √(4κ² + m²))/m, written without cancellation.
    b = m / (2 * kappa + jnp.sqrt(4 * kappa * kappa + m * m))
    one_minus_x0 = 2 * b / (1 + b)
    x0 = (1 - b) / (1 + b)
    log_one_minus_x0_sq = jnp.log(4 * b) - 2 * jnp.log1p(b)

    size = max(1, math.prod(shape))

    def propose(key):
        key_beta, key_u = jax.random.split(key)
        z = jax.random.beta(key_beta, m / 2, m / 2, (size,), dtype)
        u = jax.random.uniform(key_u, (size,), dtype)
        denominator = 1 - (1 - b) * z
        w = (1 - (1 + b) * z) / denominator
        one_minus_w = 2 * b * z / denominator
        # κ(w − x0) + m[log(1 − x0 w) − log(1 − x0²)] ≥ log u, with 1 − x0 w = (1 − x0) + x0(1 − w).
        log_ratio = kappa * (one_minus_x0 - one_minus_w) + m * (
            jnp.log(one_minus_x0 + x0 * one_minus_w) - log_one_minus_x0_sq
        )
        return w, one_minus_w, log_ratio >= jnp.log(u)

    def cond(state):
        _, _, _, filled, rounds = state
        return (~jnp.all(filled)) & (rounds < max_rounds)

    def body(state):
        key, w, one_minus_w, filled, rounds = state
        key, sub = jax.random.split(key)
        w_new, omw_new, ok = propose(sub)
        # Each round draws `size` proposals and hands the accepted ones, in order, to the slots
        # still empty, so about two rounds fill everything (instead of waiting for every slot's
        # own proposal to be accepted).
        accepted_index = jnp.nonzero(ok, size=size, fill_value=0)[0]
        n_accepted = jnp.sum(ok)
        rank = jnp.cumsum(~filled) - 1
        take = ~filled & (rank < n_accepted)
        source = accepted_index[jnp.clip(rank, 0, size - 1)]
        return (
            key,
            jnp.where(take, w_new[source], w),
            jnp.where(take, omw_new[source], one_minus_w),
            filled | take,
            rounds + 1,
        )

    nan = jnp.full((size,), jnp.nan, dtype)
    state = (key, nan, nan, jnp.zeros((size,), bool), jnp.asarray(0))
    _, w, one_minus_w, filled, _ = jax.lax.while_loop(cond, body, state)
    w = jnp.where(filled, w, jnp.nan)[: math.prod(shape)].reshape(shape)
    one_minus_w = jnp.where(filled, one_minus_w, jnp.nan)[: math.prod(shape)].reshape(shape)
    return w, one_minus_w


def _check_sample_arguments(kappa: Any, shape: Any) -> tuple[int, ...]:
    # Before `jit`: a list `shape` would fail as an unhashable static argument, and κ is a
    # tracer inside.
    if isinstance(shape, int) or not all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape
    ):
        raise ValueError(f"`shape` must be a tuple of ints, e.g. (1000,), got {shape!r}.")
    # One κ for all draws: the rejection sampler hands accepted proposals to whichever draw is
    # still open, so per-draw κ would mix draws.
    if jnp.ndim(kappa) != 0:
        raise ValueError(
            f"`kappa` must be a scalar, got shape {jnp.shape(kappa)}; for one κ per draw, "
            f"`jax.vmap` over `kappa` (and the keys)."
        )
    if is_concrete(kappa) and not float(kappa) >= 0:
        raise ValueError(f"`kappa` must be >= 0, got {float(kappa)}.")
    return tuple(int(s) for s in shape)


def sample(
    key: PRNGKeyArray,
    mu: ArrayLike,
    kappa: ArrayLike,
    shape: tuple[int, ...] = (),
    *,
    max_rounds: int = 100,
) -> Float[Array, "*shape d"]:
    """Draw from vMF(μ, κ) by Wood's algorithm (no d×d rotation is ever formed).

    w = μᵀx comes from Wood's rejection sampler (a Beta((d−1)/2, (d−1)/2) proposal; the
    acceptance rate is above ~0.5 for every κ and d), and x = wμ + √(1 − w²) u with u uniform
    on the unit sphere orthogonal to μ.

    Args:
        key: a JAX PRNG key.
        mu: the mean direction, shape (d,), unit norm.
        kappa: the concentration, a scalar ≥ 0 (for one κ per draw, `jax.vmap` over it).
        shape: the sample shape; the result has shape `shape + (d,)`.
        max_rounds: the most rejection rounds (all samples are drawn in parallel each round); a
            sample still rejected after them is NaN (probability < 2^−max_rounds).

    Returns:
        Samples on the sphere, in the dtype of `mu`.

    Raises:
        ValueError: if `mu` is not a vector with d ≥ 2, `shape` is not a tuple of ints, or
            `kappa` is not a scalar (or, when concrete, negative or NaN).

    References:
        A. T. A. Wood, "Simulation of the von Mises Fisher distribution", Communications in
        Statistics — Simulation and Computation 23(1) (1994) 157–164.
    """
    shape = _check_sample_arguments(kappa, shape)
    return _sample(key, mu, kappa, shape, max_rounds=max_rounds)


@_checked
@functools.partial(jax.jit, static_argnames=("shape", "max_rounds"))
def _sample(key, mu, kappa, shape, *, max_rounds):
    mu = jnp.asarray(mu)
    if mu.ndim != 1:
        raise ValueError(f"`mu` must be a vector of shape (d,), got shape {mu.shape}.")
    d = _dimension(mu.shape[0])
    if not jnp.issubdtype(mu.dtype, jnp.floating):
        raise ValueError(f"`mu` must be floating, got {mu.dtype}; cast it, e.g. mu.astype(float).")
    dtype = mu.dtype
    key_w, key_u = jax.random.split(key)
    w, one_minus_w = _sample_cosines(key_w, kappa, d, shape, dtype, max_rounds)
    u = jax.random.normal(key_u, (*shape, d), dtype)
    mu_b = jnp.broadcast_to(mu, u.shape)
    u = u - (u @ mu)[..., None] * mu_b
    u = u / jnp.linalg.norm(u, axis=-1, keepdims=True)
    sine = jnp.sqrt(one_minus_w * (1 + w))
    return w[..., None] * mu_b + sine[..., None] * u


# --------------------------------------------------------------------------------------------
# Maximum likelihood


def _default_rtol(dtype) -> float:
    return 1e-12 if np.dtype(dtype).itemsize >= 8 else 1e-5


@_checked
@functools.partial(jax.jit, static_argnames=("d", "max_steps", "throw"))
def kappa_mle(
    rbar: ArrayLike, d: int, *, rtol: float | None = None, max_steps: int = 20, throw: bool = True
) -> Solution:
    """Solve A_d(κ) = R̄ for the maximum-likelihood concentration, by Newton's method.

    Starts from Banerjee et al.'s closed form κ₀ = R̄(d − R̄²)/(1 − R̄²) and iterates
    κ ← κ − (A_d(κ) − R̄)/A_d′(κ) with A_d′(κ) = 1 − A² − (d − 1)A/κ, A from `iv_ratio` (no
    difference of logarithms, so the residual reaches ~1e-15 in float64). A_d is increasing and
    concave, so the iterates approach the root monotonically after at most one step; a step is
    never allowed to shrink κ by more than a factor 10. Stable for d up to 10⁵ and beyond and for
    R̄ close to 0 or 1. Elementwise over `rbar`.

    Args:
        rbar: the mean resultant length(s) R̄ = ‖mean of the unit vectors‖, in [0, 1].
            R̄ = 0 gives κ = 0; R̄ = 1 gives κ = inf.
        d: the dimension (a Python int ≥ 2).
        rtol: stop once |Δκ| ≤ rtol·κ or |A_d(κ) − R̄| ≤ 4 eps·R̄ (default 1e-12 in float64,
            1e-5 in float32).
        max_steps: the most Newton steps.
        throw: raise at run time if some element did not converge (else see `result`).

    Returns:
        A `Solution` with `value` = κ̂ (NaN where R̄ is NaN or outside [0, 1]; `result` is
        then `invalid_input`), `result`, and `stats`: `num_steps` (per element),
        `max_steps`, `residual_norm` (|A_d(κ̂) − R̄|), `residual_history` (per step, NaN-padded,
        last axis of length `max_steps + 1`) and `initial` (Banerjee's κ₀).

    Raises:
        ValueError: for a non-integer d or d < 2, or max_steps < 1.

    References:
        A. Banerjee, I. S. Dhillon, J. Ghosh, S. Sra, "Clustering on the unit hypersphere using
        von Mises–Fisher distributions", JMLR 6 (2005) 1345–1382; S. Sra, "A short note on
        parameter approximation for von Mises–Fisher distributions", Comput. Stat. 27 (2012).
    """
    d = _dimension(d)
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"`max_steps` must be an int >= 1, got {max_steps!r}.")
    order, rbar = _prepare(d / 2 - 1, rbar)
    dtype = rbar.dtype
    rtol = jnp.asarray(_default_rtol(dtype) if rtol is None else rtol, dtype)
    eps = jnp.finfo(dtype).eps
    interior = (rbar > 0) & (rbar < 1)
    r = jnp.where(interior, rbar, 0.5)
    kappa0 = r * (d - r * r) / ((1 - r) * (1 + r))

    def residual(kappa):
        return iv_ratio(order, kappa) - r

    def cond(state):
        _, _, done, step, _ = state
        return (~jnp.all(done)) & (step < max_steps)

    def body(state):
        kappa, f, done, step, history = state
        a = f + r
        slope = (1 - a) * (1 + a) - (d - 1) * a / kappa
        proposal = kappa - f / slope
        new = jnp.where(jnp.isfinite(proposal), jnp.maximum(proposal, kappa / 10), kappa)
        new = jnp.where(done, kappa, new)
        f_new = residual(new)
        small_step = jnp.abs(new - kappa) <= rtol * new
        small_residual = jnp.abs(f_new) <= 4 * eps * r
        history = history.at[..., step + 1].set(jnp.where(done, jnp.nan, jnp.abs(f_new)))
        newly = ~done & (small_step | small_residual)
        return new, f_new, done | newly, step + 1, history

    f0 = residual(kappa0)
    history = jnp.full((*rbar.shape, max_steps + 1), jnp.nan, dtype).at[..., 0].set(jnp.abs(f0))
    done0 = (jnp.abs(f0) <= 4 * eps * r) | ~interior
    steps_taken = jnp.zeros(rbar.shape, jnp.int32)

    def body_counting(state):
        inner, steps = state
        was_done = inner[2]
        inner = body(inner)
        return inner, steps + jnp.where(was_done, 0, 1).astype(jnp.int32)

    def cond_counting(state):
        return cond(state[0])

    (kappa, f, done, _, history), steps_taken = jax.lax.while_loop(
        cond_counting,
        body_counting,
        ((kappa0, f0, done0, jnp.asarray(0), history), steps_taken),
    )
    kappa = jnp.where(rbar <= 0, 0.0, jnp.where(rbar >= 1, jnp.inf, kappa))
    kappa = jnp.where(jnp.isnan(rbar) | (rbar < 0) | (rbar > 1), jnp.nan, kappa)
    f = jnp.where(interior, f, 0.0)
    valid = ~jnp.isnan(kappa)  # R̄ in [0, 1]
    converged = done & valid
    result = RESULTS.where(
        ~jnp.all(valid),
        RESULTS.invalid_input,
        RESULTS.where(jnp.all(converged), RESULTS.successful, RESULTS.max_steps_reached),
    )
    stats = {
        "num_steps": steps_taken,
        "max_steps": max_steps,
        "residual_norm": jnp.abs(f),
        "residual_history": history,
        "initial": jnp.where(interior, kappa0, kappa),
    }
    if throw:
        kappa, result, stats = result.error_if((kappa, result, stats), result != RESULTS.successful)
    return Solution(value=kappa, result=result, stats=stats)


@_checked
@functools.partial(jax.jit, static_argnames=("normalize", "max_steps", "throw"))
def fit(
    X: ArrayLike,
    *,
    normalize: bool = True,
    rtol: float | None = None,
    max_steps: int = 20,
    throw: bool = True,
) -> Solution:
    """Maximum-likelihood vMF fit: mean direction and concentration of unit vectors.

    μ̂ = x̄/‖x̄‖ and κ̂ solves A_d(κ) = R̄ = ‖x̄‖ (`kappa_mle`), where x̄ is the mean of the rows.

    Args:
        X: data of shape (n, d), one observation per row.
        normalize: scale each row to unit norm first (features from a network are not unit).
        rtol: passed to `kappa_mle`.
        max_steps: passed to `kappa_mle`.
        throw: passed to `kappa_mle`.

    Returns:
        A `Solution` whose `value` is a `VonMisesFisher(mu, kappa)` and whose `stats` are those of
        `kappa_mle` plus `mean_resultant_length` (R̄) and `n`.

    Raises:
        ValueError: if `X` is not 2-D with d ≥ 2 columns and at least one row.
    """
    X = jnp.asarray(X)
    if X.ndim != 2 or X.shape[0] < 1:
        raise ValueError(f"`X` must have shape (n, d) with n >= 1, got {X.shape}.")
    d = _dimension(X.shape[1])
    if not jnp.issubdtype(X.dtype, jnp.floating):
        raise ValueError(f"`X` must be floating, got {X.dtype}; cast it, e.g. X.astype(float).")
    if normalize:
        X = X / jnp.linalg.norm(X, axis=1, keepdims=True)
    mean = jnp.mean(X, axis=0)
    rbar = jnp.linalg.norm(mean)
    mu = mean / rbar
    solution = kappa_mle(rbar, d, rtol=rtol, max_steps=max_steps, throw=throw)
    stats = dict(solution.stats, mean_resultant_length=rbar, n=X.shape[0])
    return Solution(
        value=VonMisesFisher(mu=mu, kappa=solution.value), result=solution.result, stats=stats
    )
