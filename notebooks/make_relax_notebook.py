"""Write notebooks/04_learning_to_relax.ipynb from the cell sources below (without outputs).

Run `python notebooks/make_relax_notebook.py` after editing; the tests execute the notebook with
SCIML_SMOKE=1 under nbmake.
"""

from pathlib import Path

CELLS = [
    (
        "markdown",
        """# Learning to relax: choosing SOR's ω across a sequence of systems

A simulation solves one linear system per time step. SOR's iteration count depends strongly on
the relaxation ω, whose best value is unknown and drifts with the system. `sciml.solvers.relax`
runs bandits that see only iteration counts (Tsallis-INF) or also a context such as the diagonal
shift (Tsallis-INF-CB, ChebCB), after Khodak, Chow, Balcan, Talwalkar (ICLR 2024). Set
`SCIML_SMOKE=1` for a short sequence (the tests do).""",
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

from sciml.linalg import poisson
from sciml.problems import shifted_laplacians
from sciml.solvers import relax, sor, young_omega

SMOKE = bool(os.environ.get("SCIML_SMOKE"))
T = 60 if SMOKE else 2000""",
    ),
    (
        "markdown",
        """## One system: sweeps against ω

For the unshifted 10×10 Laplacian, Young's formula gives the optimal ω* = 1.5604.""",
    ),
    (
        "code",
        """A = poisson((10, 10))
b = jnp.ones(100)
omegas = jnp.linspace(1.0, 1.95, 20)
sweeps = [int(sor(A, b, omega=w, rtol=1e-8).stats["num_steps"]) for w in omegas]
print("Young's omega*:", float(young_omega(A)))
plt.plot(omegas, sweeps, "o-")
plt.axvline(float(young_omega(A)), color="k", linestyle="--", label="Young ω*")
plt.xlabel("ω")
plt.ylabel("SOR sweeps to 1e-8")
plt.legend()
plt.show()""",
    ),
    (
        "markdown",
        """## A sequence of shifted Laplacians

A_t = A + c_t I with c_t = −0.15 + 0.6·Beta(0.5, 1.5); each learner picks ω before each solve and
pays the sweep count. The comparators here are brute force on the learners' 20-arm grid;
`relax.search_best_fixed` and `relax.search_instance_optimal` search the 0.01 grid by golden
section, in 12 runs instead of 96, exact only where the counts are unimodal in ω
(`benchmarks/bench_relax.py` uses brute force).""",
    ),
    (
        "code",
        """seq = shifted_laplacians(jax.random.key(0), T, variance="high")
key = jax.random.key(1)
learners = {
    "Tsallis-INF": relax.TsallisINF(omegas),
    "Tsallis-INF-CB": relax.TsallisINFCB(omegas, 5, -0.15, 0.65),
    "ChebCB": relax.ChebCB(omegas, 6, -0.15, 0.65),
}
# relax(sequence, solver, learner, *, key): the whole sequence under one lax.scan
runs = {name: relax.relax(seq, "sor", learner, key=key) for name, learner in learners.items()}
counts = relax.grid_iterations(seq, omegas)
best_omega, best_total = relax.best_fixed(counts, omegas)
_, per_instance = relax.instance_optimal(counts, omegas)
print(f"best fixed ω in hindsight: {float(best_omega):.2f}, {int(best_total)} sweeps")
print(f"instance-optimal (grid): {int(per_instance.sum())} sweeps")
for name, out in runs.items():
    print(f"{name:15s} {int(out.iterations.sum())} sweeps")""",
    ),
    (
        "code",
        """fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
t = np.arange(1, T + 1)
axes[0].plot(t, np.cumsum(counts[int(jnp.argmin(counts.sum(1)))]), "k--", label="best fixed ω")
axes[0].plot(t, np.cumsum(per_instance), "k:", label="instance-optimal")
for name, out in runs.items():
    axes[0].plot(t, np.asarray(out.cumulative), label=name)
axes[0].set_xlabel("instance")
axes[0].set_ylabel("cumulative sweeps")
axes[0].legend()
axes[1].scatter(np.asarray(seq.context), np.asarray(runs["ChebCB"].omega), s=6)
axes[1].set_xlabel("shift c_t (context)")
axes[1].set_ylabel("ω chosen by ChebCB")
plt.show()""",
    ),
]

if __name__ == "__main__":
    from make_notebooks import write  # the one notebook writer (this folder is on sys.path)

    write(Path(__file__).resolve().parent / "04_learning_to_relax.ipynb", CELLS)
