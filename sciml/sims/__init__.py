"""Classical simulators that make training data and test problems for the learned solvers.

`SmokeSim` is a small incompressible smoke simulation on a MAC grid (2-D or 3-D) whose pressure
projection takes any linear solver ("cg", "pcg", "dcdm", "amg" or a callable); `smoke_plume`
runs and times one.
"""

from ._smoke import (
    PRESSURE_SOLVERS as PRESSURE_SOLVERS,
    PressureSolver as PressureSolver,
    SmokeRun as SmokeRun,
    SmokeSim as SmokeSim,
    SmokeState as SmokeState,
    StepInfo as StepInfo,
    plume_mask as plume_mask,
    smoke_plume as smoke_plume,
)
