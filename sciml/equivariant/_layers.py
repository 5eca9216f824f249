"""Equivariant layers (equinox): irreps Linear, CG and Gaunt tensor products, Gate, edge embedding.

Arrays carry the irreps on their last axis in e3nn's "mul_ir" layout: for irreps
"8x0e+4x1o" the last axis holds 8 scalars, then 4 vectors of 3 components each (vector by
vector). Every layer acts on the last axis and broadcasts over the leading ones, so a batch of
nodes or edges needs no `vmap`. Weights are created in the `dtype` given at construction and
cast to the input's dtype in `__call__`, so a float64 input gives a float64 output.

References:
    Thomas et al., "Tensor field networks", arXiv 1802.08219 (2018) (CG products of features
    and spherical harmonics of edge vectors). Weiler et al., "3D steerable CNNs", NeurIPS 2018
    (gated nonlinearity, Eq. 13). Geiger & Smidt, "e3nn", arXiv 2207.09453 (2022) (the "uvw"
    fully connected product and its normalisation). Luo, Chen, Krishnapriyan, "Enabling
    efficient equivariant operations in the Fourier basis via Gaunt tensor products",
    ICLR 2024 (per-degree weights). Xie, Daigavane, Kotak, Smidt, "The price of freedom",
    ICML 2025 (Gaunt products on a spherical grid).
"""

# ruff: noqa: E741 (`l` is the standard name of a degree)

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._cg import clebsch_gordan
from ._gaunt import gaunt_tensor_product
from ._irreps import Irreps
from ._sh import spherical_harmonics

__all__ = [
    "FullyConnectedTensorProduct",
    "Gate",
    "GauntTensorProduct",
    "Linear",
    "MessagePassingNetwork",
    "SphericalHarmonicEdgeEmbedding",
]

# An irreps entry: (multiplicity, degree l, parity p = +1 for "e" / -1 for "o").
Entry = tuple[int, int, int]


def _entries(irreps: Any) -> tuple[Entry, ...]:
    """Irreps ("8x0e+4x1o", an `Irreps`, or `(mul, l, p)` triples) as `(mul, l, p)` triples."""
    if isinstance(irreps, tuple | list) and all(
        isinstance(e, tuple) and len(e) == 3 for e in irreps
    ):
        return tuple((int(m), int(l), int(p)) for m, l, p in irreps)
    return tuple((mul, ir.l, ir.p) for mul, ir in Irreps(irreps))


def _text(entries: Sequence[Entry]) -> str:
    return "+".join(f"{m}x{l}{'e' if p == 1 else 'o'}" for m, l, p in entries)


def _dim(entries: Sequence[Entry]) -> int:
    return sum(m * (2 * l + 1) for m, l, _ in entries)


def _offsets(entries: Sequence[Entry]) -> list[int]:
    offsets, start = [], 0
    for m, l, _ in entries:
        offsets.append(start)
        start += m * (2 * l + 1)
    return offsets


def _blocks(x: Array, entries: Sequence[Entry]) -> list[Array]:
    """Split the last axis into per-entry blocks of shape (..., mul, 2l+1)."""
    out = []
    for (m, l, _), start in zip(entries, _offsets(entries), strict=True):
        block = x[..., start : start + m * (2 * l + 1)]
        out.append(block.reshape(*x.shape[:-1], m, 2 * l + 1))
    return out


def _join(blocks: Sequence[Array], batch: tuple[int, ...], dtype) -> Array:
    flat = [b.reshape(*batch, -1) for b in blocks]
    if not flat:
        return jnp.zeros((*batch, 0), dtype)
    return jnp.concatenate(flat, axis=-1)


def _check_last_axis(x: Array, entries: Sequence[Entry], name: str) -> None:
    if x.ndim < 1 or x.shape[-1] != _dim(entries):
        raise ValueError(
            f"{name}: the last axis must hold the irreps {_text(entries) or '(none)'} "
            f"(dimension {_dim(entries)}), got shape {x.shape}; reshape the input or build the "
            f"layer with matching irreps."
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name}: expected a floating-point array, got dtype {x.dtype}.")


def _natural(l: int) -> int:
    return 1 if l % 2 == 0 else -1


def _s2_entries(mul: int, lmax: int) -> tuple[Entry, ...]:
    """`mul` copies of each degree 0..lmax with natural parity: "mx0e+mx1o+mx2e+..."."""
    return tuple((mul, l, _natural(l)) for l in range(lmax + 1))


def _normal(key: PRNGKeyArray, shape: tuple[int, ...], dtype) -> Array:
    return jax.random.normal(key, shape, dtype)


# --------------------------------------------------------------------------------------------
# Linear


