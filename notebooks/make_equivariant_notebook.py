"""Write notebooks/03_equivariant.ipynb from the cell sources below (without outputs).

Run `python notebooks/make_equivariant_notebook.py` after editing; the tests execute the notebook
with SCIML_SMOKE=1 under nbmake.
"""

from pathlib import Path

CELLS = [
    (
        "markdown",
        """# Equivariant tensor products: Clebsch–Gordan, Gaunt on a grid, Gaunt in Fourier space

`sciml.equivariant` multiplies irreps arrays (e3nn-jax's layout and conventions) in three ways:
the Clebsch–Gordan (CG) product with every path, and the Gaunt product, which multiplies the
two inputs as functions on the sphere, computed on a Gauss–Legendre grid (Xie et al., ICML 2025)
or in a 2D Fourier basis (Luo et al., ICLR 2024). The Gaunt product is much faster at high
degree but keeps only the paths with l1 + l2 + l3 even. This notebook checks the relation,
times the three, and shows what the missing paths cost on 3D Tetris. Set `SCIML_SMOKE=1` for a
quick run (the tests do).""",
    ),
    (
        "code",
        """import os
import time

import jax

jax.config.update("jax_enable_x64", True)  # the library never does this for you
import jax.numpy as jnp
import matplotlib

if os.environ.get("SCIML_SMOKE") or not os.environ.get("DISPLAY"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sciml.equivariant import (
    cg_tensor_product,
    gaunt_path_factor,
    gaunt_tensor_product,
    irreps_D,
    random_rotation,
    s2_irreps,
    tetris,
    tetris_accuracy,
    tetris_model,
    train_tetris,
)

SMOKE = bool(os.environ.get("SCIML_SMOKE"))
L = 2 if SMOKE else 4""",
    ),
    (
        "markdown",
        """## The Gaunt product is the even-path CG product with fixed path weights

Two random spherical signals with degrees up to L. The Gaunt product equals the CG product
restricted to the outputs of natural parity (0e, 1o, 2e, ...: exactly the paths with
l1 + l2 + l3 even), each path scaled by k(l1, l2, l3) = √((2l1+1)(2l2+1)) |(l1 l2 l3; 0 0 0)|.
`cg_tensor_product` with mode "uuu" takes one weight per path, so we pass those factors.""",
    ),
    (
        "code",
        """key_x, key_y = jax.random.split(jax.random.key(0))
x = jax.random.normal(key_x, (8, (L + 1) ** 2))
y = jax.random.normal(key_y, (8, (L + 1) ** 2))
# jit: one compilation per function instead of one per operation.
gtp = {
    method: jax.jit(lambda a, b, m=method: gaunt_tensor_product(a, b, lmax_x=L, lmax_y=L, method=m))
    for method in ("grid", "fourier")
}
grid, fourier = gtp["grid"](x, y), gtp["fourier"](x, y)
cg, irreps_cg = cg_tensor_product(
    x[:1], y[:1], s2_irreps(L), s2_irreps(L), filter_out=s2_irreps(2 * L)
)
print("output irreps of the even-path CG product (one per path):", irreps_cg)
print("Fourier vs grid:", float(jnp.max(jnp.abs(fourier - grid))))
print("GTP(y, x) vs GTP(x, y):", float(jnp.max(jnp.abs(gtp["grid"](y, x) - grid))))
print("k(1, 1, 2) =", gaunt_path_factor(1, 1, 2), " k(1, 1, 1) =", gaunt_path_factor(1, 1, 1))""",
    ),
    (
        "markdown",
        """## Equivariance under rotations and reflections

Rotating both inputs by the Wigner D matrices of R rotates the output by those of R; for the
improper −R each irrep also picks up its parity.""",
    ),
    (
        "code",
        """for improper in (False, True):
    R = random_rotation(jax.random.key(1), improper=improper, dtype=jnp.float64)
    D_in, D_out = irreps_D(s2_irreps(L), R), irreps_D(s2_irreps(2 * L), R)
    for method in ("grid", "fourier"):
        out = gtp[method](x @ D_in.T, y @ D_in.T)
        err = float(jnp.max(jnp.abs(out - grid @ D_out.T)))
        print(f"{'improper' if improper else 'proper  '} {method:8s} {err:.1e}")""",
    ),
    (
        "markdown",
        """## Run time against the degree

Float32, batch 200, one channel; each product compiled once, then the fastest of a few runs.
The full benchmark against e3nn-jax is `sciml bench equivariant`.""",
    ),
    (
        "code",
        """def timed(f, *args, repeats=5):
    f = jax.jit(f)
    jax.block_until_ready(f(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f(*args))
        best = min(best, time.perf_counter() - start)
    return best


def products(lmax):
    irreps, irreps_out = s2_irreps(lmax), s2_irreps(2 * lmax)
    return {
        "grid": lambda a, b: gaunt_tensor_product(a, b, lmax_x=lmax, lmax_y=lmax, method="grid"),
        "fourier": lambda a, b: gaunt_tensor_product(
            a, b, lmax_x=lmax, lmax_y=lmax, method="fourier"
        ),
        "cg (even paths)": lambda a, b: cg_tensor_product(
            a, b, irreps, irreps, filter_out=irreps_out
        )[0],
    }


degrees = [1, 2] if SMOKE else [1, 2, 3, 4, 5, 6]  # two points for a slope
times = {"grid": [], "fourier": [], "cg (even paths)": []}
for lmax in degrees:
    a = jax.random.normal(key_x, (200, (lmax + 1) ** 2), jnp.float32)
    b = jax.random.normal(key_y, (200, (lmax + 1) ** 2), jnp.float32)
    for name, f in products(lmax).items():
        times[name].append(timed(f, a, b))
for name, t in times.items():
    slope = np.polyfit(np.log(degrees), np.log(t), 1)[0]
    plt.loglog(degrees, np.array(t) * 1e3, "o-", label=f"{name} (slope {slope:.1f})")
plt.xlabel("L")
plt.ylabel("time [ms]")
plt.legend()
plt.show()""",
    ),
    (
        "markdown",
        """## What the missing paths cost: 3D Tetris

Eight shapes of four cubes; `chiral_1` and `chiral_2` are mirror images. A network whose
features all have natural parity (the Gaunt network) gives a shape and its mirror image the same
invariants, so it cannot exceed 7/8. The CG network forms pseudo-scalars (through the cross
product 1o ⊗ 1o → 1e, an odd-sum path) and separates them. Both are trained for real and tested
on randomly rotated and translated copies.""",
    ),
    (
        "code",
        """# Smoke size: one layer and a few steps only exercise the code (three layers are
# needed to form a pseudo-scalar from edge vectors).
steps, layers = (5, 1) if SMOKE else (300, 3)
positions, labels = tetris(key=jax.random.key(2), copies=8)
for product in ("cg", "gaunt"):
    model = tetris_model(product, key=jax.random.key(0), mul=4, lmax=1, num_layers=layers)
    model, history = train_tetris(model, steps=steps, learning_rate=1e-2)
    plt.plot(np.asarray(history["accuracy"]), label=product)
    accuracy = float(tetris_accuracy(model, positions, labels))
    print(f"{product:5s}: test accuracy on rotated shapes {accuracy:.3f}")
plt.axhline(7 / 8, color="k", linestyle=":", label="7/8")
plt.xlabel("Adam step")
plt.ylabel("training accuracy")
plt.legend()
plt.show()""",
    ),
]

if __name__ == "__main__":
    from make_notebooks import write  # the one notebook writer (this folder is on sys.path)

    write(Path(__file__).resolve().parent / "03_equivariant.ipynb", CELLS)
