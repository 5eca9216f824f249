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

Implementation (dense form): the number of XLA operations, not the arithmetic, sets the compile
time, so the paths are not contracted one by one. All paths of one (x entry, y entry) pair share
one matrix product with their CG blocks concatenated along the output axis, and a pair (l1, l2)
with l1 > l2 reuses the block of (l2, l1) with the inputs swapped (the exchange symmetry of the CG
coefficients, sign (-1)^(l1+l2+l3)), stacked into the same product. Each product is
C^T (K, (2l1+1)(2l2+1)) @ [x_l1 ⊗ y_l2] ((2l1+1)(2l2+1), channels · batch) with the batch as the
long last axis; one row gather then puts every path's block where the output layout wants it, and
mode "uvw" applies the weights of all paths into one output entry as one matrix product. The
arithmetic is that of the per-path dense contraction; the operation count is O(L^2) pairs / 2
instead of O(L^3) paths for s2_irreps(L) inputs.
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


class _PairGroup(NamedTuple):
    """The paths of one (x entry, y entry) pair: their CG blocks concatenated along the output
    axis, C of shape (2l1+1, 2l2+1, K), and each path's offset in K."""

    i_x: int
    i_y: int
    path_ids: tuple[int, ...]
    offsets: tuple[int, ...]
    C: np.ndarray


@functools.cache
def _concatenated_constant(l1: int, l2: int, l3s: tuple[int, ...], normalization: str):
    return np.concatenate([_path_constant(l1, l2, l3, normalization) for l3 in l3s], 2)


def _pair_groups(plan: _Plan, normalization: str) -> list[_PairGroup]:
    order: dict[tuple[int, int], list[int]] = {}
    for k, p in enumerate(plan.paths):
        order.setdefault((p.i_x, p.i_y), []).append(k)
    groups = []
    for (ix, iy), ids in order.items():
        ps = [plan.paths[k] for k in ids]
        offsets = np.cumsum([0] + [p.ir_out.dim for p in ps[:-1]])
        C = _concatenated_constant(
            ps[0].ir_x.l, ps[0].ir_y.l, tuple(p.ir_out.l for p in ps), normalization
        )
        groups.append(_PairGroup(ix, iy, tuple(ids), tuple(int(o) for o in offsets), C))
    return groups


def _output_index(plan: _Plan, groups: list[_PairGroup], mode: str):
    """For modes "full" and "uuu": where each output component sits in the concatenation of the
    flattened pair results (..., u[, v], K), and (uuu) which weight scales it."""
    mul_x = [m for m, _ in plan.irreps_x]
    mul_y = [m for m, _ in plan.irreps_y]
    where: dict[int, tuple[int, int, int, int]] = {}  # path -> (base, K, offset, channels)
    base = 0
    for g in groups:
        K = g.C.shape[2]
        channels = mul_x[g.i_x] * (mul_y[g.i_y] if mode == "full" else 1)
        for k, offset in zip(g.path_ids, g.offsets, strict=True):
            where[k] = (base, K, offset, channels)
        base += channels * K
    index, weight_index = [], []
    for chunk in plan.out_chunks:
        for k in chunk:
            b, K, offset, channels = where[k]
            d3 = plan.paths[k].ir_out.dim
            uv = np.arange(channels)[:, None]
            index.append((b + uv * K + offset + np.arange(d3)[None, :]).reshape(-1))
            start = plan.paths[k].weight_slice.start or 0
            weight_index.append(np.repeat(start + np.arange(channels), d3))
    return np.concatenate(index).astype(np.int32), np.concatenate(weight_index).astype(np.int32)


class _StackedGroup(NamedTuple):
    """Pairs of entries that share one CG block (canonical degrees l1 <= l2, output degrees l3s,
    all with the same parity of l1 + l2 + l3): members (x entry, y entry, swapped)."""

    C: np.ndarray  # (ij, K): rows (i, j), columns the concatenated output components
    parity: int  # (l1 + l2 + l3) % 2, the same for every l3 of the group
    members: tuple[tuple[int, int, bool], ...]
    path_ids: tuple[tuple[int, ...], ...]  # per member: its paths, one per l3


def _stacked_groups(plan: _Plan, normalization: str) -> list[_StackedGroup]:
    """Group the paths by shared CG block. A pair (l1, l2) with l1 > l2 uses the block of
    (l2, l1) with the inputs swapped: C(l2, l1, l3)[j, i, k] = (-1)^(l1+l2+l3) C(l1, l2, l3)[i, j,
    k] (exact for the real basis), so with one parity of l1 + l2 + l3 per group the sign is one
    factor on the swapped member's outer product."""
    by_pair: dict[tuple[int, int, int], list[int]] = {}
    for k, p in enumerate(plan.paths):
        parity = (p.ir_x.l + p.ir_y.l + p.ir_out.l) % 2
        by_pair.setdefault((p.i_x, p.i_y, parity), []).append(k)
    groups: dict[tuple[int, int, tuple[int, ...]], list[tuple[tuple[int, int, bool], tuple]]] = {}
    for (ix, iy, _), ids in by_pair.items():
        l1, l2 = plan.irreps_x[ix].ir.l, plan.irreps_y[iy].ir.l
        swapped = l1 > l2
        key = (min(l1, l2), max(l1, l2), tuple(plan.paths[k].ir_out.l for k in ids))
        groups.setdefault(key, []).append(((ix, iy, swapped), tuple(ids)))
    out = []
    for (l1, l2, l3s), members in groups.items():
        C = _concatenated_constant(l1, l2, l3s, normalization)
        out.append(
            _StackedGroup(
                C.reshape(-1, C.shape[2]),
                (l1 + l2 + l3s[0]) % 2,
                tuple(m for m, _ in members),
                tuple(ids for _, ids in members),
            )
        )
    return out