class Linear(eqx.Module):
    """Equivariant linear map between irreps: channels of the same irrep are mixed.

    Each output entry `mul_out x (l, p)` is `W @ x_in / sqrt(M)`, where `x_in` stacks the `M`
    input channels of the same irrep `(l, p)` and `W` is a learned `mul_out × M` matrix; the
    same `W` acts on every component m, which is what makes the map commute with the Wigner D
    matrices. Outputs whose irrep is absent from the input are zero. Scalars (`0e`) may get a
    learned bias.

    Attributes:
        irreps_in: the input irreps, as text.
        irreps_out: the output irreps, as text.
        weights: one `(M, mul_out)` matrix per output entry that has inputs.
        biases: one `(mul_out,)` vector per `0e` output entry (empty if `use_bias=False`).
    """

    irreps_in: str = eqx.field(static=True)
    irreps_out: str = eqx.field(static=True)
    weights: tuple[Array, ...]
    biases: tuple[Array, ...]
    _sources: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    _use_bias: bool = eqx.field(static=True)

    def __init__(
        self,
        irreps_in: Any,
        irreps_out: Any,
        *,
        use_bias: bool = False,
        dtype: Any = jnp.float32,
        key: PRNGKeyArray,
    ):
        """Build the layer.

        Args:
            irreps_in: input irreps, e.g. "8x0e+4x1o" (or an `Irreps`).
            irreps_out: output irreps.
            use_bias: add a learned bias to every `0e` output channel.
            dtype: dtype of the weights (cast to the input's dtype when called).
            key: PRNG key for the weights (standard normal; the `1/sqrt(M)` is applied in
                `__call__`).
        """
        entries_in, entries_out = _entries(irreps_in), _entries(irreps_out)
        self.irreps_in, self.irreps_out = _text(entries_in), _text(entries_out)
        sources, weights, biases = [], [], []
        keys = jax.random.split(key, 2 * max(len(entries_out), 1))
        for j, (mul_out, l, p) in enumerate(entries_out):
            src = tuple(i for i, (_, li, pi) in enumerate(entries_in) if (li, pi) == (l, p))
            sources.append(src)
            fan_in = sum(entries_in[i][0] for i in src)
            if fan_in:
                weights.append(_normal(keys[2 * j], (fan_in, mul_out), dtype))
            if use_bias and (l, p) == (0, 1):
                biases.append(jnp.zeros((mul_out,), dtype))
        self._sources = tuple(sources)
        self.weights, self.biases = tuple(weights), tuple(biases)
        self._use_bias = use_bias

    def __call__(self, x: Float[Array, "... irreps_in"]) -> Float[Array, "... irreps_out"]:
        """Apply the map to the last axis of `x` (any leading axes)."""
        entries_in, entries_out = _entries(self.irreps_in), _entries(self.irreps_out)
        _check_last_axis(x, entries_in, "Linear")
        batch = x.shape[:-1]
        blocks = _blocks(x, entries_in)
        out, w_index, b_index = [], 0, 0
        for (mul_out, l, p), src in zip(entries_out, self._sources, strict=True):
            if src:
                stacked = jnp.concatenate([blocks[i] for i in src], axis=-2)
                w = self.weights[w_index].astype(x.dtype)
                w_index += 1
                y = jnp.einsum("...mi,mn->...ni", stacked, w) / math.sqrt(stacked.shape[-2])
            else:
                y = jnp.zeros((*batch, mul_out, 2 * l + 1), x.dtype)
            if self._use_bias and (l, p) == (0, 1):
                bias = self.biases[b_index].astype(x.dtype)
                y = y + bias.reshape((1,) * len(batch) + (mul_out, 1))
                b_index += 1
            out.append(y)
        return _join(out, batch, x.dtype)


# --------------------------------------------------------------------------------------------
# Fully connected Clebsch–Gordan tensor product


