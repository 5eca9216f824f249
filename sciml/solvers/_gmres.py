"""Restarted GMRES with left preconditioning, following SciPy's stopping logic."""

import operator as _operator
from functools import partial
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact

from .._core import RESULTS, Solution
from ._arnoldi import BlockedBasis
from ._common import (
    KrylovSystem,
    finish,
    init_history,
    initial_state,
    norm,
    prepare_system,
    real_dtype,
    set_entry,
    set_entry_unless,
)

_RUNNING = 0
_CONVERGED = 1
_MAX_STEPS = 2
_BREAKDOWN = 3
_STAGNATION = 4
_NONFINITE = 5
_NONFINITE_INPUT = 6


def _givens(f: Array, g: Array) -> tuple[Array, Array, Array]:
    """A rotation `[[c, s], [-conj(s), c]]` with real `c ≥ 0` that maps `(f, g)` to `(r, 0)`.

    The same conventions as LAPACK's `lartg` (which SciPy's GMRES calls), so only the signs
    of the rotated quantities could differ, never their magnitudes.
    """
    dtype = f.dtype
    abs_f, abs_g = jnp.abs(f), jnp.abs(g)
    d = jnp.sqrt(abs_f * abs_f + abs_g * abs_g)
    f_zero = abs_f == 0
    both_zero = d == 0
    inv_d = (1 / jnp.where(both_zero, 1, d)).astype(dtype)
    phase = jnp.where(f_zero, 1, f / jnp.where(f_zero, 1, abs_f).astype(dtype))  # f/|f|
    c = jnp.where(both_zero, 1, abs_f.astype(dtype) * inv_d)
    s = jnp.where(both_zero, 0, phase * jnp.conj(g) * inv_d)
    r = jnp.where(both_zero, 0, phase * d.astype(dtype))
    return c.astype(f.dtype), s.astype(f.dtype), r.astype(f.dtype)


