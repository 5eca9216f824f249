"""The Deep Conjugate Direction Method: conjugate directions proposed by a network."""

import functools
from collections.abc import Callable
from importlib import resources
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, ArrayLike, Inexact

from .._core import RESULTS, Solution
from ..linalg._stencil import FLUID, Laplacian
from ._common import dot, finish, init_history, initial_state, prepare_system, set_entry
from ._dcdm_net import DCDMNet, load_dcdm_model

_WEIGHTS_PACKAGE = "sciml.solvers._dcdm_weights"

# Stagnation test (see `_solve`): a direction whose cosine with the residual is below
# float32's resolution, the network's precision, carries no information.
_STALL_COSINE = float(jnp.finfo(jnp.float32).eps)
_STALL_STEPS = 5


@functools.cache
def default_dcdm_model(dim: int) -> DCDMNet:
    """The shipped DCDM model for `dim`-D grids (2 or 3), loaded once per process.

    Raises:
        ValueError: for another dimension, or if the weights are missing from the install.
    """
    if dim not in (2, 3):
        raise ValueError(f"DCDM ships models for 2-D and 3-D grids only, not {dim}-D.")
    resource = resources.files(_WEIGHTS_PACKAGE).joinpath(f"dcdm_{dim}d.eqx")
    if not resource.is_file():
        raise ValueError(
            f"the shipped {dim}-D DCDM weights (dcdm_{dim}d.eqx) are missing from this "
            f"installation; train a model with `sciml train dcdm --dim {dim}` and pass it as "
            f"`model=sciml.solvers.load_dcdm_model(path)`."
        )
    with resources.as_file(resource) as path:
        return load_dcdm_model(path)


