"""Data parallelism: one mesh over all devices, batch on the 'data' axis.

Parameters, optimizer state and the uint8 dataset are replicated; each
step's batch is split across devices and XLA inserts the gradient all-reduce.
The same code runs on one CPU, 8 TPU cores, or a multi-host pod (call
`initialize_distributed` first there; every host then loads the same data).
"""

from typing import Optional

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from evae_jax import configuration

DATA_AXIS = 'data'


def initialize_distributed() -> None:
  """Connects the processes of a multi-host run (TPU pods: no arguments)."""
  jax.distributed.initialize()


def make_mesh(num_devices: int = 0) -> Mesh:
  """A 1-d mesh over the first ``num_devices`` devices (0 = all of them)."""
  devices = jax.devices()
  if num_devices:
    if num_devices > len(devices):
      raise configuration.ConfigError(
          f'train.num_devices={num_devices} but only {len(devices)} devices '
          f'are visible; use --config.train.num_devices=0 (all of them).')
    devices = devices[:num_devices]
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicate(tree, mesh: Mesh):
  """Places every leaf (host or device array) on all devices of the mesh."""
  sharding = NamedSharding(mesh, P())
  def put(leaf):
    leaf = np.asarray(leaf)
    return jax.make_array_from_callback(leaf.shape, sharding,
                                        lambda index: leaf[index])
  return jax.tree_util.tree_map(put, tree)


def shard_batch(x: jax.Array, mesh: Optional[Mesh]) -> jax.Array:
  """Constrains the leading (batch) axis of x to be split over 'data'."""
  if mesh is None or mesh.size == 1:
    return x
  spec = P(DATA_AXIS, *([None] * (x.ndim - 1)))
  return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))
