"""SciPy references for the Krylov tests: solutions and iteration counts."""

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def as_csr(op) -> sp.csr_array:
    """A SciPy CSR matrix from a sciml operator, a dense array or a SciPy matrix."""
    if sp.issparse(op):
        return sp.csr_array(op)
    if hasattr(op, "to_scipy"):
        return sp.csr_array(op.to_scipy())
    return sp.csr_array(np.asarray(op))


def scipy_cg(A, b, *, rtol, atol=0.0, M=None, x0=None):
    """SciPy's cg: (solution, info, iterations counted by the callback)."""
    count = [0]

    def callback(_):
        count[0] += 1

    x, info = spla.cg(
        as_csr(A),
        np.asarray(b),
        x0=x0,
        rtol=rtol,
        atol=atol,
        M=M,
        callback=callback,
        maxiter=100 * len(b),
    )
    return x, info, count[0]


def scipy_gmres(A, b, *, rtol, atol=0.0, M=None, restart=40, x0=None):
    """SciPy's gmres: (solution, info, inner (Arnoldi) iterations from the pr_norm callback)."""
    count = [0]

    def callback(_):
        count[0] += 1

    x, info = spla.gmres(
        as_csr(A),
        np.asarray(b),
        x0=x0,
        rtol=rtol,
        atol=atol,
        M=M,
        restart=restart,
        maxiter=100 * len(b),
        callback=callback,
        callback_type="pr_norm",
    )
    return x, info, count[0]


def direct_solve(A, b) -> np.ndarray:
    """The exact solution by `scipy.sparse.linalg.spsolve`."""
    return spla.spsolve(as_csr(A).tocsc(), np.asarray(b))


def ssor_inverse(A, omega: float) -> spla.LinearOperator:
    """r -> M⁻¹ r for M = (D + ωL) D⁻¹ (D + ωU) / (ω(2 − ω)), by SciPy triangular solves."""
    A = as_csr(A)
    d = A.diagonal()
    lower = sp.csr_array(sp.diags_array(d) + omega * sp.tril(A, k=-1))
    upper = sp.csr_array(sp.diags_array(d) + omega * sp.triu(A, k=1))

    def apply(r):
        y = spla.spsolve_triangular(lower, r, lower=True)
        return omega * (2 - omega) * spla.spsolve_triangular(upper, d * y, lower=False)

    return spla.LinearOperator(A.shape, matvec=apply, dtype=A.dtype)


def relative_error(x, y) -> float:
    x, y = np.asarray(x), np.asarray(y)
    return float(np.linalg.norm(x - y) / np.linalg.norm(y))
