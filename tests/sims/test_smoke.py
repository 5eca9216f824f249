"""The smoke simulation: projection, density invariants, determinism, shapes, solvers, errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciml._core import RESULTS
from sciml.linalg import FLUID, SOLID
from sciml.sims import SmokeSim, StepInfo, plume_mask, smoke_plume
from sciml.solvers import cg

SHAPE = (16, 16)
RTOL = 1e-4


# One compiled runner shared by every test: sims with the same structure (shapes, solver
# name) hit its cache, so the suite compiles each configuration once.
@eqx.filter_jit
def _run(sim, state, n_steps, record_every):
    return sim.run(state, n_steps, record_every=record_every)


def _without_source(sim):
    no_source = (jnp.zeros_like(sim.source), jnp.zeros_like(sim.inflow))
    return eqx.tree_at(lambda s: (s.source, s.inflow), sim, no_source)


@pytest.fixture(scope="module")
def plume():
    run = smoke_plume(SHAPE, n_steps=24, record_every=6, rtol=RTOL)
    info = StepInfo(run.iterations, run.results, run.divergence_before, run.divergence_after)
    return run.sim, run.final_state, info, jnp.asarray(run.frames)


def test_shapes_and_dtypes(plume):
    sim, state, info, frames = plume
    assert frames.shape == (4, *SHAPE)
    assert [u.shape for u in state.velocity] == [(17, 16), (16, 17)]
    assert state.density.shape == SHAPE and state.pressure.shape == (256,)
    assert int(state.step) == 24
    for leaf in (info.iterations, info.result, info.divergence_before, info.divergence_after):
        assert leaf.shape == (24,)
    assert state.density.dtype == jnp.float64 and frames.dtype == jnp.float64


def test_projection_leaves_divergence_below_the_tolerance(plume):
    sim, state, info, frames = plume
    assert np.all(np.asarray(info.result) == RESULTS.successful._value)
    before, after = np.asarray(info.divergence_before), np.asarray(info.divergence_after)
    assert np.all(before > 1e-3)  # buoyancy and the source make every step non-trivial
    # After the projection the net outflow of each fluid cell is the solve's true residual,
    # which CG bounds by rtol·‖b‖ (its recursive residual; 1 % for the gap between the two).
    assert np.all(after <= 1.01 * RTOL * before), (after / before).max()
    # Closed faces (walls, obstacle) carry no flow.
    for open_, u in zip(sim.open_faces, state.velocity, strict=True):
        assert np.all(np.asarray(u)[~np.asarray(open_)] == 0)
    assert np.all(np.asarray(state.pressure)[np.asarray(sim.mask).ravel() != FLUID] == 0)


def test_density_is_bounded_and_absent_from_solids(plume):
    sim, state, info, frames = plume
    frames = np.asarray(frames)
    # Linear interpolation makes every new value a convex combination of old ones, and the
    # source holds 1: the density stays in [0, 1].
    assert frames.min() >= 0 and frames.max() <= 1 + 1e-12
    assert np.all(frames[:, np.asarray(sim.mask) == SOLID] == 0)
    mass = frames.sum(axis=(1, 2))
    assert np.all(np.diff(mass) > 0)  # the source keeps adding smoke
    # The plume rises: the centre of mass moves up.
    heights = np.arange(SHAPE[1]) + 0.5
    centre = (frames.sum(axis=1) * heights).sum(axis=1) / mass
    assert centre[-1] > centre[0] + 1


def test_constant_density_is_preserved_exactly(plume):
    sim, state, _, _ = plume
    # A uniform field stays uniform under semi-Lagrangian advection (interpolation weights sum
    # to one; solid cells are filled from fluid neighbours), whatever the velocity.
    quiet = eqx.tree_at(lambda s: s.buoyancy, _without_source(sim), jnp.zeros_like(sim.buoyancy))
    fluid = np.asarray(sim.mask) != SOLID
    density = jnp.asarray(np.where(fluid, 0.3, 0.0), jnp.float64)
    uniform = eqx.tree_at(lambda s: s.density, state, density)
    _, _, frames = _run(quiet, uniform, 24, 6)
    np.testing.assert_allclose(np.asarray(frames)[:, fluid], 0.3, rtol=0, atol=1e-12)


def test_mass_drift_without_sources_is_small(plume):
    sim, state, _, _ = plume
    quiet = _without_source(sim)
    _, _, frames = _run(quiet, state, 24, 6)
    mass0 = float(state.density.sum())
    drift = np.abs(np.asarray(frames).sum(axis=(1, 2)) / mass0 - 1)
    # Semi-Lagrangian advection is not conservative: at 16² the plume hitting the obstacle and
    # the lid loses ~6 % over 24 steps (measured; ~3 % at 32²). 15 % still catches a leak
    # such as zeroing the solid cells before interpolation (20 % here).
    assert drift.max() < 0.15, drift


def test_runs_are_deterministic(plume):
    sim, state, info, frames = plume
    again = smoke_plume(SHAPE, n_steps=24, record_every=6, rtol=RTOL)
    np.testing.assert_array_equal(np.asarray(frames), again.frames)
    np.testing.assert_array_equal(np.asarray(info.iterations), again.iterations)
    assert again.compile_s < 0.5 * again.total_s + 0.5  # the same configuration: no recompile


@pytest.mark.slow  # one more compilation of the whole step
def test_callable_solver_matches_the_named_one(plume):
    sim, state, info, frames = plume

    def user_cg(A, b):
        return cg(A, b, rtol=RTOL, atol=0.0, max_steps=500, throw=False)

    custom = SmokeSim(SHAPE, rtol=RTOL, pressure_solver=user_cg)
    _, info2, frames2 = _run(custom, custom.init(), 24, 6)
    np.testing.assert_array_equal(np.asarray(info.iterations), np.asarray(info2.iterations))
    np.testing.assert_allclose(np.asarray(frames2), np.asarray(frames), rtol=0, atol=1e-12)


def test_amg_solver_agrees_and_needs_few_iterations(plume):
    pytest.importorskip("pyamg")
    sim, state, info, frames = plume
    amg = SmokeSim(SHAPE, rtol=RTOL, pressure_solver="amg")
    _, info2, frames2 = _run(amg, amg.init(), 24, 6)
    assert np.all(np.asarray(info2.result) == RESULTS.successful._value)
    assert np.all(np.asarray(info2.iterations) < np.asarray(info.iterations) / 3)
    after, before = np.asarray(info2.divergence_after), np.asarray(info2.divergence_before)
    assert np.all(after <= 1.01 * RTOL * before)
    # Different solvers stop at different points within the tolerance; the density is
    # advected by nearly the same velocity.
    np.testing.assert_allclose(np.asarray(frames2), np.asarray(frames), rtol=0, atol=1e-3)


def test_loop_mode_times_every_solve_and_matches_scan_mode(plume):
    sim, state, info, frames = plume
    loop = smoke_plume(SHAPE, n_steps=24, record_every=6, rtol=RTOL, mode="loop")
    assert loop.converged and loop.mode == "loop"
    assert loop.solve_s.shape == (24,) and np.all(loop.solve_s > 0)
    assert loop.total_s >= loop.solve_s.sum() and loop.compile_s > 0
    np.testing.assert_array_equal(loop.iterations, np.asarray(info.iterations))
    np.testing.assert_allclose(loop.frames, np.asarray(frames), rtol=0, atol=1e-12)
    summary = loop.summary()
    assert summary["method"] == "cg" and summary["max_relative_divergence"] <= 1.01 * RTOL
    assert summary["solve_s_total"] == pytest.approx(loop.solve_s.sum())


@pytest.mark.slow  # one more compilation of the whole step
def test_failed_solves_raise_unless_asked_not_to():
    with pytest.raises(RuntimeError, match="did not converge"):
        smoke_plume((8, 8), n_steps=2, max_steps=1)
    run = smoke_plume((8, 8), n_steps=2, max_steps=1, throw=False)
    assert not run.converged
    assert np.all(run.results == RESULTS.max_steps_reached._value)


@pytest.mark.slow  # one more compilation of the whole step
def test_three_dimensional_plume():
    sim = SmokeSim((8, 8, 8), rtol=RTOL)
    state, info, frames = _run(sim, sim.init(), 4, 4)
    assert [u.shape for u in state.velocity] == [(9, 8, 8), (8, 9, 8), (8, 8, 9)]
    assert np.all(np.asarray(info.result) == RESULTS.successful._value)
    after, before = np.asarray(info.divergence_after), np.asarray(info.divergence_before)
    assert np.all(after <= 1.01 * RTOL * before) and np.all(before > 0)
    assert float(frames.min()) >= 0 and float(frames.max()) <= 1 + 1e-12


@pytest.mark.slow  # one more compilation of the whole step
def test_float32_follows_the_dtype():
    sim = SmokeSim((8, 8), rtol=1e-3, dtype=jnp.float32)
    state, info, _ = _run(sim, sim.init(), 2, 2)
    assert state.density.dtype == jnp.float32 and state.velocity[0].dtype == jnp.float32
    assert np.all(np.asarray(info.result) == RESULTS.successful._value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mask": np.ones((5, 5), np.int8)}, "does not match grid_shape"),
        ({"mask": np.zeros((8, 8), np.int8)}, "no fluid cells"),
        ({"pressure_solver": "bicg"}, "must be one of"),
        ({"pressure_solver": "cg", "model": lambda r: r}, "only used with pressure_solver='dcdm'"),
        ({"max_steps": 0}, "positive Python int"),
        ({"rtol": 0.0}, "rtol"),
        ({"rtol": 1e-9, "dtype": jnp.float32}, "resolution of float32"),
        ({"source_radius": 0.7}, "source_radius"),
    ],
)
def test_bad_configuration_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SmokeSim((8, 8), **kwargs)


def test_bad_run_arguments_are_refused():
    with pytest.raises(ValueError, match="2-D or 3-D"):
        SmokeSim((8,))
    with pytest.raises(ValueError, match="divides"):
        smoke_plume((8, 8), n_steps=5, record_every=2)
    with pytest.raises(ValueError, match="mode"):
        smoke_plume((8, 8), n_steps=2, mode="eager")
    with pytest.raises(ValueError, match="'sphere' or 'none'"):
        plume_mask((8, 8), obstacle="torus")
    sim = SmokeSim((8, 8))
    with pytest.raises(ValueError, match="n_steps"):
        sim.run(sim.init(), 0)


@pytest.mark.slow  # one more compilation of the whole step
def test_step_is_jittable_and_vmappable_over_states():
    sim = SmokeSim((8, 8), rtol=RTOL)
    state = sim.init()
    one, _ = eqx.filter_jit(sim.step)(state)
    batch = jax.tree.map(lambda x: jnp.stack([x, x]), one)
    stepped, info = jax.vmap(sim.step)(batch)
    assert stepped.density.shape == (2, 8, 8) and info.iterations.shape == (2,)
    np.testing.assert_allclose(np.asarray(stepped.density[0]), np.asarray(stepped.density[1]))


def test_dcdm_pressure_solver_with_the_identity_model_is_cg(plume):
    # DCDM with the identity as its "network" is CG, so the plume must match the CG plume:
    # the same iteration counts (±1: the recursive-residual refresh may stop one step apart)
    # and the same divergence guarantee.
    sim, state, info, frames = plume
    run = smoke_plume(
        SHAPE,
        n_steps=24,
        record_every=6,
        rtol=RTOL,
        pressure_solver="dcdm",
        model=lambda r: r,
        max_steps=500,
    )
    assert run.converged and run.method == "dcdm"
    np.testing.assert_allclose(run.iterations, np.asarray(info.iterations), atol=1)
    assert np.all(run.divergence_after <= 1.01 * RTOL * run.divergence_before)
    np.testing.assert_allclose(run.frames, np.asarray(frames), rtol=0, atol=1e-6)
