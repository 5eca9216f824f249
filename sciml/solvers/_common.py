"""Set-up shared by the Krylov solvers: input checks, operator conversion, tolerances, results.

Everything here runs at trace time except the small array helpers (`dot`, `norm`,
`init_history`, `finish`), which are used inside the solvers' loops.
"""

import operator as _operator
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Inexact, Real

from .._core import RESULTS, Solution, check_dtype, check_tolerances
from ..linalg._base import AbstractOperator, as_operator

HIGHEST = jax.lax.Precision.HIGHEST

# The residual history is a fixed-length buffer of `max_steps + 1` entries. SciPy's default of
# 10·n iterations would make it as long as ten copies of the solution for large grids, so the
# default is capped; pass `max_steps` explicitly to go further.
DEFAULT_MAX_STEPS_CAP = 100_000


class KrylovSystem(NamedTuple):
    """A validated linear system `A x = b`, ready for a Krylov loop."""

    operator: AbstractOperator
    preconditioner: AbstractOperator | None
    b: Inexact[Array, " n"]
    x0: Inexact[Array, " n"] | None
    rtol: Real[Array, ""]
    atol: Real[Array, ""]
    max_steps: int


def dot(x: Inexact[Array, " n"], y: Inexact[Array, " n"]) -> Real[Array, ""]:
    """The real part of `xᴴ y`, accumulated at full precision (no TF32/bf16 passes)."""
    return jnp.real(jnp.vdot(x, y, precision=HIGHEST))


def norm(x: Inexact[Array, " n"]) -> Real[Array, ""]:
    """The 2-norm of a vector, computed with `dot`."""
    return jnp.sqrt(dot(x, x))


def real_dtype(dtype: Any) -> np.dtype:
    """The real floating dtype that goes with `dtype` (float32 for complex64, ...)."""
    return np.dtype(jnp.finfo(dtype).dtype)


def default_max_steps(n: int) -> int:
    """SciPy's default iteration budget, 10·n, capped at `DEFAULT_MAX_STEPS_CAP`."""
    return min(10 * n, DEFAULT_MAX_STEPS_CAP)


# Signatures of (operator, b) pairs whose product already passed `_check_product`, oldest
# first. Tracing `mv` abstractly costs milliseconds (6 ms for a 34² Darcy stencil on XLA:CPU),
# as much as a whole small solve, so a loop of solves checks each kind of operator once.
_CHECKED_PRODUCTS: OrderedDict[Hashable, None] = OrderedDict()
_CHECKED_PRODUCTS_MAX = 256


def _product_signature(op: AbstractOperator, b: Array) -> Hashable | None:
    """What the shape and dtype of `op.mv(b)` can depend on, or None where it is not hashable.

    That is the operator's pytree structure (static fields included), the shape, dtype and
    weak type of each array leaf and the value of every other leaf, and `b`'s shape and dtype.
    """
    leaves, treedef = jax.tree_util.tree_flatten(op)
    parts = []
    for leaf in leaves:
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
            weak = bool(getattr(getattr(leaf, "aval", leaf), "weak_type", False))
            parts.append((tuple(leaf.shape), np.dtype(leaf.dtype), weak))
        else:
            parts.append((type(leaf), leaf))
    signature = (treedef, tuple(parts), tuple(b.shape), np.dtype(b.dtype))
    try:
        hash(signature)
    except TypeError:
        return None
    return signature


