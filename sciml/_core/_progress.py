"""Progress for long jitted work: run a scan in jitted chunks and report between them.

A jitted loop gives no sign of life until it returns. Rather than calling back into Python from
inside the loop (which serialises the device on every step), `scan_with_progress` splits a
`lax.scan` into chunks of a static number of steps, runs each chunk as one compiled call, and
advances a tqdm bar on the host between chunks. At most two programs are compiled: one for a full
chunk and one for the remainder.

The bar is shown only when both stdout and stderr are terminals (so logs and CI output stay
clean), and never when `progress=False` or `SCIML_PROGRESS=0`. tqdm is imported only when a bar is
actually shown: importing sciml never imports tqdm.
"""

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PyTree

_OFF_VALUES = ("0", "false", "off", "no")


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether a progress bar should be shown.

    Args:
        progress: `True`/`False` force the bar on/off; `None` (the default) shows it only when
            stdout and stderr are both terminals and the environment variable `SCIML_PROGRESS`
            is not set to `0`.

    Returns:
        The decision.
    """
    if progress is not None:
        return bool(progress)
    if os.environ.get("SCIML_PROGRESS", "").strip().lower() in _OFF_VALUES:
        return False
    return _isatty(sys.stdout) and _isatty(sys.stderr)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


class _NullBar:
    """Stands in for a tqdm bar when progress is off, so callers need no branches."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def write(self, s: str) -> None:
        pass


@contextmanager
def progress_bar(
    total: int | None, *, desc: str | None = None, unit: str = "it", progress: bool | None = None
) -> Iterator[Any]:
    """A tqdm bar if `progress_enabled(progress)`, else an object with the same no-op methods.

    Args:
        total: the number of units of work, if known.
        desc: a short label shown before the bar.
        unit: the name of one unit of work.
        progress: see `progress_enabled`.

    Yields:
        An object with `update(n)`, `set_postfix_str(s)` and `write(s)`.
    """
    if not progress_enabled(progress):
        yield _NullBar()
        return
    from tqdm.auto import tqdm  # deferred: importing sciml must not import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


@eqx.filter_jit
def _scan_chunk(f, carry, xs, length):
    # `f` and `length` are not arrays, so filter_jit makes them static: one compilation per
    # (f, chunk length, carry/xs shapes), reused by every chunk of that length.
    return jax.lax.scan(f, carry, xs, length=length)


def scan_with_progress(
    f: Callable[[PyTree, Any], tuple[PyTree, Any]],
    init: PyTree,
    xs: PyTree | None = None,
    *,
    length: int | None = None,
    chunk_size: int,
    progress: bool | None = None,
    desc: str | None = None,
    unit: str = "step",
) -> tuple[PyTree, PyTree]:
    """`jax.lax.scan(f, init, xs, length)`, run in jitted chunks with a progress bar between them.

    The result equals the unchunked scan: the same `f` is applied to the same carries in the same
    order; only the compiled program boundaries differ. For the same `f` (the same Python
    object) and shapes, later calls reuse the compiled chunks.

    Args:
        f: the scan body `(carry, x) -> (carry, y)`, traceable by `jit`.
        init: the initial carry.
        xs: values scanned over along their leading axis, or `None` (then `length` is needed).
        length: the number of steps; must match the leading axis of `xs` if both are given.
        chunk_size: steps per compiled chunk (a static positive int). Larger chunks mean fewer
            host round trips; smaller chunks a more responsive bar.
        progress: show a bar: `True`, `False`, or `None` for "only on a terminal"
            (see `progress_enabled`).
        desc: a label for the bar.
        unit: the name of one step in the bar.

    Returns:
        `(final_carry, ys)` with `ys` stacked along a leading axis of size `length`, exactly as
        `jax.lax.scan` returns them.

    Raises:
        ValueError: if `chunk_size` or `length` is not a valid size, or `length` disagrees with
            the leading axis of `xs`.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(
            f"`chunk_size` must be a positive Python int (a static number of steps), got "
            f"{chunk_size!r}."
        )
    leaves = jax.tree.leaves(xs)
    if leaves:
        axis_lengths = {int(jnp.shape(leaf)[0]) if jnp.ndim(leaf) else -1 for leaf in leaves}
        if -1 in axis_lengths or len(axis_lengths) != 1:
            raise ValueError(
                "every leaf of `xs` needs the same leading (scanned) axis; got leading sizes "
                f"{sorted(axis_lengths)}."
            )
        (xs_length,) = axis_lengths
        if length is not None and length != xs_length:
            raise ValueError(
                f"`length={length}` disagrees with the leading axis of `xs` ({xs_length}); "
                f"drop `length` or slice `xs`."
            )
        length = xs_length
    if length is None:
        raise ValueError("give `xs` or `length`: the number of steps is unknown.")
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"`length` must be a non-negative Python int, got {length!r}.")

    show = progress_enabled(progress)
    carry = init
    ys_chunks = []
    with progress_bar(length, desc=desc, unit=unit, progress=show) as bar:
        start = 0
        while True:
            steps = min(chunk_size, length - start)
            chunk_xs = (
                None if xs is None else jax.tree.map(lambda x, a=start, b=start + steps: x[a:b], xs)
            )
            carry, ys = _scan_chunk(f, carry, chunk_xs, steps)
            ys_chunks.append(ys)
            if show:
                # Without a sync the bar would run ahead of the (asynchronous) device.
                jax.block_until_ready(carry)
                bar.update(steps)
            start += steps
            if start >= length:
                break
    if len(ys_chunks) == 1:
        return carry, ys_chunks[0]
    ys = jax.tree.map(lambda *parts: jnp.concatenate(parts, axis=0), *ys_chunks)
    return carry, ys
