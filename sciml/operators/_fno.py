"""A small two-dimensional Fourier Neural Operator (FNO) and its training loop.

The model maps fields on a regular grid to fields on the same grid, `(C_in, H, W) -> (C_out, H,
W)`: a pointwise lifting to `width` channels (the input channels plus the two grid coordinates),
`n_layers` Fourier layers `v <- σ(K v + W v)` where `K` multiplies the lowest `modes` Fourier
coefficients (of `rfft2`) by learned complex matrices and drops the rest and `W` is a pointwise
linear skip, then a two-layer pointwise projection. Because `K` acts on a fixed number of Fourier
modes, the same weights apply to any grid with at least `2·modes[0]` rows and `2·modes[1] − 1`
columns (resolution-agnostic evaluation).

Complex weights are stored as real pairs (a trailing axis of size 2), so every leaf is a real
array of the model's dtype and optimisers see ordinary real parameters.

References:
    Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart, A. Anandkumar,
    "Fourier Neural Operator for Parametric Partial Differential Equations", ICLR 2021
    (arXiv 2010.08895), §4 (Fourier layer, eq. 4–5) and §5.2 (Darcy flow).
"""

from collections.abc import Callable
from functools import partial
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._core import check_size, float_dtype_of, progress_enabled, scan_with_progress


def _default_dtype(dtype: Any) -> np.dtype:
    if dtype is None:
        return np.dtype(jnp.zeros(()).dtype)  # JAX's default float (float64 with x64 on)
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"`dtype` must be float32 or float64, got {dtype}.")
    if dtype == np.float64 and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            "float64 parameters need 64-bit mode: enable `jax_enable_x64` or pass "
            "dtype=jnp.float32."
        )
    return dtype


_Spec = tuple[tuple[int, ...], float, float]


def _pointwise_specs(in_channels: int, out_channels: int) -> tuple[_Spec, _Spec]:
    bound = 1.0 / float(np.sqrt(in_channels))  # PyTorch's default for Linear/Conv layers
    return ((out_channels, in_channels), -bound, bound), ((out_channels,), -bound, bound)


def _spectral_spec(in_channels: int, out_channels: int, modes: tuple[int, int]) -> _Spec:
    # The reference implementation draws U[0, 1)/(in·out) for real and imaginary parts.
    scale = 1.0 / (in_channels * out_channels)
    return (2, in_channels, out_channels, int(modes[0]), int(modes[1]), 2), 0.0, scale


@partial(jax.jit, static_argnums=(1, 2))
def _draw(key: PRNGKeyArray, specs: tuple[_Spec, ...], dtype: np.dtype) -> tuple[Array, ...]:
    """Uniform draws, one array per `(shape, low, high)` in `specs`, from one random stream.

    A single `uniform` call cut into pieces: one threefry kernel instead of one per array keeps
    the compile short (separate draws made building a model take many seconds on a CPU).
    """
    sizes = [int(np.prod(shape)) for shape, _, _ in specs]
    flat = jax.random.uniform(key, (sum(sizes),), dtype)
    out, start = [], 0
    for size, (shape, low, high) in zip(sizes, specs, strict=True):
        out.append((low + (high - low) * flat[start : start + size]).reshape(shape))
        start += size
    return tuple(out)


class Pointwise(eqx.Module):
    """A linear map of the channels at every grid point (a 1×1 convolution).

    Attributes:
        weight: shape (out, in).
        bias: shape (out,).
    """

    weight: Float[Array, "out in"]
    bias: Float[Array, " out"]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        key: PRNGKeyArray | None = None,
        dtype=None,
        _arrays: tuple[Array, Array] | None = None,
    ):
        if _arrays is None:
            _arrays = _draw(key, _pointwise_specs(in_channels, out_channels), _default_dtype(dtype))
        self.weight, self.bias = _arrays

    def __call__(self, x: Float[Array, "in h w"]) -> Float[Array, "out h w"]:
        return (
            jnp.einsum("oc,chw->ohw", self.weight, x, precision=jax.lax.Precision.HIGHEST)
            + self.bias[:, None, None]
        )