def _stacked_layout(plan: _Plan, groups: list[_StackedGroup], mode: str, order: list[int]):
    """Row index of every output component (paths in `order`, then channel slots, then
    components) in the stacked rows of all groups' results, each of shape (K, slots, N)
    flattened to (K * slots, N); and (uuu) the weight index of every output component."""
    mul_x = [m for m, _ in plan.irreps_x]
    mul_y = [m for m, _ in plan.irreps_y]
    where = {}
    base = 0
    for g in groups:
        K = g.C.shape[1]
        slots = [mul_x[ix] * (mul_y[iy] if mode == "full" else 1) for ix, iy, _ in g.members]
        total = sum(slots)
        slot_base = np.cumsum([0] + slots[:-1])
        for ids, sb, ns in zip(g.path_ids, slot_base, slots, strict=True):
            offset = 0
            for k in ids:
                where[k] = (base, total, int(sb), ns, offset)
                offset += plan.paths[k].ir_out.dim
        base += K * total
    rows, weight_index = [], []
    for k in order:
        b, total, sb, ns, offset = where[k]
        d3 = plan.paths[k].ir_out.dim
        kk = offset + np.arange(d3)
        rows.append((b + kk[None, :] * total + sb + np.arange(ns)[:, None]).reshape(-1))
        start = plan.paths[k].weight_slice.start or 0
        weight_index.append(np.repeat(start + np.arange(ns), d3))
    return np.concatenate(rows).astype(np.int32), np.concatenate(weight_index).astype(np.int32)


def _stacked_kernel(xs, ys, groups: list[_StackedGroup], mode: str, dtype):
    """All groups' results as stacked rows (R, N), batch last: per group one outer-product
    fusion and one matrix product C^T (K, ij) @ outer (ij, slots * N)."""
    results = []
    for g in groups:
        pairs = []
        for ix, iy, swapped in g.members:
            X, Y = (ys[iy], xs[ix]) if swapped else (xs[ix], ys[iy])
            pairs.append((-X if swapped and g.parity else X, Y))
        if len(pairs) > 1 and all(X.shape[1] == 1 and Y.shape[1] == 1 for X, Y in pairs):
            # single channels: stack the members along the batch axis before the outer
            # product (the same column layout as the block concatenation below)
            A = jnp.concatenate([X[:, 0] for X, _ in pairs], -1)
            B = jnp.concatenate([Y[:, 0] for _, Y in pairs], -1)
            outer = (A[:, None, :] * B[None, :, :]).reshape(A.shape[0] * B.shape[0], -1)
            z = jnp.asarray(g.C.T, dtype) @ outer
            results.append(z.reshape(-1, xs[0].shape[-1]))
            continue
        blocks = []
        for (_, _, swapped), (X, Y) in zip(g.members, pairs, strict=True):
            # X: (i, ·, N) in the canonical l1 (y's entry when swapped, sign included), Y: (j, ·, N)
            if mode == "full":
                if swapped:  # slots stay (u of x, v of y)
                    o = X[:, None, None, :, :] * Y[None, :, :, None, :]
                else:
                    o = X[:, None, :, None, :] * Y[None, :, None, :, :]
            else:
                o = X[:, None, :, :] * Y[None, :, :, :]
            blocks.append(o.reshape(o.shape[0] * o.shape[1], -1))
        outer = blocks[0] if len(blocks) == 1 else jnp.concatenate(blocks, 1)
        z = jnp.asarray(g.C.T, dtype) @ outer  # (K, slots * N)
        results.append(z.reshape(-1, xs[0].shape[-1]))
    return results


def _pair_contract_sparse(a, b, C, *, all_pairs: bool):
    """z[..., u, (v,) k] = Σ_ij C[i, j, k] a[..., u, i] b[..., v | u, j] from the non-zero entries
    of C only (gathers and a segment sum): all channel pairs (u, v) when all_pairs, else
    channel-wise (b has a's channels)."""
    if all_pairs:
        m1, m2 = a.shape[-2], b.shape[-2]
        a = jnp.broadcast_to(a[..., :, None, :], a.shape[:-2] + (m1, m2, a.shape[-1]))
        b = jnp.broadcast_to(b[..., None, :, :], b.shape[:-2] + (m1, m2, b.shape[-1]))
    return _contract(a, b, C, True, "")


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

    if not plan.paths:
        return jnp.zeros(batch + (plan.irreps_out.dim,), dtype)
    if sparse:
        return _sparse_kernel(xs, ys, weights, plan, mode, irrep_normalization, batch, dtype)
    return _dense_kernel(xs, ys, weights, plan, mode, irrep_normalization, batch, dtype)