def gmres(
    A: Any,
    b: Inexact[ArrayLike, " n"],
    *,
    x0: Inexact[ArrayLike, " n"] | None = None,
    rtol: float | ArrayLike = 1e-5,
    atol: float | ArrayLike = 0.0,
    restart: int = 40,
    max_steps: int | None = None,
    M: Any = None,
    throw: bool = True,
    axis_name: str | None = None,
) -> Solution:
    r"""Solve a general square system `A x = b` by restarted GMRES(`restart`).

    The algorithm and its stopping logic follow `scipy.sparse.linalg.gmres`, so iteration
    counts compare one to one with SciPy's inner iterations (`callback_type='pr_norm'`):

    - **left preconditioning**: the Arnoldi process runs on $M^{-1} A$ from
      $M^{-1} r$, and the Givens-rotation estimate `presid` of the *preconditioned* residual
      norm $\|M^{-1}(b - A x)\|$ decides when a cycle stops early;
    - that inner test compares `presid` with an adaptive `ptol`, first
      $\|M^{-1} b\| \min(1, \mathrm{atol}/\|b\|)$, then rescaled after every cycle from the true
      residual as in SciPy (gh-8400): tightened when the inner test passed but the outer did
      not, loosened otherwise;
    - after each cycle the true residual $\|b - A x\|$ is recomputed and the solve succeeds when
      it is $\le \max(\mathrm{rtol}\,\|b\|, \mathrm{atol})$;
    - an Arnoldi "lucky breakdown" ($h_{j+1,j} \le \varepsilon \|w\|$) ends the cycle.

    One difference from SciPy is deliberate: orthogonalisation uses classical Gram–Schmidt
    applied twice (CGS2) instead of modified Gram–Schmidt. Both are orthogonal to working
    precision; CGS2 does two matrix–vector products with the basis instead of `j` sequential
    inner products, which is much faster on accelerators. The tests check that iteration
    counts still agree with SciPy's within one.

    `max_steps` counts Arnoldi iterations (products with `A`, not counting the one per cycle
    for the true residual), not restarts as SciPy's `maxiter` does. The loops are
    `lax.while_loop`s: `jit` and `vmap` work; reverse-mode differentiation does not.

    Args:
        A: the operator, in any form `sciml.solvers.cg` accepts. Need not be symmetric or
            definite, only nonsingular (or singular with `b` in its range).
        b: the right-hand side, a 1-D floating array; the solve runs in its dtype.
        x0: the initial guess (zeros by default).
        rtol: relative tolerance on the true residual norm; may be a traced array.
        atol: absolute tolerance on the true residual norm; may be a traced array.
        restart: the Krylov subspace dimension per cycle (a static int, capped at `n` as in
            SciPy). Memory is `(restart + 1) · n` for the basis.
        max_steps: the maximum total number of Arnoldi iterations (a static int). Defaults to
            min(10·n, 100 000); SciPy's default is 10·n *cycles*.
        M: the preconditioner application $r \mapsto M^{-1} r$, in any form accepted for `A`
            (a matrix is applied as `M @ r`, as in SciPy). It need not be symmetric.
        throw: if True, an unsuccessful solve raises an `EquinoxRuntimeError` with the result's
            message (also under `jit`). Use False inside sharded computations.
        axis_name: under `jax.vmap(..., axis_name=name)`, that name (a static str): the
            batch then runs each restart cycle in lock-step, every member leaving its own state
            unchanged once its cycle ends. Plain `vmap` instead copies every member's whole
            Krylov basis after each step. Same results either way, bit for bit; the batch
            still runs until its slowest member stops. None (the default) outside `vmap`.

    Returns:
        A `Solution` with `result` one of `successful`, `max_steps_reached`, `breakdown` (the
        Krylov space became invariant but the true residual is still above tolerance: a
        singular operator with `b` outside its range, or a singular preconditioner),
        `stagnation` (a whole cycle did not reduce the (preconditioned) residual: restarted
        GMRES stalls on this problem, or the tolerance is below what the dtype can reach;
        increase `restart`, precondition or loosen `rtol`), `nonfinite` or `nonfinite_input`
        (as for `cg`). `stats` holds `num_steps` (Arnoldi iterations), `max_steps`,
        `num_restarts` (cycles started), `residual_norm` (the true residual norm
        $\|b - A x\|$ at the end) and `residual_history` of length
        `max_steps + 1`: entry 0 is the initial residual norm, entry k the Givens estimate
        after k Arnoldi iterations, NaN after the last. With a preconditioner, every entry is
        the norm of the *preconditioned* residual $M^{-1}(b - A x_k)$, the quantity
        left-preconditioned GMRES minimises.

    Raises:
        ValueError: at trace time, for the same bad inputs as `cg`, or `restart < 1`.
        EquinoxRuntimeError: at run time, if `throw` and the solve was not successful.

    References:
        Y. Saad and M. H. Schultz, "GMRES: a generalized minimal residual algorithm for
        solving nonsymmetric linear systems", SIAM J. Sci. Stat. Comput. 7 (1986). Y. Saad,
        "Iterative Methods for Sparse Linear Systems", 2nd ed., SIAM (2003), Algorithms 6.11
        and 9.4 (left-preconditioned GMRES). SciPy gh-8400 for the inner tolerance control.
    """
    if isinstance(restart, bool):
        raise ValueError(f"`restart` must be a positive int, got {restart!r}.")
    try:
        restart = _operator.index(restart)
    except TypeError as err:
        raise ValueError(
            f"`restart` must be a static positive Python int, got {type(restart).__name__}."
        ) from err
    if restart < 1:
        raise ValueError(f"`restart` must be >= 1, got {restart}. SciPy's default is 20.")

    system = prepare_system(A, b, x0=x0, M=M, rtol=rtol, atol=atol, max_steps=max_steps)
    return _solve(system, restart=min(restart, system.b.shape[0]), throw=throw, axis_name=axis_name)


