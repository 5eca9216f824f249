"""3D Tetris: eight 4-cube shapes, two of them mirror images, and a classifier to train on them.

The classic test of expressivity for E(3)-equivariant networks (Thomas et al. 2018; Xie et al.,
"The price of freedom", ICML 2025). A network whose features all have natural parity
(0e, 1o, 2e, ...) produces the same invariant scalars for a shape and its mirror image, so it
cannot tell the chiral pair apart: at best 7 of 8 shapes (87.5 %). The Gaunt tensor product
keeps features at natural parity; the Clebsch–Gordan product also forms pseudo-scalars (0o, e.g.
the triple product of three vectors), which change sign under reflection and separate the pair.
"""

from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._layers import MessagePassingNetwork
from ._wigner import random_rotation

__all__ = [
    "TETRIS_NAMES",
    "tetris",
    "tetris_accuracy",
    "tetris_logits",
    "tetris_model",
    "train_tetris",
]

# Coordinates from the methods note (Xie et al.'s repository); labels are the list order.
TETRIS_NAMES = ("chiral_1", "chiral_2", "square", "line", "corner", "L", "T", "zigzag")
_SHAPES = (
    ((0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 1, 0)),
    ((1, 1, 1), (1, 1, 2), (2, 1, 1), (2, 0, 1)),
    ((0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)),
    ((0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3)),
    ((0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0)),
    ((0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0)),
    ((0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 1)),
    ((0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 1, 0)),
)
# Network output: one pseudo-scalar and seven scalars, turned into 8 logits by `tetris_logits`.
TETRIS_IRREPS_OUT = "0o+7x0e"


def tetris(
    *, key: PRNGKeyArray | None = None, copies: int = 1, dtype: Any = jnp.float32
) -> tuple[Float[Array, "batch 4 3"], Int[Array, " batch"]]:
    """The eight 3D Tetris shapes, optionally randomly rotated and translated.

    Args:
        key: with a key, every copy of every shape gets a uniformly random rotation and a
            random translation (standard normal); without, the shapes are returned as listed.
        copies: how many copies of the eight shapes (static int ≥ 1).
        dtype: dtype of the positions.

    Returns:
        `(positions, labels)`: positions of shape (8·copies, 4, 3) and integer labels 0..7
        (the order of `TETRIS_NAMES`: chiral_1, chiral_2, square, line, corner, L, T, zigzag).

    Raises:
        ValueError: for `copies < 1`.

    References:
        Thomas et al., "Tensor field networks" (2018); Xie, Daigavane, Kotak, Smidt, "The price
        of freedom", ICML 2025 (coordinates of their Tetris experiment).
    """
    if not isinstance(copies, int) or copies < 1:
        raise ValueError(f"`copies` must be an int >= 1, got {copies!r}.")
    base = jnp.asarray(np.asarray(_SHAPES, np.float64), dtype)
    positions = jnp.tile(base, (copies, 1, 1))
    labels = jnp.tile(jnp.arange(len(_SHAPES)), copies)
    if key is not None:
        k_rot, k_shift = jax.random.split(key)
        rotations = random_rotation(k_rot, (positions.shape[0],), dtype=dtype)
        shifts = jax.random.normal(k_shift, (positions.shape[0], 1, 3), dtype)
        positions = jnp.einsum("bij,bnj->bni", rotations, positions) + shifts
    return positions, labels


def tetris_logits(out: Float[Array, "... 8"]) -> Float[Array, "... 8"]:
    """Eight class logits from the network output "0o+7x0e".

    The two chiral classes get `±(pseudo-scalar × first scalar)`, which is invariant under
    rotations and swaps under reflection; the other six get the remaining scalars.
    """
    odd, even = out[..., :1], out[..., 1:]
    return jnp.concatenate([odd * even[..., :1], -odd * even[..., :1], even[..., 1:]], axis=-1)


