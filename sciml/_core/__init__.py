"""Shared private machinery: solutions, result codes, dtype policy, sharding, I/O, progress."""

from ._metrics import (
    OutputExistsError as OutputExistsError,
    atomic_write_bytes as atomic_write_bytes,
    atomic_write_text as atomic_write_text,
    environment as environment,
    prepare_output_dir as prepare_output_dir,
    write_json as write_json,
    write_metrics as write_metrics,
)
from ._plotting import convergence_plot as convergence_plot
from ._policy import (
    check_dtype as check_dtype,
    check_size as check_size,
    check_tolerances as check_tolerances,
    dtype_resolution as dtype_resolution,
    float_dtype_of as float_dtype_of,
    is_concrete as is_concrete,
    tol_for as tol_for,
    x64_enabled as x64_enabled,
)
from ._progress import (
    progress_bar as progress_bar,
    progress_enabled as progress_enabled,
    scan_with_progress as scan_with_progress,
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