class FullyConnectedTensorProduct(eqx.Module):
    """Weighted Clebsch–Gordan tensor product with all allowed paths ("uvw" weights).

    For every input pair of entries `(mul1 x ir1, mul2 x ir2)` and every output entry
    `mul_out x ir_out` with `|l1 − l2| ≤ l_out ≤ l1 + l2` and `p_out = p1 p2`, the path adds

        out[w, k] += sum_{u, v} W[u, v, w] · sum_{i, j} x1[u, i] x2[v, j] C[i, j, k] · α

    with `C` the unit-norm Clebsch–Gordan tensor of `clebsch_gordan(l1, l2, l_out)` times
    `sqrt(2 l_out + 1)` (e3nn's "component" normalisation) and `α = 1/sqrt(fan_in)`, `fan_in`
    the number of `(u, v)` pairs summed into that output entry (e3nn's "element"
    normalisation). Odd-sum paths (such as the cross product 1o ⊗ 1o → 1e) are included: this is
    the expressive product that the Gaunt product gives up.

    The weights may be learned parameters of the layer, or given per call (e.g. per edge,
    computed from the edge length by a radial network) as a flat vector of `weight_numel`.

    Attributes:
        irreps_in1, irreps_in2, irreps_out: the irreps, as text.
        weights: one `(mul1, mul2, mul_out)` array per path (None with `internal_weights=False`).
        weight_numel: the number of weights (the length of `weights=` passed to `__call__`).
    """

    irreps_in1: str = eqx.field(static=True)
    irreps_in2: str = eqx.field(static=True)
    irreps_out: str = eqx.field(static=True)
    weights: tuple[Array, ...] | None
    weight_numel: int = eqx.field(static=True)
    # One (i1, i2, i_out, alpha) per path; the CG tensors are recomputed (cached) in __call__.
    _paths: tuple[tuple[int, int, int, float], ...] = eqx.field(static=True)

    def __init__(
        self,
        irreps_in1: Any,
        irreps_in2: Any,
        irreps_out: Any,
        *,
        internal_weights: bool = True,
        dtype: Any = jnp.float32,
        key: PRNGKeyArray | None = None,
    ):
        """Build the layer.

        Args:
            irreps_in1: irreps of the first input.
            irreps_in2: irreps of the second input.
            irreps_out: irreps of the output; entries that no path reaches stay zero.
            internal_weights: learn the weights as parameters (True) or take them as the
                `weights=` argument of every call (False).
            dtype: dtype of the weights.
            key: PRNG key (required when `internal_weights=True`).

        Raises:
            ValueError: if `key` is missing while the weights are internal, or no path
                connects the inputs to any output irrep.
        """
        e1, e2, eo = _entries(irreps_in1), _entries(irreps_in2), _entries(irreps_out)
        self.irreps_in1, self.irreps_in2, self.irreps_out = _text(e1), _text(e2), _text(eo)
        raw = []
        for k, (_, lo, po) in enumerate(eo):
            for i, (_, l1, p1) in enumerate(e1):
                for j, (_, l2, p2) in enumerate(e2):
                    if abs(l1 - l2) <= lo <= l1 + l2 and p1 * p2 == po:
                        raw.append((i, j, k))
        if not raw:
            raise ValueError(
                f"no path of {self.irreps_in1} ⊗ {self.irreps_in2} reaches any of "
                f"{self.irreps_out} (|l1 − l2| ≤ l ≤ l1 + l2 and p1·p2 = p): the output would "
                f"always be zero."
            )
        fan_in = {k: 0 for k in range(len(eo))}
        for i, j, k in raw:
            fan_in[k] += e1[i][0] * e2[j][0]
        self._paths = tuple((i, j, k, 1.0 / math.sqrt(fan_in[k])) for i, j, k in raw)
        shapes = [(e1[i][0], e2[j][0], eo[k][0]) for i, j, k in raw]
        self.weight_numel = sum(math.prod(s) for s in shapes)
        if internal_weights:
            if key is None:
                raise ValueError(
                    "FullyConnectedTensorProduct needs `key=` to initialise its weights (or "
                    "pass internal_weights=False and give weights per call)."
                )
            keys = jax.random.split(key, max(len(shapes), 1))
            self.weights = tuple(_normal(k, s, dtype) for k, s in zip(keys, shapes, strict=False))
        else:
            self.weights = None

    @property
    def num_paths(self) -> int:
        """The number of (input entry, input entry, output entry) paths."""
        return len(self._paths)

    def __call__(
        self,
        x1: Float[Array, "... irreps_in1"],
        x2: Float[Array, "... irreps_in2"],
        weights: Float[Array, "... weight_numel"] | None = None,
    ) -> Float[Array, "... irreps_out"]:
        """The product of `x1` and `x2` (leading axes broadcast against each other).

        Args:
            x1: the first input.
            x2: the second input.
            weights: flat path weights with leading axes broadcasting against the inputs'
                (required if the layer was built with `internal_weights=False`, refused
                otherwise).

        Returns:
            The output irreps array.

        Raises:
            ValueError: for inputs that do not match the irreps, or a wrong `weights`.
        """
        e1, e2, eo = _entries(self.irreps_in1), _entries(self.irreps_in2), _entries(self.irreps_out)
        _check_last_axis(x1, e1, "FullyConnectedTensorProduct (x1)")
        _check_last_axis(x2, e2, "FullyConnectedTensorProduct (x2)")
        if x1.dtype != x2.dtype:
            raise ValueError(
                f"FullyConnectedTensorProduct: x1 and x2 must share a dtype, got {x1.dtype} and "
                f"{x2.dtype}; cast one of them."
            )
        dtype = x1.dtype
        batch = jnp.broadcast_shapes(x1.shape[:-1], x2.shape[:-1])
        if weights is None:
            if self.weights is None:
                raise ValueError(
                    "this FullyConnectedTensorProduct has external weights: pass `weights=` "
                    f"with last axis {self.weight_numel}."
                )
            path_weights = [w.astype(dtype) for w in self.weights]
        else:
            if self.weights is not None:
                raise ValueError(
                    "this FullyConnectedTensorProduct learns its own weights; build it with "
                    "internal_weights=False to pass `weights=` per call."
                )
            if weights.shape[-1] != self.weight_numel:
                raise ValueError(
                    f"`weights` must have last axis {self.weight_numel}, got {weights.shape}."
                )
            batch = jnp.broadcast_shapes(batch, weights.shape[:-1])
            path_weights, start = [], 0
            for i, j, k, _ in self._paths:
                shape = (e1[i][0], e2[j][0], eo[k][0])
                size = math.prod(shape)
                flat = weights[..., start : start + size].astype(dtype)
                path_weights.append(flat.reshape(*weights.shape[:-1], *shape))
                start += size
        b1, b2 = _blocks(x1, e1), _blocks(x2, e2)
        out: list[Array | None] = [None] * len(eo)
        for (i, j, k, alpha), w in zip(self._paths, path_weights, strict=True):
            l1, l2, lo = e1[i][1], e2[j][1], eo[k][1]
            cg = jnp.asarray(
                np.asarray(clebsch_gordan(l1, l2, lo)) * (alpha * math.sqrt(2 * lo + 1)), dtype
            )
            y = jnp.einsum("...ui,...vj,ijk,...uvw->...wk", b1[i], b2[j], cg, w)
            out[k] = y if out[k] is None else out[k] + y
        blocks = [
            jnp.broadcast_to(y, (*batch, *y.shape[-2:]))
            if y is not None
            else jnp.zeros((*batch, m, 2 * l + 1), dtype)
            for y, (m, l, _) in zip(out, eo, strict=True)
        ]
        return _join(blocks, batch, dtype)


# --------------------------------------------------------------------------------------------
# Gaunt tensor product with per-degree weights


