"""The dtype and tolerance policy.

sciml never changes `jax_enable_x64`: it follows the dtype of its inputs. Asking for float64 while
x64 is off is an error rather than a silent float32, and a tolerance finer than the dtype can
resolve is an error rather than a solve that never stops.
"""

import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_X64_HINT = (
    "float64 was requested but JAX's 64-bit mode is off, so JAX would silently compute in "
    "float32. Enable it before creating arrays: `jax.config.update('jax_enable_x64', True)` "
    "or the environment variable `JAX_ENABLE_X64=1`."
)


def x64_enabled() -> bool:
    """Whether JAX's 64-bit mode is on."""
    return bool(jax.config.read("jax_enable_x64"))


def check_dtype(dtype: Any, *, name: str = "dtype") -> np.dtype:
    """Validate a requested floating dtype and return it as a `np.dtype`.

    Raises:
        ValueError: if the dtype is not a real or complex floating type, or is 64-bit while x64
            is off.
    """
    dtype = np.dtype(dtype)
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.complexfloating)):
        raise ValueError(
            f"`{name}` must be a floating dtype (float32 or float64), got {dtype}. Cast the "
            f"input, e.g. `b.astype(jnp.float32)`."
        )
    if dtype.itemsize >= 8 and dtype.kind == "f" and not x64_enabled():
        raise ValueError(_X64_HINT)
    if dtype.kind == "c" and dtype.itemsize >= 16 and not x64_enabled():
        raise ValueError(_X64_HINT)
    return dtype


def float_dtype_of(x: Any, *, name: str = "b") -> np.dtype:
    """The floating dtype that a computation on `x` runs in.

    Integer and boolean inputs are refused rather than promoted, so results never change dtype
    behind the user's back.
    """
    dtype = np.dtype(x.dtype if hasattr(x, "dtype") else np.result_type(x))
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.complexfloating)):
        raise ValueError(
            f"`{name}` has dtype {dtype}; sciml solvers need floating input. Cast it, e.g. "
            f"`{name}.astype(jnp.float32)` (or float64 with x64 enabled)."
        )
    return check_dtype(dtype, name=name)


def dtype_resolution(dtype: Any) -> float:
    """The smallest relative tolerance that `dtype` can meet: its machine epsilon."""
    return float(jnp.finfo(dtype).eps)


def check_tolerances(rtol: Any, atol: Any, dtype: Any) -> None:
    """Validate solver tolerances at trace time (only when they are concrete).

    Tolerances may be traced arrays (so that changing them never recompiles); then only their
    dtype is checked here and the solver's run-time result codes take over.

    Raises:
        ValueError: for a negative tolerance, rtol = atol = 0, or an `rtol` below the dtype's
            resolution.
    """
    concrete = {}
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if np.ndim(tol) != 0:
            raise ValueError(f"`{name}` must be a scalar, got shape {np.shape(tol)}.")
        try:
            concrete[name] = float(np.asarray(tol))
        except (
            jax.errors.ConcretizationTypeError,
            jax.errors.TracerArrayConversionError,
            TypeError,
        ):
            continue
        if not np.isfinite(concrete[name]) or concrete[name] < 0:
            raise ValueError(
                f"`{name}` must be a finite non-negative number, got {concrete[name]}."
            )
    eps = dtype_resolution(dtype)
    rtol_c, atol_c = concrete.get("rtol"), concrete.get("atol")
    if rtol_c is not None and atol_c is not None and rtol_c == 0 and atol_c == 0:
        raise ValueError(
            "`rtol` and `atol` are both zero, so the solve could never stop early. Give a "
            "positive `rtol` (e.g. 1e-6)."
        )
    if rtol_c is not None and 0 < rtol_c < eps:
        raise ValueError(
            f"`rtol={rtol_c:g}` is below the resolution of {np.dtype(dtype).name} "
            f"(eps = {eps:.2e}); the residual cannot get that small. Use rtol >= {eps:.1e} or "
            f"compute in float64 (enable x64 and pass float64 arrays)."
        )


def tol_for(dtype: Any) -> tuple[float, float]:
    """Default `(rtol, atol)` for comparing results computed in `dtype` (used by tests)."""
    if np.dtype(dtype).itemsize >= 8:
        return 1e-12, 1e-12
    return 1e-5, 1e-6


def is_concrete(x: Any) -> bool:
    """Whether no leaf of `x` is a tracer, i.e. its values can be checked eagerly."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def check_size(value: Any, name: str, minimum: int = 1) -> int:
    """`value` as a Python int of at least `minimum` (static sizes: counts, grid points, bins).

    NumPy and concrete JAX integers are accepted; floats (even 3.0) and booleans are not.

    Raises:
        ValueError: for a non-integer or a value below `minimum`.
    """
    if isinstance(value, bool):
        raise ValueError(f"`{name}` must be an int, got {value!r}.")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(
            f"`{name}` must be an int, got {value!r} ({type(value).__name__})."
        ) from None
    if number < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {number}.")
    return number
