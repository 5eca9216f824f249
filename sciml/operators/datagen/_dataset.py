"""Writing a neural-operator dataset to disk in resumable chunks, and reading it back.

Layout of a dataset directory:

```
meta.json            settings, versions, and the index of completed chunks (file, chain, block,
                     samples, sha256, bytes); rewritten atomically after every chunk
chunk_00000.npz      one block of one chain, in solving order: `index` (original sample indices),
                     `inputs` (parameter fields), `solutions` (on the family's grid),
                     `iterations`, `matvecs`, `residuals`, `converged`, `seconds`, and the
                     GCRO-DR recycle space after the block (`recycle_U`, `recycle_C`,
                     `recycle_size`), from which the next block of the chain resumes
dataset.npz          everything merged, in the ORIGINAL sample order, plus `order` (solving order)
dataset.h5           the same arrays, only when h5py happens to be installed (it is not a
                     dependency of sciml)
```

The sorted order is split into `n_chains` chains (`split_chains`) and every chain into blocks of
`chunk_size` positions; chunk `c · n_blocks + j` holds block `j` of chain `c`, so reading the
chunks in file order reads the samples in solving order. All chains of a process advance one
block at a time (a "wave", one compiled call, `vmap`ed and optionally sharded over devices), so
the chunk layout does not depend on how many devices or processes wrote it.

Every file is written atomically (temporary file, then rename). A re-run with the same settings
keeps every chunk that the index lists with a matching size and checksum and recomputes only the
rest, starting each chain from the recycle space saved with its previous block: an interrupted and
resumed run writes the same dataset as an uninterrupted one. A directory that holds a dataset with
different settings (or anything else) is never overwritten unless `force=True`.
"""

import dataclasses
import datetime
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..._core import (
    OutputExistsError,
    atomic_write_bytes,
    check_size,
    environment,
    progress_bar,
    write_json,
)
from ...solvers._gcrodr import Recycle
from ._families import FAMILIES, AbstractFamily
from ._sequence import _METHODS, check_config, default_rtol, solve_chain, sort_order
from ._sorting import split_chains

FORMAT_VERSION = 1
META_NAME = "meta.json"
MERGED_NAME = "dataset.npz"
HDF5_NAME = "dataset.h5"
_CHUNK_PREFIX = "chunk_"
_PER_SAMPLE = ("inputs", "solutions", "iterations", "matvecs", "residuals", "converged", "seconds")
# The settings that determine the data; a directory written with other values is another dataset.
_SETTING_KEYS = (
    "family",
    "family_options",
    "n_samples",
    "grid",
    "seed",
    "dtype",
    "method",
    "rtol",
    "atol",
    "m",
    "k",
    "preconditioner",
    "sort",
    "n_chains",
    "chunk_size",
    "max_steps",
    "ritz",
)


def chunk_name(chunk_id: int) -> str:
    """The file name of chunk `chunk_id`."""
    return f"{_CHUNK_PREFIX}{chunk_id:05d}.npz"


