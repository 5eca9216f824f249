"""Write notebooks/05_skr_datagen.ipynb from the cell sources below (without outputs).

Run `python notebooks/make_skr_notebook.py` after editing; the tests execute the notebook with
SCIML_SMOKE=1 under nbmake.
"""

from pathlib import Path

CELLS = [
    (
        "markdown",
        """# SKR: generating neural-operator data by sorted Krylov recycling

Training a neural operator needs many PDE solutions, i.e. many *related* linear systems. SKR
(Wang et al., ICLR 2024) sorts the systems so that neighbours are similar and solves them in that
order with GCRO-DR, a restarted GMRES that carries a deflation space from one system to the next.
This notebook solves a Darcy family with SKR and with GMRES(40), writes a dataset with
`generate_dataset` (what `sciml datagen` does), and trains a small FNO on it. Set
`SCIML_SMOKE=1` for tiny sizes (the tests do).""",
    ),
    (
        "code",
        """import os
import tempfile
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # the library never does this for you
import jax.numpy as jnp
import matplotlib

if os.environ.get("SCIML_SMOKE") or not os.environ.get("DISPLAY"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sciml.operators import FNO, mean_relative_l2, train_fno
from sciml.operators.datagen import darcy_family, generate_dataset, load_dataset, solve_sequence

SMOKE = bool(os.environ.get("SCIML_SMOKE"))
S, N = (18, 24) if SMOKE else (34, 200)  # grid nodes per side, number of samples
STEPS = 40 if SMOKE else 1000""",
    ),
    (
        "markdown",
        """## Recycling along a chain

Lognormal Darcy coefficients (the FNO benchmark): the first system costs as much as GMRES, the
following ones far less because the recycled space already holds the slow directions.""",
    ),
    (
        "code",
        """family = darcy_family(jax.random.key(0), N, S)
skr = solve_sequence(family, method="skr", sort="greedy", rtol=1e-8, m=40, k=20)
gmres = solve_sequence(family, method="gmres", sort=None, rtol=1e-8, m=40)
order = np.asarray(skr.order)
print(f"mean iterations: GMRES(40) {float(gmres.iterations.mean()):.1f}, "
      f"SKR {float(skr.iterations.mean()):.1f}; max residual {float(skr.residuals.max()):.1e}")
plt.plot(np.asarray(skr.iterations)[order], "o-", label="GCRO-DR(40,20), sorted chain")
plt.plot(np.asarray(gmres.iterations)[order], "s-", label="GMRES(40), independent")
plt.xlabel("position in the solving order")
plt.ylabel("iterations to 1e-8")
plt.legend()
plt.show()""",
    ),
    (
        "markdown",
        """## A dataset on disk

`generate_dataset` writes chunks (resumable: re-running skips completed chunks), `meta.json`
and a merged `dataset.npz`; `load_dataset` reads it back in the original sample order. From the
shell: `sciml datagen darcy --n 200 --grid 34 --out data/darcy`.""",
    ),
    (
        "code",
        """out = Path(tempfile.mkdtemp()) / "darcy"
report = generate_dataset(out, "darcy", n_samples=N, grid=S, rtol=1e-8, chunk_size=N, seed=0)
data = load_dataset(out)
print(report)
print(sorted(p.name for p in out.iterdir()))
print("inputs", data.inputs.shape, "solutions", data.solutions.shape)""",
    ),
    (
        "markdown",
        """## Train a Fourier Neural Operator on it

Input: the coefficient a on the s×s nodes (normalised per node); target: u on the same nodes
(0 on the boundary). Test error: mean relative L2 on held-out samples.""",
    ),
    (
        "code",
        """a = data.inputs[:, None]
u = np.pad(data.solutions, ((0, 0), (1, 1), (1, 1)))[:, None]
n_train = int(0.8 * N)
mean, std = a[:n_train].mean(0), a[:n_train].std(0)
x = jnp.asarray((a - mean) / std)
y = jnp.asarray(u)
model = FNO(1, 1, modes=4 if SMOKE else 8, width=8 if SMOKE else 24, key=jax.random.key(0))
model, history = train_fno(model, x[:n_train], y[:n_train], steps=STEPS, key=jax.random.key(1),
                           batch_size=min(10, n_train), lr=3e-3)
test_error = float(mean_relative_l2(model, x[n_train:], y[n_train:]))
print(f"test relative L2: {test_error:.3f}")
prediction = model(x[n_train])
fig, axes = plt.subplots(1, 3, figsize=(11, 3))
for ax, field, title in zip(axes, (a[n_train, 0], y[n_train, 0], prediction[0]),
                            ("coefficient a", "solution u (SKR)", "FNO prediction"), strict=True):
    ax.imshow(np.asarray(field), origin="lower")
    ax.set_title(title)
plt.show()
plt.semilogy(np.asarray(history))
plt.xlabel("step")
plt.ylabel("training loss (relative L2)")
plt.show()""",
    ),
    (
        "code",
        """import shutil

shutil.rmtree(out.parent)  # the dataset was written to a temporary directory""",
    ),
]

if __name__ == "__main__":
    from make_notebooks import write  # the one notebook writer (this folder is on sys.path)

    write(Path(__file__).resolve().parent / "05_skr_datagen.ipynb", CELLS)