class GauntTensorProduct(eqx.Module):
    """Gaunt tensor product layer: per-degree weights around a channel-wise Gaunt product.

    Both inputs are mapped by an irreps `Linear` to `channels` copies of the natural-parity
    spherical irreps (0e+1o+2e+...), i.e. one learned weight per (degree, input channel,
    channel): the per-degree weights of Luo et al. (ICLR 2024). Each channel pair is then
    multiplied as functions on the sphere by `gaunt_tensor_product` (Gauss–Legendre grid or
    2D Fourier route, exact), and a third `Linear` maps the `channels` output copies to
    `irreps_out`. Per channel the path weights are therefore rank one, `w_l1 w_l2 w_l3`
    times the Gaunt coefficient, and only paths with `l1 + l2 + l3` even exist: the product is
    symmetric and cannot form, e.g., the cross product or a pseudo-scalar. Use
    `FullyConnectedTensorProduct` when those are needed.

    Attributes:
        irreps_in1, irreps_in2, irreps_out: the irreps, as text (natural parity only).
        channels: number of channel-wise products.
        lmax1, lmax2, lmax_out: degrees of the sphere functions multiplied and kept.
        method: "grid" or "fourier".
        linear1, linear2, linear_out: the per-degree weights.
    """

    irreps_in1: str = eqx.field(static=True)
    irreps_in2: str = eqx.field(static=True)
    irreps_out: str = eqx.field(static=True)
    channels: int = eqx.field(static=True)
    lmax1: int = eqx.field(static=True)
    lmax2: int = eqx.field(static=True)
    lmax_out: int = eqx.field(static=True)
    method: str = eqx.field(static=True)
    linear1: Linear
    linear2: Linear
    linear_out: Linear

    def __init__(
        self,
        irreps_in1: Any,
        irreps_in2: Any,
        irreps_out: Any,
        *,
        channels: int,
        method: Literal["grid", "fourier"] = "grid",
        dtype: Any = jnp.float32,
        key: PRNGKeyArray,
    ):
        """Build the layer.

        Args:
            irreps_in1: irreps of the first input; every entry must have natural parity
                (0e, 1o, 2e, 3o, ...).
            irreps_in2: irreps of the second input, natural parity.
            irreps_out: output irreps, natural parity; degrees above `lmax1 + lmax2` are zero.
            channels: number of channel-wise Gaunt products (a static int ≥ 1).
            method: "grid" (spherical grid, Xie et al.) or "fourier" (2D Fourier, Luo et al.).
            dtype: dtype of the weights.
            key: PRNG key.

        Raises:
            ValueError: for non-natural parity irreps, `channels < 1` or an unknown method.
        """
        e1, e2, eo = _entries(irreps_in1), _entries(irreps_in2), _entries(irreps_out)
        for name, entries in (("irreps_in1", e1), ("irreps_in2", e2), ("irreps_out", eo)):
            odd = [e for e in entries if e[2] != _natural(e[1])]
            if odd:
                raise ValueError(
                    f"GauntTensorProduct: {name} has irreps {_text(odd)} whose parity is not "
                    f"(-1)^l; the Gaunt product of natural-parity signals only makes 0e, 1o, 2e, "
                    f"..., so remove them or use FullyConnectedTensorProduct."
                )
            if not entries:
                raise ValueError(f"GauntTensorProduct: {name} is empty.")
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"`channels` must be an int >= 1, got {channels!r}.")
        if method not in ("grid", "fourier"):
            raise ValueError(f"`method` must be 'grid' or 'fourier', got {method!r}.")
        self.irreps_in1, self.irreps_in2, self.irreps_out = _text(e1), _text(e2), _text(eo)
        self.channels, self.method = channels, method
        self.lmax1 = max(l for _, l, _ in e1)
        self.lmax2 = max(l for _, l, _ in e2)
        self.lmax_out = min(self.lmax1 + self.lmax2, max(l for _, l, _ in eo))
        k1, k2, k3 = jax.random.split(key, 3)
        self.linear1 = Linear(e1, _s2_entries(channels, self.lmax1), dtype=dtype, key=k1)
        self.linear2 = Linear(e2, _s2_entries(channels, self.lmax2), dtype=dtype, key=k2)
        self.linear_out = Linear(_s2_entries(channels, self.lmax_out), eo, dtype=dtype, key=k3)

    def __call__(
        self, x1: Float[Array, "... irreps_in1"], x2: Float[Array, "... irreps_in2"]
    ) -> Float[Array, "... irreps_out"]:
        """The product of `x1` and `x2` (leading axes broadcast against each other)."""
        if x1.dtype != x2.dtype:
            raise ValueError(
                f"GauntTensorProduct: x1 and x2 must share a dtype, got {x1.dtype} and "
                f"{x2.dtype}; cast one of them."
            )
        batch = jnp.broadcast_shapes(x1.shape[:-1], x2.shape[:-1])
        f1 = _to_channels(self.linear1(x1), self.channels, self.lmax1)
        f2 = _to_channels(self.linear2(x2), self.channels, self.lmax2)
        f1 = jnp.broadcast_to(f1, (*batch, *f1.shape[-2:]))
        f2 = jnp.broadcast_to(f2, (*batch, *f2.shape[-2:]))
        product = gaunt_tensor_product(
            f1, f2, lmax_x=self.lmax1, lmax_y=self.lmax2, lmax_out=self.lmax_out, method=self.method
        )
        return self.linear_out(_from_channels(product, self.lmax_out))


