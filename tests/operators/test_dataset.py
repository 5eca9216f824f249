"""Chunked, resumable dataset writing: content, resumption, re-runs, overwrite guard, merging."""

import json
import os

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from sciml._core import OutputExistsError
from sciml.operators.datagen import finalize_dataset, generate_dataset, load_dataset
from sciml.operators.datagen._dataset import build_family, chunk_name

# One small configuration for the whole module, so the GCRO-DR chain compiles once: 12 Darcy
# systems on a 10×10 grid (64 unknowns), 2 chains of 6, blocks of 3 → 4 chunks.
SETTINGS = dict(n_samples=12, grid=10, m=10, k=4, chunk_size=3, n_chains=2, rtol=1e-8)


class Stop(Exception):
    """Raised by the chunk hook to simulate a run killed part-way."""


def stop_after(count):
    calls = []

    def hook(chunk_id):
        calls.append(chunk_id)
        if len(calls) >= count:
            raise Stop(chunk_id)

    return hook


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "darcy"
    report = generate_dataset(out, "darcy", **SETTINGS)
    return out, report, load_dataset(out)


def _same(a, b):
    for field in (
        "inputs",
        "solutions",
        "iterations",
        "matvecs",
        "residuals",
        "converged",
        "order",
    ):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_content(reference):
    out, report, data = reference
    assert report.computed == 4 and report.skipped == 0 and report.merged
    assert sorted(p.name for p in out.iterdir()) == [chunk_name(i) for i in range(4)] + [
        "dataset.npz",
        "meta.json",
    ]
    assert data.inputs.shape == (12, 10, 10) and data.solutions.shape == (12, 8, 8)
    assert sorted(data.order.tolist()) == list(range(12))
    assert data.meta["settings"]["family"] == "darcy" and data.meta["complete"]
    assert data.meta["environment"]["versions"]["jax"]
    assert bool(np.all(data.converged)) and bool(np.all(data.iterations > 0))
    assert bool(np.all(data.matvecs >= data.iterations)) and bool(np.all(data.seconds > 0))
    # Every sample: the true relative residual meets the tolerance, and the solution is the
    # sparse direct solution of the system built from the stored input (original order).
    family = build_family(data.meta["settings"])
    assert float(np.max(data.residuals)) <= 1e-8
    for i in (0, 5, 11):
        np.testing.assert_array_equal(data.inputs[i], np.asarray(family.params[i]))
        op, rhs = family.sample(i)
        exact = spla.spsolve(op.to_scipy().tocsc(), np.asarray(rhs))
        u = data.solutions[i].reshape(-1)
        residual = np.linalg.norm(np.asarray(rhs) - op.to_scipy() @ u) / np.linalg.norm(rhs)
        assert residual <= 1e-8
        assert np.linalg.norm(u - exact) <= 1e-6 * np.linalg.norm(exact)
    # Chunks hold the samples in solving order.
    with np.load(out / chunk_name(0)) as chunk:
        np.testing.assert_array_equal(chunk["index"], data.order[:3])


def test_rerun_skips_completed_chunks(reference):
    out, _, data = reference
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    report = generate_dataset(out, "darcy", **SETTINGS)
    assert report.computed == 0 and report.skipped == 4
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    _same(load_dataset(out), data)


def test_interrupted_and_resumed_equals_uninterrupted(reference, tmp_path):
    _, _, data = reference
    out = tmp_path / "resumed"
    with pytest.raises(Stop):
        generate_dataset(out, "darcy", on_chunk=stop_after(3), **SETTINGS)
    assert not (out / "dataset.npz").exists()
    with pytest.raises(ValueError, match="incomplete"):
        load_dataset(out)
    report = generate_dataset(out, "darcy", **SETTINGS)
    # The first block (both chains) was complete and is kept; block 1 of chain 0 was written
    # but its wave is recomputed from the recycle space saved with block 0.
    assert report.skipped == 2 and report.computed == 2
    _same(load_dataset(out), data)

    # A lost chunk (deleted file) is detected by the index and recomputed.
    (out / chunk_name(3)).unlink()
    (out / "dataset.npz").unlink()
    report = generate_dataset(out, "darcy", **SETTINGS)
    assert report.computed == 2 and report.skipped == 2
    _same(load_dataset(out), data)

    # A corrupted chunk fails its checksum: loading refuses, a re-run repairs it.
    path = out / chunk_name(1)
    raw = bytearray(path.read_bytes())
    raw[-40] ^= 0xFF
    path.write_bytes(bytes(raw))
    (out / "dataset.npz").unlink()
    with pytest.raises(ValueError, match="incomplete"):
        load_dataset(out)
    report = generate_dataset(out, "darcy", **SETTINGS)
    assert report.computed == 2
    _same(load_dataset(out), data)


