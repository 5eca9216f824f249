"""sciml: a JAX toolkit for scientific machine learning.

Importing `sciml` imports no subpackage: use `from sciml.solvers import cg` and friends.
"""

__version__ = "0.1.0"
