"""Linear solvers: Krylov baselines and classical preconditioners.

`cg` (symmetric positive definite systems) and `gmres` (general square systems) follow the
iterations and stopping rules of `scipy.sparse.linalg.cg` and `gmres`, so iteration counts
compare one to one: both stop when ‖b − A x‖ ≤ max(rtol·‖b‖, atol). `jacobi` and `ssor` build
preconditioner applications `r -> M⁻¹ r` for their `M=` argument.

Conventions shared by the solvers:

- `Solution.stats` holds `num_steps` (iterations; Arnoldi iterations for GMRES), `max_steps`,
  `residual_norm` and `residual_history`, a NaN-padded array of length `max_steps + 1` whose
  entry 0 is the initial residual norm and entry k the norm after k iterations (the recursive
  residual for CG, the Givens estimate for GMRES).
- `max_steps` defaults to 10·n iterations (SciPy's CG default; for GMRES these are Arnoldi
  steps, where SciPy's `maxiter` counts restart cycles), capped at 100 000 so the history
  buffer stays small.
- Tolerances may be traced arrays (changing them does not recompile); sizes are static ints.
- The loops are `lax.while_loop`s: `jit`, `vmap` (with per-member `num_steps`) and forward-mode
  differentiation work, reverse-mode differentiation through a solve does not.
- With `throw=True` an unsuccessful solve raises at run time with the result's message; code
  sharded over several devices must pass `throw=False` and check `sol.result` on the host.
"""

from ._cg import cg as cg
from ._dcdm import dcdm as dcdm
from ._dcdm_net import (
    DCDMNet as DCDMNet,
    load_dcdm_model as load_dcdm_model,
    save_dcdm_model as save_dcdm_model,
)
from ._gcrodr import Recycle as Recycle, gcrodr as gcrodr
from ._gmres import gmres as gmres
from ._preconditioners import jacobi as jacobi, ssor as ssor
from ._sor import (
    jacobi_spectral_radius as jacobi_spectral_radius,
    sor as sor,
    ssor_pcg as ssor_pcg,
    young_omega as young_omega,
)