def _check_product(op: AbstractOperator, b: Array, *, name: str, what: str) -> None:
    # Trace the product once, abstractly, so that a wrong size or dtype is reported here with
    # a fix rather than deep inside the loop (or, worse, as a silent dtype promotion).
    signature = _product_signature(op, b)
    if signature is not None and signature in _CHECKED_PRODUCTS:
        _CHECKED_PRODUCTS.move_to_end(signature)
        return
    try:
        out = jax.eval_shape(op.mv, jax.ShapeDtypeStruct(b.shape, b.dtype))
    except TypeError as err:
        raise ValueError(
            f"applying `{name}` ({what}) to a vector of shape {b.shape} and dtype {b.dtype} "
            f"failed: {err}. Give `{name}` the same dtype as `b` (e.g. `A.astype(b.dtype)`)."
        ) from err
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise ValueError(f"`{name}` ({what}) must return a single array, got {type(out).__name__}.")
    if out.shape != b.shape:
        raise ValueError(
            f"`{name}` ({what}) maps a vector of shape {b.shape} to shape {out.shape}; it must "
            f"return the same shape. Check that `{name}` matches the size of `b`."
        )
    if out.dtype != b.dtype:
        raise ValueError(
            f"`{name}` ({what}) returns dtype {out.dtype} for input of dtype {b.dtype}; the "
            f"solver follows the dtype of `b`. Cast one of them, e.g. `b.astype({out.dtype})` "
            f"or build `{name}` in {b.dtype}."
        )
    if signature is not None:
        _CHECKED_PRODUCTS[signature] = None
        if len(_CHECKED_PRODUCTS) > _CHECKED_PRODUCTS_MAX:
            _CHECKED_PRODUCTS.popitem(last=False)


def _as_max_steps(max_steps: Any, n: int) -> int:
    if max_steps is None:
        return default_max_steps(n)
    if isinstance(max_steps, bool):
        raise ValueError(f"`max_steps` must be a non-negative int or None, got {max_steps!r}.")
    try:
        steps = _operator.index(max_steps)
    except TypeError as err:
        raise ValueError(
            f"`max_steps` must be a static non-negative Python int (or None for "
            f"min(10·n, {DEFAULT_MAX_STEPS_CAP})), got {type(max_steps).__name__}. Loop "
            f"lengths are static because they size the residual-history buffer."
        ) from err
    if steps < 0:
        raise ValueError(f"`max_steps` must be >= 0, got {steps}.")
    return steps


def _as_tolerance(tol: Any, name: str, dtype: np.dtype) -> Real[Array, ""]:
    if jnp.ndim(tol) != 0:
        raise ValueError(f"`{name}` must be a scalar, got shape {jnp.shape(tol)}.")
    tol_dtype = getattr(tol, "dtype", None)
    if tol_dtype is not None and not jnp.issubdtype(tol_dtype, jnp.floating):
        if not jnp.issubdtype(tol_dtype, jnp.integer):
            raise ValueError(f"`{name}` must be a real number, got dtype {tol_dtype}.")
    return jnp.asarray(tol).astype(dtype)