def _dense_kernel(xs, ys, weights, plan: _Plan, mode, normalization, batch, dtype):
    """Batch-last dense kernel: one matrix product per group of pairs sharing a CG block
    (`_stacked_groups`), one row gather into the output layout, and for "uvw" one weight
    matrix product per output entry."""
    n = math.prod(batch)
    # (..., mul, 2l+1) -> (2l+1, mul, N): the batch is the long last axis of every product
    xt = [jnp.transpose(c.reshape((n,) + c.shape[-2:]), (2, 1, 0)) for c in xs]
    yt = [jnp.transpose(c.reshape((n,) + c.shape[-2:]), (2, 1, 0)) for c in ys]
    slots = "uuu" if mode == "uuu" else "full"
    groups = _stacked_groups(plan, normalization)
    if mode == "uvw":
        order = [
            k
            for io in range(len(plan.irreps_out))
            for k, p in enumerate(plan.paths)
            if p.i_out == io
        ]
    else:
        order = [k for chunk in plan.out_chunks for k in chunk]
    rows, weight_index = _stacked_layout(plan, groups, slots, order)
    results = _stacked_kernel(xt, yt, groups, slots, dtype)
    stacked = results[0] if len(results) == 1 else jnp.concatenate(results, 0)
    stacked = stacked[rows]  # (output rows, N)
    if mode != "uvw":
        out = stacked.T.reshape(batch + (-1,))
        if weights is not None:
            out = out * weights[weight_index].reshape((1,) * (out.ndim - 1) + (-1,))
        return out
    mul_x = [m for m, _ in plan.irreps_x]
    mul_y = [m for m, _ in plan.irreps_y]
    pieces, r = [], 0
    for io, (m3, ir) in enumerate(plan.irreps_out):
        ps = [plan.paths[k] for k in order if plan.paths[k].i_out == io]
        if not ps:
            pieces.append(jnp.zeros((m3 * ir.dim, n), dtype))
            continue
        # rows (path, u, v) x columns (k, N); the weights w[u, v, w] of every path as one matrix
        nuv = sum(mul_x[p.i_x] * mul_y[p.i_y] for p in ps)
        block = stacked[r : r + nuv * ir.dim].reshape(nuv, ir.dim * n)
        r += nuv * ir.dim
        widx = np.concatenate(
            [
                (p.weight_slice.start or 0)
                + np.arange(mul_x[p.i_x] * mul_y[p.i_y])[:, None] * m3
                + np.arange(m3)[None, :]
                for p in ps
            ]
        )
        W = weights[widx.T.astype(np.int32)] * (1.0 / math.sqrt(plan.fan_in[io]))
        pieces.append((W @ block).reshape(m3 * ir.dim, n))
    out = pieces[0] if len(pieces) == 1 else jnp.concatenate(pieces, 0)
    return out.T.reshape(batch + (-1,))


def _sparse_kernel(xs, ys, weights, plan: _Plan, mode, normalization, batch, dtype):
    """m-selection kernel: per (x entry, y entry) pair, the non-zero CG entries of all its paths
    at once (gathers and a segment sum)."""
    groups = _pair_groups(plan, normalization)
    if mode == "uvw":
        outs: list[Any] = [None] * len(plan.irreps_out)
        for group in groups:
            a, b = xs[group.i_x], ys[group.i_y]
            z = _pair_contract_sparse(a, b, group.C, all_pairs=True)  # (..., u, v, K)
            for k, offset in zip(group.path_ids, group.offsets, strict=True):
                p = plan.paths[k]
                zp = z[..., offset : offset + p.ir_out.dim]
                w = weights[p.weight_slice].reshape(p.weight_shape)
                alpha = 1.0 / math.sqrt(plan.fan_in[p.i_out])
                contrib = jnp.einsum("...uvk,uvw->...wk", zp, w) * alpha
                outs[p.i_out] = contrib if outs[p.i_out] is None else outs[p.i_out] + contrib
        pieces = []
        for io, (mul, ir) in enumerate(plan.irreps_out):
            total = outs[io] if outs[io] is not None else jnp.zeros(batch + (mul, ir.dim), dtype)
            pieces.append(total.reshape(batch + (mul * ir.dim,)))
        return jnp.concatenate(pieces, -1)
    flat = []
    for group in groups:
        a, b = xs[group.i_x], ys[group.i_y]
        if mode == "uuu":
            b = jnp.broadcast_to(b, a.shape[:-1] + b.shape[-1:])
        z = _pair_contract_sparse(a, b, group.C, all_pairs=mode == "full")
        flat.append(z.reshape(batch + (-1,)))
    index, weight_index = _output_index(plan, groups, mode)
    out = flat[0] if len(flat) == 1 else jnp.concatenate(flat, -1)
    out = out[..., index]
    if weights is not None:
        out = out * weights[weight_index].reshape((1,) * (out.ndim - 1) + (-1,))
    return out
