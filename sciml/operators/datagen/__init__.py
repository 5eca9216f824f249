"""Fast data generation for neural operators: sorted Krylov recycling (SKR).

Sort a batch of PDE instances so that neighbours are similar (`sort_greedy`, `sort_fft`,
`sort_features`), split the order into chains (`split_chains`), and solve each chain with
GCRO-DR carrying the recycle space from one system to the next (`solve_chain`,
`solve_sequence`). Families (`darcy_family`, `poisson_family`, `heat_family`,
`helmholtz_family`; by name in `FAMILIES`) map one parameter array to its linear system.
"""

from ._dataset import (
    Dataset as Dataset,
    GenerationReport as GenerationReport,
    finalize_dataset as finalize_dataset,
    generate_dataset as generate_dataset,
    load_dataset as load_dataset,
)
from ._families import (
    FAMILIES as FAMILIES,
    AbstractFamily as AbstractFamily,
    DarcyFamily as DarcyFamily,
    HeatFamily as HeatFamily,
    HelmholtzFamily as HelmholtzFamily,
    PoissonFamily as PoissonFamily,
    ShiftedOperator as ShiftedOperator,
    darcy_family as darcy_family,
    heat_family as heat_family,
    helmholtz_family as helmholtz_family,
    poisson_family as poisson_family,
)
from ._sequence import (
    ChainResult as ChainResult,
    DatagenResult as DatagenResult,
    default_rtol as default_rtol,
    solve_chain as solve_chain,
    solve_sequence as solve_sequence,
    sort_order as sort_order,
)
from ._sorting import (
    Chains as Chains,
    fft_features as fft_features,
    sort_features as sort_features,
    sort_fft as sort_fft,
    sort_greedy as sort_greedy,
    split_chains as split_chains,
)
