"""The (preconditioned) conjugate gradient method."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike, Inexact

from .._core import RESULTS, Solution
from ._common import (
    KrylovSystem,
    dot,
    finish,
    init_history,
    initial_state,
    prepare_system,
    set_entry,
)


def cg(
    A: Any,
    b: Inexact[ArrayLike, " n"],
    *,
    x0: Inexact[ArrayLike, " n"] | None = None,
    rtol: float | ArrayLike = 1e-5,
    atol: float | ArrayLike = 0.0,
    max_steps: int | None = None,
    M: Any = None,
    throw: bool = True,
) -> Solution:
    r"""Solve `A x = b` for symmetric (Hermitian) positive definite `A` by conjugate gradients.

    The iteration is the textbook (preconditioned) CG with a recursively updated residual, the
    same recurrence as `scipy.sparse.linalg.cg` and `jax.scipy.sparse.linalg.cg`, so iteration
    counts compare one to one with SciPy's. It stops as soon as

    $$\|r_k\| \le \max(\mathrm{rtol}\,\|b\|,\ \mathrm{atol})$$

    where $r_k$ is the recursive residual (SciPy stops on a strict `<`; the two differ only on
    exact ties). One iteration costs one product with `A`, one application of `M` and two
    inner products (three with a preconditioner, since then $r^\top z \ne \|r\|^2$).

    The loop is a `lax.while_loop`: `jit` and `vmap` work; reverse-mode differentiation
    through the solve does not (forward-mode does). Under `vmap` the loop runs until the
    slowest member finishes, but each member stops updating when it converges, so
    `stats["num_steps"]` is per member.

    Args:
        A: the operator: a sciml operator, a dense `n × n` array, a
            `jax.experimental.sparse.BCOO`, a SciPy sparse matrix, a lineax operator, or a
            callable `x -> A @ x`. It must be symmetric positive definite (semi-definite with
            a consistent `b` also works).
        b: the right-hand side, a 1-D floating array; the solve runs in its dtype.
        x0: the initial guess (zeros by default).
        rtol: relative tolerance on the residual norm. May be a (traced) array: changing it
            does not recompile.
        atol: absolute tolerance on the residual norm. Same rules as `rtol`.
        max_steps: the maximum number of iterations (a static int). Defaults to SciPy's 10·n,
            capped at 100 000 so that the residual history stays small.
        M: the preconditioner *application* $r \mapsto M^{-1} r$, in any form accepted for
            `A` (as in SciPy, a matrix `M` is applied as `M @ r`, so it should approximate
            $A^{-1}$), e.g. `sciml.solvers.jacobi(A)`. Must be symmetric positive definite.
        throw: if True, an unsuccessful solve raises an `EquinoxRuntimeError` carrying the
            result's message (also under `jit`). Use False inside sharded computations and
            check `sol.result` on the host.

    Returns:
        A `Solution` with `value` the approximate solution (the last good iterate if the
        iteration broke down), `result` one of `successful`, `max_steps_reached`,
        `breakdown` (non-positive curvature $p^\top A p \le 0$ or $r^\top M^{-1} r \le 0$:
        `A` or `M` is probably not SPD, use `gmres`), `nonfinite` (the operator or
        preconditioner produced NaN/inf) or `nonfinite_input` (NaN/inf in `b`, `x0` or
        `A @ x0`; returned without iterating). `stats` holds `num_steps`, `max_steps`,
        `residual_norm` (the final recursive residual norm) and `residual_history` of length
        `max_steps + 1`: entry 0 is $\|b - A x_0\|$, entry k the recursive residual norm after
        k iterations, NaN after the last iteration.

    Raises:
        ValueError: at trace time, for a `b` that is not a 1-D floating array, an operator or
            preconditioner of the wrong size or dtype, a non-square operator, an `x0` of the
            wrong shape or dtype, a negative tolerance, `rtol = atol = 0`, an `rtol` below the
            dtype's resolution, or a negative `max_steps`.
        EquinoxRuntimeError: at run time, if `throw` and the solve was not successful.

    References:
        M. R. Hestenes and E. Stiefel, "Methods of conjugate gradients for solving linear
        systems", J. Res. Nat. Bur. Standards 49 (1952). Y. Saad, "Iterative Methods for
        Sparse Linear Systems", 2nd ed., SIAM (2003), Algorithm 9.1 (preconditioned CG).
    """
    system = prepare_system(A, b, x0=x0, M=M, rtol=rtol, atol=atol, max_steps=max_steps)
    return _solve(system, throw=throw)


# Compiled as a whole (also when called eagerly) and cached on the system's structure, so
# repeated eager solves of same-shaped systems compile once.
@eqx.filter_jit
def _solve(system: KrylovSystem, *, throw: bool) -> Solution:
    operator, precond, b = system.operator, system.preconditioner, system.b
    max_steps = system.max_steps

    b_norm, tol, x, r = initial_state(system)
    tol2 = tol * tol
    rs = dot(r, r)
    if precond is None:
        z = r
        gamma = rs
    else:
        z = precond.mv(r)
        gamma = dot(r, z)
    input_ok = jnp.isfinite(b_norm) & jnp.isfinite(rs)
    history = init_history(max_steps, jnp.sqrt(rs))
    # The loop carries the last curvature pAp and rᵀz instead of a status flag: the stopping
    # test reads them directly, so a GPU iteration launches no extra kernel to keep a status.
    # A NaN curvature stops the loop at once, which is how non-finite input exits with 0 steps.
    curvature0 = jnp.where(input_ok, 1, jnp.nan).astype(rs.dtype)
    carry = (jnp.asarray(0, jnp.int32), x, r, z, rs, gamma, curvature0, history)

    def healthy(curvature, gamma, rs):
        ok = (curvature > 0) & (curvature < jnp.inf)
        if precond is not None:
            # rᵀM⁻¹r ≤ 0 (or NaN) with r not yet small means M is not SPD.
            ok = ok & ((gamma > 0) & (gamma < jnp.inf) | (rs <= tol2))
        return ok

    def cond_fun(carry):
        k, _, _, _, rs, gamma, curvature, _ = carry
        return (rs > tol2) & (k < max_steps) & healthy(curvature, gamma, rs)

    def body_fun(carry):
        k, x, r, p, rs, gamma, _, history = carry
        Ap = operator.mv(p)
        pAp = dot(p, Ap)
        step_ok = (pAp > 0) & (pAp < jnp.inf)
        # On failure alpha = 0 keeps the last good iterate; the loop then stops on pAp.
        alpha = jnp.where(step_ok, gamma / jnp.where(step_ok, pAp, 1), 0).astype(b.dtype)
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = dot(r, r)
        if precond is None:
            z = r
            gamma_new = rs_new
        else:
            z = precond.mv(r)
            gamma_new = dot(r, z)
        beta = (gamma_new / gamma).astype(b.dtype)
        p = z + beta * p
        # A failed step (alpha = 0) leaves r, hence rs, unchanged, so rs needs no select; it
        # is not counted, and its history entry rewrites the previous one with the same value.
        k = k + step_ok.astype(jnp.int32)
        history = set_entry(history, k, jnp.sqrt(rs_new))
        return k, x, r, p, rs_new, gamma_new, pAp, history

    k, x, _, _, rs, gamma, curvature, history = jax.lax.while_loop(cond_fun, body_fun, carry)

    finite = jnp.isfinite(curvature) & jnp.isfinite(rs)
    if precond is not None:
        finite = finite & jnp.isfinite(gamma)
    result = RESULTS.where(
        ~input_ok,
        RESULTS.nonfinite_input,
        RESULTS.where(
            ~finite,
            RESULTS.nonfinite,
            RESULTS.where(
                rs <= tol2,
                RESULTS.successful,
                RESULTS.where(
                    healthy(curvature, gamma, rs),
                    RESULTS.max_steps_reached,
                    RESULTS.breakdown,
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