# Compiled as a whole (also when called eagerly) and cached on the system's structure.
@eqx.filter_jit
def _solve(system: KrylovSystem, *, restart: int, throw: bool, axis_name: str | None) -> Solution:
    operator, precond, b = system.operator, system.preconditioner, system.b
    max_steps = system.max_steps
    dtype = b.dtype
    rdtype = real_dtype(dtype)
    n = b.shape[0]
    m = restart
    eps = np.asarray(np.finfo(rdtype).eps, rdtype)

    def apply_precond(v):
        return v if precond is None else precond.mv(v)

    b_norm, tol, x, r = initial_state(system)
    safe_b_norm = jnp.where(b_norm == 0, 1, b_norm)
    r_norm = norm(r)
    Mb_norm = b_norm if precond is None else norm(precond.mv(b))
    ptol = Mb_norm * jnp.minimum(1, tol / safe_b_norm)
    ptol_max_factor = jnp.asarray(1, rdtype)
    # z = M⁻¹ r starts each cycle; GMRES minimises its norm, so it never grows from one cycle
    # to the next in exact arithmetic, which is what the stagnation test relies on.
    z = apply_precond(r)
    z_norm = r_norm if precond is None else norm(z)

    input_ok = jnp.isfinite(b_norm) & jnp.isfinite(r_norm)
    status = jnp.where(
        input_ok, jnp.where(r_norm <= tol, _CONVERGED, _RUNNING), _NONFINITE_INPUT
    ).astype(jnp.int32)
    status = jnp.where((status == _RUNNING) & (max_steps == 0), _MAX_STEPS, status).astype(
        jnp.int32
    )
    history = init_history(max_steps, z_norm)
    k_total = jnp.asarray(0, jnp.int32)
    n_cycles = jnp.asarray(0, jnp.int32)
    # Two row blocks: the first half of a cycle's steps read half the basis.
    basis = BlockedBasis.zeros(m + 1, n, dtype)

    def arnoldi_cycle(x, z, beta, ptol, k_total, history, basis):
        # beta = 0 with r ≠ 0: the preconditioner annihilates the residual (singular M).
        beta_ok = beta > 0
        basis = basis.set_row(0, z / jnp.where(beta_ok, beta, 1).astype(dtype), 0)
        hess = jnp.zeros((m, m + 1), dtype)  # row j holds column j of the Hessenberg matrix
        cs = jnp.ones(m, dtype)  # identity rotations until set
        sn = jnp.zeros(m, dtype)
        g = set_entry(jnp.zeros(m + 1, dtype), 0, beta)
        inner = (
            jnp.asarray(0, jnp.int32),  # j: columns done in this cycle
            k_total,
            basis,
            hess,
            cs,
            sn,
            g,
            beta,  # presid
            ~beta_ok,  # breakdown
            history,
        )

        def inner_body(state, *, phase):
            j, k_total, basis, hess, cs, sn, g, _, _, history = state
            active = _member_active(state, basis.phase_end(phase), max_steps, ptol, axis_name)
            keep = None if active is None else ~active
            w = apply_precond(operator.mv(basis.row(j, phase)))
            h0 = norm(w)
            # CGS2 against rows 0..j (later rows are stale or zero and are masked out).
            w, h = basis.project(w, j, phase)
            w, h2 = basis.project(w, j, phase)
            h = h + h2
            h1 = norm(w)
            breakdown = h1 <= eps * h0
            basis = basis.set_row(
                j + 1, w / jnp.where(breakdown, 1, h1).astype(dtype), phase, keep=keep
            )
            h = set_entry(h, j + 1, jnp.where(breakdown, 0, h1))

            # Apply the cycle's previous rotations in order. Rotations j, j+1, ... are still
            # the identity (cs = 1, sn = 0), so a fixed-length scan needs no masking.
            def rotate(t, rotation):
                c, s, h_next = rotation
                return -jnp.conj(s) * t + c * h_next, c * t + s * h_next

            last, rotated = jax.lax.scan(rotate, h[0], (cs, sn, h[1:]))
            h = jnp.concatenate([rotated, last[None]])
            c, s, mag = _givens(h[j], h[j + 1])
            h = jax.lax.dynamic_update_slice(h, jnp.stack([mag, jnp.zeros_like(mag)]), (j,))
            cs = set_entry(cs, j, c)
            sn = set_entry(sn, j, s)
            g_next = -jnp.conj(s) * g[j]
            g = jax.lax.dynamic_update_slice(g, jnp.stack([c * g[j], g_next]), (j,))
            # An overflowing product (non-finite h0/h1) must not pass for a lucky breakdown.
            finite = jnp.isfinite(h0) & jnp.isfinite(h1)
            presid = jnp.where(finite, jnp.abs(g_next), jnp.nan)
            hess = set_entry(hess, j, h)
            history = set_entry_unless(history, k_total + 1, presid, keep)
            small = (j + 1, k_total + 1, hess, cs, sn, g, presid, breakdown)
            if active is not None:
                small = jax.tree.map(partial(jnp.where, active), small, state[:2] + state[3:9])
            j, k_total, hess, cs, sn, g, presid, breakdown = small
            return j, k_total, basis, hess, cs, sn, g, presid, breakdown, history

        for phase in range(basis.phases):
            cond = _cycle_continues(basis.phase_end(phase), max_steps, ptol, axis_name)
            inner = jax.lax.while_loop(cond, partial(inner_body, phase=phase), inner)
        j, k_total, basis, hess, _, _, g, presid, breakdown, history = inner
        # Solve the j×j upper-triangular least-squares system. The columns ≥ j of `hess` are
        # still zero, so their diagonal becomes 1 with a zero right-hand side (y = 0 there).
        # As in SciPy, an exactly zero diagonal entry of a used column (a singular Hessenberg
        # matrix) is pseudo-solved by dropping that component.
        tri = hess[:, :m].T
        diag_zero = jnp.diagonal(tri) == 0
        tri = tri + jnp.diag(diag_zero.astype(dtype))
        rhs = jnp.where(diag_zero, 0, g[:m])
        y = jax.scipy.linalg.solve_triangular(tri, rhs, lower=False)
        # If the cycle produced NaN/inf, keep the last good iterate (the status reports it).
        y = jnp.where(jnp.all(jnp.isfinite(y)), y, 0)
        x = x + basis.combine(y)
        return x, k_total, history, basis, presid, breakdown

    carry = (x, z, z_norm, r_norm, ptol, ptol_max_factor, k_total, n_cycles, history, basis, status)

    def outer_cond(carry):
        return carry[-1] == _RUNNING

    def outer_body(carry):
        x, z, z_norm, _, ptol, ptol_max_factor, k_total, n_cycles, history, basis, _ = carry
        x, k_total, history, basis, presid, breakdown = arnoldi_cycle(
            x, z, z_norm, ptol, k_total, history, basis
        )
        new_z, new_z_norm, new_norm, ptol, ptol_max_factor, status = _after_restart(
            b - operator.mv(x),
            precond,
            norm,
            presid,
            ptol,
            ptol_max_factor,
            z_norm,
            tol,
            eps,
            breakdown=breakdown,
            k_total=k_total,
            max_steps=max_steps,
        )
        return (
            x,
            new_z,
            new_z_norm,
            new_norm,
            ptol,
            ptol_max_factor,
            k_total,
            n_cycles + 1,
            history,
            basis,
            status,
        )

    x, _, _, r_norm, _, _, k_total, n_cycles, history, _, status = jax.lax.while_loop(
        outer_cond, outer_body, carry
    )
    result = _result_of(status)
    stats = {
        "num_steps": k_total,
        "max_steps": jnp.asarray(max_steps, jnp.int32),
        "num_restarts": n_cycles,
        "residual_norm": r_norm,
        "residual_history": history,
    }
    return finish(x, result, stats, throw=throw)


