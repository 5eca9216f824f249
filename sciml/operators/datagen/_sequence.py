"""Solving a family of systems in sorted chains with Krylov recycling (SKR), or independently."""

from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse.linalg as spla
from jax.sharding import PartitionSpec
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from ..._core import RESULTS, check_size, check_tolerances, make_mesh
from ...solvers._cg import cg
from ...solvers._gcrodr import Recycle, gcrodr
from ...solvers._gmres import gmres
from ...solvers._preconditioners import jacobi
from ._families import AbstractFamily
from ._sorting import Chains, sort_features, sort_fft, sort_greedy, split_chains

Method = Literal["skr", "gmres", "cg", "direct"]
_METHODS = ("skr", "gmres", "cg", "direct")
_SORTS = ("greedy", "fft", "features", None)


class ChainResult(NamedTuple):
    """The outputs of `solve_chain`, in chain order.

    Shapes are (L, ...) for one chain, (n_chains, L, ...) for several.

    Attributes:
        solutions: the solutions u_i, flat, (..., L, n).
        iterations: Krylov iterations per system (Arnoldi steps for skr/gmres, CG steps).
        matvecs: products with A per system (0 for "direct").
        residuals: true relative residuals ‖b − A u‖/‖b‖.
        converged: whether each solve met its tolerance.
        recycle: the recycle space after the last system (method "skr"), to continue the
            chain with the next chunk; None for the other methods.
    """

    solutions: Float[Array, "... L n"]
    iterations: Int[Array, "... L"]
    matvecs: Int[Array, "... L"]
    residuals: Float[Array, "... L"]
    converged: Bool[Array, "... L"]
    recycle: Recycle | None


class DatagenResult(NamedTuple):
    """The outputs of `solve_sequence`, in the ORIGINAL sample order.

    Attributes:
        solutions: (N, n) solutions (reshape to `family.grid_shape`).
        iterations: (N,) Krylov iterations per system.
        matvecs: (N,) products with A per system.
        residuals: (N,) true relative residuals.
        converged: (N,) whether each solve met its tolerance.
        order: (N,) the solving order (a permutation; `order[0]` was solved first).
        chains: the `Chains` the order was split into.
    """

    solutions: Float[Array, "N n"]
    iterations: Int[Array, " N"]
    matvecs: Int[Array, " N"]
    residuals: Float[Array, " N"]
    converged: Bool[Array, " N"]
    order: Int[Array, " N"]
    chains: Chains


def default_rtol(dtype: Any) -> float:
    """The datasets' default tolerance: 1e-8 in float64, 1e-5 in float32 (what each resolves)."""
    return 1e-8 if np.dtype(dtype).itemsize >= 8 else 1e-5


def check_config(method, M, m, k, family, rtol, atol, ritz):
    """Refuse a solve configuration before any work (the checks of `solve_sequence`)."""
    if method not in _METHODS:
        raise ValueError(f"`method` must be one of {_METHODS}, got {method!r}.")
    if M not in (None, "jacobi"):
        raise ValueError(f"`M` must be None or 'jacobi', got {M!r}.")
    if ritz not in ("subspace", "eig"):
        raise ValueError(f"`ritz` must be 'subspace' or 'eig', got {ritz!r}.")
    if not isinstance(family, AbstractFamily):
        raise ValueError(
            f"`family` must be a datagen family of `sciml.operators.datagen` (e.g. "
            f"`darcy_family(...)`, or `FAMILIES[name](...)`), got "
            f"{type(family).__module__}.{type(family).__name__}."
        )
    if method == "cg" and not family.spd:
        raise ValueError(
            f"method 'cg' needs symmetric positive definite systems, but the "
            f"{family.name!r} family is not; use method 'skr' or 'gmres'."
        )
    check_size(m, "m")
    check_size(k, "k", minimum=0)
    if method == "skr" and k >= min(m, family.n):
        capped = "" if m <= family.n else f" = min(m, n) with n = {family.n} unknowns"
        raise ValueError(f"`k` ({k}) must be smaller than `m` ({min(m, family.n)}{capped}).")
    check_tolerances(rtol, atol, family.dtype)


def _strip(family: AbstractFamily) -> AbstractFamily:
    # `system` never reads `params`; dropping them keeps the full batch out of the solve.
    return eqx.tree_at(lambda f: f.params, family, jnp.zeros((0,), family.dtype))


