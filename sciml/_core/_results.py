"""Result codes shared by every sciml solver."""

import equinox.internal as eqxi

_nonfinite_input_msg = (
    "The solver received non-finite (NaN or inf) input in the right-hand side, the initial guess "
    "or the operator's first product. Check the inputs for NaN/inf upstream of sciml "
    "(`jnp.isfinite(b).all()`)."
)

_breakdown_msg = (
    "The iteration broke down (a zero or negative curvature p^T A p in CG, or a non-finite "
    "recurrence coefficient). Likely causes: the operator is not symmetric positive "
    "(semi-)definite (use `gmres` for nonsymmetric or indefinite systems), the preconditioner "
    "is not SPD, or the right-hand side of a singular (pure-Neumann) system is not in the "
    "operator's range (project out its null space first)."
)


class RESULTS(eqxi.Enumeration):
    """Outcome codes of a sciml solve (`Solution.result`).

    `RESULTS[sol.result]` gives the message; `sol.result == RESULTS.successful` tests success.
    """

    successful = ""
    max_steps_reached = (
        "The solver reached `max_steps` before the residual met the tolerance. Increase "
        "`max_steps`, loosen `rtol`/`atol`, or use a preconditioner (`M=jacobi(A)`); for GMRES a "
        "larger `restart` also helps."
    )
    breakdown = _breakdown_msg
    stagnation = (
        "The residual stopped decreasing before reaching the tolerance. The tolerance is probably "
        "too close to the precision of the dtype for this problem's conditioning: use float64 "
        "(`jax.config.update('jax_enable_x64', True)`), loosen `rtol`, or precondition."
    )
    nonfinite_input = _nonfinite_input_msg
    nonfinite = (
        "The iteration produced NaN or inf. The operator or preconditioner probably returns "
        "non-finite values, or the problem is badly scaled for the dtype."
    )
