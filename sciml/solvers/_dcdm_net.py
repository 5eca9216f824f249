"""The DCDM network: a fully convolutional "U-net-lite" that maps a residual to a search direction.

The architecture follows the reference implementation of Kaneda et al. (16 channels, 3×3(×3)
kernels with zero "same" padding, one average-pooling level with an additive skip, residual
units, a per-cell linear read-out). It has no spatial dense layer, so the same weights run at
any grid whose sides are even.

Obstacles enter without extra parameters: the fluid mask gates every feature map (features are
zero on solid and empty cells, exactly as the zero padding makes them zero beyond the domain
walls), so the parameter counts are those of the reference (97,457 and 152,881 in 3-D).
"""

import json
from pathlib import Path
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

CHANNELS = 16
# (residual units before pooling, residual units at half resolution, units after upsampling).
# Before pooling there is also one plain conv on each side of the units.
_LAYOUT = {"64": (1, 3, 2), "128": (2, 5, 3)}
_FORMAT = "sciml.dcdm/1"


def _conv(dim: int, cin: int, cout: int, kernel: int, dtype, key) -> eqx.nn.Conv:
    return eqx.nn.Conv(dim, cin, cout, kernel, padding="SAME", dtype=dtype, key=key)


def _pool(u: Array, dim: int) -> Array:
    # 2×…×2 average pooling of a (channels, *grid) array with even grid sides.
    shape = [u.shape[0]]
    for s in u.shape[1:]:
        shape += [s // 2, 2]
    return u.reshape(shape).mean(axis=tuple(range(2, 2 + 2 * dim, 2)))


def _pool_max(u: Array, dim: int) -> Array:
    shape = [u.shape[0]]
    for s in u.shape[1:]:
        shape += [s // 2, 2]
    return u.reshape(shape).max(axis=tuple(range(2, 2 + 2 * dim, 2)))


def _upsample(u: Array) -> Array:
    # Nearest-neighbour ×2 along every spatial axis.
    for axis in range(1, u.ndim):
        u = jnp.repeat(u, 2, axis=axis)
    return u


class DCDMNet(eqx.Module):
    """The DCDM direction network of Kaneda et al. (2023), in 2-D or 3-D.

    Layer pattern (all convolutions 16 → 16 channels, kernel 3 per axis, zero "same" padding,
    ReLU; a residual unit is two convolutions whose output is added to the unit's input):

    - a linear convolution 1 → 16, then at full resolution one convolution, `u₁` residual
      units and one more convolution (the skip tensor);
    - 2× average pooling, `u₂` residual units at half resolution, nearest 2× upsampling,
      plus the skip tensor;
    - `u₃` residual units at full resolution and a per-cell linear read-out 16 → 1.

    Variant "64": (u₁, u₂, u₃) = (1, 3, 2), 14 hidden convolutions; variant "128": (2, 5, 3),
    22 hidden convolutions. Parameters: 3-D 97,457 / 152,881 (as the reference), 2-D 32,657 /
    51,217.

    The model acts on one grid (batch with `jax.vmap`) and computes in its parameter dtype
    (float32 by default); `sciml.solvers.dcdm` casts the residual to it and the direction back.

    Attributes:
        dim: the number of spatial dimensions (2 or 3).
        variant: "64" or "128" (the reference's names, after their training resolutions).

    References:
        A. Kaneda, O. Akar, J. Chen, V. A. T. Kala, D. Hyde, J. Teran, "A Deep Conjugate
        Direction Method for Iteratively Solving Linear Systems", ICML 2023 (the network of
        the reference code, src/train.py).
    """

    dim: int = eqx.field(static=True)
    variant: str = eqx.field(static=True)
    conv_in: eqx.nn.Conv
    full_before: tuple[eqx.nn.Conv, ...]
    half: tuple[eqx.nn.Conv, ...]
    full_after: tuple[eqx.nn.Conv, ...]
    conv_out: eqx.nn.Conv

    def __init__(
        self,
        dim: int,
        *,
        variant: Literal["64", "128"] = "64",
        key: PRNGKeyArray,
        dtype: Any = jnp.float32,
    ):
        """Build a randomly initialised network.

        Args:
            dim: 2 or 3 spatial dimensions.
            variant: "64" (97,457 parameters in 3-D) or "128" (152,881 in 3-D).
            key: PRNG key for the initial weights.
            dtype: the parameter dtype (float32 by default, as the reference trains).

        Raises:
            ValueError: for another `dim` or `variant`.
        """
        if dim not in (2, 3):
            raise ValueError(f"DCDMNet works on 2-D or 3-D grids; got dim={dim!r}.")
        variant = str(variant)
        if variant not in _LAYOUT:
            raise ValueError(f"`variant` must be '64' or '128', got {variant!r}.")
        units_before, units_half, units_after = _LAYOUT[variant]
        n_before = 2 + 2 * units_before
        n_half, n_after = 2 * units_half, 2 * units_after
        keys = iter(jax.random.split(key, 2 + n_before + n_half + n_after))

        def hidden(count):
            return tuple(_conv(dim, CHANNELS, CHANNELS, 3, dtype, next(keys)) for _ in range(count))

        self.dim = dim
        self.variant = variant
        self.conv_in = _conv(dim, 1, CHANNELS, 3, dtype, next(keys))
        self.full_before = hidden(n_before)
        self.half = hidden(n_half)
        self.full_after = hidden(n_after)
        self.conv_out = _conv(dim, CHANNELS, 1, 1, dtype, next(keys))

    @property
    def dtype(self) -> np.dtype:
        """The parameter dtype."""
        return np.dtype(self.conv_in.weight.dtype)

    def check_grid(self, grid_shape: tuple[int, ...]) -> None:
        """Raise a `ValueError` unless the network can run on a grid of this shape."""
        grid_shape = tuple(grid_shape)
        if len(grid_shape) != self.dim:
            raise ValueError(
                f"this DCDM model is {self.dim}-D but the grid {grid_shape} is "
                f"{len(grid_shape)}-D; use a {len(grid_shape)}-D model (e.g. `model=None` for "
                f"the shipped default of the operator's dimension)."
            )
        if any(s % 2 or s < 2 for s in grid_shape):
            raise ValueError(
                f"the DCDM network pools by 2 once, so every grid side must be even; got "
                f"grid_shape {grid_shape}. Pad the domain with a layer of solid cells."
            )

    def __call__(
        self, r: Float[Array, "*grid"], fluid: ArrayLike | None = None
    ) -> Float[Array, "*grid"]:
        """The search direction for a (unit-normalised) residual on the grid.

        Args:
            r: the residual over the grid (no channel axis), in the parameter dtype.
            fluid: optional mask over the grid, nonzero on fluid cells (the unknowns). Feature
                maps and the output are zero elsewhere. `None` means all cells are fluid.

        Returns:
            The direction over the grid, zero off the fluid cells.

        Raises:
            ValueError: at trace time, for a grid of the wrong dimension or with odd sides, a
                mask of another shape, or a residual of another dtype.
        """
        self.check_grid(r.shape)
        if r.dtype != self.dtype:
            raise ValueError(
                f"the residual has dtype {r.dtype} but the network computes in {self.dtype}; "
                f"cast it with `r.astype({self.dtype.name})`."
            )
        dim = self.dim
        if fluid is None:
            gate = jnp.ones((1,) + r.shape, r.dtype)
        else:
            fluid = jnp.asarray(fluid)
            if fluid.shape != r.shape:
                raise ValueError(
                    f"the fluid mask has shape {fluid.shape} but the grid is {r.shape}; pass "
                    f"a mask over the same grid (e.g. `A.mask == sciml.linalg.FLUID`)."
                )
            gate = fluid.astype(bool).astype(r.dtype)[None]
        coarse_gate = _pool_max(gate, dim)

        def unit(convs, u, g):
            for first, second in zip(convs[0::2], convs[1::2], strict=True):
                v = jax.nn.relu(first(u)) * g
                u = jax.nn.relu(second(v)) * g + u
            return u

        h = self.conv_in(r[None] * gate) * gate
        h = jax.nn.relu(self.full_before[0](h)) * gate
        h = unit(self.full_before[1:-1], h, gate)
        skip = jax.nn.relu(self.full_before[-1](h)) * gate
        h = unit(self.half, _pool(skip, dim), coarse_gate)
        h = _upsample(h) * gate + skip
        h = unit(self.full_after, h, gate)
        return (self.conv_out(h) * gate)[0]


def count_parameters(model: eqx.Module) -> int:
    """The number of scalar parameters (array entries) of a model.

    Also works on the output of `eqx.filter_eval_shape` (shapes only, nothing computed).
    """

    def is_parameter(leaf):
        return eqx.is_array(leaf) or isinstance(leaf, jax.ShapeDtypeStruct)

    leaves = jax.tree.leaves(eqx.filter(model, is_parameter))
    return sum(int(np.prod(leaf.shape)) for leaf in leaves)


def save_dcdm_model(
    path: str | Path, model: DCDMNet, *, metadata: dict[str, Any] | None = None
) -> Path:
    """Write a DCDM model to one file: a JSON header line, then the serialised weights.

    Args:
        path: the destination (conventionally `*.eqx`); written atomically.
        model: the network.
        metadata: optional JSON-ready information stored in the header (how it was trained).

    Returns:
        The destination as a `Path`.
    """
    import io

    from .._core._metrics import atomic_write_bytes, jsonable

    header = {
        "format": _FORMAT,
        "dim": model.dim,
        "variant": model.variant,
        "dtype": model.dtype.name,
        "metadata": jsonable(metadata or {}),
    }
    buffer = io.BytesIO()
    buffer.write((json.dumps(header) + "\n").encode("utf-8"))
    eqx.tree_serialise_leaves(buffer, model)
    return atomic_write_bytes(path, buffer.getvalue())


def read_dcdm_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a file written by `save_dcdm_model` (dim, variant, dtype, metadata)."""
    with open(path, "rb") as handle:
        line = handle.readline()
    try:
        header = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(
            f"'{path}' is not a DCDM model file written by `sciml.solvers.save_dcdm_model`."
        )
    return header


def load_dcdm_model(path: str | Path) -> DCDMNet:
    """Read a DCDM model written by `save_dcdm_model`.

    Args:
        path: the model file.

    Returns:
        The `DCDMNet`, with its weights.

    Raises:
        ValueError: if the file is not a DCDM model file or its weights do not match the
            architecture in its header.
    """
    header = read_dcdm_header(path)
    # Shapes only: no random initialisation to throw away.
    skeleton = eqx.filter_eval_shape(
        DCDMNet,
        int(header["dim"]),
        variant=str(header["variant"]),
        key=jax.random.key(0),
        dtype=jnp.dtype(header["dtype"]),
    )
    with open(path, "rb") as handle:
        handle.readline()
        try:
            return eqx.tree_deserialise_leaves(handle, skeleton)
        except Exception as error:  # a truncated or mismatched file
            raise ValueError(f"cannot read the DCDM weights in '{path}': {error}") from error
