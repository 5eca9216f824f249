"""ChebCB: a SquareCB-style contextual bandit with Chebyshev features of the context."""

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..._core import check_size
from ._checks import as_omega_grid, context_interval
from ._sampling import ordered_sum, sample_arm

_BOX_STEPS = 500  # projected-gradient steps of the box-constrained refit (m ≤ ~10 unknowns)


class ChebState(eqx.Module):
    """The per-arm least-squares sums and fits, the loss range and the last play."""

    gram: Float[Array, "k m m"]  # Σ φφᵀ over the rounds each arm was played
    moment: Float[Array, "k m"]  # Σ φ (ℓ − 1)
    square: Float[Array, " k"]  # Σ (ℓ − 1)²
    theta: Float[Array, "k m"]  # fitted coefficients (targets (ℓ − 1)/scale)
    rounds: Int[Array, ""]
    loss_max: Float[Array, ""]
    loss_min: Float[Array, ""]
    # R = Σ_s (prediction_s − ℓ_s/scale)² with the current scale, kept as three running sums
    prediction_square: Float[Array, ""]  # Σ prediction²
    prediction_loss: Float[Array, ""]  # Σ prediction·ℓ
    loss_square: Float[Array, ""]  # Σ ℓ²
    scale: Float[Array, ""]
    eta: Float[Array, ""]
    arm: Int[Array, ""]
    prediction: Float[Array, ""]  # the played arm's prediction, for R
    prob: Float[Array, " k"]


def chebyshev_features(z: Float[Array, ""], degree: int) -> Float[Array, " m"]:
    """T_0(z), …, T_{degree−1}(z) (the three-term recurrence)."""
    features = [jnp.ones_like(z), z]
    for _ in range(degree - 2):
        features.append(2 * z * features[-1] - features[-2])
    return jnp.stack(features[:degree])


def _box_least_squares(gram, moment, upper):
    """argmin ½θᵀGθ − θᵀg s.t. |θ| ≤ upper: min-norm LS if feasible, else projected gradient.

    Returns the coefficients and whether the box was active.
    """
    free = jnp.linalg.pinv(gram, hermitian=True) @ moment
    step = 1 / jnp.maximum(jnp.linalg.eigvalsh(gram)[-1], 1e-30)

    def body(_, theta):
        return jnp.clip(theta - step * (gram @ theta - moment), -upper, upper)

    feasible = jnp.all(jnp.abs(free) <= upper)
    boxed = jax.lax.fori_loop(0, _BOX_STEPS, body, jnp.clip(free, -upper, upper))
    return jnp.where(feasible, free, boxed), ~feasible