class SpectralConv2d(eqx.Module):
    """The Fourier integral operator K of one FNO layer, with truncated modes.

    `rfft2` of the input; the coefficients with row frequency in `[0, m1) ∪ [H − m1, H)` and
    column frequency in `[0, m2)` are multiplied by learned complex `in × out` matrices (one per
    mode); all other coefficients are set to zero; `irfft2` back to the grid.

    Attributes:
        weights: real and imaginary parts of the two complex weight blocks (non-negative and
            negative row frequencies), shape (2, in, out, m1, m2, 2).
        modes: (m1, m2), static.
    """

    weights: Float[Array, "2 cin cout m1 m2 2"]
    modes: tuple[int, int] = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: tuple[int, int],
        *,
        key: PRNGKeyArray | None = None,
        dtype=None,
        _weights: Array | None = None,
    ):
        if _weights is None:
            specs = (_spectral_spec(in_channels, out_channels, modes),)
            (_weights,) = _draw(key, specs, _default_dtype(dtype))
        self.weights = _weights
        self.modes = (int(modes[0]), int(modes[1]))

    def __call__(self, x: Float[Array, "cin h w"]) -> Float[Array, "cout h w"]:
        _, h, w = x.shape
        m1, m2 = self.modes
        if h < 2 * m1 or w // 2 + 1 < m2:
            raise ValueError(
                f"a {h}×{w} grid is too coarse for modes={self.modes}: it needs at least "
                f"{2 * m1} rows and {2 * m2 - 2} columns; use a finer grid or fewer modes."
            )
        coeffs = jnp.fft.rfft2(x, axes=(-2, -1))  # (cin, h, w // 2 + 1)
        weights = jax.lax.complex(self.weights[..., 0], self.weights[..., 1])
        hp = jax.lax.Precision.HIGHEST
        low = jnp.einsum("ixy,ioxy->oxy", coeffs[:, :m1, :m2], weights[0], precision=hp)
        high = jnp.einsum("ixy,ioxy->oxy", coeffs[:, h - m1 :, :m2], weights[1], precision=hp)
        out = jnp.zeros((weights.shape[2], h, w // 2 + 1), coeffs.dtype)
        out = out.at[:, :m1, :m2].set(low).at[:, h - m1 :, :m2].set(high)
        return jnp.fft.irfft2(out, s=(h, w), axes=(-2, -1)).astype(x.dtype)


class FNO(eqx.Module):
    """A 2-D Fourier Neural Operator acting on one sample `(in_channels, H, W)`.

    Batch with `jax.vmap(model)`. The grid coordinates (x, y) ∈ [0, 1]² are appended to the input
    channels before the lifting (as in the reference Darcy model), so the model sees where it is.

    Attributes:
        lifting: pointwise `in_channels + 2 -> width`.
        spectral: the `n_layers` Fourier integral operators.
        skips: the `n_layers` pointwise skips W.
        projection: pointwise `width -> projection_width` and `projection_width -> out_channels`.
        activation: the nonlinearity σ (GELU by default), static.
    """

    lifting: Pointwise
    spectral: tuple[SpectralConv2d, ...]
    skips: tuple[Pointwise, ...]
    projection: tuple[Pointwise, Pointwise]
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        modes: int | tuple[int, int] = 12,
        width: int = 32,
        n_layers: int = 4,
        projection_width: int = 128,
        activation: Callable[[Array], Array] = jax.nn.gelu,
        key: PRNGKeyArray,
        dtype=None,
    ):
        """Initialise the model.

        Args:
            in_channels: channels of the input field (1 for a Darcy coefficient).
            out_channels: channels of the output field.
            modes: Fourier modes kept per axis, an int or (rows, columns).
            width: channels of the hidden fields.
            n_layers: number of Fourier layers.
            projection_width: hidden channels of the projection.
            activation: the nonlinearity.
            key: PRNG key for the initial weights.
            dtype: float32 or float64 (JAX's default float if omitted); inputs must match.

        Raises:
            ValueError: for non-positive sizes or an unsupported dtype.
        """
        modes = (modes, modes) if isinstance(modes, (int, np.integer)) else tuple(modes)
        if len(modes) != 2:
            raise ValueError(f"`modes` must be an int or a pair of ints, got {modes!r}.")
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("modes[0]", modes[0]),
            ("modes[1]", modes[1]),
            ("width", width),
            ("n_layers", n_layers),
            ("projection_width", projection_width),
        ):
            check_size(value, name)
        dtype = _default_dtype(dtype)
        # All initial weights in one compiled draw: eager `jax.random` calls compile one small
        # program per shape, which made building a model take seconds on a CPU.
        specs = (
            _pointwise_specs(in_channels + 2, width)
            + (_spectral_spec(width, width, modes),) * n_layers
            + _pointwise_specs(width, width) * n_layers
            + _pointwise_specs(width, projection_width)
            + _pointwise_specs(projection_width, out_channels)
        )
        arrays = list(_draw(key, specs, dtype))
        take = lambda count: tuple(arrays.pop(0) for _ in range(count))  # noqa: E731
        self.lifting = Pointwise(in_channels + 2, width, _arrays=take(2))
        self.spectral = tuple(
            SpectralConv2d(width, width, modes, _weights=take(1)[0]) for _ in range(n_layers)
        )
        self.skips = tuple(Pointwise(width, width, _arrays=take(2)) for _ in range(n_layers))
        self.projection = (
            Pointwise(width, projection_width, _arrays=take(2)),
            Pointwise(projection_width, out_channels, _arrays=take(2)),
        )
        self.activation = activation

    @property
    def in_channels(self) -> int:
        return self.lifting.weight.shape[1] - 2

    @property
    def out_channels(self) -> int:
        return self.projection[1].weight.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.lifting.weight.dtype)

    def __call__(self, x: Float[Array, "cin h w"]) -> Float[Array, "cout h w"]:
        """Apply the operator to one input field.

        Args:
            x: shape (in_channels, H, W), the model's dtype.

        Returns:
            The output field, shape (out_channels, H, W).

        Raises:
            ValueError: if the channels or dtype do not match the model, or the grid is too
                coarse for the number of modes.
        """
        if x.ndim != 3 or x.shape[0] != self.in_channels:
            raise ValueError(
                f"expected one sample of shape ({self.in_channels}, H, W), got {x.shape}; "
                f"batch with jax.vmap(model)."
            )
        if x.dtype != self.dtype:
            raise ValueError(
                f"input dtype {x.dtype} does not match the model's {self.dtype}; cast the "
                f"input or build the model with dtype={x.dtype}."
            )
        _, h, w = x.shape
        gy, gx = jnp.meshgrid(
            jnp.linspace(0.0, 1.0, h, dtype=x.dtype),
            jnp.linspace(0.0, 1.0, w, dtype=x.dtype),
            indexing="ij",
        )
        v = self.lifting(jnp.concatenate([x, gx[None], gy[None]], axis=0))
        last = len(self.spectral) - 1
        for i, (spectral, skip) in enumerate(zip(self.spectral, self.skips, strict=True)):
            v = spectral(v) + skip(v)
            if i < last:  # the reference model has no nonlinearity after the last layer
                v = self.activation(v)
        return self.projection[1](self.activation(self.projection[0](v)))


