"""GCRO-DR: restarted GMRES with a recycled deflation space (Krylov subspace recycling)."""

import operator as _operator
from functools import partial
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, Int

from .._core import Solution, check_dtype, is_concrete
from ._arnoldi import BlockedBasis
from ._common import (
    HIGHEST,
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
from ._gmres import (
    _CONVERGED,
    _MAX_STEPS,
    _NONFINITE_INPUT,
    _RUNNING,
    _after_restart,
    _cycle_continues,
    _givens,
    _member_active,
    _result_of,
)

# Orthogonal (subspace) iterations of the eigen step without `eig`. The invariant subspace
# only has to be good enough to recycle: on the benchmark's eight float64 Darcy sequences
# (s = 34, 66; tol 1e-5, 1e-8; no and Jacobi preconditioning), piecewise Darcy and
# Helmholtz, 10, 20 and 60 iterations all gave mean iteration counts within 2 % of the `eig`
# path (float32 runs scatter by ±7 % whatever the count). Each iteration is a small QR, a
# sizeable share of a cycle's dense work on a CPU, so 20 rather than the 60 used before.
_SUBSPACE_ITERATIONS = 20


class Recycle(eqx.Module):
    """A recycled deflation space of GCRO-DR: `A U = C` with orthonormal `C`.

    Fixed-shape: `U` and `C` always have `k` columns, of which the leading `size` are in use
    (the rest are zero). `Recycle.empty(n, k, dtype)` is the space a first solve starts from.
    `C` refers to the (preconditioned) operator of the solve that produced it; `gcrodr`
    rebuilds it from `U` on entry, so the same `Recycle` can be passed to a new matrix.

    Attributes:
        U: the recycled directions, shape (n, k).
        C: `M⁻¹ A U` for the last operator and preconditioner, orthonormal columns, (n, k).
        size: how many leading columns are in use (an int32 array; batched under `vmap`).
    """

    U: Inexact[Array, "n k"]
    C: Inexact[Array, "n k"]
    size: Int[Array, ""]

    @classmethod
    def empty(cls, n: int, k: int, dtype: Any = None) -> "Recycle":
        """An empty recycle space (`size = 0`) for systems of size `n` and `k` columns."""
        dtype = np.dtype(jnp.result_type(float)) if dtype is None else check_dtype(dtype)
        n, k = _static_int(n, "n", 1), _static_int(k, "k", 0)
        zeros = jnp.zeros((n, k), dtype)
        return cls(U=zeros, C=zeros, size=jnp.asarray(0, jnp.int32))

    @property
    def n(self) -> int:
        return self.U.shape[-2]

    @property
    def k(self) -> int:
        return self.U.shape[-1]


def _static_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value!r}.")
    try:
        value = _operator.index(value)
    except TypeError as err:
        raise ValueError(
            f"`{name}` must be a static Python int >= {minimum}, got {type(value).__name__}."
        ) from err
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.")
    return value


