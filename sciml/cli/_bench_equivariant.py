"""The equivariant benchmark: Gaunt tensor products (grid, Fourier) and CG vs e3nn-jax.

For each degree L and each configuration (batch, channels), two inputs of irreps
s2_irreps(L) = 0e+1o+...+L (natural parity, float32, standard normal) are multiplied by

- `sciml-grid`: `gaunt_tensor_product(method="grid")` (Gauss–Legendre × uniform grid, minimal
  exact resolution; Xie et al., ICML 2025);
- `sciml-fourier`: `gaunt_tensor_product(method="fourier")` (2D Fourier route, exact sparse
  coefficients; Luo et al., ICLR 2024);
- `sciml-cg`: `cg_tensor_product` restricted to the outputs 0e..2L of natural parity, i.e. the
  same (even) paths as the Gaunt product;
- `e3nn-cg`: e3nn-jax `tensor_product(..., filter_ir_out=s2_irreps(2L))`, the same paths;
- `e3nn-grid`: e3nn-jax's own `to_s2grid` / pointwise product / `from_s2grid` at the minimal
  exact grid (Gauss–Legendre, 2L+1 × 4L+1, FFT in α; e3nn-jax needs an odd res_α for its FFT).

Channels are a separate axis (channel-wise products, no weights), so every product does the same
work per channel. All products of one (configuration, L) are compiled, then timed interleaved in
the same process (`time_jitted_interleaved`): compile time apart from run time, min and median of
the runs. Outputs are cross-checked (Fourier vs grid, e3nn grid vs sciml grid, e3nn CG vs sciml
CG). The floors of issue 4 are checked on the fastest runs (the stable statistic on a shared
machine) and reported with the medians beside them. e3nn-jax is optional: without it the e3nn
columns and the floors that need them are skipped.
"""

import math
from collections.abc import Callable, Sequence
from typing import Any

PRODUCTS = ("sciml-grid", "sciml-fourier", "sciml-cg", "e3nn-cg", "e3nn-grid")
DEFAULT_LMAX = tuple(range(1, 9))
DEFAULT_CONFIGS = ((1000, 1), (256, 16))
COMPILE_FLOOR_S = 5.0


def have_e3nn() -> bool:
    """Whether e3nn-jax can be imported."""
    try:
        import e3nn_jax  # noqa: F401
    except ImportError:
        return False
    return True


def make_inputs(lmax: int, batch: int, channels: int, *, seed: int = 0, dtype: str = "float32"):
    """Two standard normal inputs of shape (batch, channels, (lmax+1)²)."""
    import jax

    k1, k2 = jax.random.split(jax.random.key(seed + 1000 * lmax + channels))
    shape = (batch, channels, (lmax + 1) ** 2)
    return jax.random.normal(k1, shape, dtype), jax.random.normal(k2, shape, dtype)


def make_products(lmax: int, names: Sequence[str] = PRODUCTS) -> dict[str, Callable]:
    """name → `f(x, y)` for the products in `names` at degree `lmax` (e3nn ones if available)."""
    import jax

    from sciml.equivariant import cg_tensor_product, gaunt_tensor_product, s2_irreps

    irreps = s2_irreps(lmax)
    irreps_out = s2_irreps(2 * lmax)
    products: dict[str, Callable] = {}
    if "sciml-grid" in names:
        products["sciml-grid"] = lambda x, y: gaunt_tensor_product(
            x, y, lmax_x=lmax, lmax_y=lmax, method="grid"
        )
    if "sciml-fourier" in names:
        products["sciml-fourier"] = lambda x, y: gaunt_tensor_product(
            x, y, lmax_x=lmax, lmax_y=lmax, method="fourier"
        )
    if "sciml-cg" in names:
        products["sciml-cg"] = lambda x, y: cg_tensor_product(
            x, y, irreps, irreps, filter_out=irreps_out
        )[0]
    if have_e3nn() and {"e3nn-cg", "e3nn-grid"} & set(names):
        import e3nn_jax as e3nn

        e_irreps = e3nn.s2_irreps(lmax)
        e_out = e3nn.s2_irreps(2 * lmax)
        res_beta, res_alpha = 2 * lmax + 1, 4 * lmax + 1

        # e3nn-jax relies on standard dtype promotion; the tests run JAX in strict mode.
        def e3nn_cg(x, y):
            with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
                out = e3nn.tensor_product(
                    e3nn.IrrepsArray(e_irreps, x),
                    e3nn.IrrepsArray(e_irreps, y),
                    filter_ir_out=e_out,
                )
                return out.array

        def e3nn_grid(x, y):
            with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
                fx, fy = (
                    e3nn.to_s2grid(
                        e3nn.IrrepsArray(e_irreps, v),
                        res_beta,
                        res_alpha,
                        quadrature="gausslegendre",
                        p_val=1,
                        p_arg=-1,
                        fft=True,
                    )
                    for v in (x, y)
                )
                return e3nn.from_s2grid(fx * fy, e_out, fft=True).array

        if "e3nn-cg" in names:
            products["e3nn-cg"] = e3nn_cg
        if "e3nn-grid" in names:
            products["e3nn-grid"] = e3nn_grid
    return products