def relative_l2(prediction: Float[Array, "..."], target: Float[Array, "..."]) -> Float[Array, ""]:
    """The relative L2 error ‖prediction − target‖₂ / ‖target‖₂ of one sample (all axes).

    Use `jax.vmap(relative_l2)(predictions, targets)` for per-sample errors of a batch; their
    mean is the usual neural-operator test metric (and the FNO paper's training loss).

    Raises:
        ValueError: if the shapes differ.
    """
    if jnp.shape(prediction) != jnp.shape(target):
        raise ValueError(
            f"prediction and target shapes differ: {jnp.shape(prediction)} vs {jnp.shape(target)}."
        )
    return jnp.linalg.norm(jnp.ravel(prediction - target)) / jnp.linalg.norm(jnp.ravel(target))


def mean_relative_l2(
    model: Callable[[Array], Array],
    inputs: Float[Array, "batch cin h w"],
    targets: Float[Array, "batch cout h w"],
    *,
    batch_size: int = 64,
) -> Float[Array, ""]:
    """The mean over samples of `relative_l2(model(x), y)`, evaluated in batches of `batch_size`.

    Raises:
        ValueError: if the numbers of inputs and targets differ.
    """
    if inputs.shape[0] != targets.shape[0]:
        raise ValueError(
            f"{inputs.shape[0]} inputs but {targets.shape[0]} targets; give one target per input."
        )
    batch_size = check_size(batch_size, "batch_size")
    errors = []
    for start in range(0, inputs.shape[0], batch_size):
        stop = start + batch_size
        errors.append(_batch_errors(model, inputs[start:stop], targets[start:stop]))
    return jnp.mean(jnp.concatenate(errors))


