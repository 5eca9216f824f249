"""Drawing an arm from a distribution so that every backend makes the same draw."""

import math

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


def ordered_sum(x: Float[Array, " k"]) -> Float[Array, ""]:
    """Σ x by a fixed pairwise tree of elementwise additions.

    `jnp.sum` lowers to a reduction whose order of additions is up to each backend (CPU, GPU
    and TPU kernels split it differently), so its last bits can differ between them; this
    adds x[0] + x[1], x[2] + x[3], … level by level with `lax` slicing, an order fixed by the
    program. The learners use it wherever a sum feeds the play distribution.
    """
    k = x.shape[-1]
    if k == 0:
        return jnp.zeros(x.shape[:-1], x.dtype)
    for _ in range(math.ceil(math.log2(k)) if k > 1 else 0):
        if x.shape[-1] % 2:
            x = jnp.concatenate([x, jnp.zeros_like(x[..., :1])], axis=-1)
        x = x[..., 0::2] + x[..., 1::2]
    return x[..., 0]


def sample_arm(key: PRNGKeyArray, p: Float[Array, " k"]) -> Int[Array, ""]:
    r"""Draw arm i with probability $p_i / \sum_j p_j$ by inverse CDF.

    The uniform $u \in [0, 1)$ is built exactly from 32 random bits (24 in float32) of `key`,
    and the arm is the number of cumulative sums $P_i = p_0 + \dots + p_i$ (i < k − 1, formed
    by `lax.associative_scan`, a fixed order of additions) with $P_i \le u P_{k-1}$. Arms with
    $p_i = 0$ are never drawn.

    Determinism across backends: u and the association of the sums are the same on CPU, GPU
    and TPU (same JAX version: the key's bits are JAX's threefry), so the draw can differ
    only if `p` itself differs in its last bits. A `p` that differed by a few units in the
    last place would change this one draw only if u fell within that distance of a boundary
    $P_i / P_{k-1}$, but a learner's state amplifies such a difference round after round
    (about 5× per 100 rounds for Tsallis-INF), so over a long run the actions would part.
    The Tsallis-INF learners therefore build `p` from IEEE operations in a fixed order with
    no contractible multiply–add (see `relax`).

    Args:
        key: PRNG key.
        p: non-negative weights of the k arms (need not sum to one), floating.

    Returns:
        The arm index, an int32 scalar.
    """
    cumulative = jax.lax.associative_scan(jnp.add, p)
    threshold = _uniform(key, p.dtype) * cumulative[-1]
    return jnp.sum(cumulative[:-1] <= threshold).astype(jnp.int32)
