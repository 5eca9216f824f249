"""Problem families, each deterministic from a PRNG key."""

from ._darcy import DarcyFamily as DarcyFamily, darcy as darcy
from ._heat import (
    HeatOperator as HeatOperator,
    HeatSequence as HeatSequence,
    heat_sequence as heat_sequence,
)
from ._pde import (
    convection_diffusion_problem as convection_diffusion_problem,
    fluid_pressure as fluid_pressure,
    helmholtz_problem as helmholtz_problem,
    obstacle_mask as obstacle_mask,
    poisson_problem as poisson_problem,
)
from ._problem import LinearProblem as LinearProblem
from ._sequences import (
    ShiftedLaplacianSequence as ShiftedLaplacianSequence,
    shifted_laplacians as shifted_laplacians,
)
