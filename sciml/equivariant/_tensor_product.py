# ruff: noqa: E741  (l is the standard name of the degree)
"""Clebsch–Gordan tensor products of irreps arrays (e3nn's "mul_ir" layout on the last axis).

Three forms:
- mode="full" (default): every pair of input entries (mul1 x ir1, mul2 x ir2) and every output irrep
  in ir1 ⊗ ir2, all mul1·mul2 channel pairs; identical to `e3nn_jax.tensor_product` (inputs and
  output regrouped: sorted, equal irreps merged).
- mode="uuu" (channel-wise): pairs of entries with the same multiplicity (or mul2 = 1, broadcast),
  channel u of x times channel u of y; optional per-path, per-channel weights.
- mode="uvw" (fully connected, weighted): for given output irreps (with multiplicities), every path
  (ir1, ir2 -> ir_out) carries a weight tensor w[u, v, w]; each output is normalised by
  1/√(fan-in) (e3nn's "element" path normalisation), as `FunctionalFullyConnectedTensorProduct`.

Every path applies the unit-norm CG tensor times √(2l3+1) ("component" irrep normalisation, the
e3nn default) or √((2l1+1)(2l2+1)) ("norm"). With ``sparse=True`` each path uses only the non-zero
CG entries (m3 = ±m1 ± m2, the "m-selection" form, O(L^5) for all paths instead of O(L^6)).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._core import float_dtype_of
from ._cg import clebsch_gordan
from ._irreps import Irrep, Irreps

__all__ = ["TensorProductPath", "cg_paths", "cg_tensor_product"]


class TensorProductPath(NamedTuple):
    """One path of a tensor product.

    Attributes:
        i_x, i_y: entry indices in irreps_x and irreps_y (after regrouping for mode="full").
        i_out: entry index in the output irreps.
        ir_x, ir_y, ir_out: the irreps.
        weight_shape: shape of this path's weights (() when unweighted).
        weight_slice: where they sit in the flat weight vector.
    """

    i_x: int
    i_y: int
    i_out: int
    ir_x: Irrep
    ir_y: Irrep
    ir_out: Irrep
    weight_shape: tuple[int, ...]
    weight_slice: slice


class _Plan(NamedTuple):
    irreps_x: Irreps
    irreps_y: Irreps
    irreps_out: Irreps
    paths: tuple[TensorProductPath, ...]
    num_weights: int
    # output assembly: (list of raw chunk indices per output entry)
    out_chunks: tuple[tuple[int, ...], ...]
    perm_x: tuple[int, ...]
    perm_y: tuple[int, ...]
    fan_in: tuple[int, ...]


def _filter_set(filter_out) -> set[Irrep] | None:
    if filter_out is None:
        return None
    if isinstance(filter_out, (str, Irreps)):
        return set(Irreps(filter_out).irreps_set())
    return set(Irreps(list(filter_out)).irreps_set())


@functools.cache
def _plan(irreps_x: Irreps, irreps_y: Irreps, mode: str, filter_key, irreps_out_req) -> _Plan:
    filt = None if filter_key is None else set(filter_key)
    if mode == "full":
        sx, perm_x = irreps_x.sort()
        sy, perm_y = irreps_y.sort()
        gx, gy = sx.simplify(), sy.simplify()
        raw = []  # (mul, ir, i_x, i_y)
        for ix, (m1, ir1) in enumerate(gx):
            for iy, (m2, ir2) in enumerate(gy):
                for ir in ir1 * ir2:
                    if filt is not None and ir not in filt:
                        continue
                    raw.append((m1 * m2, ir, ix, iy))
        order = sorted(range(len(raw)), key=lambda k: raw[k][1].sort_key())
        out_entries: list[list[Any]] = []
        out_chunks: list[list[int]] = []
        paths = []
        for k in order:
            mul, ir, ix, iy = raw[k]
            if out_entries and out_entries[-1][1] == ir:
                out_entries[-1][0] += mul
                out_chunks[-1].append(k)
            else:
                out_entries.append([mul, ir])
                out_chunks.append([k])
        for k, (_, ir, ix, iy) in enumerate(raw):
            i_out = next(j for j, ch in enumerate(out_chunks) if k in ch)
            paths.append(
                TensorProductPath(ix, iy, i_out, gx[ix].ir, gy[iy].ir, ir, (), slice(0, 0))
            )
        return _Plan(
            gx,
            gy,
            Irreps([(m, i) for m, i in out_entries]),
            tuple(paths),
            0,
            tuple(tuple(c) for c in out_chunks),
            perm_x,
            perm_y,
            (),
        )
    if mode == "uuu":
        raw = []
        start = 0
        for ix, (m1, ir1) in enumerate(irreps_x):
            for iy, (m2, ir2) in enumerate(irreps_y):
                if m2 != m1 and m2 != 1:
                    continue
                for ir in ir1 * ir2:
                    if filt is not None and ir not in filt:
                        continue
                    raw.append((m1, ir, ix, iy, slice(start, start + m1)))
                    start += m1
        order = sorted(range(len(raw)), key=lambda k: raw[k][1].sort_key())
        out_entries, out_chunks = [], []
        for k in order:
            mul, ir = raw[k][0], raw[k][1]
            if out_entries and out_entries[-1][1] == ir:
                out_entries[-1][0] += mul
                out_chunks[-1].append(k)
            else:
                out_entries.append([mul, ir])
                out_chunks.append([k])
        paths = []
        for k, (mul, ir, ix, iy, sl) in enumerate(raw):
            i_out = next(j for j, ch in enumerate(out_chunks) if k in ch)
            paths.append(
                TensorProductPath(ix, iy, i_out, irreps_x[ix].ir, irreps_y[iy].ir, ir, (mul,), sl)
            )
        return _Plan(
            irreps_x,
            irreps_y,
            Irreps([(m, i) for m, i in out_entries]),
            tuple(paths),
            start,
            tuple(tuple(c) for c in out_chunks),
            tuple(range(len(irreps_x))),
            tuple(range(len(irreps_y))),
            (),
        )
    if mode == "uvw":
        out = irreps_out_req
        paths = []
        start = 0
        fan = [0] * len(out)
        for ix, (m1, ir1) in enumerate(irreps_x):
            for iy, (m2, ir2) in enumerate(irreps_y):
                for io, (m3, ir3) in enumerate(out):
                    if ir3 in ir1 * ir2:
                        shape = (m1, m2, m3)
                        n = m1 * m2 * m3
                        paths.append(
                            TensorProductPath(
                                ix, iy, io, ir1, ir2, ir3, shape, slice(start, start + n)
                            )
                        )
                        start += n
                        fan[io] += m1 * m2
        return _Plan(
            irreps_x,
            irreps_y,
            out,
            tuple(paths),
            start,
            (),
            tuple(range(len(irreps_x))),
            tuple(range(len(irreps_y))),
            tuple(fan),
        )
    raise ValueError(f"`mode` must be 'full', 'uuu' or 'uvw', got {mode!r}.")


def cg_paths(
    irreps_x, irreps_y, *, mode: str = "full", filter_out=None, irreps_out=None
) -> tuple[Irreps, tuple[TensorProductPath, ...], int]:
    """The paths of `cg_tensor_product` without computing anything.

    Returns:
        (irreps_out, paths, num_weights): num_weights is the length of the flat `weights`
        vector that mode "uuu" (optional) and "uvw" (required) take; path p's weights are
        ``weights[p.weight_slice].reshape(p.weight_shape)``.
    """
    plan = _get_plan(irreps_x, irreps_y, mode, filter_out, irreps_out)
    return plan.irreps_out, plan.paths, plan.num_weights


def _get_plan(irreps_x, irreps_y, mode, filter_out, irreps_out) -> _Plan:
    irreps_x, irreps_y = Irreps(irreps_x), Irreps(irreps_y)
    filt = _filter_set(filter_out)
    filter_key = None if filt is None else tuple(sorted(filt))
    if mode == "uvw":
        if irreps_out is None:
            raise ValueError("mode='uvw' needs `irreps_out` (output irreps with multiplicities).")
        irreps_out = Irreps(irreps_out)
        if filt is not None:
            irreps_out = Irreps([(m, i) for m, i in irreps_out if i in filt])
    elif irreps_out is not None:
        raise ValueError("`irreps_out` is for mode='uvw'; use `filter_out` to select irreps.")
    return _plan(irreps_x, irreps_y, mode, filter_key, irreps_out)


@functools.cache
def _path_constant(l1: int, l2: int, l3: int, normalization: str) -> np.ndarray:
    c = clebsch_gordan(l1, l2, l3)
    if normalization == "component":
        return c * math.sqrt(2 * l3 + 1)
    if normalization == "norm":
        return c * math.sqrt((2 * l1 + 1) * (2 * l2 + 1))
    if normalization == "none":
        return c
    raise ValueError(
        f"`irrep_normalization` must be 'component', 'norm' or 'none', got {normalization!r}."
    )


def _chunks(x, irreps: Irreps, perm: tuple[int, ...]):
    """Split (..., dim) into per-entry (..., mul, 2l+1) arrays, after permuting entries by perm
    and merging neighbours with equal irreps (the regrouped layout)."""
    slices = irreps.slices
    parts = [
        x[..., slices[i]].reshape(x.shape[:-1] + (irreps[i].mul, irreps[i].ir.dim)) for i in perm
    ]
    irs = [irreps[i].ir for i in perm]
    merged, merged_ir = [], []
    for part, ir in zip(parts, irs, strict=True):
        if part.shape[-2] == 0:
            continue
        if merged_ir and merged_ir[-1] == ir:
            merged[-1] = jnp.concatenate([merged[-1], part], -2)
        else:
            merged.append(part)
            merged_ir.append(ir)
    return merged


def _contract(a, b, C, sparse: bool, spec: str):
    """Σ_ij C[i, j, k] a[..., i] b[..., j] with a, b already broadcast to (..., pairs, i / j)."""
    if not sparse:
        return jnp.einsum(spec, a, b, jnp.asarray(C, a.dtype))
    i, j, k = np.nonzero(C)
    vals = jnp.asarray(C[i, j, k], a.dtype)
    prod = a[..., i] * b[..., j]  # (..., nnz)
    prod = prod * vals.reshape((1,) * (prod.ndim - 1) + (-1,))
    moved = jnp.moveaxis(prod, -1, 0)
    out = jax.ops.segment_sum(moved, jnp.asarray(k), num_segments=C.shape[2])
    return jnp.moveaxis(out, 0, -1)


def cg_tensor_product(
    x: Float[Array, "*batch dx"],
    y: Float[Array, "*batch dy"],
    irreps_x,
    irreps_y,
    *,
    filter_out=None,
    mode: str = "full",
    weights: Float[Array, " num_weights"] | None = None,
    irreps_out=None,
    irrep_normalization: str = "component",
    sparse: bool = False,
) -> tuple[Float[Array, "*batch dout"], Irreps]:
    """Clebsch–Gordan tensor product of two irreps arrays.

    Args:
        x: array (..., irreps_x.dim) in the mul_ir layout.
        y: array (..., irreps_y.dim); leading axes broadcast against x's.
        irreps_x, irreps_y: `Irreps` or strings such as "8x0e+8x1o".
        filter_out: keep only these output irreps (a string, `Irreps` or list of irreps).
        mode: "full" (all channel pairs, = `e3nn_jax.tensor_product`), "uuu" (channel-wise)
            or "uvw" (fully connected with weights).
        weights: flat weight vector, shape (num_weights,) from `cg_paths`; required for
            "uvw", optional for "uuu" (one weight per path and channel), not used for "full".
        irreps_out: output irreps with multiplicities, for mode="uvw" only.
        irrep_normalization: "component" (default, e3nn's), "norm" or "none".
        sparse: use only the non-zero CG entries of each path (m-selection), by gathers and a
            segment sum, instead of dense contractions.

    Returns:
        (out, irreps_out): out has shape (..., irreps_out.dim).

    Raises:
        ValueError: when an input's last axis does not match its irreps, weights are missing or
            have the wrong size, or the mode is unknown.
    """
    plan = _get_plan(irreps_x, irreps_y, mode, filter_out, irreps_out)
    irreps_x_in, irreps_y_in = Irreps(irreps_x), Irreps(irreps_y)
    x, y = jnp.asarray(x), jnp.asarray(y)
    if irrep_normalization not in ("component", "norm", "none"):
        raise ValueError(
            f"`irrep_normalization` must be 'component', 'norm' or 'none', got "
            f"{irrep_normalization!r}."
        )
    filt = _filter_set(filter_out)
    filter_key = None if filt is None else tuple(sorted(filt))
    out_key = None if irreps_out is None else Irreps(irreps_out)
    out = _cg_kernel(
        x,
        y,
        weights,
        irreps_x_in,
        irreps_y_in,
        mode,
        filter_key,
        out_key,
        irrep_normalization,
        bool(sparse),
    )
    return out, plan.irreps_out


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6, 7, 8, 9))
def _cg_kernel(
    x,
    y,
    weights,
    irreps_x_in,
    irreps_y_in,
    mode,
    filter_out,
    irreps_out,
    irrep_normalization,
    sparse,
):
    plan = _get_plan(irreps_x_in, irreps_y_in, mode, filter_out, irreps_out)
    dtype = float_dtype_of(x, name="x")
    if float_dtype_of(y, name="y") != dtype:
        raise ValueError(f"`x` and `y` must have the same dtype, got {x.dtype} and {y.dtype}.")
    if x.ndim < 1 or x.shape[-1] != irreps_x_in.dim:
        raise ValueError(
            f"`x` has {x.shape[-1] if x.ndim else 0} components on its last axis but irreps_x = "
            f"{irreps_x_in} has dimension {irreps_x_in.dim}."
        )
    if y.ndim < 1 or y.shape[-1] != irreps_y_in.dim:
        raise ValueError(
            f"`y` has {y.shape[-1] if y.ndim else 0} components on its last axis but irreps_y = "
            f"{irreps_y_in} has dimension {irreps_y_in.dim}."
        )
    batch = jnp.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    x = jnp.broadcast_to(x, batch + x.shape[-1:])
    y = jnp.broadcast_to(y, batch + y.shape[-1:])
    if mode == "full":
        if weights is not None:
            raise ValueError("mode='full' takes no weights; use mode='uuu' or 'uvw'.")
        xs = _chunks(x, irreps_x_in, plan.perm_x)
        ys = _chunks(y, irreps_y_in, plan.perm_y)
    else:
        xs = [
            x[..., s].reshape(batch + (m, ir.dim))
            for s, (m, ir) in zip(irreps_x_in.slices, irreps_x_in, strict=True)
        ]
        ys = [
            y[..., s].reshape(batch + (m, ir.dim))
            for s, (m, ir) in zip(irreps_y_in.slices, irreps_y_in, strict=True)
        ]
    if weights is not None or mode == "uvw":
        if weights is None:
            raise ValueError(
                f"mode='uvw' needs `weights` of shape ({plan.num_weights},) (see `cg_paths`)."
            )
        weights = jnp.asarray(weights)
        if weights.shape != (plan.num_weights,):
            raise ValueError(
                f"`weights` must have shape ({plan.num_weights},) for these irreps, got "
                f"{weights.shape}."
            )
        if weights.dtype != dtype:
            raise ValueError(f"`weights` must have dtype {dtype}, got {weights.dtype}.")

    path_out = []
    for p in plan.paths:
        C = _path_constant(p.ir_x.l, p.ir_y.l, p.ir_out.l, irrep_normalization)
        a, b = xs[p.i_x], ys[p.i_y]
        if mode == "full":
            # (..., u, v, i) x (..., u, v, j): all channel pairs
            m1, m2 = a.shape[-2], b.shape[-2]
            aa = jnp.broadcast_to(a[..., :, None, :], batch + (m1, m2, a.shape[-1]))
            bb = jnp.broadcast_to(b[..., None, :, :], batch + (m1, m2, b.shape[-1]))
            z = _contract(aa, bb, C, sparse, "...uvi,...uvj,ijk->...uvk")
            path_out.append(z.reshape(batch + (m1 * m2, C.shape[2])))
        elif mode == "uuu":
            bb = jnp.broadcast_to(b, a.shape[:-1] + b.shape[-1:])
            z = _contract(a, bb, C, sparse, "...ui,...uj,ijk->...uk")
            if weights is not None:
                w = weights[p.weight_slice].reshape((1,) * (z.ndim - 2) + (-1, 1))
                z = z * w
            path_out.append(z)
        else:
            m1, m2 = a.shape[-2], b.shape[-2]
            aa = jnp.broadcast_to(a[..., :, None, :], batch + (m1, m2, a.shape[-1]))
            bb = jnp.broadcast_to(b[..., None, :, :], batch + (m1, m2, b.shape[-1]))
            z = _contract(aa, bb, C, sparse, "...uvi,...uvj,ijk->...uvk")
            w = weights[p.weight_slice].reshape(p.weight_shape)
            alpha = 1.0 / math.sqrt(plan.fan_in[p.i_out])
            path_out.append(jnp.einsum("...uvk,uvw->...wk", z, w) * alpha)

    pieces = []
    if mode == "uvw":
        for io, (mul, ir) in enumerate(plan.irreps_out):
            contrib = [z for p, z in zip(plan.paths, path_out, strict=True) if p.i_out == io]
            if contrib:
                total = functools.reduce(jnp.add, contrib)
            else:
                total = jnp.zeros(batch + (mul, ir.dim), dtype)
            pieces.append(total.reshape(batch + (mul * ir.dim,)))
    else:
        for chunk_ids in plan.out_chunks:
            for k in chunk_ids:
                pieces.append(path_out[k].reshape(batch + (-1,)))
    if not pieces:
        return jnp.zeros(batch + (0,), dtype)
    return jnp.concatenate(pieces, -1)
