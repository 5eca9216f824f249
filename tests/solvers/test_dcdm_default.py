"""The shipped DCDM weights: they load, and beat CG on unseen obstacle problems.

The 2-D default was trained on the obstacle-free 64² Neumann box and the 3-D default on the
obstacle-free 32³ box (see sciml/solvers/_dcdm_weights/README.md); the problems here have random
obstacles and right-hand sides from random velocity fields, neither seen in training. The issue's
floors (at most 1/5 of CG's iterations at the training size, 1/3 at twice the size) are checked
by slow tests.
"""

import json
from importlib import resources

import jax
import jax.numpy as jnp
import pytest

from sciml._core import RESULTS
from sciml.problems import fluid_pressure
from sciml.solvers import DCDMNet, cg, dcdm
from sciml.solvers._dcdm import default_dcdm_model
from sciml.solvers._dcdm_net import read_dcdm_header

WEIGHTS = resources.files("sciml.solvers._dcdm_weights")


@pytest.mark.parametrize("dim", [2, 3])
def test_shipped_weights_load_with_their_provenance(dim):
    path = WEIGHTS.joinpath(f"dcdm_{dim}d.eqx")
    assert path.is_file()
    assert path.stat().st_size <= 5 * 2**20
    header = read_dcdm_header(path)
    assert header["dim"] == dim
    command = header["metadata"]["command"].split()
    assert command[0] == "sciml" and "train" in command  # possibly after `--platform gpu`
    assert command[command.index("train") + 1 :][:3] == ["dcdm", "--dim", str(dim)]
    model = default_dcdm_model(dim)
    assert isinstance(model, DCDMNet) and model.dim == dim
    assert json.loads(WEIGHTS.joinpath("weights.json").read_text())[f"dcdm_{dim}d.eqx"]


def _iterations(shape, *, model=None):
    problem = fluid_pressure(jax.random.key(2024), shape, n_obstacles=3, dtype=jnp.float64)
    reference = cg(problem.operator, problem.rhs, rtol=1e-4, max_steps=5000)
    sol = dcdm(problem.operator, problem.rhs, model=model, rtol=1e-4, throw=False)
    residual = problem.rhs - problem.operator.mv(sol.value)
    relative = float(jnp.linalg.norm(residual)) / float(jnp.linalg.norm(problem.rhs))
    return sol, relative, int(reference.stats["num_steps"])


def test_default_2d_model_beats_cg_on_an_unseen_obstacle_problem():
    # Half the training size (measured: 12 DCDM vs 138 CG iterations).
    sol, relative, cg_steps = _iterations((32, 32))  # model=None: the shipped 2-D default
    assert sol.result == RESULTS.successful
    assert relative <= 1e-4
    assert int(sol.stats["num_steps"]) <= cg_steps / 5


def test_a_network_outside_its_training_stagnates_early():
    # The shipped weights know closed Neumann boxes. On Dirichlet walls the 2-D model's
    # direction turns orthogonal to the residual (cosine ~1e-8 against ~0.1-0.7 in healthy
    # steps) and x stops changing: measured residual 0.58 from step ~100 to 300 before the
    # stall test. It must end as `stagnation` soon after, not spin to `max_steps`.
    from sciml.problems import poisson_problem

    problem = poisson_problem(jax.random.key(0), (32, 32))
    sol = dcdm(problem.operator, problem.rhs, rtol=1e-4, max_steps=300, throw=False)
    assert sol.result == RESULTS.stagnation
    assert int(sol.stats["num_steps"]) < 300


# The issue's floors for the 2-D default trained at 64² (measured with the shipped weights,
# float64 vectors, on the 2-core CPU: 19 vs CG 294 at 64², 40 vs 569 at 128²).
@pytest.mark.slow
@pytest.mark.parametrize(("size", "fraction"), [(64, 1 / 5), (128, 1 / 3)])
def test_default_2d_model_meets_the_issue_floors(size, fraction):
    sol, relative, cg_steps = _iterations((size, size))
    assert sol.result == RESULTS.successful
    assert relative <= 1e-4
    assert int(sol.stats["num_steps"]) <= fraction * cg_steps


# The 3-D default (trained at 32³) on unseen obstacle problems, measured on the 2-core CPU:
# 9 vs CG 78 at 16³ and 10 vs CG 162 at 32³ (the issue's floor at the training size; about
# two minutes there). Twice the size (64³) is left to benchmarks/bench_dcdm.py. Slow: a 3-D
# network pass costs seconds on a CPU.
@pytest.mark.slow
@pytest.mark.parametrize("size", [16, 32])
def test_default_3d_model_needs_at_most_a_fifth_of_cg_iterations(size):
    sol, relative, cg_steps = _iterations((size, size, size))
    assert sol.result == RESULTS.successful
    assert relative <= 1e-4
    assert int(sol.stats["num_steps"]) <= cg_steps / 5
