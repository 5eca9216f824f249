"""Shared private machinery: solutions, result codes, dtype policy, sharding, I/O, progress."""

from ._policy import (
    check_dtype as check_dtype,
    check_tolerances as check_tolerances,
    dtype_resolution as dtype_resolution,
    float_dtype_of as float_dtype_of,
    tol_for as tol_for,
    x64_enabled as x64_enabled,
)
from ._results import RESULTS as RESULTS
from ._sharding import (
    make_mesh as make_mesh,
    replicate as replicate,
    shard_batch as shard_batch,
)
from ._solution import Solution as Solution
from ._timing import (
    Timing as Timing,
    time_call as time_call,
    time_jitted as time_jitted,
    time_jitted_interleaved as time_jitted_interleaved,
)
