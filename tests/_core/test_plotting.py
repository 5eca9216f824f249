"""Convergence plots: PNG written atomically, NaN padding handled, bad shapes refused."""

import os

import numpy as np
import pytest

from sciml._core._plotting import convergence_plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_convergence_plot_writes_a_png(tmp_path):
    padded = np.array([1.0, 0.1, 0.01, 1e-4, np.nan, np.nan])
    path = convergence_plot(
        {"cg": padded, "empty": np.full(4, np.nan)}, tmp_path / "c.png", "title", rtol=1e-3
    )
    assert path == tmp_path / "c.png"
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert os.listdir(tmp_path) == ["c.png"]


def test_convergence_plot_with_no_histories(tmp_path):
    convergence_plot({}, tmp_path / "none.png")
    assert (tmp_path / "none.png").read_bytes()[:8] == PNG_MAGIC


def test_convergence_plot_refuses_batched_histories(tmp_path):
    with pytest.raises(ValueError, match="1-D"):
        convergence_plot({"batch": np.ones((2, 5))}, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