def gcrodr(
    A: Any,
    b: Inexact[ArrayLike, " n"],
    *,
    recycle: Recycle | None = None,
    x0: Inexact[ArrayLike, " n"] | None = None,
    m: int = 40,
    k: int = 20,
    rtol: float | ArrayLike = 1e-5,
    atol: float | ArrayLike = 0.0,
    M: Any = None,
    max_steps: int | None = None,
    ritz: Literal["subspace", "eig"] = "subspace",
    throw: bool = True,
    axis_name: str | None = None,
) -> tuple[Solution, Recycle]:
    r"""Solve `A x = b` by GCRO-DR(m, k), recycling a deflation space between solves.

    GCRO-DR is restarted GMRES that keeps `k` harmonic Ritz vectors (approximate
    eigenvectors of the smallest harmonic Ritz values) from one restart cycle to the next,
    and from one system to the next: pass the returned `Recycle` to the next solve. On a
    sequence of similar systems (a sorted batch of PDE instances) the recycled space removes
    the slow, small-eigenvalue part of the spectrum, so later solves need several times
    fewer iterations than GMRES(m).

    Each cycle (Parks et al. 2006, §2.2–2.3; the left-preconditioned operator
    $\hat A = M^{-1} A$ with recycled pair $\hat A U = C$, $C^\top C = I$):

    - on entry, `C` is rebuilt for *this* operator: $Z = \hat A U$ (`size` products),
      $Z = QR$, $C \leftarrow Q$, $U \leftarrow U R^{-1}$; then the residual is projected,
      $x \mathrel{+}= U C^\top \hat r$, $\hat r \mathrel{-}= C C^\top \hat r$;
    - Arnoldi on $(I - CC^\top)\hat A$ for up to `m - size` steps (`m` counts recycled plus
      new vectors, as HPDDM/PETSc's `-ksp_gmres_restart`), classical Gram–Schmidt applied
      twice against $[C, V]$: $\hat A V_j = C B_j + V_{j+1} \bar H_j$; the correction
      $x \mathrel{+}= V_j y - U B_j y$ with $y$ the GMRES least-squares solution (Givens);
    - the recycle update after every cycle (including the last one of a solve): harmonic
      Ritz pairs of $\hat A$ on $\hat V = [U D, V_j]$, $\hat A \hat V = \hat W G$, i.e.
      $G^\top G z = \theta\, G^\top \hat W^\top \hat V z$; the `k` smallest $|\theta|$ span
      $P$, and $C \leftarrow \hat W G P$, $U \leftarrow \hat V P$ after orthonormalising
      $G P$. This is solved through the QR factorisation $G = Q_G R_G$ as the standard
      eigenproblem of $Q_G^\top \hat W^\top \hat V R_G^{-1}$ (the largest $|\mu| = 1/|\theta|$),
      which avoids squaring the condition number of $G$. Only the span of the selected
      vectors matters, so:

      * `ritz="subspace"` (default) computes it by orthogonal (subspace) iteration with QR
        only: no nonsymmetric eigensolver, so it runs on CPU, GPU and TPU alike;
      * `ritz="eig"` uses `jnp.linalg.eig` (complex pairs split into real and imaginary
        parts). JAX implements nonsymmetric `eig` on CPU (LAPACK) and, in recent versions,
        on NVIDIA GPUs; not on TPU. The iteration counts of both agree within a few percent.

    The stopping logic is that of `sciml.solvers.gmres` (SciPy's): the inner test compares
    the Givens estimate of the preconditioned residual with an adaptive threshold, and the
    solve succeeds when the *true* residual $\|b - A x\| \le \max(\mathrm{rtol}\|b\|,
    \mathrm{atol})$, recomputed after each cycle. With `k = 0` the method is GMRES(m) and
    takes the same iterations as `gmres(..., restart=m)`.

    Fixed shapes throughout (`U`, `C` have `k` columns with a count `size` of those in use;
    the basis has `m + 1` rows), so the solve traces once per (n, m, k, dtype) and works
    under `jit`, `vmap` and `lax.scan` carrying the `Recycle`; reverse-mode differentiation
    does not (the cycles are `lax.while_loop`s).

    Args:
        A: the operator, in any form `sciml.solvers.gmres` accepts (a stencil operator, a
            dense or BCOO matrix, a callable, a lineax operator). Square and nonsingular.
        b: the right-hand side, a 1-D floating array; the solve runs in its dtype.
        recycle: the recycle space from a previous solve (of this or another matrix of the
            same size), or None to start empty (the first cycle is then plain GMRES(m)).
        x0: the initial guess (zeros by default).
        m: vectors per cycle, recycled plus new (a static int, capped at `n`). SKR: 40.
        k: the recycle size, `0 <= k < m` (a static int). SKR: 20.
        rtol: relative tolerance on the true residual norm; may be a traced array.
        atol: absolute tolerance on the true residual norm; may be a traced array.
        M: a left preconditioner application $r \mapsto M^{-1} r$ (e.g.
            `sciml.solvers.jacobi(A)`), as for `gmres`.
        max_steps: the maximum total number of Arnoldi iterations (a static int); defaults
            to min(10·n, 100 000). Sizes the `residual_history` buffer.
        ritz: "subspace" (QR-only orthogonal iteration; portable) or "eig"
            (`jnp.linalg.eig`; CPU/GPU reference).
        throw: if True, an unsuccessful solve raises at run time (also under `jit`); pass
            False inside `vmap`-ed, scanned or sharded code and check `sol.result`.
        axis_name: under `jax.vmap(..., axis_name=name)`, that name: restart cycles in
            lock-step, as for `gmres` (same results; `sciml.operators.datagen` passes it for
            its chains).

    Returns:
        `(solution, recycle)`: a `Solution` as for `gmres` (`result` one of `successful`,
        `max_steps_reached`, `breakdown`, `stagnation`, `nonfinite`, `nonfinite_input`) and
        the new `Recycle` for the next solve. `stats` holds `num_steps` (Arnoldi iterations,
        the count PETSc/HPDDM report), `num_matvecs` (all products with `A`: Arnoldi steps,
        the `size` products that rebuild `C`, and one per cycle for the true residual, plus
        one for the initial residual when `x0` or a recycle space is given), `num_restarts`
        (cycles), `max_steps`, `recycle_size`, `residual_norm` (the true residual norm at the
        end) and `residual_history` (length `max_steps + 1`; entry 0 the initial
        preconditioned residual norm, entry i the Givens estimate after i Arnoldi steps, NaN
        after the last).

    Raises:
        ValueError: at trace time, for the bad inputs `gmres` refuses, `m < 1`, `k < 0`,
            `k >= min(m, n)`, an unknown `ritz`, or a `recycle` whose shape or dtype does
            not match `(n, k)` and `b`.
        EquinoxRuntimeError: at run time, if `throw` and the solve was not successful.

    References:
        M. L. Parks, E. de Sturler, G. Mackey, D. D. Johnson and S. Maiti, "Recycling Krylov
        subspaces for sequences of linear systems", SIAM J. Sci. Comput. 28(5) (2006),
        §2.2–2.4 (GCRO-DR, harmonic Ritz selection). H. Wang et al., "Accelerating Data
        Generation for Neural Operators via Krylov Subspace Recycling" (SKR), ICLR 2024
        (m = 40, k = 20 on sorted sequences).
    """
    m = _static_int(m, "m", 1)
    k = _static_int(k, "k", 0)
    if ritz not in ("subspace", "eig"):
        raise ValueError(f"`ritz` must be 'subspace' or 'eig', got {ritz!r}.")
    system = prepare_system(A, b, x0=x0, M=M, rtol=rtol, atol=atol, max_steps=max_steps)
    n = system.b.shape[0]
    m = min(m, n)
    if k >= m:
        raise ValueError(
            f"the recycle size `k` ({k}) must be smaller than the cycle size `m` "
            f"(= min(m, n) = {m}): each cycle needs at least one new Arnoldi vector. SKR uses "
            f"m = 40, k = 20."
        )
    if recycle is None:
        recycle = Recycle.empty(n, k, system.b.dtype)
    else:
        if not isinstance(recycle, Recycle):
            raise ValueError(
                f"`recycle` must be a `Recycle` (from a previous `gcrodr` call or "
                f"`Recycle.empty(n, k, dtype)`), got {type(recycle).__name__}."
            )
        if recycle.U.shape != (n, k) or recycle.C.shape != (n, k):
            hint = (
                f"Pass the same `k` as the solve that produced it (or `Recycle.empty({n}, {k})`)."
                if recycle.U.shape[:1] == (n,)
                else "It was made for a system of another size; start with `recycle=None`."
            )
            raise ValueError(
                f"`recycle` holds U of shape {recycle.U.shape} and C of shape "
                f"{recycle.C.shape}, but this solve needs (n, k) = ({n}, {k}). {hint}"
            )
        if recycle.U.dtype != system.b.dtype or recycle.C.dtype != system.b.dtype:
            raise ValueError(
                f"`recycle` has dtype {recycle.U.dtype} but `b` has dtype {system.b.dtype}."
            )
        if jnp.shape(recycle.size) != ():
            raise ValueError(
                f"`recycle.size` must be a scalar, got shape {jnp.shape(recycle.size)}; "
                f"map over a batch of recycle spaces with `jax.vmap`."
            )
        # (Traced when the recycle space is carried through `lax.scan`.)
        if is_concrete(recycle.size) and not 0 <= int(recycle.size) <= k:
            raise ValueError(
                f"`recycle.size` ({int(recycle.size)}) must lie in [0, k = {k}]: it counts the "
                f"filled columns of U and C."
            )
    return _solve(system, recycle, m=m, k=k, ritz=ritz, throw=throw, axis_name=axis_name)