def dcdm(
    A: Any,
    b: Inexact[ArrayLike, " n"],
    *,
    model: DCDMNet | Callable[[Array], Array] | None = None,
    x0: Inexact[ArrayLike, " n"] | None = None,
    rtol: float | ArrayLike = 1e-4,
    max_steps: int = 100,
    n_orth: int = 2,
    refresh_every: int = 10,
    mask_features: bool = False,
    throw: bool = True,
) -> Solution:
    r"""Solve `A x = b` by the Deep Conjugate Direction Method (DCDM).

    Each iteration asks the model for a search direction from the unit-normalised residual,
    $s_k = f(r_{k-1} / \|r_{k-1}\|)$, makes it A-orthogonal to the last `n_orth` directions
    (classical Gram–Schmidt in the A-inner product, coefficients from the un-updated $s_k$),

    $$d_k = s_k - \sum_{j} \frac{s_k^\top A d_j}{d_j^\top A d_j} d_j,$$

    and takes the exact line-search step $\alpha_k = d_k^\top r_{k-1} / d_k^\top A d_k$. One
    product with `A` per iteration: the residual is updated recursively, $r_k = r_{k-1} -
    \alpha_k A d_k$, and recomputed as $b - A x_k$ every `refresh_every` iterations and
    whenever the recursive residual meets the tolerance, so the stopping decision always rests
    on a true residual. The iteration stops when $\|r_k\| \le \mathrm{rtol}\,\|b\|$ (with
    `x0 = 0` this is the reference's $\mathrm{tol}\cdot\|r_0\|$).

    With the identity as model this is CG (the same iterates in exact arithmetic); with a fixed
    SPD linear map $M$ it is PCG preconditioned by $M$; with $f = A^{-1}$ it converges in one
    iteration. A network direction is only "conjugate" against `n_orth` predecessors, so
    unlike CG the method has no finite-termination property; it relies on good directions.

    Singular pure-Neumann systems (a sciml `Laplacian` with zero shift whose fluid regions
    touch no Dirichlet face) work when `b` is in the range of `A`
    (`sciml.linalg.project_to_range`): every direction is projected onto that range the same
    way, so `x` stays the minimum-norm solution, as CG from zero gives.

    `jit` and `vmap` (over `b`, with per-member `num_steps`) work. Reverse-mode
    differentiation through the solve does not.

    Args:
        A: the operator. With a `DCDMNet` (or `model=None`) it must be a sciml grid
            `Laplacian` (`sciml.linalg.poisson`, `sciml.problems.fluid_pressure`): the network
            needs its `grid_shape` and fluid mask. A callable model accepts any form that `cg`
            accepts. `A` must be symmetric positive (semi-)definite.
        b: the right-hand side, a 1-D floating array; vectors and inner products use its dtype
            (the network computes in its own, float32 for the shipped weights).
        model: a `DCDMNet`; or any callable mapping a flat residual (length n, dtype of `b`)
            to a flat direction; or `None` for the shipped default model of the operator's
            dimension (2-D or 3-D).
        x0: the initial guess (zeros by default).
        rtol: relative tolerance on the residual norm; may be a traced array.
        max_steps: the maximum number of iterations (a static int; the reference uses 100).
        n_orth: the number of previous directions each new one is A-orthogonalised against
            (static; the reference uses 2; 0 gives a steepest-descent-like method).
        refresh_every: recompute the true residual every this many iterations (static, ≥ 1).
        mask_features: give a `DCDMNet` the fluid mask, which zeroes its feature maps on
            non-fluid cells. Off by default: the network then sees the residual (zero on
            non-fluid cells) and its direction is zeroed there afterwards, which generalises far
            better from the obstacle-free training box (shipped 2-D weights, `fluid_pressure` at
            32² with unseen obstacles, seeds 0–2, rtol 1e-4: 12–13 iterations ungated; gated
            never reaches the tolerance (stagnation or 100 steps); CG 125–134).
        throw: raise at run time if the solve is unsuccessful (use False when sharded).

    Returns:
        A `Solution` with `stats` `num_steps`, `max_steps`, `residual_norm` (the last true or
        recursive residual norm) and `residual_history` (length `max_steps + 1`, NaN-padded).
        `result` is `successful`, `max_steps_reached`, `breakdown` (the A-orthogonalised
        direction has zero or negative curvature: the model returned a direction in the span of
        the previous ones or in the null space, or `A` is not positive), `stagnation` (for
        5 steps in a row the direction was orthogonal to the residual to within float32
        resolution, so x stopped changing: the model is outside what it was trained on),
        `nonfinite` (the model or operator produced NaN/inf) or `nonfinite_input`.

    Raises:
        ValueError: at trace time, for the checks of `cg`; a network model with an operator that
            is not a sciml grid `Laplacian`; a grid that the network cannot take (wrong
            dimension, odd sides); a negative `n_orth` or non-positive `refresh_every`.

    References:
        A. Kaneda, O. Akar, J. Chen, V. A. T. Kala, D. Hyde, J. Teran, "A Deep Conjugate
        Direction Method for Iteratively Solving Linear Systems", ICML 2023, Algorithm 1
        (reference function `dcdm` in lib/conjugate_gradient.py).
    """
    if isinstance(n_orth, bool) or not isinstance(n_orth, int) or n_orth < 0:
        raise ValueError(f"`n_orth` must be a static int >= 0, got {n_orth!r}.")
    if isinstance(refresh_every, bool) or not isinstance(refresh_every, int) or refresh_every < 1:
        raise ValueError(f"`refresh_every` must be a static int >= 1, got {refresh_every!r}.")
    if max_steps is None:
        raise ValueError("`max_steps` must be a static int (DCDM's default is 100).")
    system = prepare_system(A, b, x0=x0, M=None, rtol=rtol, atol=0.0, max_steps=max_steps)
    operator = system.operator
    grid_shape = getattr(operator, "grid_shape", None)
    if model is None or isinstance(model, DCDMNet):
        if not isinstance(operator, Laplacian):
            raise ValueError(
                f"a DCDM network needs a sciml grid operator (`sciml.linalg.poisson`, "
                f"`sciml.problems.fluid_pressure(...).operator`) to know the grid and the "
                f"fluid mask; got {type(operator).__name__}. Pass a grid operator, or a "
                f"callable `model` (r -> direction) for other operators."
            )
        if model is None:
            model = default_dcdm_model(len(grid_shape))
        model.check_grid(grid_shape)
    elif not callable(model):
        raise ValueError(
            f"`model` must be a DCDMNet, a callable r -> direction, or None; got "
            f"{type(model).__name__}."
        )
    else:
        _check_callable_model(model, system.b)
    return _solve(
        system,
        model,
        n_orth=n_orth,
        refresh_every=refresh_every,
        mask_features=bool(mask_features),
        throw=throw,
    )


