"""Linear solvers: Krylov baselines and classical preconditioners.

`cg` (symmetric positive definite systems) and `gmres` (general square systems) follow the
iterations and stopping rules of `scipy.sparse.linalg.cg` and `gmres`, so iteration counts
compare one to one; `jacobi` and `ssor` build preconditioner applications `r -> M⁻¹ r` for
their `M=` argument.
"""

from ._cg import cg as cg
from ._gmres import gmres as gmres
from ._preconditioners import jacobi as jacobi, ssor as ssor
