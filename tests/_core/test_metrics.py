"""metrics.json writing, atomic files and the output-directory guard."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from sciml._core._metrics import (
    OutputExistsError,
    atomic_write_text,
    environment,
    jsonable,
    prepare_output_dir,
    write_json,
    write_metrics,
)


def _leftovers(folder):
    return [name for name in os.listdir(folder) if name.endswith(".tmp")]


def test_environment_names_versions_devices_and_precision():
    env = environment()
    for key in ("python", "backend", "device_kind", "device_count", "devices", "x64"):
        assert key in env
    for name in ("sciml", "jax", "jaxlib", "numpy", "scipy", "equinox"):
        assert env["versions"][name]
    assert env["backend"] == "cpu"
    assert env["device_count"] == len(env["devices"]) == 2  # conftest simulates two
    assert env["x64"] is True
    json.dumps(jsonable(env))


def test_jsonable_converts_arrays_and_keeps_non_finite_visible():
    payload = {
        "a": jnp.arange(3),
        "b": np.float32(1.5),
        "nan": float("nan"),
        "inf": -np.inf,
        "dtype": np.dtype("float32"),
        "t": (1, np.int64(2)),
    }
    assert jsonable(payload) == {
        "a": [0, 1, 2],
        "b": 1.5,
        "nan": "nan",
        "inf": "-inf",
        "dtype": "float32",
        "t": [1, 2],
    }
    with pytest.raises(TypeError, match="JSON"):
        jsonable({"x": object()})


def test_write_json_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    write_json(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2}
    assert _leftovers(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["metrics.json"]
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # the usual mode, not mkstemp's


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"x": 1})
    with pytest.raises(TypeError):
        write_json(path, {"x": object()})
    assert json.loads(path.read_text()) == {"x": 1}
    assert _leftovers(tmp_path) == []


def test_interrupted_write_removes_its_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "index.md"
    atomic_write_text(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_write_metrics_records_what_ran(tmp_path):
    payload = write_metrics(
        tmp_path / "metrics.json",
        command="sciml test",
        dtype=jnp.float32,
        sizes={"n": 4},
        timings={"run_s": 0.5},
        results={"iterations": np.int32(3)},
    )
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == payload
    assert on_disk["dtype"] == "float32"
    assert on_disk["results"] == {"iterations": 3}
    assert on_disk["environment"]["versions"]["jax"]
    assert on_disk["sizes"] == {"n": 4} and on_disk["timings"] == {"run_s": 0.5}


def test_output_guard_refuses_existing_outputs_without_force(tmp_path):
    out = tmp_path / "run"
    assert prepare_output_dir(out) == out and out.is_dir()  # created
    prepare_output_dir(out)  # empty: fine
    (out / "metrics.json").write_text("keep me")
    with pytest.raises(OutputExistsError, match=r"metrics\.json.*--force"):
        prepare_output_dir(out)
    with pytest.raises(OutputExistsError):
        prepare_output_dir(out, outputs=["metrics.json", "convergence.png"])
    # Only the named outputs count when they are given.
    prepare_output_dir(out, outputs=["convergence.png"])
    # force allows it, and deletes nothing by itself.
    prepare_output_dir(out, force=True)
    assert (out / "metrics.json").read_text() == "keep me"


def test_output_guard_refuses_a_file(tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        prepare_output_dir(target, force=True)
