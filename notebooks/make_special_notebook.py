"""Write notebooks/02_special_functions.ipynb from the cell sources below (without outputs).

Run `python notebooks/make_special_notebook.py` after editing; the tests execute the notebook
with SCIML_SMOKE=1 under nbmake.
"""

from pathlib import Path

CELLS = [
    (
        "markdown",
        """# Special functions: log-Bessel functions and von Mises–Fisher

`sciml.special` computes log I_v(x) and log K_v(x) on the log scale, so nothing overflows or
underflows at any order or argument, with gradients in both v and x; `sciml.special.vmf` builds
the von Mises–Fisher distribution on it and fits it in tens of thousands of dimensions, where
SciPy's exponentially scaled Bessel functions underflow. Set `SCIML_SMOKE=1` for toy sizes (the
tests do).""",
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
import scipy.special as sc

from sciml.special import log_iv, log_kv, vmf

SMOKE = bool(os.environ.get("SCIML_SMOKE"))
N_GRID = 40 if SMOKE else 200""",
    ),
    (
        "markdown",
        """## Where SciPy runs out of range

SciPy's `ive` underflows to 0 once the order is large compared with the argument (and `kve`
overflows in the mirror region); sciml stays finite everywhere.""",
    ),
    (
        "code",
        """v = np.logspace(-1, 5, N_GRID)
x = np.logspace(-6, 6, N_GRID)
vv, xx = np.meshgrid(v, x, indexing="ij")
ours = np.asarray(log_iv(vv, xx))
with np.errstate(divide="ignore"):
    scipy_values = np.log(sc.ive(vv, xx)) + xx
fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
image = axes[0].pcolormesh(np.log10(x), np.log10(v), ours, cmap="RdBu_r",
                           vmin=-np.abs(ours).max(), vmax=np.abs(ours).max())
axes[0].set_title("log I_v(x), sciml (always finite)")
fig.colorbar(image, ax=axes[0])
axes[1].pcolormesh(np.log10(x), np.log10(v), ~np.isfinite(scipy_values), cmap="Greys")
axes[1].set_title(f"SciPy log(ive)+x non-finite: {np.mean(~np.isfinite(scipy_values)):.0%}")
for ax in axes:
    ax.set_xlabel("log10 x")
    ax.set_ylabel("log10 v")
plt.show()""",
    ),
    (
        "code",
        """finite = np.isfinite(scipy_values)
difference = np.abs(ours - scipy_values)[finite] / np.maximum(1, np.abs(scipy_values[finite]))
print(f"where SciPy is finite: max mixed difference {difference.max():.1e}, "
      f"median {np.median(difference):.1e}")
print("log I_1e4(1e-6) =", float(log_iv(1e4, 1e-6)))
print("log K_1e4(1e-6) =", float(log_kv(1e4, 1e-6)))""",
    ),
    (
        "markdown",
        """## Gradients in the order and the argument

d/dx comes from the ratio identities (custom JVP); d/dv from forward-mode autodiff through the
selected branch. Both are checked against 50-digit references in `tests/special`. Here we
compare with central finite differences.""",
    ),
    (
        "code",
        """orders = jnp.array([0.0, 2.5, 12.5, 300.0])
args = jnp.array([1e-3, 1.9, 10.0, 250.0])
d_v, d_x = jax.vmap(jax.grad(log_iv, argnums=(0, 1)))(orders, args)
h = 1e-6
fd_v = (log_iv(orders + h, args) - log_iv(jnp.maximum(orders - h, 0), args)) / (
    orders + h - jnp.maximum(orders - h, 0))
fd_x = (log_iv(orders, args * (1 + h)) - log_iv(orders, args * (1 - h))) / (2 * h * args)
for row in zip(orders, args, d_v, fd_v, d_x, fd_x, strict=True):
    print("v={:6.1f} x={:7.3f}  d/dv {:+.10f} (fd {:+.10f})  d/dx {:+.10f} (fd {:+.10f})".format(
        *map(float, row)))""",
    ),
    (
        "markdown",
        """## von Mises–Fisher in high dimension

Sample with Wood's algorithm (no d×d rotation), then fit: μ̂ is the normalised mean and κ̂
solves A_d(κ) = R̄ by Newton's method from Banerjee's closed-form start. The same Newton with
SciPy's `ive` ratio is 0/0 at these sizes.""",
    ),
    (
        "code",
        """d = 512 if SMOKE else 8192
n = 200 if SMOKE else 2000
key_mu, key_x = jax.random.split(jax.random.key(0))
mu = jax.random.normal(key_mu, (d,))
mu = mu / jnp.linalg.norm(mu)
for kappa in (d / 4, d, 4 * d):
    X = vmf.sample(key_x, mu, kappa, (n,))
    sol = vmf.fit(X)
    rbar = float(sol.stats["mean_resultant_length"])
    with np.errstate(all="ignore"):
        scipy_ratio = sc.ive(d / 2, kappa) / sc.ive(d / 2 - 1, kappa)
    print(f"d={d} kappa={kappa:8.0f}: kappa_hat={float(sol.value.kappa):10.2f} "
          f"in {int(sol.stats['num_steps'])} Newton steps, residual "
          f"{float(sol.stats['residual_norm']):.1e}, "
          f"cos(mu_hat, mu)={float(sol.value.mu @ mu):.4f}; "
          f"SciPy ratio at kappa: {scipy_ratio}")""",
    ),
    (
        "code",
        """kappas = jnp.logspace(-2, 6, 200)
fig, ax = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
for dim in (3, 128, 2048, 32768):
    ax.semilogx(kappas, vmf.mean_resultant_length(kappas, dim), label=f"d = {dim}")  # one compile
ax.set_xlabel("κ")
ax.set_ylabel("A_d(κ) = E[μᵀx]")
ax.legend()
plt.show()
# The score in κ is n·(R̄·cos − A_d(κ)); it vanishes at the fit (log_prob is differentiable too).
score = float(jnp.sum(X @ sol.value.mu) - n * vmf.mean_resultant_length(sol.value.kappa, d))
print("d/dκ of the log-likelihood at the fitted κ:", score)""",
    ),
]


if __name__ == "__main__":
    from make_notebooks import write  # the one notebook writer (this folder is on sys.path)

    write(Path(__file__).resolve().parent / "02_special_functions.ipynb", CELLS)
