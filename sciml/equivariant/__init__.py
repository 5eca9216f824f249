"""E(3)-equivariant operations: irreps, spherical harmonics, Wigner D, Clebsch–Gordan and Gaunt
coefficients, and three tensor products (Clebsch–Gordan, Gaunt on a spherical grid, Gaunt in a 2D
Fourier basis), in e3nn-jax's conventions (arrays interchange with `IrrepsArray.array`)."""

from ._cg import (
    clebsch_gordan as clebsch_gordan,
    gaunt_coefficients as gaunt_coefficients,
    gaunt_factor as gaunt_factor,
    wigner_3j_000 as wigner_3j_000,
)
from ._gaunt import (
    gaunt_path_factor as gaunt_path_factor,
    gaunt_power as gaunt_power,
    gaunt_powers as gaunt_powers,
    gaunt_tensor_product as gaunt_tensor_product,
    gaunt_tensor_product_all_parities as gaunt_tensor_product_all_parities,
)
from ._irreps import Irrep as Irrep, Irreps as Irreps, s2_irreps as s2_irreps
from ._layers import (
    FullyConnectedTensorProduct as FullyConnectedTensorProduct,
    Gate as Gate,
    GauntTensorProduct as GauntTensorProduct,
    Linear as Linear,
    MessagePassingNetwork as MessagePassingNetwork,
    SphericalHarmonicEdgeEmbedding as SphericalHarmonicEdgeEmbedding,
)
from ._s2grid import (
    from_s2grid as from_s2grid,
    s2grid as s2grid,
    s2grid_resolution as s2grid_resolution,
    to_s2grid as to_s2grid,
)
from ._sh import MAX_DEGREE as MAX_DEGREE, spherical_harmonics as spherical_harmonics
from ._tensor_product import (
    TensorProductPath as TensorProductPath,
    cg_paths as cg_paths,
    cg_tensor_product as cg_tensor_product,
)
from ._tetris import (
    TETRIS_NAMES as TETRIS_NAMES,
    tetris as tetris,
    tetris_accuracy as tetris_accuracy,
    tetris_logits as tetris_logits,
    tetris_model as tetris_model,
    train_tetris as train_tetris,
)
from ._wigner import (
    angles_to_matrix as angles_to_matrix,
    irreps_D as irreps_D,
    random_rotation as random_rotation,
    wigner_D as wigner_D,
    wigner_D_from_angles as wigner_D_from_angles,
)