def tetris_model(
    product: Literal["cg", "gaunt"],
    *,
    key: PRNGKeyArray,
    mul: int = 4,
    lmax: int = 2,
    num_layers: int = 2,
    method: Literal["grid", "fourier"] = "grid",
    dtype: Any = jnp.float32,
) -> MessagePassingNetwork:
    """A Tetris classifier: a `MessagePassingNetwork` on the radius-1.1 graph, output 0o+7x0e.

    Args:
        product: "cg" (Clebsch–Gordan: all paths, both parities) or "gaunt" (Gaunt: even
            paths, natural parity only).
        key: PRNG key.
        mul: multiplicity of the hidden irreps.
        lmax: highest degree of the hidden features and of the edge harmonics.
        num_layers: message-passing steps.
        method: "grid" or "fourier" for the Gaunt network.
        dtype: dtype of the weights.

    Returns:
        The network; apply it to `(positions, ones((4, 1)))` of one shape.
    """
    return MessagePassingNetwork(
        "1x0e",
        TETRIS_IRREPS_OUT,
        product=product,
        mul=mul,
        lmax=lmax,
        sh_lmax=lmax,
        num_layers=num_layers,
        cutoff=1.1,
        num_basis=4,
        avg_neighbours=2.0,
        method=method,
        dtype=dtype,
        key=key,
    )


def _batch_logits(model: MessagePassingNetwork, positions: Array) -> Array:
    features = jnp.ones((positions.shape[1], 1), positions.dtype)
    return jax.vmap(lambda p: tetris_logits(model(p, features)))(positions)


def tetris_accuracy(
    model: MessagePassingNetwork, positions: Float[Array, "batch 4 3"], labels: Int[Array, " batch"]
) -> Float[Array, ""]:
    """The fraction of shapes whose largest logit is the right class (ties go to the first)."""
    logits = _batch_logits(model, positions)
    return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(positions.dtype))


def train_tetris(
    model: MessagePassingNetwork,
    *,
    steps: int = 300,
    learning_rate: float | Array = 1e-2,
    optimiser: optax.GradientTransformation | None = None,
    positions: Float[Array, "batch 4 3"] | None = None,
    labels: Int[Array, " batch"] | None = None,
) -> tuple[MessagePassingNetwork, dict[str, Array]]:
    """Train a Tetris classifier with Adam on full batches (one jitted `lax.scan`).

    Args:
        model: from `tetris_model`.
        steps: Adam steps (static int ≥ 1).
        learning_rate: Adam's learning rate (may be an array: no recompile).
        optimiser: another optax optimiser instead of Adam (`learning_rate` is then unused).
        positions: training shapes (default: the eight shapes as listed, float of the model).
        labels: their labels.

    Returns:
        `(trained model, history)` with history arrays "loss" and "accuracy" per step
        (on the training batch, before each update).

    Raises:
        ValueError: for `steps < 1`.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be an int >= 1, got {steps!r}.")
    if positions is None or labels is None:
        dtype = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))[0].dtype
        positions, labels = tetris(dtype=dtype)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    optimiser = optax.adam(learning_rate) if optimiser is None else optimiser

    def loss_fn(p):
        logits = _batch_logits(eqx.combine(p, static), positions)
        loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
        accuracy = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(positions.dtype))
        return loss, accuracy

    @jax.jit
    def run(p, state):
        def step(carry, _):
            p, state = carry
            (loss, accuracy), grads = jax.value_and_grad(loss_fn, has_aux=True)(p)
            updates, state = optimiser.update(grads, state, p)
            return (optax.apply_updates(p, updates), state), (loss, accuracy)

        (p, _), (loss, accuracy) = jax.lax.scan(step, (p, state), None, length=steps)
        return p, loss, accuracy

    # optax mixes int32 step counts with float hyper-parameters, which strict dtype promotion
    # refuses; the model itself is strict-promotion clean (tested).
    with jax.numpy_dtype_promotion("standard"):
        params, loss, accuracy = run(params, optimiser.init(params))
    return eqx.combine(params, static), {"loss": loss, "accuracy": accuracy}
