"""Neural operators and their training data.

`datagen`: fast generation of PDE solution datasets by sorted Krylov recycling (SKR).
"""

from . import datagen as datagen