def _check_callable_model(model: Callable, b: Array) -> None:
    out = jax.eval_shape(model, jax.ShapeDtypeStruct(b.shape, b.dtype))
    if not isinstance(out, jax.ShapeDtypeStruct) or out.shape != b.shape:
        raise ValueError(
            f"`model` must map a residual of shape {b.shape} to a direction of the same shape; "
            f"it returned {out}."
        )
    if out.dtype != b.dtype:
        raise ValueError(
            f"`model` returns dtype {out.dtype} for a residual of dtype {b.dtype}; return the "
            f"residual's dtype (e.g. `.astype(r.dtype)`)."
        )


def _direction_function(
    operator: Any, model: Any, dtype, mask_features: bool
) -> Callable[[Array], Array]:
    """r ↦ the model's direction, flat and in the solve's dtype, projected onto range(A)."""
    if isinstance(model, DCDMNet):
        grid_shape = operator.grid_shape
        fluid = None
        if mask_features and operator.mask is not None:
            fluid = operator.mask == FLUID

        def direction(r):
            s = model(r.reshape(grid_shape).astype(model.dtype), fluid)
            return s.reshape(-1).astype(dtype)
    else:
        direction = model

    if not isinstance(operator, Laplacian):
        return direction
    # Directions with a component in the null space (constants on floating fluid regions, any
    # value on non-fluid cells) leave A d and dᵀr unchanged, but would add that component to x.
    from ..linalg._nullspace import fluid_components

    labels, floating = fluid_components(operator)
    labels = labels.reshape(-1)
    floating = floating.reshape(-1).astype(bool) & (operator.shift == 0)
    n = operator.n
    segment = jnp.where(floating, labels, n)
    counts = jnp.zeros(n + 1, dtype).at[segment].add(1)
    inv_counts = 1 / jnp.maximum(counts, 1)
    fluid_cells = labels >= 0

    def projected(r):
        s = jnp.where(fluid_cells, direction(r), 0)
        means = jnp.zeros(n + 1, dtype).at[segment].add(s) * inv_counts
        return jnp.where(floating, s - means[segment], s)

    return projected


