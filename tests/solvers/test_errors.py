"""Bad input is a ValueError at trace time whose message names the fix; nothing hangs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from sciml.solvers import cg, gmres

from . import _problems as P

SOLVERS = {"cg": cg, "gmres": gmres}


@pytest.fixture(params=sorted(SOLVERS))
def solve(request):
    return SOLVERS[request.param]


def test_shape_mismatch_between_operator_and_b(solve):
    with pytest.raises(ValueError, match="length 9"):
        solve(P.small_spd(8), jnp.ones(9))
    with pytest.raises(ValueError, match="length 9"):
        solve(sp.eye_array(8, format="csr"), jnp.ones(9))


def test_callable_with_wrong_output_shape(solve):
    with pytest.raises(ValueError, match="same shape"):
        solve(lambda x: x[:-1], jnp.ones(8))


def test_x0_shape_and_dtype(solve):
    with pytest.raises(ValueError, match="x0"):
        solve(P.small_spd(8), jnp.ones(8), x0=jnp.ones(7))
    with pytest.raises(ValueError, match="x0"):
        solve(P.small_spd(8), jnp.ones(8), x0=jnp.ones(8, jnp.float32))


def test_non_square_operator(solve):
    with pytest.raises(ValueError, match="square"):
        solve(jnp.ones((8, 6)), jnp.ones(8))
    with pytest.raises(ValueError, match="square"):
        solve(sp.random_array((8, 6), density=0.5, rng=0), jnp.ones(8))


def test_b_must_be_a_vector(solve):
    with pytest.raises(ValueError, match="vmap"):
        solve(P.small_spd(8), jnp.ones((8, 2)))
    with pytest.raises(ValueError, match="1-D"):
        solve(P.small_spd(8), jnp.ones(()))


def test_b_must_be_floating(solve):
    with pytest.raises(ValueError, match="floating"):
        solve(P.small_spd(8), jnp.ones(8, jnp.int32))
    with pytest.raises(ValueError, match="array"):
        solve(P.small_spd(8), [1.0] * 8)


def test_operator_dtype_must_match_b(solve):
    with pytest.raises(ValueError, match="dtype"):
        solve(P.small_spd(8, dtype=jnp.float64), jnp.ones(8, jnp.float32))


@pytest.mark.parametrize(
    "rtol, atol, match",
    [
        (-1e-6, 0.0, "rtol"),
        (1e-6, -1.0, "atol"),
        (0.0, 0.0, "both zero"),
        (np.nan, 0.0, "rtol"),
        (jnp.ones(2), 0.0, "scalar"),
    ],
)
def test_bad_tolerances(solve, rtol, atol, match):
    with pytest.raises(ValueError, match=match):
        solve(P.small_spd(8), jnp.ones(8), rtol=rtol, atol=atol)


def test_rtol_below_float32_resolution(solve):
    A = P.small_spd(8, dtype=jnp.float32)
    with pytest.raises(ValueError, match="float32"):
        solve(A, jnp.ones(8, jnp.float32), rtol=1e-8)
    # The same tolerance is fine in float64 (checked by tracing only, no compilation).
    out = jax.eval_shape(lambda b: solve(P.small_spd(8), b, rtol=1e-8).value, jnp.ones(8))
    assert out.dtype == jnp.float64


@pytest.mark.parametrize("max_steps", [-1, 2.5, "10"])
def test_bad_max_steps(solve, max_steps):
    with pytest.raises(ValueError, match="max_steps"):
        solve(P.small_spd(8), jnp.ones(8), max_steps=max_steps)


@pytest.mark.parametrize("restart", [0, -3, 1.5])
def test_bad_restart(restart):
    with pytest.raises(ValueError, match="restart"):
        gmres(P.small_spd(8), jnp.ones(8), restart=restart)


def test_preconditioner_shape_and_dtype(solve):
    with pytest.raises(ValueError, match="preconditioner"):
        solve(P.small_spd(8), jnp.ones(8), M=jnp.eye(5))
    with pytest.raises(ValueError, match="dtype"):
        solve(P.small_spd(8), jnp.ones(8), M=jnp.eye(8, dtype=jnp.float32))


def test_errors_are_raised_while_tracing_under_jit(solve):
    with pytest.raises(ValueError, match="length 9"):
        jax.jit(lambda b: solve(P.small_spd(8), b).value)(jnp.ones(9))


def test_the_product_check_traces_each_kind_of_operator_once(solve):
    # The abstract check of `A.mv` costs as much as a small solve; repeated solves with the
    # same kind of operator (structure, shapes, dtypes) must not pay it again.
    matrix = P.small_spd(8, dtype=jnp.float64)
    traces = []

    def apply(x):
        traces.append(x.shape)
        return matrix @ x

    b = jnp.ones(8, jnp.float64)
    solve(apply, b)
    first = len(traces)
    solve(apply, 2 * b)
    assert len(traces) == first
    # What the check keys on still changes the verdict: a new dtype of `b` is checked again.
    solve(matrix, b)
    with pytest.raises(ValueError, match="dtype"):
        solve(matrix, b.astype(jnp.float32))