def _to_channels(x: Array, channels: int, lmax: int) -> Array:
    """mul_ir "c x 0e + c x 1o + ..." → (..., c, (lmax+1)²) (one sphere function per channel)."""
    blocks = _blocks(x, _s2_entries(channels, lmax))
    return jnp.concatenate(blocks, axis=-1)


def _from_channels(x: Array, lmax: int) -> Array:
    """(..., c, (lmax+1)²) → mul_ir "c x 0e + c x 1o + ..."."""
    blocks = [x[..., l * l : (l + 1) * (l + 1)] for l in range(lmax + 1)]
    return _join(blocks, x.shape[:-2], x.dtype)


# --------------------------------------------------------------------------------------------
# Gate


def _silu(x: Array) -> Array:
    return jax.nn.silu(x)


class Gate(eqx.Module):
    """Gated nonlinearity: scalars are activated, higher irreps are scaled by gated scalars.

    The input holds, in this order, the scalars `irreps_scalars`, one `0e` gate per gated
    channel, and the gated irreps `irreps_gated`; the output holds the activated scalars and the
    gated irreps (Weiler et al. 2018, Eq. 13). Even scalars (`0e`) go through `act`, odd scalars
    (`0o`) through the odd function `act_odd` (so their sign flips with parity), gates through
    `act_gate`. Scaling a whole irrep by an invariant is equivariant.

    Attributes:
        irreps_scalars: the scalar irreps (0e and 0o only), as text.
        irreps_gated: the gated irreps, as text.
        irreps_in: the input irreps (scalars + gates + gated), as text.
        irreps_out: the output irreps (scalars + gated), as text.
    """

    irreps_scalars: str = eqx.field(static=True)
    irreps_gated: str = eqx.field(static=True)
    act: Callable[[Array], Array] = eqx.field(static=True)
    act_odd: Callable[[Array], Array] = eqx.field(static=True)
    act_gate: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        irreps_scalars: Any,
        irreps_gated: Any,
        *,
        act: Callable[[Array], Array] = _silu,
        act_odd: Callable[[Array], Array] = jnp.tanh,
        act_gate: Callable[[Array], Array] = jax.nn.sigmoid,
    ):
        """Build the gate.

        Args:
            irreps_scalars: scalar irreps to activate, e.g. "16x0e+4x0o".
            irreps_gated: irreps to gate, e.g. "8x1o+8x2e" (any degrees).
            act: activation of the even scalars.
            act_odd: activation of the odd scalars; must be an odd function (tanh, ...).
            act_gate: activation of the gates.

        Raises:
            ValueError: if `irreps_scalars` holds a non-scalar irrep.
        """
        scalars = _entries(irreps_scalars)
        if any(l != 0 for _, l, _ in scalars):
            raise ValueError(
                f"Gate: irreps_scalars must be scalars (0e/0o), got {_text(scalars)}; move "
                f"higher irreps to irreps_gated."
            )
        self.irreps_scalars, self.irreps_gated = _text(scalars), _text(_entries(irreps_gated))
        self.act, self.act_odd, self.act_gate = act, act_odd, act_gate

    @property
    def num_gates(self) -> int:
        """The number of gates (one per gated channel)."""
        return sum(m for m, _, _ in _entries(self.irreps_gated))

    @property
    def irreps_in(self) -> str:
        """The irreps the gate expects: scalars, then the gates (0e), then the gated irreps."""
        gates = ((self.num_gates, 0, 1),) if self.num_gates else ()
        return _text(_entries(self.irreps_scalars) + gates + _entries(self.irreps_gated))

    @property
    def irreps_out(self) -> str:
        """The irreps the gate returns: scalars, then the gated irreps."""
        return _text(_entries(self.irreps_scalars) + _entries(self.irreps_gated))

    def __call__(self, x: Float[Array, "... irreps_in"]) -> Float[Array, "... irreps_out"]:
        """Apply the gate to the last axis of `x`."""
        scalars, gated = _entries(self.irreps_scalars), _entries(self.irreps_gated)
        _check_last_axis(x, _entries(self.irreps_in), "Gate")
        batch = x.shape[:-1]
        out = []
        start = 0
        for m, _, p in scalars:
            s = x[..., start : start + m]
            out.append(self.act(s) if p == 1 else self.act_odd(s))
            start += m
        gates = self.act_gate(x[..., start : start + self.num_gates])
        start += self.num_gates
        g = 0
        for block, (m, _, _) in zip(_blocks(x[..., start:], gated), gated, strict=True):
            out.append(block * gates[..., g : g + m, None])
            g += m
        return _join(out, batch, x.dtype)


# --------------------------------------------------------------------------------------------
# Edge embedding


