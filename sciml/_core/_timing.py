"""Timing that keeps compile time apart from steady-state run time.

A jitted function is timed in two parts: `jax.jit(fn).lower(*args).compile()` (tracing, lowering
and XLA compilation, paid once per shape and dtype), then the compiled executable run `repeats`
times after `warmup` untimed runs, each run ending with `jax.block_until_ready` so that JAX's
asynchronous dispatch does not hide the work. The median is the headline figure (robust to a
noisy shared machine); the minimum is kept as the best case. Plain Python callables (SciPy
baselines) are timed with the same repeat rule and no compile step.

When two implementations are compared, `time_jitted_interleaved` alternates their runs (A B, B A,
A B, ...) so that a slow patch of a shared machine affects both alike, instead of whichever
happened to be measured during it.
"""

import dataclasses
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax

__all__ = ["Timing", "time_call", "time_jitted", "time_jitted_interleaved"]


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall-clock timings of one function on one set of inputs, in seconds.

    Attributes:
        compile_s: time of `jax.jit(fn).lower(*args).compile()`; `None` for non-JAX callables.
        median_s: median of the timed runs (the steady-state figure to report).
        min_s: fastest timed run.
        repeats: number of timed runs.
        times_s: every timed run, in order.
    """

    compile_s: float | None
    median_s: float
    min_s: float
    repeats: int
    times_s: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        """The timings as a JSON-ready dict."""
        return {
            "compile_s": self.compile_s,
            "median_s": self.median_s,
            "min_s": self.min_s,
            "repeats": self.repeats,
            "times_s": list(self.times_s),
        }


def _check_counts(repeats: int, warmup: int) -> None:
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"`repeats` must be an int >= 1, got {repeats!r}.")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"`warmup` must be an int >= 0, got {warmup!r}.")


def _repeat(run: Callable[[], Any], repeats: int, warmup: int, budget_s: float | None):
    for _ in range(warmup):
        run()
    times = []
    start_all = time.perf_counter()
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        # A budget bounds slow baselines (SciPy at large sizes); at least one run is always timed.
        if budget_s is not None and time.perf_counter() - start_all >= budget_s:
            break
    return times


def time_call(
    fn: Callable[..., Any],
    *args: Any,
    repeats: int = 5,
    warmup: int = 1,
    budget_s: float | None = None,
) -> tuple[Timing, Any]:
    """Time a plain (non-jitted) callable, e.g. a SciPy solve.

    Args:
        fn: the function; called as `fn(*args)`.
        *args: its arguments.
        repeats: the most timed runs.
        warmup: untimed runs first.
        budget_s: stop repeating once the timed runs have taken this long (at least one run).

    Returns:
        `(timing, output)`, where `output` is the result of the last run.

    Raises:
        ValueError: for `repeats < 1` or `warmup < 0`.
    """
    _check_counts(repeats, warmup)
    out = []

    def run():
        out[:] = [fn(*args)]

    times = _repeat(run, repeats, warmup, budget_s)
    return _timing(None, times), out[0]


def time_jitted(
    fn: Callable[..., Any],
    *args: Any,
    repeats: int = 5,
    warmup: int = 1,
    budget_s: float | None = None,
    jit_kwargs: dict[str, Any] | None = None,
) -> tuple[Timing, Any]:
    """Compile `fn` for `args` and time the compiled executable.

    Args:
        fn: a JAX-traceable function of array (pytree) arguments; it is wrapped in `jax.jit`
            (pass an already jitted function to keep its own options).
        *args: the arguments; their shapes and dtypes fix what is compiled.
        repeats: the most timed runs.
        warmup: untimed runs before timing (the first run of an executable can include
            allocation and autotuning on GPU).
        budget_s: stop repeating once the timed runs have taken this long (at least one run).
        jit_kwargs: options for `jax.jit` (e.g. `static_argnums`) when `fn` is not jitted yet.

    Returns:
        `(timing, output)`, where `output` is the (ready) result of the last run.

    Raises:
        ValueError: for `repeats < 1` or `warmup < 0`.
    """
    _check_counts(repeats, warmup)
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn, **(jit_kwargs or {}))
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    compile_s = time.perf_counter() - start
    # The compiled executable takes only the dynamic (array) arguments.
    dynamic_args = _dynamic_args(args, jit_kwargs)
    out = []

    def run():
        out[:] = [jax.block_until_ready(compiled(*dynamic_args))]

    times = _repeat(run, repeats, warmup, budget_s)
    return _timing(compile_s, times), out[0]


def time_jitted_interleaved(
    fns: Mapping[str, Callable[..., Any]],
    *args: Any,
    repeats: int = 5,
    warmup: int = 1,
    budget_s: float | None = None,
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Compile several functions of the same arguments and time them in alternating order.

    Args:
        fns: name → JAX-traceable function of `args` (wrapped in `jax.jit` unless already
            jitted).
        *args: the arguments, shared by all functions.
        repeats: the most timed rounds; each round runs every function once.
        warmup: untimed rounds first.
        budget_s: stop after the round in which the timed rounds reach this many seconds (at
            least one round).

    Returns:
        `(timings, outputs)`: a `Timing` and the last (ready) output per name.

    Raises:
        ValueError: for `repeats < 1`, `warmup < 0` or no functions.
    """
    _check_counts(repeats, warmup)
    if not fns:
        raise ValueError("`fns` must hold at least one function to time.")
    names = list(fns)
    compiled, compile_s = {}, {}
    for name in names:
        fn = fns[name]
        jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
        start = time.perf_counter()
        compiled[name] = jitted.lower(*args).compile()
        compile_s[name] = time.perf_counter() - start
    outputs: dict[str, Any] = {}
    times: dict[str, list[float]] = {name: [] for name in names}

    def run(name):
        start = time.perf_counter()
        outputs[name] = jax.block_until_ready(compiled[name](*args))
        return time.perf_counter() - start

    for _ in range(warmup):
        for name in names:
            run(name)
    start_all = time.perf_counter()
    for round_ in range(repeats):
        # Reverse the order every other round so neither function always runs first.
        for name in names if round_ % 2 == 0 else names[::-1]:
            times[name].append(run(name))
        if budget_s is not None and time.perf_counter() - start_all >= budget_s:
            break
    return {name: _timing(compile_s[name], times[name]) for name in names}, outputs


def _dynamic_args(args: tuple, jit_kwargs: dict[str, Any] | None) -> tuple:
    static = (jit_kwargs or {}).get("static_argnums", ())
    if isinstance(static, int):
        static = (static,)
    static = {i % len(args) for i in static} if args else set()
    return tuple(a for i, a in enumerate(args) if i not in static)


def _timing(compile_s: float | None, times: list[float]) -> Timing:
    return Timing(
        compile_s=compile_s,
        median_s=statistics.median(times),
        min_s=min(times),
        repeats=len(times),
        times_s=tuple(times),
    )
