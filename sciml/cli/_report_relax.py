"""Report section: learning the SOR relaxation ω across a sequence of shifted Laplacians."""

from ._report import SectionContext, SectionResult, report_section

GRID = (1.0, 1.95, 20)  # linspace arguments of the learners' arms
FIXED = (1.0, 1.4, 1.8)
T_DEFAULT, T_SMOKE = 1000, 60


@report_section("relax", "Learning to relax (bandit-tuned SOR)", order=40)
def learning_to_relax(ctx: SectionContext) -> SectionResult:
    """Tsallis-INF, Tsallis-INF-CB and ChebCB vs fixed ω and Young's ω*(A_t) (SOR sweeps).

    The high-variance shifted-Laplacian sequence of Khodak et al. (ICLR 2024); a cumulative-cost
    plot and the ω each learner chose over time. The T = 5000 runs with every comparator are in
    `benchmarks/bench_relax.py` and docs/BENCHMARKS.md.
    """
    import jax
    import jax.numpy as jnp
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from sciml.problems import shifted_laplacians
    from sciml.solvers import relax

    T = T_SMOKE if ctx.smoke else T_DEFAULT
    dtype = jnp.dtype(ctx.dtype)
    rtol = 1e-8 if dtype == jnp.float64 else 1e-4
    max_steps = 10_000
    # Separate keys: the learners' draws must not reuse the ones that made the sequence.
    sequence_key, learner_key = jax.random.split(jax.random.key(ctx.seed))
    seq = shifted_laplacians(sequence_key, T, variance="high", dtype=dtype)
    grid = jnp.linspace(*GRID, dtype=dtype)
    runs = {}
    for w in FIXED:
        ctx.log(f"relax: fixed ω = {w}")
        runs[f"ω = {w}"] = relax.fixed(seq, w, rtol=rtol, max_steps=max_steps)
    ctx.log("relax: Young ω*(A_t)")
    runs["Young ω*(A_t)"] = relax.fixed(seq, relax.young(seq), rtol=rtol, max_steps=max_steps)
    learners = {
        "Tsallis-INF": relax.TsallisINF(grid),
        "Tsallis-INF-CB": relax.TsallisINFCB(grid, 5, -0.15, 0.65),
        "ChebCB": relax.ChebCB(grid, 6, -0.15, 0.65),
    }
    for name, learner in learners.items():
        ctx.log(f"relax: {name}")
        runs[name] = relax.relax(
            seq, "sor", learner, key=learner_key, rtol=rtol, max_steps=max_steps
        )

    failures = [
        f"relax: {name} hit max_steps on {int(np.sum(np.asarray(r.iterations) >= max_steps))} "
        f"instances"
        for name, r in runs.items()
        if np.any(np.asarray(r.iterations) >= max_steps)
    ]

    fig, (ax_cost, ax_omega) = plt.subplots(1, 2, figsize=(11, 4))
    t = np.arange(1, T + 1)
    for name, r in runs.items():
        ax_cost.plot(t, np.asarray(r.cumulative), label=name)
    ax_cost.set(xlabel="instance t", ylabel="cumulative SOR sweeps", yscale="log")
    ax_cost.legend(fontsize=8)
    for i, name in enumerate(learners):
        ax_omega.scatter(
            t, np.asarray(runs[name].omega), s=3, alpha=0.5, label=name, color=f"C{i + 4}"
        )
    ax_omega.scatter(t, np.asarray(runs["Young ω*(A_t)"].omega), s=3, color="k", label="Young")
    ax_omega.set(xlabel="instance t", ylabel="ω chosen")
    ax_omega.legend(fontsize=8, markerscale=3)
    fig.tight_layout()
    fig.savefig(ctx.path("cost.png"), dpi=110)
    plt.close(fig)

    best_fixed = min(int(runs[f"ω = {w}"].total) for w in FIXED)
    rows = [
        f"| {name} | {int(r.total):,} | {int(r.total) / best_fixed:.2f} | "
        f"{float(np.mean(np.asarray(r.iterations)[-max(T // 5, 1) :])):.1f} |"
        for name, r in runs.items()
    ]
    markdown = "\n".join(
        [
            f"SOR on T = {T} shifted 10×10 Laplacians A + c_t I "
            f"(c_t = −0.15 + 0.6·Beta(0.5, 1.5)), "
            f"sweeps until ‖b − Ax‖ ≤ {rtol:g}·‖b‖ from x₀ = 0, {ctx.dtype}. Learners play "
            f"20 ω in [1, 1.95] and see only the sweep counts (the contextual ones also c_t).",
            "",
            "| policy | total sweeps | × best of the fixed ω shown | mean, last 20 % |",
            "|---|---|---|---|",
            *rows,
            "",
            ctx.image("cost.png", "cumulative cost and chosen ω"),
        ]
    )
    metrics = {
        "T": T,
        "totals": {name: int(r.total) for name, r in runs.items()},
    }
    return SectionResult(markdown=markdown, metrics=metrics, failures=failures)
