"""Report section: equivariant tensor products (accuracy, speed vs L, the Tetris trade-off)."""

from ._report import SectionContext, SectionResult, report_section

# Sizes keep the full section near a minute on a 2-core CPU (compiles dominate); the smoke
# sizes only exercise the code (one degree, a one-layer Tetris network for a few steps).
ACCURACY_LMAX, ACCURACY_LMAX_SMOKE = (2, 4), (1,)
SPEED_LMAX, SPEED_LMAX_SMOKE = (1, 2, 3, 4), (1,)
SPEED_BATCH = 200
TETRIS_STEPS, TETRIS_STEPS_SMOKE = 200, 3


def _even_path_cg(x, y, lmax):
    """Σ over even paths of k(l1, l2, l3) × e3nn's "component" CG path: the Gaunt product by
    the methods note's §1.2, computed with the CG coefficients (float64 reference)."""
    import math

    import jax.numpy as jnp
    import numpy as np

    from sciml.equivariant import clebsch_gordan, gaunt_path_factor

    out = []
    for l3 in range(2 * lmax + 1):
        acc = jnp.zeros(x.shape[:-1] + (2 * l3 + 1,), x.dtype)
        for l1 in range(lmax + 1):
            for l2 in range(lmax + 1):
                if not abs(l1 - l2) <= l3 <= l1 + l2 or (l1 + l2 + l3) % 2:
                    continue
                c = np.asarray(clebsch_gordan(l1, l2, l3)) * math.sqrt(2 * l3 + 1)
                c = jnp.asarray(c * gaunt_path_factor(l1, l2, l3), x.dtype)
                a, b = x[..., l1 * l1 : (l1 + 1) ** 2], y[..., l2 * l2 : (l2 + 1) ** 2]
                acc = acc + jnp.einsum("...i,...j,ijk->...k", a, b, c)
        out.append(acc)
    return jnp.concatenate(out, axis=-1)


