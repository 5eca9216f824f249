"""Tsallis-INF (α = 1/2) and its binned-context variant, as pure state machines."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..._core import check_size
from ._checks import as_omega_grid, context_interval
from ._sampling import ordered_sum, sample_arm

# Newton's iteration for the normaliser converges quadratically once it is near the root and
# gains a factor ~1.5 per step before that; 60 steps bound it even for thousands of arms.
_NEWTON_STEPS = 60
_NEWTON_TOL = 1e-12


class TsallisState(eqx.Module):
    """Cumulative importance-weighted loss estimates and the last play."""

    estimates: Float[Array, " k"]  # K_i = Σ (ℓ − 1)/p_i over the rounds arm i was played
    rounds: Int[Array, ""]
    loss_sum: Float[Array, ""]
    arm: Int[Array, ""]  # last arm played
    prob: Float[Array, " k"]  # the distribution it was drawn from


def _normalised(estimates: Float[Array, " k"], weight: Float[Array, ""]) -> Float[Array, " k"]:
    # p_i = c/(L_i − x)² with Σp = 1 (c = weight), by Newton's method from x0 = min L − √c,
    # where the best arm alone has p = 1 (to rounding) and so Σp ≥ 1.
    #
    # Only +, −, ×, ÷, one √ and fixed-order sums (`ordered_sum`): IEEE operations that every
    # backend rounds the same way. Two more rules keep it so, and a test checks both on the
    # optimised program: no product feeds an addition or subtraction (a backend may contract
    # the pair into one FMA, rounded once instead of twice: XLA:CPU does on FMA hardware,
    # and so, we expect, does XLA:GPU), and no array is divided by a scalar (XLA rewrites
    # a/s as a·(1/s), a product, and then contracts a·(1/s) − x). This matters: the
    # learner's state amplifies a one-ulp difference in p by ~5× per 100 rounds, so any
    # rounding difference between two backends changes the actions after a thousand rounds
    # or so.
    low = jnp.min(estimates)
    x0 = low - jnp.sqrt(weight)
    twice = 2 * weight  # exact; not weight + weight, a sum of products

    def probs(x):
        y = estimates - x
        return weight / (y * y)

    def cond(carry):
        i, _, gap = carry
        return (i < _NEWTON_STEPS) & (jnp.abs(gap) > _NEWTON_TOL)

    def body(carry):
        i, x, gap = carry
        y = estimates - x
        slope = ordered_sum(twice / (y * y * y))  # dΣp/dx = Σ 2c/(L − x)³
        x = x - gap / slope
        return i + 1, x, ordered_sum(probs(x)) - 1

    _, x, _ = jax.lax.while_loop(cond, body, (0, x0, ordered_sum(probs(x0)) - 1))
    return probs(x)


def tsallis_probabilities(
    estimates: Float[Array, " k"], eta: Float[Array, ""]
) -> Float[Array, " k"]:
    r"""The Tsallis-INF (α = 1/2) distribution $p_i = 4/(\eta(L_i - x))^2$ with Σp = 1.

    The normaliser x < min L is found by Newton's method started at $x_0 = \min L - 2/\eta$,
    where the best arm alone has p = 1, so Σp ≥ 1; Σp is convex and increasing in x, so the
    iterates decrease monotonically to the root and never cross the pole at min L. (Starting
    at a fixed x0 = −1, as the reference code does, jumps past the pole once Σp(−1) < 1.)

    Args:
        estimates: the normalised cumulative loss estimates $L_i$.
        eta: the learning rate η > 0.

    Returns:
        The probabilities (Σp = 1 to about 1e-12 relative).
    """
    eta = jnp.asarray(eta, estimates.dtype)
    return _normalised(estimates, 4 / (eta * eta))


class TsallisINF(eqx.Module):
    r"""Tsallis-INF with α = 1/2 over a grid of relaxation factors (adversarial bandit).

    Round t draws arm i with probability $p_i = 4/(\eta_t(L_i - x))^2$, $\eta_t = 2/\sqrt t$,
    where $L_i = K_i / s_t$ are the importance-weighted cumulative losses
    $K_i = \sum (\ell - 1)/p_i$ normalised by $s_t$ = (mean loss so far − 1) (the final
    "Learning to Relax" repository version), and x the normaliser (`tsallis_probabilities`).

    The learner is a pure state machine: `state = learner.init()`,
    `arm, state = learner.select(state, key, context)`, `state = learner.update(state, loss,
    context)`; all three are jittable and the state is a pytree.

    Args:
        omegas: the grid of relaxation factors (the arms), e.g. `jnp.linspace(1, 1.95, 20)`.

    References:
        J. Zimmert and Y. Seldin, "Tsallis-INF: An optimal algorithm for stochastic and
        adversarial bandits", JMLR 22 (2021). Khodak, Chow, Balcan, Talwalkar, "Learning to
        Relax", ICLR 2024.
    """

    omegas: Float[Array, " k"]

    def __init__(self, omegas: Any):
        self.omegas = as_omega_grid(omegas)

    @property
    def num_arms(self) -> int:
        return self.omegas.shape[0]

    def init(self) -> TsallisState:
        dtype = self.omegas.dtype
        k = self.num_arms
        return TsallisState(
            estimates=jnp.zeros(k, dtype),
            rounds=jnp.asarray(0, jnp.int32),
            loss_sum=jnp.asarray(0, dtype),
            arm=jnp.asarray(0, jnp.int32),
            prob=jnp.full(k, 1 / k, dtype),
        )

    # The methods a simulation loop calls are compiled: run eagerly, the inner loops
    # (the Newton normaliser) compiled again on every call, about 60 ms a round.
    @jax.jit
    def probabilities(self, state: TsallisState) -> Float[Array, " k"]:
        """The distribution of the next round."""
        dtype = state.estimates.dtype
        t = (state.rounds + 1).astype(dtype)
        mean = state.loss_sum / jnp.maximum(state.rounds, 1).astype(dtype)
        scale = jnp.where((state.rounds > 0) & (mean > 1), mean - 1, 1).astype(dtype)
        # p_i = 4/(η(L_i − x))² with η = 2/√t and L = K/scale is t·scale²/(K_i − scale·x)²:
        # solved in the units of K, so that no array is divided by the scale (see
        # `_normalised`).
        return _normalised(state.estimates, t * (scale * scale))

    @jax.jit
    def select(
        self, state: TsallisState, key: PRNGKeyArray, context: Any = None
    ) -> tuple[Int[Array, ""], TsallisState]:
        """Draw the next arm; returns `(arm, state)` with the play recorded in the state."""
        p = self.probabilities(state)
        arm = sample_arm(key, p)
        return arm, eqx.tree_at(lambda s: (s.arm, s.prob), state, (arm, p))

    @jax.jit
    def update(self, state: TsallisState, loss: Any, context: Any = None) -> TsallisState:
        """Record the loss (iteration count) of the last arm played."""
        dtype = state.estimates.dtype
        loss = jnp.asarray(loss).astype(dtype)
        estimates = state.estimates.at[state.arm].add((loss - 1) / state.prob[state.arm])
        return TsallisState(
            estimates=estimates,
            rounds=state.rounds + 1,
            loss_sum=state.loss_sum + loss,
            arm=state.arm,
            prob=state.prob,
        )


class TsallisCBState(eqx.Module):
    """One Tsallis-INF state per context bin and the bin of the last play."""

    bins: TsallisState  # one TsallisState per bin, stacked along axis 0
    bin: Int[Array, ""]  # bin of the last play


class TsallisINFCB(eqx.Module):
    """Tsallis-INF per context bin: [lo, hi] split into `bins` equal bins, one learner each.

    Contexts outside [lo, hi] go to the first or last bin.

    Args:
        omegas: the grid of relaxation factors.
        bins: number of bins (static int).
        lo: lower end of the context interval.
        hi: upper end.
    """

    base: TsallisINF
    lo: Float[Array, ""]
    hi: Float[Array, ""]
    bins: int = eqx.field(static=True)

    def __init__(self, omegas: Any, bins: int, lo: Any, hi: Any):
        self.bins = check_size(bins, "bins")
        self.base = TsallisINF(omegas)
        self.lo, self.hi = context_interval(lo, hi, self.base.omegas.dtype)

    @property
    def omegas(self):
        return self.base.omegas

    @property
    def num_arms(self) -> int:
        return self.base.num_arms

    def bin_of(self, context: Any) -> Int[Array, ""]:
        """The bin of a context: ⌊bins·(c − lo)/(hi − lo)⌋, clipped to 0 … bins − 1."""
        z = (jnp.asarray(context, self.lo.dtype) - self.lo) / (self.hi - self.lo)
        return jnp.clip(jnp.floor(z * self.bins), 0, self.bins - 1).astype(jnp.int32)

    def init(self) -> TsallisCBState:
        one = self.base.init()
        stacked = jax.tree.map(lambda x: jnp.stack([x] * self.bins), one)
        return TsallisCBState(stacked, jnp.asarray(0, jnp.int32))

    # Compiled, as `TsallisINF`'s.
    @jax.jit
    def probabilities(self, state: TsallisCBState, context: Any) -> Float[Array, " k"]:
        """The distribution of the next round in the bin of `context`."""
        return self.base.probabilities(jax.tree.map(lambda x: x[self.bin_of(context)], state.bins))

    @jax.jit
    def select(
        self, state: TsallisCBState, key: PRNGKeyArray, context: Any
    ) -> tuple[Int[Array, ""], TsallisCBState]:
        """Draw the next arm from the learner of `context`'s bin; returns `(arm, state)`."""
        b = self.bin_of(context)
        sub = jax.tree.map(lambda x: x[b], state.bins)
        arm, sub = self.base.select(sub, key)
        bins = jax.tree.map(lambda x, y: x.at[b].set(y), state.bins, sub)
        return arm, TsallisCBState(bins, b)

    @jax.jit
    def update(self, state: TsallisCBState, loss: Any, context: Any = None) -> TsallisCBState:
        """Record the loss of the last arm played, in the bin it was played from."""
        b = state.bin
        sub = self.base.update(jax.tree.map(lambda x: x[b], state.bins), loss)
        bins = jax.tree.map(lambda x, y: x.at[b].set(y), state.bins, sub)
        return TsallisCBState(bins, b)
