"""GCRO-DR (Krylov recycling): GMRES equivalence at k = 0, recycle invariants, gains, errors."""

import functools
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from equinox import EquinoxRuntimeError

from sciml import problems
from sciml._core import RESULTS
from sciml.solvers import jacobi
from sciml.solvers._gcrodr import Recycle, gcrodr

from . import _problems as P

RUNTIME_ERRORS = (EquinoxRuntimeError, jax.errors.JaxRuntimeError)

_jit_gcrodr = jax.jit(gcrodr, static_argnames=("m", "k", "max_steps", "ritz", "throw"))


def jit_gcrodr(A, b, *, recycle=None, m=20, k=10, rtol=1e-8, M=None, ritz="subspace"):
    return _jit_gcrodr(
        A, b, recycle=recycle, m=m, k=k, rtol=rtol, atol=0.0, M=M, max_steps=None,
        ritz=ritz, throw=False,
    )  # fmt: skip


@functools.cache
def darcy_sequence(grid, n_samples):
    return problems.darcy(jax.random.key(11), n_samples, grid, dtype=jnp.float64)


def _preconditioned(A, M):
    def apply(v):
        w = A.mv(v)
        return w if M is None else M.mv(w)

    return jax.vmap(apply, in_axes=1, out_axes=1)


@pytest.mark.parametrize(
    "name,precondition",
    [
        ("darcy-lognormal", True),
        pytest.param("convection-diffusion", False, marks=pytest.mark.slow),
        pytest.param("helmholtz-indefinite", False, marks=pytest.mark.slow),
    ],
)
def test_k0_is_gmres(name, precondition):
    builder = {
        "darcy-lognormal": P.darcy_lognormal,
        "convection-diffusion": P.convection_diffusion,
        "helmholtz-indefinite": P.helmholtz,
    }[name]
    problem = builder()
    M = jacobi(problem.operator) if precondition else None
    sol, recycle = gcrodr(problem.operator, problem.rhs, m=40, k=0, rtol=1e-8, M=M, throw=False)
    ref = P.jit_gmres(problem.operator, problem.rhs, rtol=1e-8, restart=40, M=M)
    assert sol.result == RESULTS.successful
    assert abs(int(sol.stats["num_steps"]) - int(ref.stats["num_steps"])) <= 1
    assert recycle.U.shape == (problem.rhs.shape[0], 0)
    # Arnoldi steps plus one true residual per cycle.
    assert int(sol.stats["num_matvecs"]) == int(sol.stats["num_steps"]) + int(
        sol.stats["num_restarts"]
    )


@functools.partial(jax.jit, static_argnames=("precondition", "ritz"))
def _solve_and_check(A, b, recycle, rtol=1e-8, *, precondition=False, ritz="subspace"):
    # One compiled function per configuration (the test suite's shared GCRO-DR(20, 10)):
    # the solve and every invariant, no eager ops.
    M = jacobi(A) if precondition else None
    sol, recycle = gcrodr(A, b, recycle=recycle, m=20, k=10, rtol=rtol, M=M, ritz=ritz, throw=False)
    true = jnp.linalg.norm(b - A.mv(sol.value)) / jnp.linalg.norm(b)
    orth = jnp.linalg.norm(recycle.C.T @ recycle.C - jnp.eye(10, dtype=b.dtype))
    AU = _preconditioned(A, M)(recycle.U)
    relation = jnp.linalg.norm(AU - recycle.C) / jnp.linalg.norm(recycle.C)
    return sol, recycle, true, orth, relation


@pytest.mark.parametrize("precondition", [False, True])
def test_recycle_invariants_and_accuracy_along_a_sequence(precondition):
    fam = darcy_sequence(18, 8)
    b = fam.rhs
    recycle = Recycle.empty(b.shape[0], 10)
    for i in range(fam.n_samples):
        sol, recycle, true, orth, relation = _solve_and_check(
            fam.operator(i), b, recycle, precondition=precondition
        )
        assert sol.result == RESULTS.successful
        assert float(true) <= 1e-8
        assert float(sol.stats["residual_norm"]) / float(jnp.linalg.norm(b)) == pytest.approx(
            float(true), rel=1e-6
        )
        assert int(recycle.size) == 10
        assert float(orth) <= 1e-10
        assert float(relation) <= 1e-8
        # Matvecs: Arnoldi steps + k to rebuild C (from the 2nd system on) + 1 per cycle
        # + 1 for the residual after the initial projection.
        expected = int(sol.stats["num_steps"]) + int(sol.stats["num_restarts"])
        if i > 0:
            expected += 10 + 1
        assert int(sol.stats["num_matvecs"]) == expected