def _cycle_test(state, limit, max_steps, ptol):
    """Whether one solve's restart cycle goes on: the inner-loop test of `gmres` and `gcrodr`.

    The loop state is `(j, k_total, ..., presid, breakdown, history)`. Like SciPy, every cycle
    does at least one iteration before testing the residual estimate `presid`.
    """
    j, k_total, presid, breakdown = state[0], state[1], state[-3], state[-2]
    return (
        (j < limit)
        & (k_total < max_steps)
        & ~breakdown
        & ((j == 0) | ((presid > ptol) & jnp.isfinite(presid)))
    )


def _cycle_continues(limit, max_steps, ptol, axis_name):
    """The inner `while_loop`'s predicate: `_cycle_test`, or with `axis_name` its maximum.

    With `axis_name` (the solves `vmap`ped over that named axis), the loop goes on while any
    member's test holds. The predicate is then one for the whole batch, so `vmap` does not
    select between the old and new carry (the whole Krylov basis) after every step; the loop
    body leaves a finished member's state unchanged itself (`_member_active`).
    """

    def cond(state):
        going = _cycle_test(state, limit, max_steps, ptol)
        if axis_name is None:
            return going
        return jax.lax.pmax(going.astype(jnp.int32), axis_name) > 0

    return cond


def _member_active(state, limit, max_steps, ptol, axis_name):
    """None without `axis_name`; else whether this member's step counts (see above)."""
    return None if axis_name is None else _cycle_test(state, limit, max_steps, ptol)