def _partial_index_name(process_index: int) -> str:
    return f"index.p{process_index:04d}.json"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A dataset read by `load_dataset`, per-sample arrays in the original sample order.

    Attributes:
        inputs: the parameter fields, (N, ...) (e.g. the Darcy coefficient on the s×s nodes).
        solutions: the solutions on the family's grid, (N, *grid_shape) (for Darcy the
            (s−2)×(s−2) interior nodes; the boundary values are 0).
        iterations, matvecs: Krylov iterations and products with A per sample.
        residuals: true relative residuals ‖b − A u‖/‖b‖.
        converged: whether each solve met its tolerance.
        seconds: wall time per sample (its block's time divided by the samples in the wave;
            the first block of a run includes compilation).
        order: the solving order (a permutation of range(N)).
        meta: the contents of `meta.json` (settings, versions, chunk index).
    """

    inputs: np.ndarray
    solutions: np.ndarray
    iterations: np.ndarray
    matvecs: np.ndarray
    residuals: np.ndarray
    converged: np.ndarray
    seconds: np.ndarray
    order: np.ndarray
    meta: dict[str, Any]

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


@dataclasses.dataclass(frozen=True)
class GenerationReport:
    """What `generate_dataset` did.

    Attributes:
        path: the dataset directory.
        n_chunks: chunks in the dataset.
        computed: chunks computed by this call.
        skipped: chunks found complete and kept.
        seconds: wall time of this call.
        merged: whether `dataset.npz` was written (by this process).
    """

    path: Path
    n_chunks: int
    computed: int
    skipped: int
    seconds: float
    merged: bool


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _npz_bytes(arrays: Mapping[str, Any]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(value) for name, value in arrays.items()})
    return buffer.getvalue()


def _dtype_name(dtype: Any) -> str:
    if dtype is None:
        return np.dtype(jnp.zeros(()).dtype).name
    return np.dtype(dtype).name


def dataset_settings(
    family: str,
    *,
    n_samples: int,
    grid: int,
    seed: int = 0,
    dtype: Any = None,
    method: str = "skr",
    rtol: float | None = None,
    atol: float = 0.0,
    m: int = 40,
    k: int = 20,
    M: str | None = None,
    sort: str | None = "greedy",
    n_chains: int = 1,
    chunk_size: int = 64,
    max_steps: int | None = None,
    ritz: str = "subspace",
    family_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The settings that determine a dataset, validated (see `generate_dataset` for the args).

    Raises:
        ValueError: for an unknown family, method or sort, or a size out of range; the message
            names the valid choices.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(sorted(FAMILIES))}.")
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(_METHODS)}.")
    if sort not in ("greedy", "fft", "features", None):
        raise ValueError(f"unknown sort {sort!r}; choose greedy, fft, features or None.")
    for name, value, low in (
        ("n_samples", n_samples, 1),
        ("grid", grid, 4),
        ("n_chains", n_chains, 1),
        ("chunk_size", chunk_size, 1),
        ("m", m, 1),
        ("k", k, 0),
        ("seed", seed, 0),
    ):
        check_size(value, name, minimum=low)
    if seed >= 2**63:
        raise ValueError(f"`seed` must be below 2**63 (a JAX PRNG seed), got {seed}.")
    if n_chains > n_samples:
        raise ValueError(
            f"`n_chains` ({n_chains}) cannot exceed the number of samples ({n_samples})."
        )
    if rtol is None:
        rtol = default_rtol(_dtype_name(dtype))
    if not (np.isfinite(rtol) and rtol >= 0 and np.isfinite(atol) and atol >= 0):
        raise ValueError(f"tolerances must be finite and >= 0, got rtol={rtol}, atol={atol}.")
    return {
        "family": family,
        "family_options": dict(family_options or {}),
        "n_samples": int(n_samples),
        "grid": int(grid),
        "seed": int(seed),
        "dtype": _dtype_name(dtype),
        "method": method,
        "rtol": float(rtol),
        "atol": float(atol),
        "m": int(m),
        "k": int(k),
        "preconditioner": M,
        "sort": sort,
        "n_chains": int(n_chains),
        "chunk_size": int(chunk_size),
        "max_steps": None if max_steps is None else int(max_steps),
        "ritz": ritz,
    }


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        with open(path / META_NAME, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: treated as a dataset with unknown settings


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    old_settings = old.get("settings", {})
    # Compare through JSON so that tuples and lists, ints and floats written alike compare equal.
    norm = lambda v: json.loads(json.dumps(v))  # noqa: E731
    return [
        f"{key}: {old_settings.get(key, '?')!r} -> {new[key]!r}"
        for key in _SETTING_KEYS
        if norm(old_settings.get(key, "<missing>")) != norm(new[key])
    ]


def _our_files(path: Path) -> list[Path]:
    names = {META_NAME, MERGED_NAME, HDF5_NAME}
    return [
        entry
        for entry in path.iterdir()
        if entry.name in names
        or (entry.name.startswith(_CHUNK_PREFIX) and entry.name.endswith(".npz"))
        or (entry.name.startswith("index.p") and entry.name.endswith(".json"))
    ]


def _existing_header(path: Path) -> dict[str, Any] | None:
    """The header of the dataset in `path`: `meta.json`, else a partial index, else None."""
    meta = _read_meta(path)
    if meta is not None:
        return meta
    for partial in sorted(path.glob("index.p*.json")):
        found = _read_json(partial)
        if found is not None:
            return found
    return None


def _prepare(path: Path, settings: dict[str, Any], *, force: bool) -> bool:
    """Check the directory; returns whether existing chunks may be reused."""
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"'{path}' exists and is not a directory; choose a directory.")
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True)  # exist_ok: other processes may race here
        return True
    meta = _existing_header(path)
    entries = [e for e in path.iterdir() if not e.name.startswith(".")]
    if meta is None:
        if not entries:
            return True
        if not force:
            raise OutputExistsError(
                f"'{path}' is not empty and holds no sciml dataset ({META_NAME} missing); pass "
                f"force=True (--force) to write into it anyway, or choose another directory."
            )
        return False
    differences = _differences(meta, settings)
    if not differences:
        return True
    if not force:
        shown = "; ".join(differences[:4]) + ("; ..." if len(differences) > 4 else "")
        raise OutputExistsError(
            f"'{path}' holds a dataset with different settings ({shown}); pass force=True "
            f"(--force) to replace it, or choose another directory."
        )
    return False


def _remove_stale(path: Path) -> None:
    for entry in _our_files(path):
        try:
            entry.unlink()
        except FileNotFoundError:  # another process removed it first
            pass


def _chunk_valid(path: Path, record: Mapping[str, Any] | None) -> bool:
    if record is None:
        return False
    file = path / record["file"]
    try:
        if file.stat().st_size != record["bytes"]:
            return False
    except FileNotFoundError:
        return False
    return _sha256(file) == record["sha256"]


def _layout(
    settings: Mapping[str, Any], params: Any
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """The solving order split into chains and blocks: (indices, valid, n_blocks, order)."""
    order = sort_order(params, settings["sort"])
    chains = split_chains(order, settings["n_chains"])
    length = chains.indices.shape[1]
    n_blocks = -(-length // settings["chunk_size"])
    return np.asarray(chains.indices), np.asarray(chains.valid), n_blocks, np.asarray(order)


def build_family(settings: Mapping[str, Any]) -> AbstractFamily:
    """The family a dataset's settings describe (deterministic from the seed)."""
    constructor = FAMILIES[settings["family"]]
    return constructor(
        jax.random.key(settings["seed"]),
        settings["n_samples"],
        settings["grid"],
        dtype=np.dtype(settings["dtype"]),
        **settings["family_options"],
    )


