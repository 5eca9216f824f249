"""DCDM: the conjugate-direction iteration with known models, the network, the loss, bad input."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from equinox import EquinoxRuntimeError

from sciml._core import RESULTS
from sciml.linalg import FLUID, SOLID, poisson, project_to_range
from sciml.problems import fluid_pressure
from sciml.solvers import DCDMNet, cg, dcdm, jacobi, load_dcdm_model, save_dcdm_model, ssor
from sciml.solvers._dcdm_net import count_parameters
from sciml.solvers._dcdm_train import dcdm_loss

RUNTIME_ERRORS = (EquinoxRuntimeError, jax.errors.JaxRuntimeError)


def identity(r):
    # One function object for every test, so that solves of equal structure compile once.
    return r


@functools.cache
def dirichlet2d():
    A = poisson((16, 16), bc="dirichlet", dtype=jnp.float64)
    b = jax.random.normal(jax.random.key(1), (A.n,), jnp.float64)
    return A, b


@functools.cache
def pressure2d():
    # Pure Neumann with obstacles: singular, right-hand side in the range.
    return fluid_pressure(jax.random.key(3), (16, 16), n_obstacles=2, dtype=jnp.float64)


def test_identity_model_reproduces_cg_iterates():
    A, b = dirichlet2d()
    reference = cg(A, b, rtol=1e-10, max_steps=200)
    sol = dcdm(A, b, model=identity, rtol=1e-10, max_steps=200)
    k = int(reference.stats["num_steps"])
    assert abs(int(sol.stats["num_steps"]) - k) <= 1
    h_cg = np.asarray(reference.stats["residual_history"])[: k + 1]
    h_dcdm = np.asarray(sol.stats["residual_history"])[: k + 1]
    assert np.max(np.abs(h_dcdm - h_cg)) <= 1e-10 * h_cg[0]
    scale = float(jnp.linalg.norm(reference.value))
    assert float(jnp.linalg.norm(sol.value - reference.value)) <= 1e-10 * scale


def test_identity_model_on_singular_pressure_system():
    problem = pressure2d()
    reference = cg(problem.operator, problem.rhs, rtol=1e-8, max_steps=2000)
    sol = dcdm(problem.operator, problem.rhs, model=identity, rtol=1e-8, max_steps=2000)
    assert abs(int(sol.stats["num_steps"]) - int(reference.stats["num_steps"])) <= 1
    residual = problem.rhs - problem.operator.mv(sol.value)
    assert float(jnp.linalg.norm(residual)) <= 1e-8 * float(jnp.linalg.norm(problem.rhs))
    # The minimum-norm solution (as CG from zero): no null-space component.
    assert float(jnp.linalg.norm(project_to_range(problem.operator, sol.value) - sol.value)) < 1e-10


@pytest.mark.parametrize("which", ["ssor-dirichlet", "jacobi-pressure"])
def test_fixed_spd_model_reproduces_pcg_counts(which):
    if which == "ssor-dirichlet":
        A, b = dirichlet2d()
        M = ssor(A, omega=1.3)
    else:
        problem = pressure2d()
        A, b = problem.operator, problem.rhs
        M = jacobi(A)
    reference = cg(A, b, rtol=1e-8, M=M, max_steps=2000)
    sol = dcdm(A, b, model=M, rtol=1e-8, max_steps=2000)
    assert sol.result == RESULTS.successful
    assert abs(int(sol.stats["num_steps"]) - int(reference.stats["num_steps"])) <= 1


def test_inverse_model_converges_in_one_iteration():
    A, b = dirichlet2d()
    inverse = jnp.asarray(np.linalg.inv(np.asarray(A.as_matrix())))
    # A negative multiple: the exact line search absorbs any scale.
    sol = dcdm(A, b, model=lambda r: -0.01 * (inverse @ r), rtol=1e-10)
    assert int(sol.stats["num_steps"]) == 1


def _nonlinear_model(n, key):
    W = jax.random.normal(key, (n, n), jnp.float64) / np.sqrt(n)
    return lambda r: jnp.tanh(3 * (W @ r)) + r


@functools.cache
def nonlinear_model(seed):
    return _nonlinear_model(dirichlet2d()[0].n, jax.random.key(seed))


def test_consecutive_directions_are_a_conjugate():
    A, b = dirichlet2d()
    n_orth = 2
    model = nonlinear_model(5)
    iterates = [jnp.zeros_like(b)]
    for k in range(1, 5):
        sol = dcdm(A, b, model=model, rtol=1e-12, max_steps=k, n_orth=n_orth, throw=False)
        assert int(sol.stats["num_steps"]) == k
        iterates.append(sol.value)
    # x_k − x_{k−1} = α_k d_k.
    steps = [iterates[k] - iterates[k - 1] for k in range(1, len(iterates))]

    def cosine(u, v):
        return float(u @ A.mv(v)) / np.sqrt(float(u @ A.mv(u)) * float(v @ A.mv(v)))

    for k in range(len(steps)):
        for lag in range(1, n_orth + 1):
            if k - lag >= 0:
                assert abs(cosine(steps[k], steps[k - lag])) < 1e-10
    # Beyond n_orth a nonlinear model's directions are not conjugate (the test can fail).
    lag = n_orth + 1
    worst = max(abs(cosine(steps[k], steps[k - lag])) for k in range(lag, len(steps)))
    assert worst > 1e-6


def test_vmap_over_right_hand_sides_matches_loop():
    A, b = dirichlet2d()
    model = nonlinear_model(5)
    B = jnp.stack([b, jnp.roll(b, 3), 0.5 * b])
    batched = jax.vmap(lambda rhs: dcdm(A, rhs, model=model, rtol=1e-6, throw=False))(B)
    for i in range(B.shape[0]):
        single = dcdm(A, B[i], model=model, rtol=1e-6, throw=False)
        assert int(batched.stats["num_steps"][i]) == int(single.stats["num_steps"])
        np.testing.assert_allclose(batched.value[i], single.value, rtol=1e-9, atol=1e-12)


def test_network_model_float32_on_obstacles():
    problem = fluid_pressure(jax.random.key(4), (8, 8), n_obstacles=1, dtype=jnp.float32)
    A = problem.operator
    net = DCDMNet(2, key=jax.random.key(0))
    sol = dcdm(A, problem.rhs, model=net, max_steps=5, rtol=1e-6, throw=False)
    assert sol.value.dtype == jnp.float32
    assert int(sol.stats["num_steps"]) == 5
    # Each exact line search decreases the error in the energy norm, e·Ae = r·A⁺r (the
    # residual 2-norm may grow).
    pinv = np.linalg.pinv(np.asarray(A.as_matrix(), np.float64))
    r0 = np.asarray(problem.rhs, np.float64)
    r5 = np.asarray(problem.rhs - A.mv(sol.value), np.float64)
    assert r5 @ pinv @ r5 < (1 - 1e-3) * (r0 @ pinv @ r0)
    # Directions, hence iterates, vanish on solid cells.
    solid = np.asarray(A.mask).reshape(-1) != FLUID
    assert np.all(np.asarray(sol.value)[solid] == 0)


def test_max_steps_and_throw():
    A, b = dirichlet2d()
    sol = dcdm(A, b, model=identity, rtol=1e-10, max_steps=3, throw=False)
    assert sol.result == RESULTS.max_steps_reached
    with pytest.raises(RUNTIME_ERRORS, match="max_steps"):
        dcdm(A, b, model=identity, rtol=1e-10, max_steps=3)
    # A model that returns zeros gives a breakdown, not a NaN.
    sol = dcdm(A, b, model=lambda r: jnp.zeros_like(r), throw=False)
    assert sol.result == RESULTS.breakdown
    assert bool(jnp.all(jnp.isfinite(sol.value)))


@pytest.mark.parametrize(
    ("dim", "variant", "expected"),
    [(3, "64", 97_457), (3, "128", 152_881), (2, "64", 32_657), (2, "128", 51_217)],
)
def test_parameter_counts(dim, variant, expected):
    # Shapes only: building 3-D weights would cost more than the check.
    shapes = eqx.filter_eval_shape(DCDMNet, dim, variant=variant, key=jax.random.key(0))
    assert count_parameters(shapes) == expected


def test_network_runs_at_any_even_size_and_sees_obstacles():
    net = DCDMNet(2, key=jax.random.key(0))
    for size in [(8, 8), (12, 20)]:
        r = jax.random.normal(jax.random.key(1), size, jnp.float32)
        assert net(r).shape == size
    r = jax.random.normal(jax.random.key(1), (8, 8), jnp.float32)
    mask = jnp.ones((8, 8), bool).at[3:5, 3:5].set(False)
    out_free, out_masked = net(r), net(r, mask)
    assert bool(jnp.all(out_masked[3:5, 3:5] == 0))
    assert float(jnp.max(jnp.abs(out_free - out_masked))) > 0


def test_loss_is_invariant_to_scaling_the_output():
    problem = pressure2d()
    A = problem.operator
    rhs = jnp.stack([problem.rhs, jnp.roll(problem.rhs, 5)])
    rhs = jax.vmap(lambda b: project_to_range(A, b))(rhs)
    rhs = rhs / jnp.linalg.norm(rhs, axis=1, keepdims=True)
    model = _nonlinear_model(A.n, jax.random.key(7))
    loss = float(dcdm_loss(model, A, rhs))
    for c in (3.7, -0.02, 1e3):
        scaled = float(dcdm_loss(lambda b, c=c: c * model(b), A, rhs))
        assert scaled == pytest.approx(loss, rel=1e-12)
    # Not invariant to other changes of the output.
    other = float(dcdm_loss(lambda b: model(b) + 0.3 * b, A, rhs))
    assert abs(other - loss) > 1e-6 * loss
    # The exact solution has zero loss, the identity the steepest-descent loss in (0, 1).
    inverse = jnp.linalg.pinv(A.as_matrix())
    assert float(dcdm_loss(lambda b: inverse @ b, A, rhs)) < 1e-20
    assert 0 < float(dcdm_loss(lambda b: b, A, rhs)) < 1


def test_loss_of_network_is_scale_invariant():
    A = poisson((8, 8), bc="neumann", dtype=jnp.float32)
    rhs = jax.random.normal(jax.random.key(2), (3, A.n), jnp.float32)
    rhs = jax.vmap(lambda b: project_to_range(A, b))(rhs)
    rhs = rhs / jnp.linalg.norm(rhs, axis=1, keepdims=True)
    net = DCDMNet(2, key=jax.random.key(3))
    # Scaling the linear read-out scales the network's output.
    scaled = eqx.tree_at(
        lambda m: (m.conv_out.weight, m.conv_out.bias),
        net,
        (4.0 * net.conv_out.weight, 4.0 * net.conv_out.bias),
    )
    loss = float(dcdm_loss(net, A, rhs))
    assert float(dcdm_loss(scaled, A, rhs)) == pytest.approx(loss, rel=1e-5)


def test_model_file_round_trip(tmp_path):
    net = DCDMNet(2, variant="128", key=jax.random.key(9))
    path = save_dcdm_model(tmp_path / "m.eqx", net, metadata={"note": "test"})
    loaded = load_dcdm_model(path)
    assert loaded.dim == 2 and loaded.variant == "128"
    for a, b in zip(jax.tree.leaves(net), jax.tree.leaves(loaded), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    (tmp_path / "bad.eqx").write_bytes(b"not a model\n")
    with pytest.raises(ValueError, match="not a DCDM model file"):
        load_dcdm_model(tmp_path / "bad.eqx")


# -------------------------------------------------------------------------------------------
# Bad input


def test_odd_grid_is_refused():
    A = poisson((9, 8), bc="neumann", dtype=jnp.float32)
    b = jnp.ones(A.n, jnp.float32)
    with pytest.raises(ValueError, match="even"):
        dcdm(A, b, model=DCDMNet(2, key=jax.random.key(0)))


def test_wrong_mask_shape_is_refused():
    net = DCDMNet(2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="mask"):
        net(jnp.ones((8, 8), jnp.float32), jnp.ones((8, 6), bool))


def test_model_of_wrong_dimension_is_refused():
    A = poisson((8, 8, 8), bc="neumann", dtype=jnp.float32)
    b = jnp.ones(A.n, jnp.float32)
    with pytest.raises(ValueError, match="2-D but the grid"):
        dcdm(A, b, model=DCDMNet(2, key=jax.random.key(0)))


def test_network_needs_a_grid_operator():
    A = jnp.eye(16, dtype=jnp.float32)
    with pytest.raises(ValueError, match="grid operator"):
        dcdm(A, jnp.ones(16, jnp.float32), model=DCDMNet(2, key=jax.random.key(0)))


def test_bad_settings_are_refused():
    A, b = dirichlet2d()
    with pytest.raises(ValueError, match="n_orth"):
        dcdm(A, b, model=identity, n_orth=-1)
    with pytest.raises(ValueError, match="refresh_every"):
        dcdm(A, b, model=identity, refresh_every=0)
    with pytest.raises(ValueError, match="same shape"):
        dcdm(A, b, model=lambda r: r[:-1])
    with pytest.raises(ValueError, match="dtype"):
        dcdm(A, b, model=lambda r: r.astype(jnp.float32))
    with pytest.raises(ValueError, match="dtype"):
        DCDMNet(2, key=jax.random.key(0))(jnp.ones((8, 8), jnp.float64))
    with pytest.raises(ValueError, match="variant"):
        DCDMNet(2, variant="32", key=jax.random.key(0))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        DCDMNet(1, key=jax.random.key(0))
    assert SOLID == 0  # the mask convention the network gates on
