"""Helpers for data parallelism over independent problems.

JAX is the distributed engine: a `Mesh` over the local (or, after
`jax.distributed.initialize()`, global) devices, `NamedSharding` to split a batch axis, and jit's
computation-follows-data. Code that runs sharded must use `throw=False` and check result codes on
the host: an error raised inside a sharded computation aborts the whole process on current JAX.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree


def make_mesh(num_devices: int | None = None, axis_name: str = "batch") -> Mesh:
    """A one-axis mesh over the first `num_devices` devices (all of them by default).

    Raises:
        ValueError: if more devices are asked for than exist.
    """
    devices = jax.devices()
    if num_devices is None:
        num_devices = len(devices)
    if not 1 <= num_devices <= len(devices):
        raise ValueError(
            f"asked for {num_devices} devices but {len(devices)} are available. On CPU, simulate "
            f"more with XLA_FLAGS=--xla_force_host_platform_device_count=N (set before JAX starts)."
        )
    return Mesh(np.asarray(devices[:num_devices]), (axis_name,))


def shard_batch(tree: PyTree, mesh: Mesh, axis_name: str | None = None) -> PyTree:
    """Place every array of `tree` on `mesh`, split along its leading (batch) axis.

    Raises:
        ValueError: if a leading axis does not divide evenly over the mesh.
    """
    axis_name = axis_name or mesh.axis_names[0]
    size = mesh.shape[axis_name]

    def put(x):
        if np.ndim(x) == 0 or x.shape[0] % size:
            raise ValueError(
                f"cannot shard an array of shape {np.shape(x)} over {size} devices: its leading "
                f"(batch) axis must be a multiple of {size}. Pad the batch or use fewer devices."
            )
        return jax.device_put(x, NamedSharding(mesh, PartitionSpec(axis_name)))

    return jax.tree.map(put, tree)


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Place a full copy of every array of `tree` on each device of `mesh`."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda x: jax.device_put(x, sharding), tree)