def prepare_system(
    A: Any,
    b: Any,
    *,
    x0: Any,
    M: Any,
    rtol: Any,
    atol: Any,
    max_steps: Any,
) -> KrylovSystem:
    """Validate and convert the inputs of a Krylov solve (at trace time).

    Raises:
        ValueError: for a non-floating or non-1-D `b`, an operator or preconditioner whose
            size or dtype does not match `b`, a non-square operator, a bad `x0`, invalid
            tolerances (see `sciml._core.check_tolerances`) or a negative `max_steps`.
    """
    if not hasattr(b, "dtype") or not hasattr(b, "shape"):
        raise ValueError(
            f"`b` must be a JAX or NumPy array, got {type(b).__name__}. Wrap it with "
            f"`jnp.asarray(b, dtype=jnp.float32)`."
        )
    # (`float_dtype_of` would also do, but it evaluates `np.result_type(b)` eagerly, which
    # JAX deprecates for arrays.)
    dtype = check_dtype(b.dtype, name="b")
    b = jnp.asarray(b)
    if b.ndim != 1:
        raise ValueError(
            f"`b` must be a 1-D vector, got shape {b.shape}. Flatten grid-shaped data with "
            f"`b.ravel()`; for a batch of right-hand sides use `jax.vmap` over the solver."
        )
    operator = as_operator(A, like=b)
    if operator.n != b.shape[0]:
        raise ValueError(
            f"the operator is {operator.n}×{operator.n} but `b` has length {b.shape[0]}. "
            f"Pass a right-hand side with one entry per unknown."
        )
    _check_product(operator, b, name="A", what="the operator")

    if x0 is not None:
        if not hasattr(x0, "dtype") or not hasattr(x0, "shape"):
            raise ValueError(f"`x0` must be an array, got {type(x0).__name__}.")
        x0 = jnp.asarray(x0)
        if x0.shape != b.shape:
            raise ValueError(
                f"`x0` has shape {x0.shape} but `b` has shape {b.shape}; they must match."
            )
        if x0.dtype != b.dtype:
            raise ValueError(
                f"`x0` has dtype {x0.dtype} but `b` has dtype {b.dtype}; cast it with "
                f"`x0.astype(b.dtype)`."
            )

    preconditioner = None
    if M is not None:
        preconditioner = as_operator(M, like=b)
        if preconditioner.n != b.shape[0]:
            raise ValueError(
                f"the preconditioner `M` is {preconditioner.n}×{preconditioner.n} but `b` "
                f"has length {b.shape[0]}."
            )
        _check_product(preconditioner, b, name="M", what="the preconditioner application")

    check_tolerances(rtol, atol, dtype)
    tol_dtype = real_dtype(dtype)
    return KrylovSystem(
        operator=operator,
        preconditioner=preconditioner,
        b=b,
        x0=x0,
        rtol=_as_tolerance(rtol, "rtol", tol_dtype),
        atol=_as_tolerance(atol, "atol", tol_dtype),
        max_steps=_as_max_steps(max_steps, operator.n),
    )


def set_entry(x: Array, index: Any, value: Any) -> Array:
    """`x.at[index].set(value)` along axis 0 for an in-range index, as a dynamic-update-slice.

    Cheaper to compile and run inside loops than the scatter that `.at[].set` lowers to.
    """
    return jax.lax.dynamic_update_index_in_dim(x, jnp.asarray(value, x.dtype), index, 0)


def set_entry_unless(x: Array, index: Any, value: Any, keep: Any) -> Array:
    """`set_entry(x, index, value)`, or `x` unchanged where `keep` (None: set it)."""
    if keep is not None:
        value = jnp.where(keep, jax.lax.dynamic_index_in_dim(x, index, 0, keepdims=False), value)
    return set_entry(x, index, value)


def initial_state(system: KrylovSystem) -> tuple[Array, Array, Array, Array]:
    """`(‖b‖, tol, x0, r0)`: the stopping threshold tol = max(rtol‖b‖, atol) and first residual.

    SciPy returns x = 0 for b = 0 whatever x0 is; this also keeps rtol-only solves of b = 0 from
    running to max_steps.
    """
    b = system.b
    b_norm = norm(b)
    tol = jnp.maximum(system.rtol * b_norm, system.atol)
    if system.x0 is None:
        return b_norm, tol, jnp.zeros_like(b), b
    x = jnp.where(b_norm == 0, jnp.zeros_like(b), system.x0)
    return b_norm, tol, x, b - system.operator.mv(x)


def init_history(max_steps: int, initial: Real[Array, ""]) -> Real[Array, " max_steps+1"]:
    """A NaN-filled residual-history buffer of length `max_steps + 1` with entry 0 set."""
    return jnp.full(max_steps + 1, jnp.nan, dtype=initial.dtype).at[0].set(initial)


def finish(
    value: Inexact[Array, " n"], result: RESULTS, stats: dict[str, Any], *, throw: bool
) -> Solution:
    """Package a solve, raising the result's message at run time if `throw` and unsuccessful."""
    if throw:
        value, result, stats = result.error_if((value, result, stats), result != RESULTS.successful)
    return Solution(value=value, result=result, stats=stats)
