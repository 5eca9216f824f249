"""Learning to relax: bandits that tune the SOR/SSOR ω across a sequence of linear systems.

Learners are pure, jittable state machines (`init`, `select(state, key, context)`,
`update(state, loss, context)`) over a grid of ω; `run` drives one over a whole sequence under
`lax.scan`, `fixed` gives the counts of a fixed ω, and `grid_iterations`, `best_fixed`,
`instance_optimal` and `young` the comparators.
"""

from ._chebcb import ChebCB as ChebCB, ChebState as ChebState
from ._run import (
    RelaxResult as RelaxResult,
    best_fixed as best_fixed,
    fixed as fixed,
    grid_iterations as grid_iterations,
    instance_optimal as instance_optimal,
    run as run,
    young as young,
)
from ._tsallis import (
    TsallisCBState as TsallisCBState,
    TsallisINF as TsallisINF,
    TsallisINFCB as TsallisINFCB,
    TsallisState as TsallisState,
    tsallis_probabilities as tsallis_probabilities,
)
