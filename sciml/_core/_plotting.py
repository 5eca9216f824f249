"""Plots for reports, drawn without pyplot and saved atomically as PNG.

matplotlib is imported inside the functions, so importing sciml never imports it. Figures are
built with the object-oriented API on an Agg canvas: no global backend is switched and no GUI is
needed, so this is safe in notebooks, threads and headless machines alike.
"""

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import ArrayLike

from ._metrics import atomic_write_bytes


def new_figure(*, figsize: tuple[float, float] = (6.4, 4.0)) -> Any:
    """A matplotlib `Figure` on an Agg canvas (no pyplot, no GUI)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Any, path: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Render `figure` to PNG and write it to `path` atomically.

    Returns:
        The destination as a `Path`.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return atomic_write_bytes(path, buffer.getvalue())


def convergence_plot(
    histories: Mapping[str, ArrayLike],
    path: str | os.PathLike,
    title: str | None = None,
    *,
    rtol: float | None = None,
    ylabel: str = "relative residual ‖b − Ax‖ / ‖b‖",
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Plot residual histories (log scale) against the iteration number and save a PNG.

    Entry `k` of each history is the residual after `k` iterations. NaN entries (the padding
    of `Solution.stats["residual_history"]` after the solve stopped) are dropped but the
    iteration numbers of the others are kept; non-positive values cannot be shown on a log axis
    and are dropped too.

    Args:
        histories: label -> relative residual history (1-D), e.g.
            `{"cg": hist_cg / norm_b, "scipy-cg": ...}`.
        path: where to write the PNG.
        title: the plot title.
        rtol: if given, draw the target tolerance as a dashed horizontal line.
        ylabel: the y-axis label.
        styles: label -> extra keyword arguments for matplotlib's `plot` (e.g.
            `{"scipy-cg": {"linestyle": "--", "color": "C0"}}`), so that curves which coincide
            (a method and its reference implementation) stay distinguishable.

    Returns:
        The destination as a `Path`.

    Raises:
        ValueError: if a history is not one-dimensional.
    """
    figure = new_figure()
    axes = figure.add_subplot()
    plotted = 0
    for label, history in histories.items():
        values = np.asarray(history, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(
                f"history '{label}' must be 1-D (one residual per iteration), got shape "
                f"{values.shape}; plot one vmapped member at a time."
            )
        iterations = np.arange(values.size)
        keep = np.isfinite(values) & (values > 0)
        style = {"linewidth": 1.4, **dict((styles or {}).get(label, {}))}
        if keep.any():
            axes.semilogy(iterations[keep], values[keep], label=label, **style)
            plotted += 1
        else:
            axes.plot([], [], label=f"{label} (no data)")
    if rtol is not None:
        axes.axhline(rtol, color="0.4", linestyle="--", linewidth=1.0, label=f"rtol = {rtol:g}")
    if plotted:
        axes.set_yscale("log")
    else:
        axes.text(
            0.5, 0.5, "no residual history", ha="center", va="center", transform=axes.transAxes
        )
    axes.set_xlabel("iteration")
    axes.set_ylabel(ylabel)
    if title:
        axes.set_title(title)
    axes.grid(True, which="major", alpha=0.3)
    if histories or rtol is not None:
        axes.legend(fontsize="small")
    return save_figure(figure, path)
