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
        "`max_steps` or loosen the tolerance; for Krylov solvers a preconditioner "
        "(`M=jacobi(A)`) helps, and for GMRES a larger `restart`."
    )
    breakdown = _breakdown_msg
    stagnation = (
        "The residual stopped decreasing before reaching the tolerance. Usual causes: a tolerance "
        "too close to the dtype's precision for this problem's conditioning (use float64, loosen "
        "`rtol`, or precondition); a singular system whose right-hand side is not in the range "
        "(e.g. pure Neumann: project b first); for `dcdm`, a network outside what it was trained "
        "on (the shipped weights know closed Neumann boxes, not Dirichlet walls or open cells)."
    )
    nonfinite_input = _nonfinite_input_msg
    invalid_input = (
        "An input lies outside the function's domain (e.g. a mean resultant length R̄ outside "
        "[0, 1] or NaN for `vmf.kappa_mle`/`vmf.fit`: all-zero or non-finite data); see the "
        "function's docstring for the valid range."
    )
    nonfinite = (
        "The iteration produced NaN or inf. The operator or preconditioner probably returns "
        "non-finite values, or the problem is badly scaled for the dtype."
    )
