"""Training a DCDM network: the scale-invariant loss, Adam, checkpoints and resumption.

`train_dcdm` writes into one output folder:

- `checkpoint.eqx` + `checkpoint.json`: the model and optimiser state after the last completed
  chunk of steps, and the step count, settings and loss history (written atomically after every
  chunk, so an interrupted run resumes from the last chunk with `resume=True`);
- `model.eqx`: the trained model (`sciml.solvers.load_dcdm_model`), with the settings in its
  header;
- `metrics.json`: settings, timings, the loss history and an evaluation of DCDM against CG on an
  unseen fluid-pressure problem with obstacles.
"""

import dataclasses
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from ..linalg._stencil import FLUID, Laplacian
from ._dcdm_data import (
    cached_ritz_basis,
    default_theta,
    low_end_weights,
    rhs_from_coefficients,
    sample_coefficients,
    training_operator,
)
from ._dcdm_net import DCDMNet, save_dcdm_model

OUTPUTS = ("model.eqx", "metrics.json", "checkpoint.eqx", "checkpoint.json")


def dcdm_loss(
    model: DCDMNet | Callable[[Array], Array],
    operator: Laplacian,
    rhs: Float[Array, "batch n"],
) -> Float[Array, ""]:
    r"""The scale-invariant DCDM loss, averaged over a batch of right-hand sides.

    For each b and p = f(b): $L = \| b - \frac{p^\top b}{p^\top A p} A p \|^2$, the squared
    residual after an exact line search along p from zero. $L(c f) = L(f)$ for any scalar
    c ≠ 0, so the network learns A⁻¹ up to a constant.

    Args:
        model: a `DCDMNet` (applied on the operator's grid with its fluid mask) or a callable
            mapping a flat vector to a flat vector.
        operator: the grid operator A.
        rhs: right-hand sides, one per row, in the model's dtype.

    Returns:
        The mean loss (a scalar).

    References:
        Kaneda et al., ICML 2023, the training loss (reference src/train.py).
    """
    grid_shape = operator.grid_shape
    if isinstance(model, DCDMNet):
        fluid = None if operator.mask is None else operator.mask == FLUID

        def direction(b):
            return model(b.reshape(grid_shape), fluid).reshape(-1)
    else:
        direction = model

    def one(b):
        p = direction(b)
        ap = operator.mv(p)
        p_ap = jnp.vdot(p, ap)
        ok = p_ap > 0
        alpha = jnp.where(ok, jnp.vdot(p, b) / jnp.where(ok, p_ap, 1), 0)
        residual = b - alpha * ap
        return jnp.vdot(residual, residual)

    return jnp.mean(jax.vmap(one)(rhs))


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """What defines a DCDM training run (all JSON-ready).

    Attributes:
        dim: 2 or 3.
        n: grid side of the training box (even).
        variant: "64" or "128".
        steps: total optimiser steps.
        lr: Adam learning rate.
        batch: right-hand sides per step.
        m: Lanczos steps requested (capped by memory).
        theta: θ of the 9× low-end weighting (None: m/20).
        samples: size of the (implicit) training set of right-hand sides.
        seed: seeds the weights (seed), the Lanczos start (seed) and the data set (seed + 1).
        chunk: steps per compiled chunk; a checkpoint is written after each.
        memory_budget: bytes for the Lanczos basis (None: 40% of device memory, 2 GiB on CPU).
    """

    dim: int = 3
    n: int = 64
    variant: str = "64"
    steps: int = 2000
    lr: float = 1e-3
    batch: int = 10
    m: int = 1000
    theta: int | None = None
    samples: int = 20_000
    seed: int = 0
    chunk: int = 100
    memory_budget: int | None = None

    def check(self) -> None:
        """Raise `ValueError` for settings that cannot run."""
        if self.dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {self.dim}.")
        if self.n < 4 or self.n % 2:
            raise ValueError(f"the training grid side n must be even and >= 4, got {self.n}.")
        if str(self.variant) not in ("64", "128"):
            raise ValueError(f"variant must be '64' or '128', got {self.variant!r}.")
        for name in ("steps", "batch", "m", "samples", "chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not self.lr > 0:
            raise ValueError(f"the learning rate must be > 0, got {self.lr}.")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _resume_compatible(saved: dict[str, Any], settings: TrainSettings) -> str | None:
    # Everything but the total step count must match to continue a run.
    mismatched = [
        name
        for name, value in settings.as_dict().items()
        if name != "steps" and saved.get(name) != value
    ]
    if mismatched:
        return ", ".join(
            f"{name} ({saved.get(name)!r} → {getattr(settings, name)!r})" for name in mismatched
        )
    return None


@functools.lru_cache(maxsize=8)
def _adam(lr: float) -> optax.GradientTransformation:
    # One object per learning rate, so that runs with equal settings share compiled chunks.
    return optax.adam(lr)


@eqx.filter_jit
def _train_chunk(params, static, opt_state, step0, data, *, optimizer, length: int):
    operator, vectors, weights, data_key, batch_key, samples, batch = data

    def loss_fn(params, rhs):
        return dcdm_loss(eqx.combine(params, static), operator, rhs)

    def body(carry, _):
        params, opt_state, step = carry
        indices = jax.random.randint(jax.random.fold_in(batch_key, step), (batch,), 0, samples)
        rhs = rhs_from_coefficients(
            sample_coefficients(data_key, indices, weights), vectors, operator
        )
        loss, grads = jax.value_and_grad(loss_fn)(params, rhs)
        # optax mixes Python floats with its int32 step count, which strict promotion refuses.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(grads, opt_state, params)
        params = eqx.apply_updates(params, updates)
        return (params, opt_state, step + 1), loss

    (params, opt_state, step), losses = jax.lax.scan(
        body, (params, opt_state, step0), None, length=length
    )
    return params, opt_state, losses


def evaluate_against_cg(
    model: DCDMNet,
    *,
    dim: int,
    n: int,
    seed: int,
    rtol: float = 1e-4,
    n_obstacles: int = 3,
    max_steps: int = 100,
) -> dict[str, Any]:
    """DCDM vs CG iterations on an unseen fluid-pressure problem with obstacles.

    The problem is `sciml.problems.fluid_pressure(key(seed), (n,)*dim, n_obstacles=...)` in
    float64 when x64 is on (float32 otherwise); the training data never contains obstacles.

    Returns:
        `{"grid": [...], "dcdm_iterations", "cg_iterations", "ratio", "dcdm_result"}`.
    """
    from ..problems import fluid_pressure
    from ._cg import cg
    from ._dcdm import dcdm

    dtype = jnp.float64 if jax.config.read("jax_enable_x64") else jnp.float32
    problem = fluid_pressure(jax.random.key(seed), (n,) * dim, n_obstacles=n_obstacles, dtype=dtype)
    sol = dcdm(
        problem.operator, problem.rhs, model=model, rtol=rtol, max_steps=max_steps, throw=False
    )
    ref = cg(
        problem.operator, problem.rhs, rtol=rtol, max_steps=min(10 * n**dim, 20_000), throw=False
    )
    k_dcdm, k_cg = int(sol.stats["num_steps"]), int(ref.stats["num_steps"])
    from .._core import RESULTS

    return {
        "grid": [n] * dim,
        "rtol": rtol,
        "n_obstacles": n_obstacles,
        "seed": seed,
        "dcdm_iterations": k_dcdm,
        "dcdm_converged": bool(sol.result == RESULTS.successful),
        "cg_iterations": k_cg,
        "ratio": k_dcdm / k_cg if k_cg else None,
    }


def train_dcdm(
    settings: TrainSettings,
    out: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
    evaluate: bool = True,
    time_limit_s: float | None = None,
    log: Callable[[str], None] | None = None,
    command: str = "sciml.solvers._dcdm_train.train_dcdm",
) -> dict[str, Any]:
    """Train a DCDM network on Ritz-vector right-hand sides of the obstacle-free training box.

    Args:
        settings: the run's `TrainSettings`.
        out: the output folder (see the module docstring for its files).
        resume: continue from `checkpoint.eqx`/`checkpoint.json` in `out` (the settings must
            match, except `steps`, which may grow).
        force: overwrite existing outputs in `out` (without `resume`: start afresh).
        progress: show a progress bar (None: only on a terminal).
        cache_dir: where the Ritz basis is cached (default `~/.cache/sciml/dcdm`).
        evaluate: after training, compare DCDM with CG on unseen obstacle problems at the
            training size and twice it (2-D) and store that in `metrics.json`.
        time_limit_s: stop after the first chunk that ends past this many seconds of training
            (the model and checkpoint are still written; `--resume` can continue).
        log: a function for progress messages (default: none).
        command: the command line recorded in `metrics.json` and the model header.

    Returns:
        The metrics payload as written.

    Raises:
        ValueError: for bad settings or an incompatible checkpoint.
        OutputExistsError: if outputs exist and neither `resume` nor `force` is given.
    """
    from .._core._metrics import atomic_write_bytes, prepare_output_dir, write_json, write_metrics
    from .._core._progress import progress_bar

    settings.check()
    log = log or (lambda message: None)
    out = Path(out)
    checkpoint_json = out / "checkpoint.json"
    if resume:
        if not checkpoint_json.is_file():
            raise ValueError(f"nothing to resume: '{checkpoint_json}' does not exist.")
        out = prepare_output_dir(out, force=True, outputs=OUTPUTS)
    else:
        out = prepare_output_dir(out, force=force, outputs=OUTPUTS)

    t_start = time.perf_counter()
    basis = cached_ritz_basis(
        settings.dim,
        settings.n,
        m=settings.m,
        seed=settings.seed,
        dtype=jnp.float32,
        memory_budget=settings.memory_budget,
        cache_dir=cache_dir,
        log=log,
    )
    data_s = time.perf_counter() - t_start
    m = basis.settings["m"]
    theta = default_theta(m) if settings.theta is None else settings.theta
    operator = training_operator(settings.dim, settings.n, dtype=jnp.float32)
    vectors = jnp.asarray(basis.vectors, jnp.float32)
    weights = low_end_weights(basis.values.size, m, theta, jnp.float32)
    data_key = jax.random.key(settings.seed + 1)
    batch_key = jax.random.key(settings.seed + 2)
    data = (operator, vectors, weights, data_key, batch_key, settings.samples, settings.batch)
    log(
        f"Ritz basis: m = {m} Lanczos steps, {basis.values.size} Ritz vectors kept, "
        f"orthogonality error {basis.settings['orthogonality_error']:.1e}, θ = {theta} "
        f"({data_s:.1f} s)"
    )

    optimizer = _adam(settings.lr)
    model = DCDMNet(settings.dim, variant=settings.variant, key=jax.random.key(settings.seed))
    params, static = eqx.partition(model, eqx.is_array)
    opt_state = optimizer.init(params)
    step, losses, train_s = 0, [], 0.0
    if resume:
        saved = json.loads(checkpoint_json.read_text())
        problem = _resume_compatible(saved["settings"], settings)
        if problem:
            raise ValueError(
                f"cannot resume: the settings differ from the checkpoint's: {problem}."
            )
        with open(out / "checkpoint.eqx", "rb") as handle:
            params, opt_state = eqx.tree_deserialise_leaves(handle, (params, opt_state))
        step, losses, train_s = int(saved["step"]), list(saved["losses"]), float(saved["train_s"])
        log(f"resuming at step {step} of {settings.steps}")

    def save_checkpoint():
        import io

        buffer = io.BytesIO()
        eqx.tree_serialise_leaves(buffer, (params, opt_state))
        atomic_write_bytes(out / "checkpoint.eqx", buffer.getvalue())
        write_json(
            checkpoint_json,
            {"settings": settings.as_dict(), "step": step, "losses": losses, "train_s": train_s},
        )

    compile_s = None
    with progress_bar(settings.steps, desc="train dcdm", unit="step", progress=progress) as bar:
        bar.update(step)
        while step < settings.steps:
            length = min(settings.chunk, settings.steps - step)
            t0 = time.perf_counter()
            params, opt_state, chunk_losses = _train_chunk(
                params,
                static,
                opt_state,
                jnp.asarray(step, jnp.int32),
                data,
                optimizer=optimizer,
                length=length,
            )
            chunk_losses = np.asarray(chunk_losses)
            elapsed = time.perf_counter() - t0
            if compile_s is None:
                compile_s = elapsed  # includes the first chunk's run
            train_s += elapsed
            if not np.all(np.isfinite(chunk_losses)):
                raise RuntimeError(
                    f"the training loss became non-finite near step {step}; lower --lr."
                )
            step += length
            losses.extend(float(v) for v in chunk_losses)
            save_checkpoint()
            bar.update(length)
            recent = float(np.mean(chunk_losses))
            bar.set_postfix_str(f"loss {recent:.4f}")
            log(f"step {step}/{settings.steps}: loss {recent:.4f} ({train_s:.0f} s)")
            if time_limit_s is not None and train_s >= time_limit_s and step < settings.steps:
                log(f"time limit of {time_limit_s:g} s reached: stopping at step {step}")
                break

    model = eqx.combine(params, static)
    evaluation = []
    if evaluate:
        sizes = [settings.n, 2 * settings.n]
        for n_eval in sizes:
            evaluation.append(
                evaluate_against_cg(model, dim=settings.dim, n=n_eval, seed=10_000 + settings.seed)
            )
            log(
                f"unseen obstacles, {n_eval}^{settings.dim}: DCDM "
                f"{evaluation[-1]['dcdm_iterations']} vs CG {evaluation[-1]['cg_iterations']} "
                f"iterations to rtol 1e-4"
            )
    window = max(1, min(100, len(losses) // 10))
    summary = {
        "final_loss_mean": float(np.mean(losses[-window:])) if losses else None,
        "loss_window": window,
        "steps_done": step,
        "stopped_by_time_limit": step < settings.steps,
        "ritz": basis.settings,
        "theta": theta,
        "evaluation": evaluation,
    }
    save_dcdm_model(
        out / "model.eqx",
        model,
        metadata={"command": command, "settings": settings.as_dict(), **summary},
    )
    # Every 10th loss keeps the file small for long runs.
    loss_curve = {"every": 10, "values": losses[::10]}
    return write_metrics(
        out / "metrics.json",
        command=command,
        dtype="float32",
        sizes={"grid": [settings.n] * settings.dim, "n": settings.n**settings.dim},
        timings={"ritz_s": data_s, "train_s": train_s, "first_chunk_s": compile_s},
        results={**summary, "loss_curve": loss_curve},
        settings=settings.as_dict(),
    )