def _process_chains(n_chains: int, process_index: int, process_count: int) -> list[int]:
    return [int(c) for c in np.array_split(np.arange(n_chains), process_count)[process_index]]


def generate_dataset(
    out: str | os.PathLike,
    family: str,
    *,
    n_samples: int,
    grid: int,
    method: str = "skr",
    rtol: float | None = None,
    atol: float = 0.0,
    m: int = 40,
    k: int = 20,
    M: str | None = None,
    sort: str | None = "greedy",
    n_chains: int = 1,
    chunk_size: int = 64,
    seed: int = 0,
    dtype: Any = None,
    max_steps: int | None = None,
    ritz: str = "subspace",
    family_options: Mapping[str, Any] | None = None,
    devices: int | None = None,
    process_index: int = 0,
    process_count: int = 1,
    merge: bool = True,
    hdf5: bool | None = None,
    force: bool = False,
    progress: bool | None = None,
    on_chunk: Callable[[int], None] | None = None,
    barrier: Callable[[], None] | None = None,
) -> GenerationReport:
    """Generate a PDE solution dataset into a directory, chunk by chunk, resumably.

    The family `FAMILIES[family]` is sampled from `jax.random.key(seed)`, the instances are
    sorted (`sort`), split into `n_chains` chains and solved block by block (`chunk_size`
    systems per chain and block) with `solve_chain`; SKR chains carry their recycle space from
    block to block. See the module docstring for the files written.

    Args:
        out: the dataset directory (created if missing).
        family: a name in `FAMILIES` ("darcy", "darcy-piecewise", "poisson", "heat",
            "helmholtz", ...).
        n_samples: N, the number of instances.
        grid: nodes per axis s, boundary included.
        method: "skr", "gmres", "cg" or "direct".
        rtol, atol: tolerances on each system's true residual (`rtol` defaults to 1e-8 in
            float64, 1e-5 in float32).
        m, k: GCRO-DR(m, k); GMRES restarts after m steps.
        M: None or "jacobi".
        sort: "greedy", "fft", "features" or None (as generated).
        n_chains: chains solved side by side (`vmap`; sharded with `devices`).
        chunk_size: chain positions per chunk file.
        seed: the family's PRNG seed.
        dtype: float32 or float64 (JAX's default float if None).
        max_steps: iteration budget per system.
        ritz: GCRO-DR eigen step, "subspace" or "eig".
        family_options: further keyword arguments of the family constructor.
        devices: shard this process's chains over that many local devices.
        process_index, process_count: this process's share of the chains in a multi-process
            run (chains are divided contiguously); every process writes its own chunks and a
            partial index, and `finalize_dataset` merges them.
        merge: write `meta.json` and `dataset.npz` at the end (single-process runs).
        hdf5: also write `dataset.h5`: None = if h5py is importable, True = required.
        force: replace a dataset with different settings (or other files) in `out`.
        progress: show a progress bar (None: only on a terminal).
        on_chunk: called with the chunk id after each chunk is committed (e.g. to stop a run
            part-way in a test).
        barrier: in a multi-process run, a function that waits for all processes (called
            once, after process 0 has cleared a dataset replaced with `force`).

    Returns:
        A `GenerationReport`.

    Raises:
        ValueError: for bad settings.
        OutputExistsError: if `out` holds something else and `force` is false.
        RuntimeError: if a solve did not converge is NOT raised: check `converged` in the data.
    """
    started = time.perf_counter()
    settings = dataset_settings(
        family,
        n_samples=n_samples,
        grid=grid,
        seed=seed,
        dtype=dtype,
        method=method,
        rtol=rtol,
        atol=atol,
        m=m,
        k=k,
        M=M,
        sort=sort,
        n_chains=n_chains,
        chunk_size=chunk_size,
        max_steps=max_steps,
        ritz=ritz,
        family_options=family_options,
    )
    if not 0 <= process_index < process_count:
        raise ValueError(f"`process_index` must lie in [0, {process_count}), got {process_index}.")
    if process_count > n_chains:
        raise ValueError(
            f"{process_count} processes need at least as many chains; use n_chains >= "
            f"{process_count}."
        )
    # Everything that can be refused is refused before `out` is touched: a settings file
    # written for a run that then fails would block the corrected run (without `force`).
    fam = build_family(settings)
    check_config(
        settings["method"],
        settings["preconditioner"],
        settings["m"],
        settings["k"],
        fam,
        settings["rtol"],
        settings["atol"],
        settings["ritz"],
    )
    path = Path(out)
    reuse = _prepare(path, settings, force=force)
    if not reuse and process_index == 0:
        _remove_stale(path)
    if barrier is not None:
        barrier()  # no process writes before process 0 has cleared a replaced dataset

    indices, valid, n_blocks, order = _layout(settings, fam.params)
    chunk_size = settings["chunk_size"]
    my_chains = _process_chains(settings["n_chains"], process_index, process_count)
    if devices is not None and len(my_chains) % devices:
        raise ValueError(
            f"this process solves {len(my_chains)} chains, which do not divide over {devices} "
            f"devices; choose n_chains as a multiple of {devices * process_count}."
        )

    old = _existing_header(path) if reuse else None
    records: dict[str, dict[str, Any]] = {}
    if reuse:
        for meta in [old or {}] + [
            _read_json(path / _partial_index_name(p)) for p in range(process_count)
        ]:
            for record in (meta or {}).get("chunks", []):
                records[record["file"]] = record

    header = {
        "format": FORMAT_VERSION,
        "settings": settings,
        "grid_shape": list(fam.grid_shape),
        "input_shape": list(fam.params.shape[1:]),
        "n_blocks": n_blocks,
        "chain_length": int(indices.shape[1]),
        "environment": environment(),
        "h5py": "not a dependency of sciml; dataset.h5 is written only when h5py is installed",
    }
    my_records = {
        name: record for name, record in records.items() if record.get("chain") in my_chains
    }
    index_path = path / (META_NAME if process_count == 1 else _partial_index_name(process_index))

    def write_index(complete: bool) -> None:
        chunks = sorted(my_records.values(), key=lambda r: r["chunk"])
        payload = dict(header, complete=complete, chunks=chunks)
        payload["updated"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        )
        write_json(index_path, payload)

    computed = skipped = 0
    recycle = None
    params_all = np.asarray(fam.params)
    chain_ids = np.asarray(my_chains)
    n_mine = int(valid[chain_ids].sum())
    if old is None:
        write_index(complete=False)  # the settings go to disk before any chunk
    with progress_bar(n_mine, desc=f"datagen {family}", unit="sample", progress=progress) as bar:
        for block in range(n_blocks):
            lo, hi = block * chunk_size, min((block + 1) * chunk_size, indices.shape[1])
            names = [chunk_name(c * n_blocks + block) for c in my_chains]
            done = all(_chunk_valid(path, my_records.get(name)) for name in names)
            samples_in_wave = int(valid[chain_ids, lo:hi].sum())
            if done:
                skipped += len(names)
                recycle = _load_recycle(path, names) if settings["method"] == "skr" else None
                bar.update(samples_in_wave)
                continue
            if settings["method"] == "skr" and block > 0 and recycle is None:
                previous = [chunk_name(c * n_blocks + block - 1) for c in my_chains]
                recycle = _load_recycle(path, previous)
            tic = time.perf_counter()
            result = solve_chain(
                fam,
                indices[chain_ids, lo:hi],
                method=settings["method"],
                recycle=recycle,
                rtol=settings["rtol"],
                atol=settings["atol"],
                m=settings["m"],
                k=settings["k"],
                M=settings["preconditioner"],
                ritz=settings["ritz"],
                max_steps=settings["max_steps"],
                devices=devices,
            )
            jax.block_until_ready(result.solutions)
            wall = time.perf_counter() - tic
            recycle = result.recycle
            per_sample = wall / max(samples_in_wave, 1)
            for row, (chain, name) in enumerate(zip(my_chains, names, strict=True)):
                keep = valid[chain, lo:hi]
                sample_ids = indices[chain, lo:hi][keep]
                arrays = {
                    "index": sample_ids.astype(np.int64),
                    "inputs": params_all[sample_ids],
                    "solutions": np.asarray(result.solutions[row])[keep].reshape(
                        -1, *fam.grid_shape
                    ),
                    "iterations": np.asarray(result.iterations[row])[keep],
                    "matvecs": np.asarray(result.matvecs[row])[keep],
                    "residuals": np.asarray(result.residuals[row])[keep],
                    "converged": np.asarray(result.converged[row])[keep],
                    "seconds": np.full(int(keep.sum()), per_sample),
                }
                if recycle is not None:
                    arrays["recycle_U"] = np.asarray(recycle.U[row])
                    arrays["recycle_C"] = np.asarray(recycle.C[row])
                    arrays["recycle_size"] = np.asarray(recycle.size[row])
                file = atomic_write_bytes(path / name, _npz_bytes(arrays))
                my_records[name] = {
                    "file": name,
                    "chunk": chain * n_blocks + block,
                    "chain": chain,
                    "block": block,
                    "n_samples": int(keep.sum()),
                    "bytes": file.stat().st_size,
                    "sha256": _sha256(file),
                    "seconds": wall,
                }
                computed += 1
                write_index(complete=False)
                if on_chunk is not None:
                    on_chunk(chain * n_blocks + block)
            bar.update(samples_in_wave)
    merged = False
    if computed == 0 and old is not None and old.get("complete") and old.get("merged_file"):
        # Nothing new: keep meta.json and dataset.npz as they are (if still intact).
        if _chunk_valid(path, old["merged_file"]):
            return GenerationReport(
                path=path,
                n_chunks=settings["n_chains"] * n_blocks,
                computed=0,
                skipped=skipped,
                seconds=time.perf_counter() - started,
                merged=False,
            )
    write_index(complete=True)
    if merge and process_count == 1:
        finalize_dataset(path, hdf5=hdf5)
        merged = True
    return GenerationReport(
        path=path,
        n_chunks=settings["n_chains"] * n_blocks,
        computed=computed,
        skipped=skipped,
        seconds=time.perf_counter() - started,
        merged=merged,
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _load_recycle(path: Path, names: list[str]) -> Recycle:
    parts = []
    for name in names:
        with np.load(path / name) as data:
            parts.append((data["recycle_U"], data["recycle_C"], data["recycle_size"]))
    U, C, size = (np.stack(column) for column in zip(*parts, strict=True))
    return Recycle(U=jnp.asarray(U), C=jnp.asarray(C), size=jnp.asarray(size, jnp.int32))


def finalize_dataset(out: str | os.PathLike, *, hdf5: bool | None = None) -> Path:
    """Merge the chunk index (and partial indices of a multi-process run) and the chunks.

    Verifies every chunk against its recorded size and checksum, writes `meta.json` with the
    full index, and `dataset.npz` (and `dataset.h5` if h5py is available, see
    `generate_dataset`) in the original sample order.

    Args:
        out: the dataset directory.
        hdf5: None (write HDF5 if h5py is importable), True (require it) or False.

    Returns:
        The path of `dataset.npz`.

    Raises:
        FileNotFoundError: if the directory holds no dataset index.
        ValueError: if chunks are missing or corrupt (re-run the generation to complete them).
        ImportError: if `hdf5=True` and h5py is not installed.
    """
    path = Path(out)
    meta = _read_json(path / META_NAME)
    partials = sorted(path.glob("index.p*.json"))
    if meta is None and not partials:
        raise FileNotFoundError(f"'{path}' holds no dataset index ({META_NAME}).")
    records: dict[str, dict[str, Any]] = {}
    header = None
    for source in ([meta] if meta else []) + [_read_json(p) for p in partials]:
        if not source:
            continue
        header = header or {k: v for k, v in source.items() if k not in ("chunks", "complete")}
        for record in source.get("chunks", []):
            records[record["file"]] = record
    settings = header["settings"]
    n_blocks = header["n_blocks"]
    expected = [chunk_name(i) for i in range(settings["n_chains"] * n_blocks)]
    missing = [name for name in expected if not _chunk_valid(path, records.get(name))]
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise ValueError(
            f"dataset '{path}' is incomplete: {shown} missing or corrupt; re-run the same "
            f"generation command to complete it."
        )
    arrays = _merge_chunks(path, expected, settings["n_samples"])
    payload = dict(header, complete=True, chunks=[records[name] for name in expected])
    payload["merged"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    merged = atomic_write_bytes(path / MERGED_NAME, _npz_bytes(arrays))
    payload["merged_file"] = {
        "file": MERGED_NAME,
        "bytes": merged.stat().st_size,
        "sha256": _sha256(merged),
    }
    if hdf5 is not False:
        _write_hdf5(path / HDF5_NAME, arrays, settings, required=bool(hdf5))
    write_json(path / META_NAME, payload)
    for partial in partials:
        partial.unlink(missing_ok=True)
    return merged


def _merge_chunks(path: Path, names: list[str], n_samples: int) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {key: [] for key in ("index", *_PER_SAMPLE)}
    for name in names:
        with np.load(path / name) as data:
            for key in parts:
                parts[key].append(data[key])
    order = np.concatenate(parts.pop("index"))
    if sorted(order.tolist()) != list(range(n_samples)):
        raise ValueError(
            f"the chunks of '{path}' do not cover samples 0..{n_samples - 1} exactly once; "
            f"regenerate with force=True."
        )
    arrays = {}
    for key, pieces in parts.items():
        values = np.concatenate(pieces)
        restored = np.empty_like(values)
        restored[order] = values
        arrays[key] = restored
    arrays["order"] = order
    return arrays


def _write_hdf5(file: Path, arrays: Mapping[str, np.ndarray], settings, *, required: bool) -> None:
    try:
        import h5py  # optional: not a dependency of sciml
    except ImportError:
        if required:
            raise ImportError(
                "HDF5 output needs h5py, which sciml does not depend on: `pip install h5py`, "
                "or read dataset.npz."
            ) from None
        return
    tmp = file.with_name(f".{file.name}.tmp")
    with h5py.File(tmp, "w") as handle:
        for key, value in arrays.items():
            handle.create_dataset(key, data=value)
        handle.attrs["settings"] = json.dumps(settings)
    os.replace(tmp, file)


def load_dataset(out: str | os.PathLike) -> Dataset:
    """Read a dataset directory written by `generate_dataset` (or `sciml datagen`).

    Reads `dataset.npz` when it is present and matches the index; otherwise merges the chunks
    (which must all be complete).

    Args:
        out: the dataset directory.

    Returns:
        A `Dataset` with per-sample arrays in the original sample order.

    Raises:
        FileNotFoundError: if `out` holds no dataset.
        ValueError: if the dataset is incomplete or corrupt.
    """
    path = Path(out)
    meta = _read_json(path / META_NAME)
    if meta is None:
        raise FileNotFoundError(
            f"'{path}' holds no dataset ({META_NAME} missing); generate one with "
            f"`sciml datagen` or `generate_dataset`."
        )
    merged = meta.get("merged_file")
    if merged and _chunk_valid(path, merged):
        with np.load(path / MERGED_NAME) as data:
            arrays = {key: data[key] for key in data.files}
    else:
        settings = meta["settings"]
        names = [chunk_name(i) for i in range(settings["n_chains"] * meta["n_blocks"])]
        records = {record["file"]: record for record in meta.get("chunks", [])}
        missing = [name for name in names if not _chunk_valid(path, records.get(name))]
        if missing:
            raise ValueError(
                f"dataset '{path}' is incomplete ({len(missing)} of {len(names)} chunks missing "
                f"or corrupt); re-run the generation command to complete it."
            )
        arrays = _merge_chunks(path, names, settings["n_samples"])
    return Dataset(meta=meta, **{key: arrays[key] for key in (*_PER_SAMPLE, "order")})