def _matmul(a, b):
    return jnp.matmul(a, b, precision=HIGHEST)


def _upper_solve(R, B):
    """`R⁻¹ B` for a small upper-triangular `R` by row-wise back substitution.

    XLA:CPU's triangular-solve and LU kernels with a matrix right-hand side take ~10 ms at
    60×60; this loop of vector–matrix products takes well under a millisecond.
    """
    p = R.shape[0]

    def row(t, X):
        i = p - 1 - t
        # Rows ≤ i of X are still zero, so the full-row product only uses rows > i.
        value = (B[i] - _matmul(R[i], X)) / R[i, i]
        return X.at[i].set(value)

    return jax.lax.fori_loop(0, p, row, jnp.zeros_like(B))


def _small_inverse(R):
    return _upper_solve(R, jnp.eye(R.shape[0], dtype=R.dtype))


def _tall_qr(Z, valid):
    """Thin QR of a tall (n, k) matrix by classical Gram–Schmidt applied twice per column.

    Only matrix–vector products with the (n, k) block, which batch well: on XLA:CPU (JAX
    0.10.1, n = 4096, k = 20) four chains under `vmap` take 6 ms this way and 10 ms with
    `jnp.linalg.qr` (one chain: 1.8 ms vs 1.1 ms; once per system either way). Orthogonal to
    working precision (CGS2). Invalid columns (zero) give zero columns of Q and a unit
    diagonal in R.
    """
    n, k = Z.shape
    cols = jnp.arange(k, dtype=jnp.int32)

    def column(j, state):
        Q, R = state
        v = Z[:, j]
        before = cols < j
        h = jnp.where(before, _matmul(v, Q), 0)
        v = v - _matmul(Q, h)
        h2 = jnp.where(before, _matmul(v, Q), 0)
        v = v - _matmul(Q, h2)
        r = jnp.sqrt(jnp.sum(v * v))
        ok = valid[j] & (r > 0)
        q = jnp.where(ok, v / jnp.where(ok, r, 1), 0)
        Q = Q.at[:, j].set(q)
        R = R.at[:, j].set(jnp.where(cols == j, jnp.where(ok, r, 0), h + h2))
        return Q, R

    return jax.lax.fori_loop(0, k, column, (jnp.zeros_like(Z), jnp.zeros((k, k), Z.dtype)))