def test_never_overwrites_other_settings_without_force(reference, tmp_path):
    out, _, _ = reference
    other = dict(SETTINGS, rtol=1e-6)
    with pytest.raises(OutputExistsError, match=r"different settings \(rtol: 1e-08 -> 1e-06\)"):
        generate_dataset(out, "darcy", **other)
    with pytest.raises(OutputExistsError, match="different settings"):
        generate_dataset(out, "poisson", **SETTINGS)
    # Unrelated files: refused too.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="holds no sciml dataset"):
        generate_dataset(foreign, "darcy", **SETTINGS)
    # With force the old dataset is replaced (a copy, to keep the module's reference intact).
    copy = tmp_path / "copy"
    copy.mkdir()
    for entry in out.iterdir():
        (copy / entry.name).write_bytes(entry.read_bytes())
    (copy / "stale.npz").write_bytes(b"")  # not ours: left alone
    report = generate_dataset(copy, "darcy", force=True, **other)
    assert report.computed == 4 and report.skipped == 0
    replaced = load_dataset(copy)
    assert replaced.meta["settings"]["rtol"] == 1e-6
    assert float(np.max(replaced.residuals)) <= 1e-6
    assert (copy / "stale.npz").exists()


def test_processes_write_their_chains_and_merge(reference, tmp_path):
    # Two "processes" (run one after the other here) each write their own chain's chunks and a
    # partial index; the merge step gives the same dataset as one process.
    _, _, data = reference
    out = tmp_path / "split"
    for p in (0, 1):
        report = generate_dataset(
            out, "darcy", process_index=p, process_count=2, merge=False, **SETTINGS
        )
        assert report.computed == 2 and not report.merged
    assert not (out / "meta.json").exists()
    assert (out / "index.p0000.json").exists() and (out / "index.p0001.json").exists()
    finalize_dataset(out)
    assert not (out / "index.p0000.json").exists()
    merged = load_dataset(out)
    assert merged.meta["complete"] and len(merged.meta["chunks"]) == 4
    # One chain per call instead of two under vmap: equal up to rounding.
    np.testing.assert_array_equal(merged.order, data.order)
    np.testing.assert_array_equal(merged.iterations, data.iterations)
    np.testing.assert_allclose(merged.solutions, data.solutions, rtol=1e-10, atol=1e-14)


def test_bad_settings(tmp_path):
    out = tmp_path / "x"
    with pytest.raises(ValueError, match="unknown family 'nope'; choose from"):
        generate_dataset(out, "nope", n_samples=4, grid=8)
    with pytest.raises(ValueError, match="n_samples"):
        generate_dataset(out, "darcy", n_samples=0, grid=8)
    with pytest.raises(ValueError, match="grid"):
        generate_dataset(out, "darcy", n_samples=4, grid=3)
    with pytest.raises(ValueError, match="unknown method"):
        generate_dataset(out, "darcy", n_samples=4, grid=8, method="lu")
    with pytest.raises(ValueError, match="n_chains"):
        generate_dataset(out, "darcy", n_samples=4, grid=8, n_chains=5)
    with pytest.raises(FileNotFoundError, match="holds no dataset"):
        load_dataset(tmp_path)
    with pytest.raises(ValueError, match="seed"):
        generate_dataset(out, "darcy", n_samples=4, grid=8, seed=10**23)
    # Settings only the solver checks are refused before anything is written: a meta.json
    # left behind would make the corrected call ask for `force`.
    for bad, message in (
        ({"method": "cg", "family": "helmholtz"}, "symmetric positive definite"),
        ({"ritz": "schur"}, "ritz"),
        ({"M": "ilu"}, "`M`"),
    ):
        options = {"family": "darcy", **bad}
        with pytest.raises(ValueError, match=message):
            generate_dataset(out, options.pop("family"), n_samples=4, grid=8, **options)
    assert not out.exists() or not os.listdir(out)


def test_meta_is_valid_json_with_checksums(reference):
    out, _, _ = reference
    meta = json.loads((out / "meta.json").read_text())
    assert [c["file"] for c in meta["chunks"]] == [chunk_name(i) for i in range(4)]
    assert all(len(c["sha256"]) == 64 and c["bytes"] > 0 for c in meta["chunks"])
    assert meta["merged_file"]["file"] == "dataset.npz"
    assert "h5py" in meta["h5py"]