def _rel(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _accuracy(ctx: SectionContext, lmaxes):
    """Rows: GTP (grid) vs even-path CG, Fourier vs grid, equivariance of each product."""
    import jax
    import jax.numpy as jnp

    from sciml.equivariant import (
        cg_tensor_product,
        gaunt_tensor_product,
        irreps_D,
        random_rotation,
        s2_irreps,
    )

    dtype = jnp.dtype(ctx.dtype)
    rows = []
    for lmax in lmaxes:
        kx, ky, kr = jax.random.split(jax.random.key(ctx.seed + lmax), 3)
        x = jax.random.normal(kx, (16, (lmax + 1) ** 2), dtype)
        y = jax.random.normal(ky, (16, (lmax + 1) ** 2), dtype)
        irreps, irreps_out = s2_irreps(lmax), s2_irreps(2 * lmax)
        products = {
            "grid": jax.jit(
                lambda a, b, L=lmax: gaunt_tensor_product(a, b, lmax_x=L, lmax_y=L, method="grid")
            ),
            "fourier": jax.jit(
                lambda a, b, L=lmax: gaunt_tensor_product(
                    a, b, lmax_x=L, lmax_y=L, method="fourier"
                )
            ),
            "cg": jax.jit(
                lambda a, b, i=irreps, o=irreps_out: cg_tensor_product(a, b, i, i, filter_out=o)[0]
            ),
        }
        grid = products["grid"](x, y)
        fourier = products["fourier"](x, y)
        reference = jax.jit(lambda a, b, L=lmax: _even_path_cg(a, b, L))(x, y)
        row = {
            "lmax": lmax,
            "grid_vs_even_path_cg": _rel(grid, reference),
            "fourier_vs_grid": _rel(fourier, grid),
            "symmetry": _rel(products["grid"](y, x), grid),
        }
        # The CG product keeps one output irrep per path (e3nn's order), not one per degree.
        cg_irreps = cg_tensor_product(x[:1], y[:1], irreps, irreps, filter_out=irreps_out)[1]
        for improper in (False, True):
            R = random_rotation(kr, improper=improper, dtype=jnp.float64)
            d_in = irreps_D(irreps, R).astype(dtype)
            for name, f in products.items():
                d_out = irreps_D(cg_irreps if name == "cg" else irreps_out, R).astype(dtype)
                out = f(x, y)
                rotated = f(x @ d_in.T, y @ d_in.T)
                tag = "improper" if improper else "proper"
                row[f"equivariance_{name}_{tag}"] = _rel(rotated, out @ d_out.T)
        rows.append(row)
        ctx.log(f"equivariant: accuracy at L={lmax}")
    return rows


def _tetris(ctx: SectionContext, steps: int, num_layers: int):
    import jax

    from sciml.equivariant import tetris, tetris_accuracy, tetris_model, train_tetris

    positions, labels = tetris(key=jax.random.key(ctx.seed + 1), copies=8)
    out = {}
    for product in ("cg", "gaunt"):
        ctx.log(f"equivariant: training the {product} Tetris network ({steps} Adam steps)")
        model = tetris_model(
            product, key=jax.random.key(ctx.seed), mul=4, lmax=1, num_layers=num_layers
        )
        model, history = train_tetris(model, steps=steps, learning_rate=1e-2)
        accuracy = [float(a) for a in history["accuracy"]]
        first = next((i for i, a in enumerate(accuracy) if a == 1.0), None)
        out[product] = {
            "train_accuracy": accuracy[-1],
            "first_step_at_100": first,
            "test_accuracy": float(tetris_accuracy(model, positions, labels)),
            "history": accuracy,
        }
    return out


@report_section(
    "equivariant", "Equivariant tensor products (CG, Gaunt grid, Gaunt Fourier)", order=50
)
def equivariant(ctx: SectionContext) -> SectionResult:
    """Accuracy and equivariance of the three products, run time vs L, and 3D Tetris."""
    from sciml._core._plotting import new_figure, save_figure

    from . import _bench_equivariant as B

    smoke = ctx.smoke
    failures = []
    accuracy = _accuracy(ctx, ACCURACY_LMAX_SMOKE if smoke else ACCURACY_LMAX)
    bound = 1e-10 if ctx.dtype == "float64" else 1e-4
    for row in accuracy:
        worst = max(v for k, v in row.items() if k != "lmax")
        if worst > bound:
            failures.append(f"equivariant: L={row['lmax']} max error {worst:.1e} > {bound:g}")

    names = ["sciml-grid", "sciml-fourier", "sciml-cg"]
    if B.have_e3nn() and not smoke:
        names.append("e3nn-cg")
    cases = []
    for lmax in SPEED_LMAX_SMOKE if smoke else SPEED_LMAX:
        ctx.log(f"equivariant: timing L={lmax}")
        cases.append(
            B.run_case(
                lmax,
                10 if smoke else SPEED_BATCH,
                1,
                names=names,
                repeats=2 if smoke else 7,
                warmup=1,
                budget_s=5.0,
                seed=ctx.seed,
            )
        )
    slopes = B.slopes(cases, min_lmax=2)
    key = f"{10 if smoke else SPEED_BATCH}x1"
    figure = new_figure(figsize=(6.0, 4.2))
    ax = figure.subplots()
    for name in names:
        points = [(c["lmax"], c["products"][name]["min_s"]) for c in cases if name in c["products"]]
        slope = slopes.get(key, {}).get(name)
        label = name + (f" (slope {slope:.1f})" if slope is not None else "")
        ax.loglog(
            [p[0] for p in points],
            [p[1] * 1e3 for p in points],
            "-" if name.startswith("sciml") else "--",
            marker="o",
            label=label,
        )
    ax.set(
        xlabel="L (degree of both inputs)",
        ylabel="time [ms], fastest run",
        title=f"float32, batch {10 if smoke else SPEED_BATCH}, 1 channel, {ctx.env['device_kind']}",
    )
    ax.legend(fontsize=8)
    save_figure(figure, ctx.path("speed.png"))

    if smoke:
        tetris = _tetris(ctx, TETRIS_STEPS_SMOKE, num_layers=1)
    else:
        tetris = _tetris(ctx, TETRIS_STEPS, num_layers=3)
    if not smoke:
        if tetris["cg"]["test_accuracy"] != 1.0:
            failures.append(
                f"equivariant: CG Tetris test accuracy {tetris['cg']['test_accuracy']:.3f} < 1"
            )
        if tetris["gaunt"]["test_accuracy"] > 7 / 8:
            failures.append("equivariant: the Gaunt Tetris network beat 7/8, which is impossible")

    def e(v):
        return f"{v:.1e}"

    lines = [
        "Inputs: 16 random coefficient vectors of s2_irreps(L) = 0e+1o+...+L per case, "
        f"{ctx.dtype}. "
        "*GTP vs CG*: the grid Gaunt product against the Clebsch–Gordan sum over the even paths "
        "with the per-path factors k(l1, l2, l3) (max relative error); *Fourier vs grid*: the two "
        "Gaunt routes; *sym.*: GTP(y, x) vs GTP(x, y); *equivariance*: "
        "max |f(Dx, Dy) − D f(x, y)| / max |f| for a random rotation R and for −R (improper).",
        "",
        "| L | GTP vs CG | Fourier vs grid | sym. | equiv. grid (R / −R) | equiv. Fourier "
        "| equiv. CG |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in accuracy:
        lines.append(
            f"| {r['lmax']} | {e(r['grid_vs_even_path_cg'])} | {e(r['fourier_vs_grid'])} | "
            f"{e(r['symmetry'])} | "
            + " | ".join(
                f"{e(r[f'equivariance_{n}_proper'])} / {e(r[f'equivariance_{n}_improper'])}"
                for n in ("grid", "fourier", "cg")
            )
            + " |"
        )
    lines += [
        "",
        "Run time of one product (same even paths for the CG products), fastest of interleaved "
        "runs; the log-log slopes are fitted for L ≥ 2 at this small size, where fixed costs "
        "still matter (the full sweep L = 1..8 with e3nn-jax's grid product is "
        "`sciml bench equivariant`).",
        "",
        "| L | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for c in cases:
        lines.append(
            f"| {c['lmax']} | "
            + " | ".join(f"{c['products'][n]['min_s'] * 1e3:.3g} ms" for n in names)
            + " |"
        )
    lines += [
        "",
        ctx.image("speed.png", "run time vs L"),
        "",
        "3D Tetris (8 shapes, two of them mirror images), message-passing networks with "
        + ("1 layer (smoke size: too small to learn)" if smoke else "3 layers")
        + ", hidden degree 1, multiplicity 4, trained with Adam on the 8 shapes and tested "
        "on 64 randomly rotated and translated copies. The Gaunt network's features all have "
        "natural parity, so a shape and its mirror image give it the same invariants: it can "
        "reach at most 7/8.",
        "",
        "| network | train accuracy | first step at 100 % | test accuracy |",
        "|---|---|---|---|",
    ]
    for product, label in (("cg", "Clebsch–Gordan"), ("gaunt", "Gaunt (grid)")):
        t = tetris[product]
        first = "never" if t["first_step_at_100"] is None else str(t["first_step_at_100"])
        lines.append(
            f"| {label} | {t['train_accuracy']:.3f} | {first} | {t['test_accuracy']:.3f} |"
        )
    metrics = {
        "accuracy": accuracy,
        "speed": cases,
        "slopes": slopes,
        "tetris": {
            k: {kk: vv for kk, vv in v.items() if kk != "history"} for k, v in tetris.items()
        },
    }
    return SectionResult(markdown="\n".join(lines), metrics=metrics, failures=failures)