def _rebuild(apply, U, size, k, eps):
    """Rebuild `C = qr(Â U)` for a new operator: returns (U R⁻¹, Q, size')."""
    cols = jnp.arange(k, dtype=jnp.int32)
    valid = cols < size
    U = jnp.where(valid[None, :], U, 0)
    Z = jax.vmap(apply, in_axes=1, out_axes=1)(U)
    Q, R = _tall_qr(Z, valid)
    diag = jnp.abs(jnp.diagonal(R))
    # A (numerically) dependent column ends the usable leading block.
    scale = jnp.max(jnp.where(valid, diag, 0))
    good = valid & (diag > 100 * eps * scale) & jnp.isfinite(diag)
    size = jnp.argmin(jnp.concatenate([good, jnp.zeros(1, bool)])).astype(jnp.int32)
    valid = cols < size
    both = valid[:, None] & valid[None, :]
    R = jnp.where(both, R, jnp.eye(k, dtype=R.dtype))
    U = _matmul(U, _small_inverse(R))
    U = jnp.where(valid[None, :], U, 0)
    C = jnp.where(valid[None, :], Q, 0)
    return U, C, size


def _subspace_seed(rows: int, k: int, dtype) -> np.ndarray:
    # A fixed, well-spread starting block (deterministic, no PRNG key needed): the first k
    # columns favour the recycled slots, the pseudo-random part reaches every direction.
    rng = np.random.default_rng(20060901)
    seed = np.eye(rows, k) + 0.1 * rng.standard_normal((rows, k))
    return np.linalg.qr(seed)[0].astype(dtype)


