"""Write the notebooks from the cell sources below (committed without outputs).

Run `python notebooks/make_notebooks.py` after editing; the tests execute the notebooks with
SCIML_SMOKE=1 under nbmake.
"""

from pathlib import Path

import nbformat

LINEAR_SOLVERS = [
    (
        "markdown",
        """# Linear solvers in sciml

Krylov baselines (CG, preconditioned CG, restarted GMRES) on the matrix-free grid operators of
`sciml.linalg` and the problem families of `sciml.problems`, checked against SciPy.
Set `SCIML_SMOKE=1` to run everything at toy size (the tests do).""",
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
import scipy.sparse.linalg as sla

from sciml.linalg import FLUID
from sciml.problems import darcy, fluid_pressure
from sciml.solvers import cg, gmres, jacobi

SMOKE = bool(os.environ.get("SCIML_SMOKE"))
N = 24 if SMOKE else 128""",
    ),
    (
        "markdown",
        """## A fluid-pressure system with obstacles

Solid walls (Neumann), random spherical and box obstacles, and a right-hand side that is the
divergence of a random velocity field, projected onto the range of the singular operator.""",
    ),
    (
        "code",
        """problem = fluid_pressure(jax.random.key(0), (N, N), n_obstacles=4)
A, b = problem.operator, problem.rhs
plt.imshow(np.asarray(A.mask).T, origin="lower")
plt.title(f"cell types ({int((A.mask == FLUID).sum())} fluid cells)")
plt.show()""",
    ),
    (
        "code",
        """solutions = {
    "CG": cg(A, b, rtol=1e-8),
    "PCG (Jacobi)": cg(A, b, rtol=1e-8, M=jacobi(A)),
    "GMRES(40)": gmres(A, b, rtol=1e-8, restart=40),
}
A_csr = A.to_scipy()
for name, sol in solutions.items():
    relres = np.linalg.norm(A_csr @ np.asarray(sol.value) - np.asarray(b)) / np.linalg.norm(b)
    steps = int(sol.stats["num_steps"])
    print(f"{name:14s} iterations {steps:5d}  true relative residual {relres:.2e}")

scipy_iterations = []
sla.cg(A_csr, np.asarray(b), rtol=1e-8, callback=lambda xk: scipy_iterations.append(1))
print(f"{'SciPy cg':14s} iterations {len(scipy_iterations):5d}")""",
    ),
    (
        "code",
        """for name, sol in solutions.items():
    history = np.asarray(sol.stats["residual_history"])
    plt.semilogy(history[np.isfinite(history)] / np.linalg.norm(b), label=name)
plt.xlabel("iteration")
plt.ylabel("relative residual")
plt.legend()
plt.show()""",
    ),
    (
        "markdown",
        """## Many right-hand sides at once

`vmap` batches the solver; each member reports its own iteration count (the loop runs until the
slowest member finishes).""",
    ),
    (
        "code",
        """keys = jax.random.split(jax.random.key(1), 4)
rhs = jnp.stack([fluid_pressure(k, (N, N), n_obstacles=4).rhs for k in keys])
# Same operator (key 0), different right-hand sides projected onto its range.
from sciml.linalg import project_to_range

rhs = jax.vmap(lambda r: project_to_range(A, r))(rhs)
batch = jax.jit(jax.vmap(lambda r: cg(A, r, rtol=1e-8)))(rhs)
print("iterations per member:", np.asarray(batch.stats["num_steps"]))""",
    ),
    (
        "markdown",
        """## Darcy flow with a lognormal coefficient (the FNO benchmark family)""",
    ),
    (
        "code",
        """family = darcy(jax.random.key(2), 4, N + 2)
sol = cg(family.operator(0), family.rhs, rtol=1e-10)
fig, axes = plt.subplots(1, 2, figsize=(8, 3.5))
axes[0].imshow(np.log(np.asarray(family.coefficients[0])).T, origin="lower")
axes[0].set_title("log a")
axes[1].imshow(np.asarray(sol.value).reshape(N, N).T, origin="lower")
axes[1].set_title(f"u  (CG, {int(sol.stats['num_steps'])} iterations)")
plt.show()""",
    ),
]


def write(path: Path, cells) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
        for kind, src in cells
    ]
    nbformat.write(nb, path)


if __name__ == "__main__":
    here = Path(__file__).parent
    write(here / "01_linear_solvers.ipynb", LINEAR_SOLVERS)