def _max_rel(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def run_case(
    lmax: int,
    batch: int,
    channels: int,
    *,
    names: Sequence[str] = PRODUCTS,
    repeats: int = 20,
    warmup: int = 2,
    budget_s: float = 20.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Compile and time every product at one (L, batch, channels); cross-check the outputs."""
    from sciml._core._timing import time_jitted_interleaved

    x, y = make_inputs(lmax, batch, channels, seed=seed)
    products = make_products(lmax, names)
    timings, outputs = time_jitted_interleaved(
        products, x, y, repeats=repeats, warmup=warmup, budget_s=budget_s
    )
    checks = {}
    if "sciml-grid" in outputs:
        ref = outputs["sciml-grid"]
        for name in ("sciml-fourier", "e3nn-grid"):
            if name in outputs:
                checks[f"{name} vs sciml-grid"] = _max_rel(outputs[name], ref)
    if "sciml-cg" in outputs and "e3nn-cg" in outputs:
        checks["e3nn-cg vs sciml-cg"] = _max_rel(outputs["e3nn-cg"], outputs["sciml-cg"])
    return {
        "lmax": lmax,
        "batch": batch,
        "channels": channels,
        "products": {name: timing.as_dict() for name, timing in timings.items()},
        "max_rel_diff": checks,
    }


def fit_slope(lmaxes: Sequence[int], times: Sequence[float]) -> float:
    """Least-squares slope of log(time) against log(L)."""
    import numpy as np

    logs = np.log(np.asarray(lmaxes, float)), np.log(np.asarray(times, float))
    return float(np.polyfit(logs[0], logs[1], 1)[0])


def slopes(cases: Sequence[dict[str, Any]], *, min_lmax: int = 3) -> dict[str, dict[str, float]]:
    """Per configuration and product: the log-log slope of the fastest run time vs L (L ≥ min_lmax,
    where fixed overheads no longer dominate; all L if fewer than 3 remain)."""
    out: dict[str, dict[str, float]] = {}
    for config in sorted({(c["batch"], c["channels"]) for c in cases}):
        rows = [c for c in cases if (c["batch"], c["channels"]) == config]
        key = f"{config[0]}x{config[1]}"
        out[key] = {}
        names = sorted({name for c in rows for name in c["products"]})
        for name in names:
            points = [
                (c["lmax"], c["products"][name]["min_s"]) for c in rows if name in c["products"]
            ]
            large = [p for p in points if p[0] >= min_lmax]
            use = large if len(large) >= 3 else points
            if len(use) >= 2:
                out[key][name] = fit_slope([p[0] for p in use], [p[1] for p in use])
    return out


def _ratio(case, a: str, b: str, stat: str = "min_s") -> float | None:
    products = case["products"]
    if a not in products or b not in products:
        return None
    return products[a][stat] / products[b][stat]


def check_floors(cases: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The floors of issue 4, each `{name, status: met | missed | skipped, measured, median}`."""
    floors = []

    def add(name, value, median, ok, why=None):
        if value is None:
            floors.append(
                {
                    "name": name,
                    "status": "skipped",
                    "measured": None,
                    "median": None,
                    "why": why or "not measured",
                }
            )
        else:
            floors.append(
                {
                    "name": name,
                    "status": "met" if ok(value) else "missed",
                    "measured": value,
                    "median": median,
                }
            )

    def find(lmax, channels):
        for c in cases:
            if c["lmax"] == lmax and c["channels"] == channels:
                return c
        return None

    for channels, factor in ((1, 3.0), (16, 5.0)):
        case = find(6, channels)
        name = f"sciml-grid >= {factor:g}x faster than e3nn-cg (same paths) at L=6, {channels} ch"
        if case is None or "e3nn-cg" not in case["products"]:
            add(name, None, None, None, "L=6 or e3nn-jax not measured")
        else:
            add(
                name,
                _ratio(case, "e3nn-cg", "sciml-grid"),
                _ratio(case, "e3nn-cg", "sciml-grid", "median_s"),
                lambda r, f=factor: r >= f,
            )
    for c in cases:
        if "e3nn-grid" in c["products"] and "sciml-grid" in c["products"]:
            add(
                f"sciml-grid no slower than e3nn-grid at L={c['lmax']}, {c['channels']} ch",
                _ratio(c, "e3nn-grid", "sciml-grid"),
                _ratio(c, "e3nn-grid", "sciml-grid", "median_s"),
                lambda r: r >= 1.0,
            )
    for c in cases:
        if c["lmax"] >= 4 and "sciml-fourier" in c["products"]:
            for dense in ("sciml-cg", "e3nn-cg"):
                if dense in c["products"]:
                    add(
                        f"sciml-fourier faster than {dense} at L={c['lmax']}, {c['channels']} ch",
                        _ratio(c, dense, "sciml-fourier"),
                        _ratio(c, dense, "sciml-fourier", "median_s"),
                        lambda r: r > 1.0,
                    )
    worst = {}
    for c in cases:
        for name, t in c["products"].items():
            if name.startswith("sciml") and t["compile_s"] is not None:
                worst[name] = max(worst.get(name, 0.0), t["compile_s"])
    for name, value in sorted(worst.items()):
        add(
            f"{name} compile <= {COMPILE_FLOOR_S:g} s per (product, L)",
            value,
            value,
            lambda v: v <= COMPILE_FLOOR_S,
        )
    return floors


def run_suite(
    *,
    lmaxes: Sequence[int] = DEFAULT_LMAX,
    configs: Sequence[tuple[int, int]] = DEFAULT_CONFIGS,
    names: Sequence[str] = PRODUCTS,
    repeats: int = 20,
    warmup: int = 2,
    budget_s: float = 20.0,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every (configuration, L) case; return a JSON-ready result with floors and slopes."""
    import jax

    from sciml._core._metrics import environment

    if not have_e3nn():
        log("e3nn-jax is not installed: its columns and the floors that need them are skipped")
    cases = []
    for batch, channels in configs:
        for lmax in lmaxes:
            case = run_case(
                lmax,
                batch,
                channels,
                names=names,
                repeats=repeats,
                warmup=warmup,
                budget_s=budget_s,
                seed=seed,
            )
            cases.append(case)
            cells = ", ".join(
                f"{n} {t['min_s'] * 1e3:.3g} ms (compile {t['compile_s']:.1f} s)"
                for n, t in case["products"].items()
            )
            log(f"L={lmax} batch {batch} x {channels} ch: {cells}")
    return {
        "suite": "equivariant",
        "environment": environment(),
        "backend": jax.default_backend(),
        "config": {
            "lmax": list(lmaxes),
            "configs": [list(c) for c in configs],
            "products": list(names),
            "dtype": "float32",
            "repeats": repeats,
            "warmup": warmup,
            "budget_s": budget_s,
            "e3nn_jax": have_e3nn(),
        },
        "cases": cases,
        "slopes": slopes(cases),
        "floors": check_floors(cases),
    }


def _ms(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    return f"{seconds * 1e3:.3g}"


def format_table(results: dict[str, Any]) -> str:
    """Markdown: one table per configuration (min / median ms, compile s), slopes and floors."""
    from sciml._core._metrics import describe_environment

    names = [n for n in PRODUCTS if any(n in c["products"] for c in results["cases"])]
    lines = [
        f"{describe_environment(results['environment'])}; float32; times are the fastest / "
        f"median of interleaved runs in ms, compile in s.",
        "",
    ]
    for batch, channels in results["config"]["configs"]:
        rows = [c for c in results["cases"] if (c["batch"], c["channels"]) == (batch, channels)]
        lines += [
            f"**batch {batch}, {channels} channel{'s' if channels > 1 else ''}**",
            "",
            "| L | " + " | ".join(names) + " | e3nn-cg / sciml-grid | max rel. diff |",
            "|---" * (len(names) + 3) + "|",
        ]
        for c in rows:
            cells = []
            for n in names:
                t = c["products"].get(n)
                cells.append(
                    "–"
                    if t is None
                    else f"{_ms(t['min_s'])} / {_ms(t['median_s'])} ({t['compile_s']:.1f} s)"
                )
            ratio = _ratio(c, "e3nn-cg", "sciml-grid")
            diff = max(c["max_rel_diff"].values()) if c["max_rel_diff"] else float("nan")
            lines.append(
                f"| {c['lmax']} | "
                + " | ".join(cells)
                + f" | {'–' if ratio is None else f'{ratio:.1f}x'} | {diff:.1e} |"
            )
        slope = results["slopes"].get(f"{batch}x{channels}", {})
        if slope:
            lines += [
                "",
                "Log-log slope of the fastest time vs L (L ≥ 3): "
                + ", ".join(f"{n} {s:.2f}" for n, s in slope.items()),
            ]
        lines.append("")
    lines += ["| floor | status | measured (fastest) | median |", "|---|---|---|---|"]
    for f in results["floors"]:
        measured = "–" if f["measured"] is None else f"{f['measured']:.2f}"
        median = "–" if f["median"] is None else f"{f['median']:.2f}"
        status = f["status"] if f["status"] != "skipped" else f"skipped ({f.get('why')})"
        lines.append(f"| {f['name']} | {status} | {measured} | {median} |")
    return "\n".join(lines)


def plot(results: dict[str, Any], path) -> None:
    """Time vs L on log-log axes, one panel per configuration, slopes in the legend."""
    from sciml._core._plotting import new_figure, save_figure

    configs = results["config"]["configs"]
    figure = new_figure(figsize=(5.2 * len(configs), 4.0))
    axes = figure.subplots(1, len(configs), squeeze=False)[0]
    for ax, (batch, channels) in zip(axes, configs, strict=True):
        rows = [c for c in results["cases"] if (c["batch"], c["channels"]) == (batch, channels)]
        slope = results["slopes"].get(f"{batch}x{channels}", {})
        for name in PRODUCTS:
            points = [
                (c["lmax"], c["products"][name]["min_s"]) for c in rows if name in c["products"]
            ]
            if not points:
                continue
            label = name + (f" (slope {slope[name]:.1f})" if name in slope else "")
            style = "-" if name.startswith("sciml") else "--"
            ax.loglog(
                [p[0] for p in points], [p[1] * 1e3 for p in points], style, marker="o", label=label
            )
        ax.set(
            xlabel="L (degree of both inputs)",
            ylabel="time [ms] (fastest run)",
            title=f"batch {batch}, {channels} channel{'s' if channels > 1 else ''}",
        )
        ax.legend(fontsize=7)
    save_figure(figure, path)


# --------------------------------------------------------------------------------------------
# `sciml bench equivariant`


def _ints(text: str) -> list[int]:
    import argparse

    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1 or max(values) > 20:
        raise argparse.ArgumentTypeError(f"degrees must be in 1..20, got {text!r}")
    return values


def _configs(text: str) -> list[tuple[int, int]]:
    import argparse

    out = []
    for part in text.replace(" ", "").split(","):
        try:
            batch, channels = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected BATCHxCHANNELS pairs such as 1000x1,256x16, got {text!r}"
            ) from None
        if batch < 1 or channels < 1:
            raise argparse.ArgumentTypeError(f"batch and channels must be >= 1, got {part!r}")
        out.append((batch, channels))
    return out


def add_arguments(parser) -> None:
    """The options of `sciml bench equivariant` (ignored by the other suites)."""
    group = parser.add_argument_group("equivariant suite")
    group.add_argument(
        "--lmax",
        type=_ints,
        default=list(DEFAULT_LMAX),
        help="equivariant: degrees L of both inputs, comma-separated (default 1..8)",
    )
    group.add_argument(
        "--configs",
        type=_configs,
        default=[list(c) for c in DEFAULT_CONFIGS],
        help="equivariant: BATCHxCHANNELS cases (default 1000x1,256x16)",
    )


def run(args) -> int:
    """`sciml bench equivariant`: run the suite, print and write the table, JSON and plot."""
    import sys

    from sciml._core._metrics import prepare_output_dir

    from ._bench import _output_paths
    from ._common import RunFailure, configure_jax, limit_blas_threads

    limit_blas_threads()
    if args.out is not None:
        json_path, md_path = _output_paths(args, "")
        prepare_output_dir(
            args.out,
            force=args.force,
            outputs=[json_path.name, md_path.name, json_path.with_suffix(".png").name],
        )
    configure_jax(platform=getattr(args, "platform", None), x64=False)
    import jax

    from sciml._core._metrics import atomic_write_text, write_json

    json_path, md_path = _output_paths(args, jax.default_backend())
    png_path = json_path.with_suffix(".png")
    prepare_output_dir(
        json_path.parent,
        force=args.force,
        outputs=[json_path.name, md_path.name, png_path.name],
    )

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results = run_suite(
        lmaxes=args.lmax,
        configs=[tuple(c) for c in args.configs],
        repeats=max(args.repeats, 1),
        warmup=args.warmup,
        budget_s=args.budget,
        seed=args.seed,
        log=log,
    )
    table = format_table(results)
    write_json(json_path, results)
    atomic_write_text(md_path, table + "\n")
    plot(results, png_path)
    print(table)
    log(f"wrote {json_path}, {md_path} and {png_path}")
    if args.check:
        missed = [f["name"] for f in results["floors"] if f["status"] == "missed"]
        if missed:
            raise RunFailure(f"equivariant floors missed: {'; '.join(missed)}; see {json_path}")
    return 0