def test_recycling_reduces_iterations_on_darcy():
    # Darcy s = 18 (n = 256), 8 samples, tol 1e-8, GCRO-DR(20, 10) vs GMRES(20), the test
    # suite's shared small configuration. Measured: see the assertion message; the floor 2
    # is below the measured ratio with margin. The (40, 20) floors at s = 34 and 66 (2.5, 4)
    # are the benchmark's (`benchmarks/bench_skr.py`) and the slow test below.
    fam = darcy_sequence(18, 8)
    b = fam.rhs
    recycle, its, ref = Recycle.empty(b.shape[0], 10), [], []
    for i in range(fam.n_samples):
        A = fam.operator(i)
        sol, recycle, *_ = _solve_and_check(A, b, recycle)
        assert sol.result == RESULTS.successful
        its.append(int(sol.stats["num_steps"]))
        ref.append(int(P.jit_gmres(A, b, rtol=1e-8, restart=20).stats["num_steps"]))
    assert np.mean(ref) / np.mean(its) >= 2.0, (its, ref)
    # The first solve has nothing to recycle but still deflates across its own restarts.
    assert its[0] < ref[0]


@pytest.mark.slow
def test_recycling_floor_at_s34():
    # The floor: GMRES(40)/GCRO-DR(40, 20) iteration ratio >= 2.5 at s = 34, tol 1e-8.
    fam = darcy_sequence(34, 20)
    b = fam.rhs
    recycle, its, ref = None, [], []
    for i in range(fam.n_samples):
        A = fam.operator(i)
        sol, recycle = jit_gcrodr(A, b, recycle=recycle, m=40, k=20)
        assert sol.result == RESULTS.successful
        its.append(int(sol.stats["num_steps"]))
        ref.append(int(P.jit_gmres(A, b, rtol=1e-8, restart=40).stats["num_steps"]))
    assert np.mean(ref) / np.mean(its) >= 2.5, (its, ref)


def test_eig_and_subspace_ritz_agree():
    fam = darcy_sequence(18, 8)
    b = fam.rhs
    counts = {}
    for ritz in ("subspace", "eig"):
        recycle, total = Recycle.empty(b.shape[0], 10), 0
        for i in range(fam.n_samples):
            sol, recycle, *_ = _solve_and_check(fam.operator(i), b, recycle, ritz=ritz)
            assert sol.result == RESULTS.successful
            total += int(sol.stats["num_steps"])
        counts[ritz] = total
    assert abs(counts["subspace"] - counts["eig"]) <= 0.05 * counts["eig"], counts


def test_small_krylov_space_is_kept_whole_and_reused():
    # A diagonal matrix with 4 distinct eigenvalues: GMRES converges in 4 steps, fewer than
    # k = 6, so the whole Krylov space becomes the recycle space (size 4), and solving the
    # same system again needs no Arnoldi step at all.
    d = jnp.asarray(np.repeat([1.0, 2.0, 5.0, 9.0], 10))
    A = jnp.diag(d)
    b = jnp.asarray(np.random.default_rng(0).standard_normal(40))
    sol, recycle = gcrodr(A, b, m=10, k=6, rtol=1e-10)
    assert int(sol.stats["num_steps"]) == 4
    assert int(recycle.size) == 4
    used = recycle.C[:, :4]
    assert float(jnp.linalg.norm(used.T @ used - jnp.eye(4))) <= 1e-10
    assert float(jnp.max(jnp.abs(recycle.C[:, 4:]))) == 0.0
    again, _ = gcrodr(A, b, recycle=recycle, m=10, k=6, rtol=1e-10)
    assert again.result == RESULTS.successful
    assert int(again.stats["num_steps"]) == 0
    assert float(jnp.linalg.norm(b - A @ again.value) / jnp.linalg.norm(b)) <= 1e-10