class SphericalHarmonicEdgeEmbedding(eqx.Module):
    """Spherical harmonics of edge directions times a radial basis of edge lengths.

    The radial basis is the Bessel basis `sqrt(2/r_c) sin(n π r / r_c) / r`, n = 1..num_basis,
    times the smooth polynomial envelope of Gasteiger et al. (DimeNet, ICLR 2020, Eq. 8, p = 6),
    which goes to zero with two vanishing derivatives at the cutoff `r_c`. The spherical
    harmonics are those of the unit direction, degrees 0..lmax (irreps 0e+1o+2e+...).

    Calling the embedding returns `num_basis x (0e+1o+...+lmax)`: every radial function times
    every harmonic. `spherical_harmonics` and `radial` give the two factors apart (a message
    passing network uses the harmonics in its tensor product and the radial part for weights).

    Attributes:
        lmax: highest degree of the harmonics.
        num_basis: number of radial basis functions.
        cutoff: the radial cutoff r_c.
        normalization: normalisation of the harmonics ("component", "norm" or "integral").
    """

    lmax: int = eqx.field(static=True)
    num_basis: int = eqx.field(static=True)
    cutoff: float = eqx.field(static=True)
    normalization: str = eqx.field(static=True)

    def __init__(
        self,
        lmax: int,
        *,
        num_basis: int = 8,
        cutoff: float = 1.0,
        normalization: Literal["component", "norm", "integral"] = "component",
    ):
        """Build the embedding.

        Args:
            lmax: highest degree of the harmonics (static int ≥ 0).
            num_basis: number of radial basis functions (static int ≥ 1).
            cutoff: radial cutoff (> 0); edges longer than this embed to zero.
            normalization: of the harmonics, as in `spherical_harmonics`.

        Raises:
            ValueError: for a negative `lmax`, `num_basis < 1` or `cutoff <= 0`.
        """
        if not isinstance(lmax, int) or lmax < 0:
            raise ValueError(f"`lmax` must be an int >= 0, got {lmax!r}.")
        if not isinstance(num_basis, int) or num_basis < 1:
            raise ValueError(f"`num_basis` must be an int >= 1, got {num_basis!r}.")
        if not cutoff > 0:
            raise ValueError(f"`cutoff` must be > 0, got {cutoff!r}.")
        self.lmax, self.num_basis, self.cutoff = lmax, num_basis, float(cutoff)
        self.normalization = normalization

    @property
    def irreps_sh(self) -> str:
        """Irreps of the harmonics: 1x0e+1x1o+1x2e+..."""
        return _text(_s2_entries(1, self.lmax))

    @property
    def irreps_out(self) -> str:
        """Irreps of the full embedding: num_basis copies of the harmonics."""
        return _text(_s2_entries(self.num_basis, self.lmax))

    def spherical_harmonics(self, vectors: Float[Array, "... 3"]) -> Float[Array, "... sh"]:
        """Harmonics of the directions of `vectors`; a zero vector gives zero (also its grad)."""
        _check_vectors(vectors)
        _, nonzero = _safe_length(vectors)
        nonzero = nonzero[..., None]
        # Double `where`: the unused branch must stay finite for reverse-mode gradients.
        safe = jnp.where(nonzero, vectors, jnp.ones_like(vectors))
        sh = spherical_harmonics(self.lmax, safe, normalization=self.normalization)
        sh = sh.astype(vectors.dtype)  # keep the input's dtype whatever the core returns
        return jnp.where(nonzero, sh, jnp.zeros_like(sh))

    def envelope(self, length: Float[Array, "..."]) -> Float[Array, "..."]:
        """The smooth cutoff envelope u(r/r_c) (1 at r = 0, 0 beyond r_c)."""
        p = 6.0
        d = length / jnp.asarray(self.cutoff, length.dtype)
        u = (
            1
            - (p + 1) * (p + 2) / 2 * d**p
            + p * (p + 2) * d ** (p + 1)
            - p * (p + 1) / 2 * d ** (p + 2)
        )
        return jnp.where(d < 1, u, jnp.zeros_like(u))

    def radial(self, vectors: Float[Array, "... 3"]) -> Float[Array, "... num_basis"]:
        """Bessel basis of the lengths of `vectors`, times the envelope."""
        _check_vectors(vectors)
        length, nonzero = _safe_length(vectors)
        dtype = vectors.dtype
        cutoff = jnp.asarray(self.cutoff, dtype)
        n = jnp.arange(1, self.num_basis + 1, dtype=dtype).reshape((1,) * length.ndim + (-1,))
        safe = jnp.where(nonzero, length, jnp.ones_like(length))[..., None]
        bessel = jnp.sqrt(2 / cutoff) * jnp.sin(n * jnp.pi * safe / cutoff) / safe
        # The r → 0 limit of sin(nπr/r_c)/r is nπ/r_c.
        limit = jnp.sqrt(2 / cutoff) * n * jnp.pi / cutoff
        bessel = jnp.where(nonzero[..., None], bessel, jnp.broadcast_to(limit, bessel.shape))
        return bessel * self.envelope(length)[..., None]

    def __call__(self, vectors: Float[Array, "... 3"]) -> Float[Array, "... irreps_out"]:
        """Every radial basis function times every harmonic, in mul_ir layout."""
        sh = self.spherical_harmonics(vectors)
        radial = self.radial(vectors)
        blocks = [
            radial[..., :, None] * sh[..., None, l * l : (l + 1) * (l + 1)]
            for l in range(self.lmax + 1)
        ]
        return _join(blocks, vectors.shape[:-1], vectors.dtype)


def _safe_length(vectors: Array) -> tuple[Array, Array]:
    """|v| and |v| > 0, with finite gradients at v = 0 (where the length's gradient is 0)."""
    squared = jnp.sum(vectors**2, axis=-1)
    nonzero = squared > 0
    safe = jnp.where(nonzero, squared, jnp.ones_like(squared))
    return jnp.where(nonzero, jnp.sqrt(safe), jnp.zeros_like(squared)), nonzero


def _check_vectors(vectors: Array) -> None:
    if vectors.ndim < 1 or vectors.shape[-1] != 3:
        raise ValueError(f"expected vectors with a last axis of 3, got shape {vectors.shape}.")
    if not jnp.issubdtype(vectors.dtype, jnp.floating):
        raise ValueError(f"expected floating-point vectors, got dtype {vectors.dtype}.")