@eqx.filter_jit
def _batch_errors(model, inputs, targets):
    return jax.vmap(relative_l2)(jax.vmap(model)(inputs), targets)


def train_fno(
    model: FNO,
    inputs: Float[Array, "batch cin h w"],
    targets: Float[Array, "batch cout h w"],
    *,
    steps: int,
    key: PRNGKeyArray,
    batch_size: int = 20,
    lr: float | optax.Schedule = 1e-3,
    optimizer: optax.GradientTransformation | None = None,
    chunk_size: int = 100,
    progress: bool | None = None,
) -> tuple[FNO, Float[Array, " steps"]]:
    """Fit `model` to `(inputs, targets)` with Adam on the mean relative L2 loss.

    Each step draws `batch_size` distinct samples at random. The steps run as a `lax.scan` in
    jitted chunks of `chunk_size` with an optional progress bar between chunks (see
    `sciml._core.scan_with_progress`); the result does not depend on `chunk_size`.

    Args:
        model: the initial model (any `eqx.Module` mapping one input sample to one target).
        inputs: shape (N, in_channels, H, W), the model's dtype. Normalise them first (e.g. to
            zero mean and unit variance per grid point): the FNO is sensitive to input scale.
        targets: shape (N, out_channels, H, W). The relative loss is invariant to their scale.
        steps: number of optimiser steps (a static int).
        key: PRNG key for the minibatches.
        batch_size: samples per step (at most N).
        lr: Adam's learning rate, a number or an optax schedule (ignored if `optimizer` given).
        optimizer: any optax transformation instead of Adam(lr).
        chunk_size: steps per compiled chunk.
        progress: show a progress bar (`None`: only on a terminal).

    Returns:
        `(trained_model, history)` with the training-batch loss before each step, shape (steps,).

    Raises:
        ValueError: for mismatched shapes, a batch larger than the data, or non-positive sizes.

    References:
        Li et al., ICLR 2021, §5 (Adam, relative L2 loss).
    """
    steps = check_size(steps, "steps")
    batch_size = check_size(batch_size, "batch_size")
    if inputs.ndim != 4 or targets.ndim != 4:
        raise ValueError(
            f"inputs and targets must be (N, channels, H, W); got {inputs.shape} and "
            f"{targets.shape}."
        )
    n = inputs.shape[0]
    if targets.shape[0] != n:
        raise ValueError(f"{n} inputs but {targets.shape[0]} targets; give one target per input.")
    if batch_size > n:
        raise ValueError(f"`batch_size` {batch_size} exceeds the {n} samples; use a smaller batch.")
    float_dtype_of(inputs, name="inputs")  # rejects integer data with a clear message
    optimizer = optax.adam(lr) if optimizer is None else optimizer
    params, static = eqx.partition(model, eqx.is_inexact_array)
    with jax.numpy_dtype_promotion("standard"):
        opt_state = optimizer.init(params)

    def loss_fn(params, xb, yb):
        net = eqx.combine(params, static)
        return jnp.mean(jax.vmap(relative_l2)(jax.vmap(net)(xb), yb))

    def step(carry, step_key):
        params, opt_state = carry
        idx = jax.random.choice(step_key, n, (batch_size,), replace=False)
        loss, grads = jax.value_and_grad(loss_fn)(params, inputs[idx], targets[idx])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    # optax mixes Python floats with int32 step counts (Adam's bias correction), which strict
    # dtype promotion rejects; the model itself is promotion-clean, so only the optimiser's
    # arithmetic is traced under standard promotion (a local context, not a global setting).
    with jax.numpy_dtype_promotion("standard"):
        (params, _), history = scan_with_progress(
            step,
            (params, opt_state),
            jax.random.split(key, steps),
            chunk_size=min(check_size(chunk_size, "chunk_size"), steps),
            progress=progress_enabled(progress),
            desc="train FNO",
        )
    return eqx.combine(params, static), history
