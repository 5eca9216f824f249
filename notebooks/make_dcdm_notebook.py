"""Write notebooks/06_dcdm.ipynb from the cell sources below (without outputs).

Run `python notebooks/make_dcdm_notebook.py` after editing; the tests execute the notebook with
SCIML_SMOKE=1 under nbmake.
"""

from pathlib import Path

CELLS = [
    (
        "markdown",
        """# DCDM: a learned solver for fluid-pressure systems

The pressure projection of an incompressible fluid solver solves a Poisson system every time
step. The Deep Conjugate Direction Method (Kaneda et al., ICML 2023) keeps the
conjugate-direction framework but lets a convolutional network propose each search direction
from the residual; the directions are A-orthogonalised against the last two and the step is an
exact line search. This notebook solves one fluid-pressure system with DCDM and CG, then runs a
small smoke simulation whose projection uses each. Set `SCIML_SMOKE=1` for toy sizes (the tests
do).""",
    ),
    (
        "code",
        """import os

import jax

jax.config.update("jax_enable_x64", True)  # the library never does this for you
import jax.numpy as jnp
import matplotlib

if os.environ.get("SCIML_SMOKE") or not os.environ.get("DISPLAY"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sciml.linalg import FLUID
from sciml.problems import fluid_pressure
from sciml.sims import smoke_plume
from sciml.solvers import cg, dcdm

SMOKE = bool(os.environ.get("SCIML_SMOKE"))
N = 16 if SMOKE else 64
STEPS = 6 if SMOKE else 120""",
    ),
    (
        "markdown",
        """## One pressure system with obstacles the network never saw

`fluid_pressure` builds a box with solid walls and random obstacles (pure Neumann, so the
operator is singular) and a right-hand side in its range. `dcdm(A, b)` uses the shipped 2-D
model; pass `model=load_dcdm_model(path)` for other weights.""",
    ),
    (
        "code",
        """problem = fluid_pressure(jax.random.key(1), (N, N), n_obstacles=3)
A, b = problem.operator, problem.rhs
MODEL = None  # the shipped 2-D model
try:
    dcdm(A, b, max_steps=1, throw=False)
except ValueError as error:  # a checkout without the shipped weights
    print(f"NO SHIPPED DCDM WEIGHTS ({error});")
    print("the DCDM cells below fall back to the identity model, i.e. they run CG.")
    MODEL = lambda r: r  # noqa: E731
runs = {
    # throw=False: a model that misses the tolerance is shown, not raised.
    "DCDM": dcdm(A, b, model=MODEL, rtol=1e-6, max_steps=300, throw=False),
    "CG": cg(A, b, rtol=1e-6, max_steps=20 * A.n),
}
print("DCDM converged:", bool(runs["DCDM"].converged))
fig, (ax_mask, ax_conv) = plt.subplots(1, 2, figsize=(10, 4))
ax_mask.imshow(np.asarray(A.mask).T, origin="lower")
ax_mask.set_title(f"cell types, {int((A.mask == FLUID).sum())} fluid cells")
for name, sol in runs.items():
    history = np.asarray(sol.stats["residual_history"]) / float(jnp.linalg.norm(b))
    ax_conv.semilogy(history, label=f"{name}: {int(sol.stats['num_steps'])} iterations")
ax_conv.set_xlabel("iteration")
ax_conv.set_ylabel("‖r‖ / ‖b‖")
ax_conv.legend()
plt.show()""",
    ),
    (
        "markdown",
        """With the identity as the "network", DCDM is CG: a sanity check of the iteration.""",
    ),
    (
        "code",
        """identity = dcdm(A, b, model=lambda r: r, rtol=1e-6, max_steps=20 * A.n)
print("CG:", int(runs["CG"].stats["num_steps"]))
print("DCDM with the identity model:", int(identity.stats["num_steps"]))""",
    ),
    (
        "markdown",
        """## A smoke plume whose projection uses DCDM

`smoke_plume` runs a rising plume past a round obstacle on a MAC grid (semi-Lagrangian
advection, buoyancy) and records every pressure solve's iterations; `pressure_solver` picks
the solver ("cg", "pcg", "dcdm", "amg" with pyamg, or any callable).""",
    ),
    (
        "code",
        """plumes = {
    "cg": smoke_plume((N, N), n_steps=STEPS, record_every=STEPS // 3, pressure_solver="cg"),
    "dcdm": smoke_plume(
        (N, N),
        n_steps=STEPS,
        record_every=STEPS // 3,
        pressure_solver="dcdm",
        model=MODEL,
        throw=False,
    ),
}
fig, axes = plt.subplots(1, 4, figsize=(14, 3.5))
for ax, frame in zip(axes[:3], plumes["dcdm"].frames, strict=True):
    ax.imshow(frame.T, origin="lower", cmap="gray_r", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
for name, run in plumes.items():
    axes[3].plot(run.iterations, label=f"{name}: {run.total_s:.2f} s total")
axes[3].set_xlabel("time step")
axes[3].set_ylabel("pressure-solve iterations")
axes[3].legend()
plt.show()
for name, run in plumes.items():
    divergence = run.summary()["max_relative_divergence"]
    print(f"{name}: every solve converged: {run.converged}; largest ‖∇·u‖ after / before a "
          f"projection: {divergence:.1e}")""",
    ),
    (
        "markdown",
        """On a CPU a DCDM iteration (about 15 small convolutions over the grid) costs far more
than a CG iteration (one stencil product), so fewer iterations do not mean less time; see
docs/dcdm.md for measured numbers and when DCDM wins.""",
    ),
]

if __name__ == "__main__":
    from make_notebooks import write  # the one notebook writer (this folder is on sys.path)

    write(Path(__file__).resolve().parent / "06_dcdm.ipynb", CELLS)