def _ritz_basis(K, k, ritz):
    """An orthonormal basis (rows × k) of the dominant k-dim invariant subspace of `K`."""
    rows = K.shape[0]
    if ritz == "eig":
        mu, vecs = jnp.linalg.eig(K)
        order = jnp.argsort(-jnp.abs(mu))[:k]
        Z = vecs[:, order]
        # Conjugate pairs: the real and imaginary parts span the same real subspace.
        S = jnp.concatenate([jnp.real(Z), jnp.imag(Z)], axis=1).astype(K.dtype)
        W, _, _ = jnp.linalg.svd(S, full_matrices=False)
        return W[:, :k]
    Z0 = jnp.asarray(_subspace_seed(rows, k, K.dtype))

    def step(_, Z):
        return jnp.linalg.qr(_matmul(K, Z))[0]

    return jax.lax.fori_loop(0, _SUBSPACE_ITERATIONS, step, Z0)


# Compiled as a whole (also when called eagerly) and cached on the system's structure.
@eqx.filter_jit
def _solve(
    system: KrylovSystem,
    recycle: Recycle,
    *,
    m: int,
    k: int,
    ritz: str,
    throw: bool,
    axis_name: str | None,
) -> tuple[Solution, Recycle]:
    operator, precond, b = system.operator, system.preconditioner, system.b
    max_steps = system.max_steps
    dtype = b.dtype
    rdtype = real_dtype(dtype)
    n = b.shape[0]
    eps = np.asarray(np.finfo(rdtype).eps, rdtype)

    def apply_precond(v):
        return v if precond is None else precond.mv(v)

    def apply(v):
        return apply_precond(operator.mv(v))

    b_norm, tol, x, r = initial_state(system)
    num_matvecs = jnp.asarray(0 if system.x0 is None else 1, jnp.int32)

    if k > 0:
        U, C, size = _rebuild(apply, recycle.U, recycle.size, k, eps)
        num_matvecs = num_matvecs + size
        # Residual-optimal start over span U; needs the true residual again (one product).
        z = apply_precond(r)
        y = _matmul(z, C)
        x = x + _matmul(U, y)
        has_space = size > 0
        r = jnp.where(has_space, b - operator.mv(x), r)
        num_matvecs = num_matvecs + has_space.astype(jnp.int32)
    else:
        U = C = jnp.zeros((n, 0), dtype)
        size = jnp.asarray(0, jnp.int32)

    safe_b_norm = jnp.where(b_norm == 0, 1, b_norm)
    r_norm = norm(r)
    Mb_norm = b_norm if precond is None else norm(precond.mv(b))
    ptol = Mb_norm * jnp.minimum(1, tol / safe_b_norm)
    ptol_max_factor = jnp.asarray(1, rdtype)
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
    # Rows past m - k of the basis are only reached by cycles with `size < k` (the first cycles
    # of a chain): with a block boundary there, the steps of the other cycles read 21 rows
    # instead of 41 (m = 40, k = 20). Further cuts gained nothing measurable.
    cuts = (m - k + 1,) if k > 0 else None  # k = 0 is GMRES(m): two halves, as there
    basis = BlockedBasis.zeros(m + 1, n, dtype, cuts=cuts)

    def arnoldi_cycle(x, z, U, C, size, ptol, k_total, history, basis):
        if k > 0:
            # Keep the residual orthogonal to C (exact in exact arithmetic; cheap insurance).
            y = _matmul(z, C)
            x = x + _matmul(U, y)
            z = z - _matmul(C, y)
        beta = norm(z)
        steps = m - size  # new Arnoldi vectors this cycle
        beta_ok = beta > 0
        basis = basis.set_row(0, z / jnp.where(beta_ok, beta, 1).astype(dtype), 0)
        hess = jnp.zeros((m, m + 1), dtype)  # row j: rotated column j of H̄
        raw = jnp.zeros((m, m + 1), dtype)  # row j: column j of H̄ before the rotations
        coupling = jnp.zeros((m, k), dtype)  # row j: Cᵀ Â v_j (column j of B)
        cs = jnp.ones(m, dtype)
        sn = jnp.zeros(m, dtype)
        g = set_entry(jnp.zeros(m + 1, dtype), 0, beta)
        inner = (
            jnp.asarray(0, jnp.int32),
            k_total,
            basis,
            hess,
            raw,
            coupling,
            cs,
            sn,
            g,
            beta,
            ~beta_ok,
            history,
        )

        def phase_limit(phase):
            return jnp.minimum(steps, basis.phase_end(phase))

        def inner_body(state, *, phase):
            j, k_total, basis, hess, raw, coupling, cs, sn, g, _, _, history = state
            active = _member_active(state, phase_limit(phase), max_steps, ptol, axis_name)
            keep = None if active is None else ~active
            w = apply(basis.row(j, phase))
            h0 = norm(w)

            def project(w):
                # One classical Gram–Schmidt pass against [V, C]: both from the same w.
                bc = _matmul(w, C)
                w, h = basis.project(w, j, phase)
                return w - _matmul(C, bc), h, bc

            w, h, bc = project(w)
            w, h2, bc2 = project(w)
            h = h + h2
            h1 = norm(w)
            breakdown = h1 <= eps * h0
            w = jnp.where(breakdown, 0, w / jnp.where(breakdown, 1, h1).astype(dtype))
            basis = basis.set_row(j + 1, w, phase, keep=keep)
            h = set_entry(h, j + 1, jnp.where(breakdown, 0, h1))
            raw = set_entry(raw, j, h)
            coupling = set_entry(coupling, j, bc + bc2)

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
            finite = jnp.isfinite(h0) & jnp.isfinite(h1)
            presid = jnp.where(finite, jnp.abs(g_next), jnp.nan)
            hess = set_entry(hess, j, h)
            history = set_entry_unless(history, k_total + 1, presid, keep)
            small = (j + 1, k_total + 1, hess, raw, coupling, cs, sn, g, presid, breakdown)
            if active is not None:
                small = jax.tree.map(partial(jnp.where, active), small, state[:2] + state[3:11])
            j, k_total, hess, raw, coupling, cs, sn, g, presid, breakdown = small
            return j, k_total, basis, hess, raw, coupling, cs, sn, g, presid, breakdown, history

        state = inner
        for phase in range(basis.phases):
            cond = _cycle_continues(phase_limit(phase), max_steps, ptol, axis_name)
            state = jax.lax.while_loop(cond, partial(inner_body, phase=phase), state)
        (j, k_total, basis, hess, raw, coupling, _, _, g, presid, breakdown, history) = state
        tri = hess[:, :m].T
        diag_zero = jnp.diagonal(tri) == 0
        tri = tri + jnp.diag(diag_zero.astype(dtype))
        rhs = jnp.where(diag_zero, 0, g[:m])
        y = _upper_solve(tri, rhs[:, None])[:, 0]
        y = jnp.where(jnp.all(jnp.isfinite(y)), y, 0)
        x = x + basis.combine(y)
        if k > 0:
            x = x - _matmul(U, _matmul(y, coupling))
            U, C, size = _update_recycle(
                U, C, size, basis.dense(), raw, coupling, j, m=m, k=k, ritz=ritz
            )
        return x, U, C, size, k_total, history, basis, presid, breakdown

    carry = (
        x,
        z,
        z_norm,
        r_norm,
        U,
        C,
        size,
        ptol,
        ptol_max_factor,
        k_total,
        n_cycles,
        num_matvecs,
        history,
        basis,
        status,
    )

    def outer_cond(carry):
        return carry[-1] == _RUNNING

    def outer_body(carry):
        (x, z, z_norm, _, U, C, size, ptol, ptol_max_factor, k_total, n_cycles, nmv, history,
         basis, _) = carry  # fmt: skip
        steps_before = k_total
        x, U, C, size, k_total, history, basis, presid, breakdown = arnoldi_cycle(
            x, z, U, C, size, ptol, k_total, history, basis
        )
        nmv = nmv + (k_total - steps_before) + 1
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
            U,
            C,
            size,
            ptol,
            ptol_max_factor,
            k_total,
            n_cycles + 1,
            nmv,
            history,
            basis,
            status,
        )

    (x, _, _, r_norm, U, C, size, _, _, k_total, n_cycles, num_matvecs, history, _, status) = (
        jax.lax.while_loop(outer_cond, outer_body, carry)
    )
    result = _result_of(status)
    stats = {
        "num_steps": k_total,
        "num_matvecs": num_matvecs,
        "max_steps": jnp.asarray(max_steps, jnp.int32),
        "num_restarts": n_cycles,
        "recycle_size": size,
        "residual_norm": r_norm,
        "residual_history": history,
    }
    if k == 0:
        new_recycle = recycle
    else:
        new_recycle = Recycle(U=U, C=C, size=size)
    return finish(x, result, stats, throw=throw), new_recycle