@eqx.filter_jit
def _solve(
    system, model, *, n_orth: int, refresh_every: int, mask_features: bool, throw: bool
) -> Solution:
    operator, b, max_steps = system.operator, system.b, system.max_steps
    dtype = b.dtype
    direction = _direction_function(operator, model, dtype, mask_features)

    b_norm, tol, x, r = initial_state(system)
    tol2 = tol * tol
    rs = dot(r, r)
    input_ok = jnp.isfinite(b_norm) & jnp.isfinite(rs)
    history = init_history(max_steps, jnp.sqrt(rs))
    n = b.shape[0]
    # Ring buffers of the last n_orth directions, their products with A and curvatures;
    # zero curvature marks an empty slot (its coefficient is then 0).
    slots = max(n_orth, 1)
    dirs = jnp.zeros((slots, n), dtype)
    a_dirs = jnp.zeros((slots, n), dtype)
    curvatures = jnp.zeros((slots,), rs.dtype)
    # Status: 0 running, 1 breakdown, 2 non-finite, 3 stagnation.
    status = jnp.where(input_ok, 0, 2).astype(jnp.int32)
    stalled = jnp.asarray(0, jnp.int32)  # consecutive steps with a useless direction
    carry = (
        jnp.asarray(0, jnp.int32),
        x,
        r,
        rs,
        dirs,
        a_dirs,
        curvatures,
        status,
        stalled,
        history,
    )

    def cond_fun(carry):
        k, _, _, rs, _, _, _, status, _, _ = carry
        return (rs > tol2) & (k < max_steps) & (status == 0)

    def body_fun(carry):
        k, x, r, rs, dirs, a_dirs, curvatures, _, stalled, history = carry
        s = direction(r / jnp.sqrt(rs).astype(dtype))
        d = s
        if n_orth > 0:
            coefficients = jnp.matmul(a_dirs, s, precision=lax.Precision.HIGHEST)
            filled = curvatures > 0
            coefficients = jnp.where(
                filled, coefficients / jnp.where(filled, curvatures, 1), 0
            ).astype(dtype)
            d = s - jnp.matmul(coefficients, dirs, precision=lax.Precision.HIGHEST)
        ad = operator.mv(d)
        dad = dot(d, ad)
        finite = jnp.isfinite(dad) & jnp.all(jnp.isfinite(d))
        step_ok = finite & (dad > 0)
        dr = dot(d, r)
        alpha = jnp.where(step_ok, dr / jnp.where(step_ok, dad, 1), 0).astype(dtype)
        # A direction at an angle to r below the network's float32 resolution moves x by
        # nothing; the next residual, hence the next direction, is then the same, and the
        # loop would spin to max_steps (a network outside its training, e.g. the shipped
        # Neumann-box weights on Dirichlet walls). Healthy steps have cosines of ~0.1-0.7.
        useless = jnp.abs(dr) <= _STALL_COSINE * jnp.sqrt(dot(d, d)) * jnp.sqrt(rs)
        stalled = jnp.where(step_ok & useless, stalled + 1, 0)
        x = x + alpha * d
        r_recursive = r - alpha * ad
        rs_recursive = dot(r_recursive, r_recursive)
        k_new = k + step_ok.astype(jnp.int32)
        refresh = step_ok & ((k_new % refresh_every == 0) | (rs_recursive <= tol2))
        r = lax.cond(refresh, lambda: b - operator.mv(x), lambda: r_recursive)
        rs = jnp.where(refresh, dot(r, r), rs_recursive)
        if n_orth > 0:
            slot = k % n_orth
            dirs = set_entry(dirs, slot, jnp.where(step_ok, d, dirs[slot]))
            a_dirs = set_entry(a_dirs, slot, jnp.where(step_ok, ad, a_dirs[slot]))
            curvatures = set_entry(curvatures, slot, jnp.where(step_ok, dad, curvatures[slot]))
        status = jnp.where(
            step_ok, jnp.where(stalled >= _STALL_STEPS, 3, 0), jnp.where(finite, 1, 2)
        ).astype(jnp.int32)
        history = set_entry(history, k_new, jnp.sqrt(rs))
        return k_new, x, r, rs, dirs, a_dirs, curvatures, status, stalled, history

    k, x, r, rs, _, _, _, status, _, history = lax.while_loop(cond_fun, body_fun, carry)

    result = RESULTS.where(
        ~input_ok,
        RESULTS.nonfinite_input,
        RESULTS.where(
            (status == 2) | ~jnp.isfinite(rs),
            RESULTS.nonfinite,
            RESULTS.where(
                rs <= tol2,
                RESULTS.successful,
                RESULTS.where(
                    status == 1,
                    RESULTS.breakdown,
                    RESULTS.where(status == 3, RESULTS.stagnation, RESULTS.max_steps_reached),
                ),
            ),
        ),
    )
    stats = {
        "num_steps": k,
        "max_steps": jnp.asarray(max_steps, jnp.int32),
        "residual_norm": jnp.sqrt(rs),
        "residual_history": history,
    }
    return finish(x, result, stats, throw=throw)
