"""Shared references for the equivariant tests (plain NumPy, built from the CG tensors)."""

import numpy as np

from sciml.equivariant import clebsch_gordan, gaunt_path_factor


def even_path_cg_reference(x, y, lmax_x, lmax_y, lmax_out):
    """Σ over even paths of k(l1,l2,l3) × e3nn "component" CG path, in float64 NumPy."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    out = np.zeros(np.broadcast_shapes(x.shape[:-1], y.shape[:-1]) + ((lmax_out + 1) ** 2,))
    for l1 in range(lmax_x + 1):
        for l2 in range(lmax_y + 1):
            for l3 in range(abs(l1 - l2), min(l1 + l2, lmax_out) + 1):
                if (l1 + l2 + l3) % 2:
                    continue
                c = clebsch_gordan(l1, l2, l3) * np.sqrt(2 * l3 + 1)
                c = c * gaunt_path_factor(l1, l2, l3)
                out[..., l3 * l3 : (l3 + 1) ** 2] += np.einsum(
                    "...i,...j,ijk->...k",
                    x[..., l1 * l1 : (l1 + 1) ** 2],
                    y[..., l2 * l2 : (l2 + 1) ** 2],
                    c,
                )
    return out


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def e3nn_context():
    """e3nn-jax relies on standard dtype and rank promotion; the suite runs strict.

    Its Legendre route (used above L = 8) calls `jax.scipy.special.lpmn_values`, deprecated in
    JAX 0.10; the suite turns warnings into errors, so that one reference-side warning is
    ignored here (sciml does not use the function).
    """
    import contextlib
    import warnings

    import jax

    stack = contextlib.ExitStack()
    stack.enter_context(jax.numpy_dtype_promotion("standard"))
    stack.enter_context(jax.numpy_rank_promotion("allow"))
    stack.enter_context(warnings.catch_warnings())
    warnings.filterwarnings("ignore", message=".*lpmn_values.*", category=DeprecationWarning)
    return stack