# --------------------------------------------------------------------------------------------
# Message passing network


def _hidden_irreps(
    mul: int, lmax: int, product: str
) -> tuple[tuple[Entry, ...], tuple[Entry, ...]]:
    """(scalars, gated) of a hidden layer: all parities for CG, natural parity for Gaunt."""
    if product == "cg":
        scalars = ((mul, 0, 1), (mul, 0, -1))
        gated = tuple((mul, l, p) for l in range(1, lmax + 1) for p in (_natural(l), -_natural(l)))
    else:
        scalars = ((mul, 0, 1),)
        gated = tuple((mul, l, _natural(l)) for l in range(1, lmax + 1))
    return scalars, gated


class _RadialMLP(eqx.Module):
    """A small MLP of the radial basis, one hidden layer, no bias (so it vanishes with it)."""

    w1: Array
    w2: Array

    def __init__(self, num_basis: int, hidden: int, out: int, *, dtype, key):
        k1, k2 = jax.random.split(key)
        self.w1 = _normal(k1, (num_basis, hidden), dtype) / math.sqrt(num_basis)
        self.w2 = _normal(k2, (hidden, out), dtype) / math.sqrt(hidden)

    def __call__(self, radial: Array) -> Array:
        h = jax.nn.silu(radial @ self.w1.astype(radial.dtype))
        return h @ self.w2.astype(radial.dtype)


class _Interaction(eqx.Module):
    """One message-passing step: product of neighbour features and edge harmonics, gate."""

    product: eqx.Module
    radial: _RadialMLP
    self_linear: Linear
    gate: Gate
    _muls: tuple[tuple[int, int], ...] = eqx.field(static=True)  # (mul, 2l+1) of the messages

    def __init__(
        self,
        irreps_in,
        irreps_sh,
        scalars,
        gated,
        *,
        product,
        channels,
        method,
        num_basis,
        radial_hidden,
        dtype,
        key,
    ):
        gate = Gate(scalars, gated)
        k1, k2, k3 = jax.random.split(key, 3)
        if product == "cg":
            self.product = FullyConnectedTensorProduct(
                irreps_in, irreps_sh, gate.irreps_in, dtype=dtype, key=k1
            )
        else:
            self.product = GauntTensorProduct(
                irreps_in,
                irreps_sh,
                gate.irreps_in,
                channels=channels,
                method=method,
                dtype=dtype,
                key=k1,
            )
        entries = _entries(gate.irreps_in)
        self._muls = tuple((m, 2 * l + 1) for m, l, _ in entries)
        self.radial = _RadialMLP(
            num_basis, radial_hidden, sum(m for m, _ in self._muls), dtype=dtype, key=k2
        )
        self.self_linear = Linear(irreps_in, gate.irreps_in, dtype=dtype, key=k3)
        self.gate = gate

    def __call__(self, h, sh, radial, edge_mask, avg_neighbours):
        # h: (N, dim_in); sh: (N, N, dim_sh); radial: (N, N, num_basis); edge_mask: (N, N).
        messages = self.product(h[None, :, :], sh)  # message from node j to node i
        scale = self.radial(radial)  # (N, N, sum of multiplicities): one factor per channel
        scale = jnp.concatenate(
            [
                jnp.repeat(scale[..., start : start + m], d, axis=-1)
                for (m, d), start in zip(
                    self._muls, np.cumsum([0, *[m for m, _ in self._muls]]), strict=False
                )
            ],
            axis=-1,
        )
        messages = messages * scale * edge_mask[..., None].astype(h.dtype)
        aggregated = jnp.sum(messages, axis=1) / jnp.sqrt(jnp.asarray(avg_neighbours, h.dtype))
        return self.gate(self.self_linear(h) + aggregated)