def _solve_one(family, param, recycle, rtol, atol, *, method, m, k, M, ritz, max_steps, axis_name):
    op, rhs = family.system(param)
    precond = jacobi(op) if M == "jacobi" else None
    if method == "skr":
        sol, recycle = gcrodr(
            op,
            rhs,
            recycle=recycle,
            m=m,
            k=k,
            rtol=rtol,
            atol=atol,
            M=precond,
            max_steps=max_steps,
            ritz=ritz,
            throw=False,
            axis_name=axis_name,
        )
        matvecs = sol.stats["num_matvecs"]
    elif method == "gmres":
        sol = gmres(
            op,
            rhs,
            restart=m,
            rtol=rtol,
            atol=atol,
            M=precond,
            max_steps=max_steps,
            throw=False,
            axis_name=axis_name,
        )
        # Arnoldi steps plus the true residual after each restart cycle.
        matvecs = sol.stats["num_steps"] + sol.stats["num_restarts"]
    else:
        sol = cg(op, rhs, rtol=rtol, atol=atol, M=precond, max_steps=max_steps, throw=False)
        matvecs = sol.stats["num_steps"]
    value = sol.value
    b_norm = jnp.linalg.norm(rhs)
    residual = jnp.linalg.norm(rhs - op.mv(value)) / jnp.where(b_norm > 0, b_norm, 1)
    outputs = (
        value,
        sol.stats["num_steps"].astype(jnp.int32),
        jnp.asarray(matvecs, jnp.int32),
        residual,
        sol.result == RESULTS.successful,
    )
    return recycle, outputs


def _chain(family, params, recycle, rtol, atol, **config):
    def step(recycle, param):
        return _solve_one(family, param, recycle, rtol, atol, **config)

    recycle, outputs = jax.lax.scan(step, recycle, params)
    return outputs, recycle


@eqx.filter_jit
def _run_chains(family, params, recycle, rtol, atol, *, devices, **config):
    def run(params, recycle, rtol, atol):
        if params.shape[0] == 1:
            # One chain: no `vmap`. A vmapped `while_loop` selects between the old and new
            # carry (the whole Krylov basis) every iteration, which made one chain 1.5× (SKR)
            # to 4× (GMRES) slower on a CPU (Darcy s = 34 and 66).
            first = jax.tree.map(lambda x: x[0], recycle)
            outputs = _chain(family, params[0], first, rtol, atol, axis_name=None, **config)
            return jax.tree.map(lambda x: x[None], outputs)
        # Named, so that the Krylov solvers run their cycles in lock-step (`axis_name` of
        # `gmres`): same results, without copying every chain's basis after each step.
        return jax.vmap(
            lambda p, r: _chain(family, p, r, rtol, atol, axis_name="chains", **config),
            axis_name="chains",
        )(params, recycle)

    if devices is None:
        return run(params, recycle, rtol, atol)
    mesh = make_mesh(devices)
    batch = PartitionSpec(mesh.axis_names[0])
    # shard_map: each device runs its own chains' loops, with no lock-step between devices.
    sharded = jax.shard_map(
        run,
        mesh=mesh,
        in_specs=(batch, batch, PartitionSpec(), PartitionSpec()),
        out_specs=batch,
        check_vma=False,
    )
    return sharded(params, recycle, rtol, atol)


def _direct(family, params):
    solutions, residuals = [], []
    for p in params:
        op, rhs = family.system(jnp.asarray(p))
        matrix = op.to_scipy().tocsc()
        rhs = np.asarray(rhs)
        u = spla.spsolve(matrix, rhs)
        solutions.append(u)
        b_norm = np.linalg.norm(rhs)
        residuals.append(np.linalg.norm(rhs - matrix @ u) / (b_norm if b_norm > 0 else 1))
    solutions = np.stack(solutions).astype(family.dtype)
    residuals = np.asarray(residuals)
    zeros = np.zeros(len(solutions), np.int32)
    return solutions, zeros, zeros, residuals, np.isfinite(residuals)


