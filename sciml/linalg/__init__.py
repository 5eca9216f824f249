"""Linear operators: matrix-free grid stencils; dense, sparse and callable wrappers."""

from ._base import (
    AbstractOperator as AbstractOperator,
    FunctionOperator as FunctionOperator,
    MatrixOperator as MatrixOperator,
    SparseOperator as SparseOperator,
    as_operator as as_operator,
)
from ._nullspace import (
    fluid_components as fluid_components,
    project_to_range as project_to_range,
)
from ._stencil import (
    EMPTY as EMPTY,
    FLUID as FLUID,
    SOLID as SOLID,
    AbstractStencilOperator as AbstractStencilOperator,
    ConvectionDiffusion as ConvectionDiffusion,
    Diffusion as Diffusion,
    Laplacian as Laplacian,
    convection_diffusion as convection_diffusion,
    diffusion as diffusion,
    helmholtz as helmholtz,
    poisson as poisson,
)
