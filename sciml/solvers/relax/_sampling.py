"""Drawing an arm from a distribution so that every backend makes the same draw."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray


def _uniform(key: PRNGKeyArray, dtype) -> Float[Array, ""]:
    # u is an exact dyadic rational made from the raw threefry bits (identical on every
    # backend), with as many bits as the dtype's mantissa holds exactly, so no float
    # conversion of a backend's own can change it.
    bits = jax.random.bits(key, (), jnp.uint32)
    if jnp.finfo(dtype).nmant < 32:
        bits = bits >> (32 - (jnp.finfo(dtype).nmant + 1))
        scale = 2.0 ** -(jnp.finfo(dtype).nmant + 1)
    else:
        scale = 2.0**-32
    return bits.astype(dtype) * jnp.asarray(scale, dtype)


def sample_arm(key: PRNGKeyArray, p: Float[Array, " k"]) -> Int[Array, ""]:
    r"""Draw arm i with probability $p_i / \sum_j p_j$ by inverse CDF.

    The uniform $u \in [0, 1)$ is built exactly from 32 random bits (24 in float32) of `key`,
    and the arm is the number of cumulative sums $P_i = p_0 + \dots + p_i$ (i < k − 1, formed
    by `lax.associative_scan`, a fixed order of additions) with $P_i \le u P_{k-1}$. Arms with
    $p_i = 0$ are never drawn.

    Determinism across backends: u and the association of the sums are the same on CPU, GPU
    and TPU, so the draw can differ only if `p` itself differs. The only source of that is
    floating-point rounding of the learner's arithmetic (the normaliser's Newton steps, `sqrt`,
    the summation order inside reductions), a few units in the last place; it changes the arm
    only if u falls within that distance of a boundary $P_i / P_{k-1}$, i.e. with probability
    about $k \cdot 10^{-15}$ per round in float64 ($k \cdot 10^{-6}$ in float32). A learner fed
    different iteration counts (a solve that stops one sweep earlier on one backend because its
    last residual is within rounding of the tolerance) diverges from then on; that is the other,
    equally rare, way two backends can part.

    Args:
        key: PRNG key.
        p: non-negative weights of the k arms (need not sum to one), floating.

    Returns:
        The arm index, an int32 scalar.
    """
    cumulative = jax.lax.associative_scan(jnp.add, p)
    threshold = _uniform(key, p.dtype) * cumulative[-1]
    return jnp.sum(cumulative[:-1] <= threshold).astype(jnp.int32)