def solve_chain(
    family: AbstractFamily,
    indices: Int[ArrayLike, "... L"],
    *,
    method: Method = "skr",
    recycle: Recycle | None = None,
    rtol: float | ArrayLike | None = None,
    atol: float | ArrayLike = 0.0,
    m: int = 40,
    k: int = 20,
    M: Literal["jacobi"] | None = None,
    ritz: Literal["subspace", "eig"] = "subspace",
    max_steps: int | None = None,
    devices: int | None = None,
) -> ChainResult:
    """Solve the systems `family.params[indices]` in the given order (one or several chains).

    With method "skr" each chain is one `lax.scan` over its systems carrying the GCRO-DR
    `Recycle` (the operator and right-hand side of each system are built inside the scan by
    `family.system`), so a chain of length L compiles once; several chains (`indices` of
    shape (n_chains, L)) run under `vmap`, and with `devices` they are split over that many
    local devices with `shard_map` (each device runs its chains independently). "gmres" and
    "cg" run the same loops without recycling (the fair baselines: same operators, same
    products); "direct" solves each system on the host with SciPy's sparse LU.

    For resumable, chunked generation call this once per chunk of a chain and pass the
    returned `recycle` to the next chunk: the results are the same as one long chain.

    Args:
        family: a datagen family (`darcy_family`, `poisson_family`, ...).
        indices: sample indices, shape (L,) for one chain or (n_chains, L).
        method: "skr" (GCRO-DR with recycling), "gmres" (GMRES(m)), "cg" (SPD families
            only) or "direct".
        recycle: the recycle space to start from ("skr"), batched as (n_chains, ...) when
            `indices` is 2-D; None starts empty.
        rtol, atol: tolerances on the true residual ‖b − A u‖ (may be arrays: no recompile);
            `rtol` defaults to `default_rtol(family.dtype)` (1e-8 in float64, 1e-5 in float32).
        m, k: GCRO-DR cycle size (recycled + new vectors) and recycle size; GMRES restarts
            after m steps.
        M: None or "jacobi" (left preconditioning for skr/gmres, PCG for cg).
        ritz: the eigen step of GCRO-DR, "subspace" (portable) or "eig" (CPU/GPU).
        max_steps: the iteration budget per system (static); solver default if None.
        devices: shard the chains over this many local devices (n_chains must be a multiple).

    Returns:
        A `ChainResult` in chain order (shape (L, ...) or (n_chains, L, ...)).

    Raises:
        ValueError: for an unknown method, preconditioner or ritz option, indices out of
            range, cg on a non-SPD family, `k >= m`, bad tolerances, or chains that do not
            divide over `devices`.
    """
    rtol = default_rtol(family.dtype) if rtol is None else rtol
    check_config(method, M, m, k, family, rtol, atol, ritz)
    indices = np.asarray(indices)
    if indices.size == 0:
        raise ValueError("`indices` is empty; give at least one sample index.")
    if indices.ndim not in (1, 2) or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(
            f"`indices` must be an integer array of shape (L,) or (n_chains, L), got "
            f"{indices.dtype} {indices.shape}."
        )
    if indices.min() < 0 or indices.max() >= family.n_samples:
        raise ValueError(
            f"`indices` must lie in [0, {family.n_samples}), got [{indices.min()}, "
            f"{indices.max()}]."
        )
    single = indices.ndim == 1
    chains = indices[None] if single else indices
    n_chains, length = chains.shape
    params = family.params[jnp.asarray(chains)]
    if method == "direct":
        flat = _direct(family, params.reshape(n_chains * length, *params.shape[2:]))
        outputs = tuple(jnp.asarray(o).reshape(n_chains, length, *o.shape[1:]) for o in flat)
        final = None
    else:
        if devices is not None:
            if isinstance(devices, bool) or not isinstance(devices, (int, np.integer)):
                raise ValueError(f"`devices` must be a positive int or None, got {devices!r}.")
            if devices < 1 or n_chains % devices:
                raise ValueError(
                    f"{n_chains} chains cannot be split evenly over {devices} devices; use a "
                    f"number of chains that is a multiple of {devices}."
                )
            devices = int(devices)
        if method == "skr":
            if recycle is None:
                empty = Recycle.empty(family.n, k, family.dtype)
                recycle = jax.tree.map(lambda x: jnp.broadcast_to(x, (n_chains, *x.shape)), empty)
            elif single:
                recycle = jax.tree.map(lambda x: x[None], recycle)
            if recycle.U.shape != (n_chains, family.n, k):
                raise ValueError(
                    f"`recycle` has U of shape {recycle.U.shape}; expected "
                    f"{'(n, k)' if single else '(n_chains, n, k)'} = "
                    f"{(family.n, k) if single else (n_chains, family.n, k)}."
                )
        else:
            recycle = jnp.zeros((n_chains,), family.dtype)  # a placeholder carry
        dtype = np.dtype(jnp.finfo(family.dtype).dtype)
        outputs, final = _run_chains(
            _strip(family),
            params,
            recycle,
            jnp.asarray(rtol, dtype),
            jnp.asarray(atol, dtype),
            devices=devices,
            method=method,
            m=m,
            k=k,
            M=M,
            ritz=ritz,
            max_steps=max_steps,
        )
        if method != "skr":
            final = None
    if single:
        outputs = tuple(o[0] for o in outputs)
        if final is not None:
            final = jax.tree.map(lambda x: x[0], final)
    return ChainResult(*outputs, recycle=final)