def _update_recycle(U, C, size, basis, raw, coupling, j_used, *, m, k, ritz):
    """The GCRO-DR recycle update after a cycle of `j_used` Arnoldi steps (Parks et al. §2.3).

    Slots 0..k-1 of the small problem are the recycled directions (in use below `size`),
    slots k..k+m-1 the Arnoldi vectors (in use below `j_used`). Unused slots get a unit
    column in an otherwise empty row of G and zero rows/columns in ŴᵀV̂, so the small
    matrices stay well posed and those directions get eigenvalue 0 (never selected).
    """
    dtype = U.dtype
    rdtype = real_dtype(dtype)
    eps = np.asarray(np.finfo(rdtype).eps, rdtype)
    slots = k + m
    rec = jnp.arange(k, dtype=jnp.int32)
    arn = jnp.arange(m, dtype=jnp.int32)
    valid_rec = rec < size
    valid_arn = arn < j_used
    # Column scaling of U (G's D block): Ũ = U D, D = diag(1/‖u_i‖).
    u_norms = jnp.sqrt(jnp.sum(U * U, axis=0))
    d = jnp.where(valid_rec, 1 / jnp.where(valid_rec & (u_norms > 0), u_norms, 1), 1)
    U_scaled = jnp.where(valid_rec[None, :], U * d[None, :].astype(dtype), 0)

    # G = [[D, B], [0, H̄]], (k+m+1) × (k+m).
    hbar = jnp.where(valid_arn[None, :], raw.T, 0)  # (m+1, m)
    unused_unit = (
        jnp.zeros((m + 1, m), dtype).at[arn + 1, arn].set(jnp.where(valid_arn, 0, 1).astype(dtype))
    )
    hbar = hbar + unused_unit
    B = jnp.where(valid_arn[None, :] & valid_rec[:, None], coupling.T, 0)  # (k, m)
    top = jnp.concatenate([jnp.diag(d.astype(dtype)), B], axis=1)
    bottom = jnp.concatenate([jnp.zeros((m + 1, k), dtype), hbar], axis=1)
    G = jnp.concatenate([top, bottom], axis=0)

    # X = Ŵᵀ V̂ = [[Cᵀ Ũ, 0], [V_{m+1}ᵀ Ũ, [I; 0]]].
    # Rows past j_used are stale (finite: a solve starts from a zero basis and a non-finite
    # cycle ends it); the small factors that meet them are masked, not the (m+1) × n basis.
    basis_rows_ok = jnp.arange(m + 1, dtype=jnp.int32) <= j_used
    CtU = _matmul(C.T, U_scaled)
    VtU = jnp.where(basis_rows_ok[:, None], _matmul(basis, U_scaled), 0)
    eye = jnp.where(valid_arn[None, :], jnp.eye(m + 1, m, dtype=dtype), 0)
    X = jnp.concatenate(
        [
            jnp.concatenate([CtU, jnp.zeros((k, m), dtype)], axis=1),
            jnp.concatenate([VtU, eye], axis=1),
        ],
        axis=0,
    )

    QG, RG = jnp.linalg.qr(G)
    # K = Q_Gᵀ X R_G⁻¹, similar to (GᵀG)⁻¹ Gᵀ X; its largest |μ| are the smallest |θ|.
    QtX = _matmul(QG.T, X)
    RG_inv = _small_inverse(RG)
    K = _matmul(QtX, RG_inv)
    W_ritz = _ritz_basis(K, k, ritz)

    # Fewer usable directions than k: keep all of them (span of the valid slots).
    valid_dims = size + j_used
    new_size = jnp.minimum(k, valid_dims).astype(jnp.int32)
    cols = jnp.arange(k, dtype=jnp.int32)
    slot_of_col = jnp.where(cols < size, cols, k + cols - size)
    select = (
        jnp.zeros((slots, k), dtype).at[slot_of_col, cols].set((cols < valid_dims).astype(dtype))
    )
    W_all = jnp.linalg.qr(_matmul(RG, select))[0]
    W = jnp.where(valid_dims <= k, W_all, W_ritz)
    keep = cols < new_size
    W = jnp.where(keep[None, :], W, 0)

    # C = Ŵ Q_G W, U = V̂ R_G⁻¹ W (then Â U = Ŵ G R_G⁻¹ W = C and CᵀC = I).
    QW = _matmul(QG, W)
    PW = _matmul(RG_inv, W)
    QW_arn = jnp.where(basis_rows_ok[:, None], QW[k:], 0)
    PW_arn = jnp.where(valid_arn[:, None], PW[k:], 0)
    # One product with the basis for both (U's coefficient of the last row is zero).
    PW_arn = jnp.concatenate([PW_arn, jnp.zeros((1, k), dtype)])
    VtW = _matmul(basis.T, jnp.concatenate([QW_arn, PW_arn], axis=1))
    C_new = _matmul(C, QW[:k]) + VtW[:, :k]
    U_new = _matmul(U_scaled, PW[:k]) + VtW[:, k:]
    C_new = jnp.where(keep[None, :], C_new, 0)
    U_new = jnp.where(keep[None, :], U_new, 0)

    ok = (j_used > 0) & jnp.all(jnp.isfinite(U_new)) & jnp.all(jnp.isfinite(C_new))
    del eps
    return (
        jnp.where(ok, U_new, U),
        jnp.where(ok, C_new, C),
        jnp.where(ok, new_size, size).astype(jnp.int32),
    )
