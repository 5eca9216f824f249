"""Writing results: the run environment, atomic files, `metrics.json`, and output directories.

Every file is written atomically: to a temporary file in the destination folder, flushed to disk,
then renamed over the destination with `os.replace`. A reader (or a crash) therefore sees either
the old file or the new one, never half of one, and a failed write leaves the old file in place
and no temporary file behind.
"""

import datetime
import importlib.metadata
import json
import math
import os
import platform
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ._policy import x64_enabled

METRICS_SCHEMA = 1
# Environment variables that change what runs where (devices, threads).
_ENV_VARS = ("JAX_PLATFORMS", "XLA_FLAGS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
_DISTRIBUTIONS = ("jax", "jaxlib", "numpy", "scipy", "equinox", "optax", "jaxtyping")


class OutputExistsError(FileExistsError):
    """An output would overwrite an existing file and overwriting was not allowed."""


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Where and with what a computation runs: versions, devices and precision.

    Returns:
        A JSON-ready dict: `python`, `platform`, `machine`, `cpu_count`, `versions` (sciml, jax,
        jaxlib, numpy, scipy, equinox, optax, jaxtyping; `None` if not installed), `backend`
        (`cpu`/`gpu`/`tpu`), `device_kind` (e.g. `"NVIDIA H100 80GB HBM3"` or `"cpu"`),
        `device_count`, `devices` (their string forms), `process_count`, `x64`, and the
        environment variables that shape devices and threads (`JAX_PLATFORMS`, `XLA_FLAGS`,
        `OPENBLAS_NUM_THREADS`, `OMP_NUM_THREADS`).
    """
    from sciml import __version__ as sciml_version

    devices = jax.devices()
    versions = {"sciml": sciml_version}
    versions.update({name: _version(name) for name in _DISTRIBUTIONS})
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind if devices else None,
        "device_count": len(devices),
        "devices": [str(device) for device in devices],
        "process_count": jax.process_count(),
        "x64": x64_enabled(),
        "env": {name: os.environ.get(name) for name in _ENV_VARS},
    }


def describe_environment(env: Mapping[str, Any] | None = None) -> str:
    """A one-line human description of `environment()`, for reports and tables."""
    env = environment() if env is None else env
    versions = env["versions"]
    devices = f"{env['device_count']} × {env['device_kind']} ({env['backend']})"
    return (
        f"{devices}, {env['cpu_count']} CPU cores, {env['machine']}; Python {env['python']}, "
        f"JAX {versions['jax']}, jaxlib {versions['jaxlib']}, NumPy {versions['numpy']}, "
        f"SciPy {versions['scipy']}; x64 {'on' if env['x64'] else 'off'}"
    )


def jsonable(obj: Any) -> Any:
    """Convert `obj` to plain JSON types.

    NumPy/JAX scalars and arrays become numbers and lists; dtypes and paths become strings.
    Non-finite floats become the strings `"nan"`, `"inf"` and `"-inf"`: strict JSON has no NaN,
    and writing `null` would make a diverged solve look like a missing value.

    Raises:
        TypeError: for an object with no obvious JSON form (a bug in the caller).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(obj, Mapping):
        return {str(key): jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(value) for value in obj]
    if isinstance(obj, (np.ndarray, jax.Array)):
        return jsonable(np.asarray(obj).tolist())
    if isinstance(obj, np.dtype):
        return obj.name
    if isinstance(obj, type) and issubclass(obj, np.generic):
        return np.dtype(obj).name
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot write an object of type {type(obj).__name__} to JSON: {obj!r}")


_UMASK: int | None = None


def _file_mode() -> int:
    # mkstemp creates files readable by the owner only; outputs should get the usual mode.
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (temporary file in the same folder, then `os.replace`).

    Args:
        path: the destination; its folder must exist.
        data: the bytes to write.

    Returns:
        The destination as a `Path`.

    Raises:
        OSError: if the folder is missing or not writable; the destination is then untouched.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, _file_mode())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, payload: Any, *, indent: int = 2) -> Path:
    """Write `payload` as JSON to `path`, atomically.

    The payload is converted by `jsonable` first, so a payload that cannot be serialised raises
    before anything touches the disk.

    Returns:
        The destination as a `Path`.

    Raises:
        TypeError: if part of the payload has no JSON form.
        OSError: if the file cannot be written.
    """
    text = json.dumps(jsonable(payload), indent=indent, allow_nan=False, sort_keys=False)
    return atomic_write_text(path, text + "\n")


def write_metrics(
    path: str | os.PathLike,
    *,
    command: str,
    dtype: Any = None,
    sizes: Mapping[str, Any] | None = None,
    timings: Mapping[str, Any] | None = None,
    results: Any = None,
    env: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write a `metrics.json`: what ran, where, on what sizes, how long it took and what it gave.

    Args:
        path: the destination file (usually `<out>/metrics.json`).
        command: what produced it, e.g. `"sciml solve poisson2d --method cg"`.
        dtype: the floating dtype of the computation.
        sizes: problem sizes (`{"n": 16384, "grid": [128, 128]}`).
        timings: seconds, e.g. `{"compile_s": 0.41, "run_s": 0.012}`; name the unit in the key.
        results: anything else measured (iteration counts, residuals, per-method records).
        env: an `environment()` dict; computed now if not given.
        **extra: further top-level fields.

    Returns:
        The payload as written (after `jsonable`).
    """
    payload = {
        "schema": METRICS_SCHEMA,
        "command": command,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": dict(environment() if env is None else env),
        "dtype": None if dtype is None else np.dtype(dtype).name,
        "sizes": dict(sizes or {}),
        "timings": dict(timings or {}),
        "results": results,
        **extra,
    }
    payload = jsonable(payload)
    write_json(path, payload)
    return payload


def prepare_output_dir(
    path: str | os.PathLike,
    *,
    force: bool = False,
    outputs: Iterable[str] | None = None,
    force_hint: str = "--force",
) -> Path:
    """Check (and create) an output directory without ever losing what is already there.

    Nothing is deleted here, even with `force=True`: outputs are later replaced one by one with
    atomic writes, so an error part-way through leaves every existing file intact.

    Args:
        path: the output directory; created (with parents) if missing.
        force: allow outputs to overwrite existing files.
        outputs: the file names the caller will write. If given, only these count as existing
            outputs; if `None`, any existing entry in the directory does.
        force_hint: how the user allows overwriting, for the message (`"force=True"` from Python).

    Returns:
        The directory as a `Path`.

    Raises:
        OutputExistsError: if outputs exist and `force` is false; the message names them.
        NotADirectoryError: if `path` exists and is not a directory.
        PermissionError: if the directory cannot be written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"output path '{path}' exists and is not a directory; choose a directory for the "
            f"outputs."
        )
    if path.is_dir():
        if outputs is None:
            existing = sorted(entry.name for entry in path.iterdir())
        else:
            existing = sorted(name for name in set(outputs) if (path / name).exists())
        if existing and not force:
            shown = ", ".join(existing[:5])
            if len(existing) > 5:
                shown += f" and {len(existing) - 5} more"
            raise OutputExistsError(
                f"output directory '{path}' already contains {shown}; pass {force_hint} to "
                f"overwrite, or choose another output directory."
            )
    else:
        path.mkdir(parents=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write to output directory '{path}' (permission denied).")
    return path