def sort_order(
    params: Float[ArrayLike, "N ..."], sort: Literal["greedy", "fft", "features"] | None
) -> Int[Array, " N"]:
    """The solving order for `sort` ("greedy", "fft", "features" or None = as generated)."""
    if sort not in _SORTS:
        raise ValueError(f"`sort` must be one of {_SORTS}, got {sort!r}.")
    if sort is None:
        return jnp.arange(jnp.shape(params)[0], dtype=jnp.int32)
    if sort == "greedy":
        return sort_greedy(params)
    if sort == "fft":
        return sort_fft(params)
    return sort_features(params)


def solve_sequence(
    family: AbstractFamily,
    *,
    method: Method = "skr",
    rtol: float | ArrayLike | None = None,
    atol: float | ArrayLike = 0.0,
    m: int = 40,
    k: int = 20,
    M: Literal["jacobi"] | None = None,
    sort: Literal["greedy", "fft", "features"] | None = "greedy",
    n_chains: int = 1,
    devices: int | None = None,
    max_steps: int | None = None,
    ritz: Literal["subspace", "eig"] = "subspace",
) -> DatagenResult:
    """Solve every system of a family: sort, split into chains, solve, restore the order.

    This is SKR (Wang et al., ICLR 2024): sort the instances so that neighbours are similar
    (`sort`), then solve them in that order with GCRO-DR carrying the recycle space from
    each system to the next (`method="skr"`). `n_chains > 1` splits the sorted order into
    contiguous chains solved in parallel (`vmap`; with `devices`, sharded over local
    devices). The baselines "gmres", "cg" and "direct" solve each system independently
    through the same machinery.

    Args:
        family: a datagen family.
        method: "skr", "gmres", "cg" or "direct".
        rtol, atol: tolerances on the true residual of each system (`rtol` defaults to
            1e-8 in float64, 1e-5 in float32: `default_rtol`).
        m, k: GCRO-DR(m, k) (SKR: 40, 20); GMRES restart m.
        M: None or "jacobi".
        sort: "greedy" (nearest-neighbour chain on the raw parameters), "fft" (on
            low-frequency FFT features), "features" (on a PCA of them) or None.
        n_chains: how many chains to split the order into.
        devices: shard the chains over this many local devices.
        max_steps: iteration budget per system.
        ritz: "subspace" or "eig" (see `sciml.solvers.gcrodr`).

    Returns:
        A `DatagenResult` with per-sample outputs in the original order of `family.params`.

    Raises:
        ValueError: for bad options (see `solve_chain`, `split_chains`).
    """
    rtol = default_rtol(family.dtype) if rtol is None else rtol
    check_config(method, M, m, k, family, rtol, atol, ritz)
    order = sort_order(family.params, sort)
    chains = split_chains(order, n_chains)
    out = solve_chain(
        family,
        chains.indices,
        method=method,
        rtol=rtol,
        atol=atol,
        m=m,
        k=k,
        M=M,
        ritz=ritz,
        max_steps=max_steps,
        devices=devices,
    )
    flat_index = np.asarray(chains.indices).reshape(-1)
    keep = np.asarray(chains.valid).reshape(-1)
    target = flat_index[keep]

    def unpermute(values):
        values = values.reshape(-1, *values.shape[2:])[keep]
        return jnp.zeros_like(values).at[target].set(values)

    return DatagenResult(
        solutions=unpermute(out.solutions),
        iterations=unpermute(out.iterations),
        matvecs=unpermute(out.matvecs),
        residuals=unpermute(out.residuals),
        converged=unpermute(out.converged),
        order=order,
        chains=chains,
    )