class ChebCB(eqx.Module):
    r"""ChebCB: per-arm linear regression on Chebyshev features of the context, SquareCB play.

    Features $\phi(c) = (T_0(z), …, T_{m-1}(z))$, $z = 2(c - a)/(b - a) - 1$. Each arm i keeps a
    linear model $\theta_i$ of the normalised loss $(\ell - 1)/\mathrm{scale}$; the play
    distribution is $p_i = 1/(d + \eta(\hat y_i - \hat y_{i^*}))$ for $i \ne i^* =
    \arg\min \hat y$, the rest on $i^*$. After each round: $K = \max\ell$,
    $L_c = (\max\ell - \min\ell)/(b - a)$, $N = 2 + 4(b-a)L_c/K\,(1 + \log m)$,
    scale = K·N; every arm is refit by least squares, box-constrained to
    $|\theta_{i0}| \le 1/N$, $|\theta_{ij}| \le 2(b-a)L_c/(\mathrm{scale}\,j)$ when the
    unconstrained fit leaves the box; $\eta = 2t\sqrt{d t/(R - \mathrm{res} + 2\alpha^2 t)}$ with
    R = Σ (prediction − ℓ/scale)² over the past rounds, res the residual of the round's last
    box-constrained refit (0 if none) and
    $\alpha = (\pi + \tfrac2\pi\log(2m+1))(b-a)L_c/(2\,\mathrm{scale}(m+1))$ (the "Learning to
    Relax" repository's `ChebCB.m`, as described in its method note; the box refit here is
    projected gradient from the clipped min-norm solution).

    Args:
        omegas: the grid of relaxation factors (d arms).
        degree: number of Chebyshev features m (static int).
        lo: lower end a of the context interval.
        hi: upper end b.

    References:
        D. Foster and A. Rakhlin, "Beyond UCB: optimal and efficient contextual bandits with
        regression oracles", ICML 2020 (SquareCB). Khodak et al., "Learning to Relax",
        ICLR 2024.
    """

    omegas: Float[Array, " k"]
    lo: Float[Array, ""]
    hi: Float[Array, ""]
    degree: int = eqx.field(static=True)

    def __init__(self, omegas: Any, degree: int, lo: Any, hi: Any):
        self.omegas = as_omega_grid(omegas)
        self.degree = check_size(degree, "degree", minimum=2)
        self.lo, self.hi = context_interval(lo, hi, self.omegas.dtype)

    @property
    def num_arms(self) -> int:
        return self.omegas.shape[0]

    def features(self, context: Any) -> Float[Array, " m"]:
        c = jnp.asarray(context, self.lo.dtype)
        z = jnp.clip(2 * (c - self.lo) / (self.hi - self.lo) - 1, -1, 1)
        return chebyshev_features(z, self.degree)

    def init(self) -> ChebState:
        k, m, dtype = self.num_arms, self.degree, self.omegas.dtype
        zero = jnp.asarray(0, dtype)
        return ChebState(
            gram=jnp.zeros((k, m, m), dtype),
            moment=jnp.zeros((k, m), dtype),
            square=jnp.zeros(k, dtype),
            theta=jnp.zeros((k, m), dtype),
            rounds=jnp.asarray(0, jnp.int32),
            loss_max=zero,
            loss_min=jnp.asarray(jnp.inf, dtype),
            prediction_square=zero,
            prediction_loss=zero,
            loss_square=zero,
            scale=zero,
            eta=jnp.asarray(0, dtype),
            arm=jnp.asarray(0, jnp.int32),
            prediction=zero,
            prob=jnp.full(k, 1 / k, dtype),
        )

    # The methods a simulation loop calls are compiled: run eagerly, the inner loops
    # (the box-constrained refit) compiled again on every call, about 120 ms a round.
    @jax.jit
    def probabilities(self, state: ChebState, context: Any) -> Float[Array, " k"]:
        """The SquareCB distribution of the next round at `context`."""
        predicted = state.theta @ self.features(context)
        best = jnp.argmin(predicted)
        others = 1 / (self.num_arms + state.eta * (predicted - predicted[best]))
        others = others.at[best].set(0)
        return others.at[best].set(1 - ordered_sum(others))

    @jax.jit
    def select(
        self, state: ChebState, key: PRNGKeyArray, context: Any
    ) -> tuple[Int[Array, ""], ChebState]:
        """Draw the next arm at `context`; returns `(arm, state)` with the play recorded."""
        p = self.probabilities(state, context)
        arm = sample_arm(key, p)
        prediction = state.theta[arm] @ self.features(context)
        state = eqx.tree_at(lambda s: (s.arm, s.prediction, s.prob), state, (arm, prediction, p))
        return arm, state

    @jax.jit
    def update(self, state: ChebState, loss: Any, context: Any) -> ChebState:
        """Record the loss of the last arm played at `context` and refit the models."""
        dtype = self.omegas.dtype
        m, d = self.degree, self.num_arms
        loss = jnp.asarray(loss).astype(dtype)
        phi = self.features(context)
        width = self.hi - self.lo
        arm = state.arm
        gram = state.gram.at[arm].add(jnp.outer(phi, phi))
        moment = state.moment.at[arm].add(phi * (loss - 1))
        square = state.square.at[arm].add((loss - 1) ** 2)
        t = state.rounds + 1
        loss_max = jnp.maximum(state.loss_max, loss)
        loss_min = jnp.minimum(state.loss_min, loss)
        lipschitz = (loss_max - loss_min) / width
        big = jnp.maximum(loss_max, 1e-30)
        n_scale = 2 + 4 * width * lipschitz / big * (1 + math.log(m))
        scale = big * n_scale
        j = jnp.arange(1, m, dtype=dtype)
        upper = jnp.concatenate([(1 / n_scale)[None], 2 * width * lipschitz / (scale * j)])
        theta, boxed = jax.vmap(_box_least_squares, in_axes=(0, 0, None))(
            gram, moment / scale, upper
        )
        # As in the reference, `res` is the residual norm² of the last box-constrained refit
        # of this round (0 if none): all arms are refit when the scale changed, else the
        # played one.
        residuals = (
            jnp.einsum("ki,kij,kj->k", theta, gram, theta)
            - 2 * jnp.sum(theta * moment, axis=-1) / scale
            + square / scale**2
        )
        refit = jnp.where(scale != state.scale, True, jnp.arange(d, dtype=jnp.int32) == arm)
        candidates = refit & boxed
        last = d - 1 - jnp.argmax(candidates[::-1])
        residual = jnp.where(jnp.any(candidates), residuals[last], 0)
        prediction_square = state.prediction_square + state.prediction**2
        prediction_loss = state.prediction_loss + state.prediction * loss
        loss_square = state.loss_square + loss**2
        online_error = prediction_square - 2 * prediction_loss / scale + loss_square / scale**2
        alpha = (math.pi + 2 / math.pi * math.log(2 * m + 1)) / (2 * scale * (m + 1)) * width
        alpha = alpha * lipschitz
        tf = t.astype(dtype)
        denominator = jnp.maximum(online_error - residual + 2 * alpha**2 * tf, 1e-12)
        eta = 2 * tf * jnp.sqrt(d * tf / denominator)
        return ChebState(
            gram=gram,
            moment=moment,
            square=square,
            theta=theta,
            rounds=t,
            loss_max=loss_max,
            loss_min=loss_min,
            prediction_square=prediction_square,
            prediction_loss=prediction_loss,
            loss_square=loss_square,
            scale=scale,
            eta=eta,
            arm=arm,
            prediction=state.prediction,
            prob=state.prob,
        )
