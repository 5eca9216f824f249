"""Neural operators and their training data.

`datagen`: fast generation of PDE solution datasets by sorted Krylov recycling (SKR).
`FNO`, `train_fno`, `relative_l2`: a small 2-D Fourier Neural Operator to train on them.
"""

from . import datagen as datagen
from ._fno import (
    FNO as FNO,
    SpectralConv2d as SpectralConv2d,
    mean_relative_l2 as mean_relative_l2,
    relative_l2 as relative_l2,
    train_fno as train_fno,
)