@pytest.mark.slow
def test_nonsymmetric_sequence_converges():
    base = P.convection_diffusion()
    recycle = None
    for speed in (30.0, 32.0, 34.0):
        problem = problems.convection_diffusion_problem(
            jax.random.key(6), (20, 20), speed=speed, dtype=jnp.float64
        )
        sol, recycle = jit_gcrodr(problem.operator, problem.rhs, recycle=recycle, rtol=1e-8)
        assert sol.result == RESULTS.successful
        r = problem.rhs - problem.operator.mv(sol.value)
        assert float(jnp.linalg.norm(r) / jnp.linalg.norm(problem.rhs)) <= 1e-8
    assert base.rhs.shape == problem.rhs.shape


@pytest.mark.slow
def test_vmap_over_systems_equals_loop():
    fam = darcy_sequence(18, 8)
    b = fam.rhs
    ops = fam.operators

    def solve(A, recycle):
        return gcrodr(A, b, recycle=recycle, m=20, k=10, rtol=1e-8, throw=False)

    # First solves (empty recycle), then a second batch reusing the per-member recycles.
    empty = jax.tree.map(
        lambda x: jnp.broadcast_to(x, (2, *x.shape)), Recycle.empty(b.shape[0], 10)
    )
    first_ops = jax.tree.map(lambda x: x[:2], ops)
    second_ops = jax.tree.map(lambda x: x[2:4], ops)
    batched = jax.jit(jax.vmap(solve))
    sols, recs = batched(first_ops, empty)
    sols2, _ = batched(second_ops, recs)
    for i in range(2):
        s1, r1 = jit_gcrodr(fam.operator(i), b)
        s2, _ = jit_gcrodr(fam.operator(i + 2), b, recycle=r1)
        assert int(sols.stats["num_steps"][i]) == int(s1.stats["num_steps"])
        assert int(sols2.stats["num_steps"][i]) == int(s2.stats["num_steps"])
        np.testing.assert_allclose(sols2.value[i], s2.value, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_float32():
    # rtol 1e-4: at 1e-5 this system (condition ~1e3) reaches float32's attainable accuracy
    # (the recomputed true residual carries errors ~eps·‖A‖‖x‖) and Arnoldi reports breakdown.
    fam = darcy_sequence(18, 8)
    A32 = jax.tree.map(
        lambda x: x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x,
        fam.operator(0),
    )
    b32 = fam.rhs.astype(jnp.float32)
    sol, recycle, *_ = _solve_and_check(
        A32, b32, Recycle.empty(b32.shape[0], 10, jnp.float32), 1e-4
    )
    assert sol.value.dtype == jnp.float32 and recycle.U.dtype == jnp.float32
    assert sol.result == RESULTS.successful
    assert float(jnp.linalg.norm(b32 - A32.mv(sol.value)) / jnp.linalg.norm(b32)) <= 1e-4


@pytest.mark.slow
def test_failures_are_reported():
    fam = darcy_sequence(18, 8)
    A, b = fam.operator(0), fam.rhs
    solve = jax.jit(lambda A, b: gcrodr(A, b, m=20, k=10, max_steps=15, throw=False))
    sol, _ = solve(A, b)
    assert sol.result == RESULTS.max_steps_reached
    assert int(sol.stats["num_steps"]) == 15
    sol, _ = solve(A, b.at[0].set(jnp.nan))
    assert sol.result == RESULTS.nonfinite_input


@pytest.mark.slow
def test_failure_raises_with_throw():
    fam = darcy_sequence(18, 8)
    with pytest.raises(RUNTIME_ERRORS):
        gcrodr(fam.operator(0), fam.rhs, m=20, k=10, max_steps=15)


def test_bad_input_errors():
    problem = P.darcy_lognormal()
    A, b = problem.operator, problem.rhs
    n = b.shape[0]
    with pytest.raises(ValueError, match="smaller than the cycle size"):
        gcrodr(A, b, m=10, k=10)
    with pytest.raises(ValueError, match="`m` must be >= 1"):
        gcrodr(A, b, m=0, k=0)
    with pytest.raises(ValueError, match="`k` must be >= 0"):
        gcrodr(A, b, k=-1)
    with pytest.raises(ValueError, match="ritz"):
        gcrodr(A, b, ritz="schur")
    with pytest.raises(ValueError, match=r"needs \(n, k\)"):
        gcrodr(A, b, k=10, recycle=Recycle.empty(n, 5))
    with pytest.raises(ValueError, match="dtype"):
        gcrodr(A, b, k=5, recycle=Recycle.empty(n, 5, jnp.float32))
    with pytest.raises(ValueError, match="must be a `Recycle`"):
        gcrodr(A, b, k=5, recycle=(jnp.zeros((n, 5)), jnp.zeros((n, 5))))
    with pytest.raises(ValueError, match="below the resolution"):
        gcrodr(A, b, rtol=1e-20)
    with pytest.raises(ValueError, match="`k` must be"):
        Recycle.empty(n, -1)
    with pytest.raises(ValueError, match="another size"):
        gcrodr(A, b, k=5, recycle=Recycle.empty(n + 1, 5))
    with pytest.raises(ValueError, match=r"recycle.size. \(6\) must lie in"):
        oversized = eqx.tree_at(lambda r: r.size, Recycle.empty(n, 5), jnp.asarray(6, jnp.int32))
        gcrodr(A, b, k=5, recycle=oversized)


def test_arnoldi_step_does_not_copy_a_transposed_recycle_space():
    # `C.T @ w` made XLA:CPU materialise a transposed copy of C (n × k) in every Arnoldi step,
    # about a quarter of a step's time at n = 4096; `w @ C` reads C in place.
    family = problems.darcy(jax.random.key(0), 1, 34)
    op, b = jax.tree.map(lambda x: x[0], family.operators), family.rhs
    k = 8
    recycle = Recycle.empty(b.shape[0], k, b.dtype)
    solve = jax.jit(lambda op, b, r: gcrodr(op, b, recycle=r, m=16, k=k, throw=False))
    hlo = solve.lower(op, b, recycle).compile().as_text()
    shape = re.compile(rf"= \w+\[{k},{b.shape[0]}\]")
    copies = [line for line in hlo.splitlines() if "transpose" in line and shape.search(line)]
    # One transposed copy outside the Arnoldi loop is fine (the start of a solve); none in it.
    assert not [line for line in copies if "while/body/while/body" in line], copies


def test_lock_step_vmap_equals_plain_vmap():
    # As for gmres: `axis_name` changes how the batch loops, not the members' results (also
    # the recycle spaces), whether they converge at different steps, at once or not at all.
    fam = darcy_sequence(18, 8)
    b = fam.rhs
    ops = jax.tree.map(lambda x: x[:4], fam.operators)
    bs = jnp.stack([b, b, jnp.zeros_like(b), b.at[0].set(jnp.nan)])
    rtols = jnp.asarray([1e-8, 1e-5, 1e-8, 1e-8])

    def solve(A, b, rtol, recycle, axis_name=None):
        return gcrodr(
            A, b, recycle=recycle, m=20, k=10, rtol=rtol, throw=False, axis_name=axis_name
        )

    empty = jax.tree.map(
        lambda x: jnp.broadcast_to(x, (4, *x.shape)), Recycle.empty(b.shape[0], 10)
    )
    plain = jax.jit(jax.vmap(solve))
    lock_step = jax.jit(jax.vmap(lambda *a: solve(*a, "batch"), axis_name="batch"))
    first = plain(ops, bs, rtols, empty)
    second_ops = jax.tree.map(lambda x: x[::-1], ops)
    for args in [(ops, bs, rtols, empty), (second_ops, bs, rtols, first[1])]:
        want, got = plain(*args), lock_step(*args)
        steps = np.asarray(want[0].stats["num_steps"])
        assert steps[0] != steps[1] and steps[2] == steps[3] == 0
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
