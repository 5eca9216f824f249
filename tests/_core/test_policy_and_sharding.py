"""The dtype/tolerance policy, result codes, the public test helpers and the sharding helpers."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml._core import (
    RESULTS,
    Solution,
    check_dtype,
    check_tolerances,
    float_dtype_of,
    make_mesh,
    replicate,
    shard_batch,
)
from sciml.testing import fd_grad, tol_for, tree_allclose


def test_float64_requested_without_x64_is_an_error():
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="jax_enable_x64"):
            check_dtype(np.float64)
        assert check_dtype(np.float32) == np.float32
    assert check_dtype(np.float64) == np.float64


@pytest.mark.parametrize("x", [np.arange(3), np.array([True]), jnp.arange(3)])
def test_integer_input_is_refused(x):
    with pytest.raises(ValueError, match="floating"):
        float_dtype_of(x)


@pytest.mark.parametrize(
    "rtol, atol, dtype, message",
    [
        (-1e-3, 0.0, np.float64, "non-negative"),
        (1e-3, -1.0, np.float64, "non-negative"),
        (0.0, 0.0, np.float64, "both zero"),
        (1e-9, 0.0, np.float32, "resolution of float32"),
        (np.nan, 0.0, np.float64, "finite"),
        (np.ones(2), 0.0, np.float64, "scalar"),
    ],
)
def test_bad_tolerances(rtol, atol, dtype, message):
    with pytest.raises(ValueError, match=message):
        check_tolerances(rtol, atol, dtype)


def test_good_and_traced_tolerances_pass():
    check_tolerances(1e-6, 0.0, np.float32)
    check_tolerances(1e-14, 0.0, np.float64)
    jax.jit(lambda r: check_tolerances(r, 0.0, np.float32) or r)(jnp.asarray(1e-9))


def test_results_messages_name_a_fix():
    for name in ("max_steps_reached", "breakdown", "stagnation", "nonfinite_input", "nonfinite"):
        message = RESULTS[getattr(RESULTS, name)]
        assert len(message) > 40
    sol = Solution(jnp.zeros(2), RESULTS.successful, {})
    assert bool(sol.converged)


def test_tree_allclose_and_fd_grad():
    assert tree_allclose({"a": jnp.ones(3)}, {"a": jnp.ones(3) + 1e-14})
    assert not tree_allclose({"a": jnp.ones(3)}, {"a": jnp.ones(3, jnp.float32)})
    assert not tree_allclose({"a": jnp.ones(3)}, {"b": jnp.ones(3)})
    x = jnp.array([0.3, -1.2, 2.0])
    f = lambda v: jnp.sum(jnp.sin(v) * v**2)
    np.testing.assert_allclose(fd_grad(f, x), jax.grad(f)(x), rtol=1e-8)
    assert tol_for(np.float32) > tol_for(np.float64)


def test_sharding_helpers_on_two_devices():
    assert len(jax.devices()) == 2, "conftest should simulate 2 CPU devices"
    mesh = make_mesh()
    x = jnp.arange(8.0).reshape(4, 2)
    sharded = shard_batch(x, mesh)
    assert len(sharded.sharding.device_set) == 2
    np.testing.assert_array_equal(jax.jit(lambda v: v * 2)(sharded), x * 2)
    assert replicate(x, mesh).sharding.is_fully_replicated
    with pytest.raises(ValueError, match="multiple of 2"):
        shard_batch(jnp.ones((3, 2)), mesh)
    with pytest.raises(ValueError, match="available"):
        make_mesh(5)


def test_importing_a_subpackage_imports_no_other_and_no_plotting():
    code = (
        "import sys, sciml, sciml.solvers, sciml.problems\n"
        "bad = [m for m in ('matplotlib', 'tqdm', 'sciml.cli', 'sciml.operators', 'sciml.special',"
        " 'sciml.equivariant', 'sciml.pde') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "import sciml.linalg\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    code = "import sys, sciml; assert 'jax' not in sys.modules, 'import sciml imported jax'"
    subprocess.run([sys.executable, "-c", code], check=True)
