"""Multi-process dataset generation: start `jax.distributed`, split the chains, merge the index.

Each process of a multi-host job generates its own contiguous share of the chains (see
`generate_dataset(process_index=..., process_count=...)`) into a directory that all processes
see (a shared file system), writing its chunks and a partial index; after a barrier, process 0
merges the partial indices into `meta.json` and writes `dataset.npz`. No array crosses
processes: the chains are independent, so the only communication is the barrier.
"""

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import jax

from ._dataset import GenerationReport, finalize_dataset, generate_dataset

# Environment variables read when the arguments are not given (the flags of `sciml datagen`).
ENV_COORDINATOR = "SCIML_COORDINATOR"
ENV_NUM_PROCESSES = "SCIML_NUM_PROCESSES"
ENV_PROCESS_ID = "SCIML_PROCESS_ID"
BARRIER_TIMEOUT_MS = 24 * 3600 * 1000  # generation may take hours; a dead peer ends the job


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> tuple[int, int]:
    """Call `jax.distributed.initialize` (before any JAX computation in this process).

    Arguments left `None` come from `SCIML_COORDINATOR`, `SCIML_NUM_PROCESSES` and
    `SCIML_PROCESS_ID`, and otherwise from JAX's cluster detection (Slurm, Open MPI, TPU pods).

    Args:
        coordinator: "host:port" of process 0's coordinator service (e.g. "127.0.0.1:12345").
        num_processes: the number of processes.
        process_id: this process's index in [0, num_processes).

    Returns:
        `(jax.process_index(), jax.process_count())`.
    """
    coordinator = coordinator or os.environ.get(ENV_COORDINATOR) or None
    if num_processes is None and os.environ.get(ENV_NUM_PROCESSES):
        num_processes = int(os.environ[ENV_NUM_PROCESSES])
    if process_id is None and os.environ.get(ENV_PROCESS_ID):
        process_id = int(os.environ[ENV_PROCESS_ID])
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )
    return jax.process_index(), jax.process_count()


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier `name` (no-op in a single process).

    Uses the coordination service of `jax.distributed` (no device collective), so it works on
    CPU-only jobs as well.
    """
    if jax.process_count() == 1:
        return
    from jax._src import distributed  # the client has no public accessor

    client = distributed.global_state.client
    if client is None:  # pragma: no cover - process_count > 1 implies a client
        raise RuntimeError("jax.distributed is not initialised; call initialize() first.")
    client.wait_at_barrier(name, BARRIER_TIMEOUT_MS)


def generate_distributed(
    out: str | os.PathLike, family: str, **options: Mapping[str, Any]
) -> GenerationReport:
    """`generate_dataset` as one process of an initialised `jax.distributed` job.

    Every process calls this with the same arguments; each generates its share of the chains,
    and process 0 merges the index and writes `dataset.npz` once all have finished.

    Returns:
        This process's `GenerationReport` (`merged` is True on process 0).
    """
    index, count = jax.process_index(), jax.process_count()
    tag = os.fspath(out)
    report = generate_dataset(
        out,
        family,
        process_index=index,
        process_count=count,
        merge=False,
        barrier=lambda: barrier(f"sciml-datagen-start:{tag}"),
        **options,
    )
    barrier(f"sciml-datagen-done:{tag}")
    if index == 0:
        finalize_dataset(out, hdf5=options.get("hdf5"))
        report = dataclasses.replace(report, merged=True)
    barrier(f"sciml-datagen-merged:{tag}")
    return report