def _after_restart(
    r,
    precond,
    norm,
    presid,
    ptol,
    ptol_max_factor,
    z_norm,
    tol,
    eps,
    *,
    breakdown,
    k_total,
    max_steps,
):
    """SciPy's end-of-cycle bookkeeping, shared by `gmres` and `gcrodr`.

    From the true residual `r` after a cycle: the (preconditioned) residual for the next
    cycle and both norms, the next inner tolerance, its adaptive factor (scipy gh-8400:
    shrink it after a cycle whose inner estimate met it, grow it otherwise) and the loop
    status code. `precond` is the (left) preconditioner operator, or None.
    """
    new_norm = norm(r)
    if precond is None:
        new_z, new_z_norm = r, new_norm
    else:
        new_z = precond.mv(r)
        new_z_norm = norm(new_z)
    ptol_max_factor = jnp.where(
        presid <= ptol,
        jnp.maximum(eps, 0.25 * ptol_max_factor),
        jnp.minimum(1, 1.5 * ptol_max_factor),
    )
    ptol = presid * jnp.minimum(ptol_max_factor, tol / jnp.where(new_norm > 0, new_norm, 1))
    status = jnp.where(
        ~jnp.isfinite(new_norm) | ~jnp.isfinite(new_z_norm) | ~jnp.isfinite(presid),
        _NONFINITE,
        jnp.where(
            new_norm <= tol,
            _CONVERGED,
            jnp.where(
                breakdown,
                _BREAKDOWN,
                jnp.where(
                    k_total >= max_steps,
                    _MAX_STEPS,
                    jnp.where(new_z_norm >= z_norm, _STAGNATION, _RUNNING),
                ),
            ),
        ),
    ).astype(jnp.int32)
    return new_z, new_z_norm, new_norm, ptol, ptol_max_factor, status


def _result_of(status):
    """The `RESULTS` member of a loop status code."""
    result = RESULTS.nonfinite_input
    for code, member in (
        (_NONFINITE, RESULTS.nonfinite),
        (_STAGNATION, RESULTS.stagnation),
        (_BREAKDOWN, RESULTS.breakdown),
        (_MAX_STEPS, RESULTS.max_steps_reached),
        (_CONVERGED, RESULTS.successful),
    ):
        result = RESULTS.where(status == code, member, result)
    return result