class MessagePassingNetwork(eqx.Module):
    """A small E(3)-equivariant message-passing network on a point cloud.

    The graph is the radius graph (`|x_i − x_j| < cutoff`, i ≠ j) of the positions, kept dense
    (all N² pairs with a mask), which suits small point clouds and keeps shapes static. Each of
    `num_layers` interactions sends from node j to node i the product of j's features with the
    spherical harmonics of `x_j − x_i`, scales every channel of the message by a radial MLP of
    the Bessel basis of the edge length (which goes smoothly to zero at the cutoff), sums the
    messages, adds a linear self-connection and applies a `Gate`. A `Linear` readout maps the
    last features to `irreps_out`, summed over nodes (or per node with `reduce=None`).

    `product="cg"` uses `FullyConnectedTensorProduct` and hidden features of both parities
    ("mul x 0e + mul x 0o + mul x 1o + mul x 1e + ..."); `product="gaunt"` uses
    `GauntTensorProduct` and natural-parity hidden features only (its product cannot leave
    them). The output is invariant to translations and equivariant to rotations and
    reflections of the positions, with the parity of the output irreps.

    Attributes:
        irreps_node_in: irreps of the input node features.
        irreps_out: irreps of the output.
        product: "cg" or "gaunt".
        embedding: the edge embedding.
        interactions: the message-passing steps.
        readout: the final `Linear`.
    """

    irreps_node_in: str = eqx.field(static=True)
    irreps_out: str = eqx.field(static=True)
    product: str = eqx.field(static=True)
    avg_neighbours: float = eqx.field(static=True)
    reduce: str | None = eqx.field(static=True)
    embedding: SphericalHarmonicEdgeEmbedding
    interactions: tuple[_Interaction, ...]
    readout: Linear

    def __init__(
        self,
        irreps_node_in: Any,
        irreps_out: Any,
        *,
        product: Literal["cg", "gaunt"] = "cg",
        mul: int = 8,
        lmax: int = 2,
        sh_lmax: int = 2,
        num_layers: int = 3,
        cutoff: float = 1.1,
        num_basis: int = 8,
        radial_hidden: int = 16,
        avg_neighbours: float = 1.0,
        channels: int | None = None,
        method: Literal["grid", "fourier"] = "grid",
        reduce: Literal["sum", "mean"] | None = "sum",
        dtype: Any = jnp.float32,
        key: PRNGKeyArray,
    ):
        """Build the network.

        Args:
            irreps_node_in: irreps of the input node features (e.g. "1x0e" for none).
            irreps_out: irreps of the output (e.g. "0o+7x0e").
            product: "cg" (Clebsch–Gordan, all paths) or "gaunt" (Gaunt, even paths only).
            mul: multiplicity of every hidden irrep.
            lmax: highest degree of the hidden features.
            sh_lmax: highest degree of the edge harmonics.
            num_layers: number of interactions.
            cutoff: radius of the graph.
            num_basis: radial basis functions.
            radial_hidden: width of the radial MLP.
            avg_neighbours: messages are summed and divided by sqrt(avg_neighbours).
            channels: channel-wise products of the Gaunt layers (default `mul`).
            method: "grid" or "fourier" for the Gaunt layers.
            reduce: "sum" or "mean" over nodes, or None for per-node outputs.
            dtype: dtype of the weights.
            key: PRNG key.

        Raises:
            ValueError: for an unknown `product` or `reduce`, or natural-parity violations of
                the Gaunt network's input irreps.
        """
        if product not in ("cg", "gaunt"):
            raise ValueError(f"`product` must be 'cg' or 'gaunt', got {product!r}.")
        if reduce not in ("sum", "mean", None):
            raise ValueError(f"`reduce` must be 'sum', 'mean' or None, got {reduce!r}.")
        for name, value in (("mul", mul), ("lmax", lmax), ("num_layers", num_layers)):
            if not isinstance(value, int) or value < (0 if name == "lmax" else 1):
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        self.irreps_node_in = _text(_entries(irreps_node_in))
        self.irreps_out = _text(_entries(irreps_out))
        self.product, self.reduce = product, reduce
        self.avg_neighbours = float(avg_neighbours)
        self.embedding = SphericalHarmonicEdgeEmbedding(sh_lmax, num_basis=num_basis, cutoff=cutoff)
        keys = jax.random.split(key, num_layers + 1)
        scalars, gated = _hidden_irreps(mul, lmax, product)
        interactions, irreps = [], self.irreps_node_in
        for k in keys[:-1]:
            layer = _Interaction(
                irreps,
                self.embedding.irreps_sh,
                scalars,
                gated,
                product=product,
                channels=channels or mul,
                method=method,
                num_basis=num_basis,
                radial_hidden=radial_hidden,
                dtype=dtype,
                key=k,
            )
            interactions.append(layer)
            irreps = layer.gate.irreps_out
        self.interactions = tuple(interactions)
        self.readout = Linear(irreps, self.irreps_out, dtype=dtype, key=keys[-1])

    def __call__(
        self,
        positions: Float[Array, "N 3"],
        node_features: Float[Array, "N irreps_node_in"],
        *,
        node_mask: Array | None = None,
    ) -> Float[Array, "... irreps_out"]:
        """Run the network on one point cloud (batch with `jax.vmap`).

        Args:
            positions: node positions, shape (N, 3).
            node_features: input features, shape (N, dim of irreps_node_in), same dtype.
            node_mask: optional boolean (N,) marking real nodes (for padded clouds).

        Returns:
            The output irreps array, summed (or averaged) over nodes, or per node.

        Raises:
            ValueError: for mismatched shapes or dtypes.
        """
        _check_vectors(positions)
        if positions.ndim != 2:
            raise ValueError(f"`positions` must have shape (N, 3), got {positions.shape}.")
        _check_last_axis(node_features, _entries(self.irreps_node_in), "MessagePassingNetwork")
        if (
            node_features.shape[:-1] != positions.shape[:1]
            or node_features.dtype != positions.dtype
        ):
            raise ValueError(
                f"`node_features` must have shape ({positions.shape[0]}, ...) and the dtype of "
                f"`positions` ({positions.dtype}), got {node_features.shape} {node_features.dtype}."
            )
        n = positions.shape[0]
        mask = jnp.ones((n,), bool) if node_mask is None else node_mask.astype(bool)
        vectors = positions[None, :, :] - positions[:, None, :]  # x_j − x_i at [i, j]
        length, _ = _safe_length(vectors)
        edge_mask = (
            (length < self.embedding.cutoff)
            & ~jnp.eye(n, dtype=bool)
            & mask[:, None]
            & mask[None, :]
        )
        sh = self.embedding.spherical_harmonics(vectors)
        radial = self.embedding.radial(vectors)
        h = node_features
        for layer in self.interactions:
            h = layer(h, sh, radial, edge_mask, self.avg_neighbours)
        out = self.readout(h) * mask[:, None].astype(h.dtype)
        if self.reduce == "sum":
            return jnp.sum(out, axis=0)
        if self.reduce == "mean":
            return jnp.sum(out, axis=0) / jnp.maximum(jnp.sum(mask), 1).astype(out.dtype)
        return out
