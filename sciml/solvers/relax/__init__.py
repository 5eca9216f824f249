"""Learning to relax: bandits that tune the SOR/SSOR ω across a sequence of linear systems.

Learners are pure, jittable state machines (`init`, `select(state, key, context)`,
`update(state, loss, context)`) over a grid of ω; `relax(sequence, solver, learner, key=...)`
(alias `run`) drives one over a whole sequence under `lax.scan`, `replay` plays one against
recorded iteration counts (reproducing a run's actions), `fixed` gives the counts of a
fixed ω, and `grid_iterations` + `best_fixed` / `instance_optimal` (brute force on a grid),
`search_best_fixed` / `search_instance_optimal` (golden-section search on the fine grid: fast,
exact only where the counts are unimodal in ω) and `young` the comparators.
"""

from ._chebcb import ChebCB as ChebCB, ChebState as ChebState
from ._run import (
    RelaxResult as RelaxResult,
    best_fixed as best_fixed,
    fine_grid as fine_grid,
    fixed as fixed,
    golden_section_index as golden_section_index,
    grid_iterations as grid_iterations,
    instance_optimal as instance_optimal,
    relax as relax,
    replay as replay,
    run as run,
    search_best_fixed as search_best_fixed,
    search_instance_optimal as search_instance_optimal,
    young as young,
)
from ._sampling import sample_arm as sample_arm
from ._tsallis import (
    TsallisCBState as TsallisCBState,
    TsallisINF as TsallisINF,
    TsallisINFCB as TsallisINFCB,
    TsallisState as TsallisState,
    tsallis_probabilities as tsallis_probabilities,
)
