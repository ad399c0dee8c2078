"""evae_jax.runtime.sharding in one process (two processes: test_multiprocess.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from evae_jax.runtime import sharding
from evae_jax.errors import ConfigError


def test_mesh_over_all_or_some_devices():
  assert sharding.make_mesh().size == len(jax.devices())
  assert sharding.make_mesh(1).size == 1
  with pytest.raises(ConfigError, match='num_devices=0'):
    sharding.make_mesh(len(jax.devices()) + 1)


def test_replicate_puts_every_leaf_on_every_device_of_the_mesh():
  mesh = sharding.make_mesh()
  tree = {'a': np.arange(6.0).reshape(2, 3), 'b': jnp.ones(4, jnp.int32)}
  placed = sharding.replicate(tree, mesh)
  for key in tree:
    assert placed[key].sharding.is_fully_replicated
    assert set(placed[key].sharding.device_set) == set(mesh.devices.flat)
    np.testing.assert_array_equal(placed[key], tree[key])


def test_shard_batch_is_the_identity_on_one_device():
  x = jnp.arange(8.0).reshape(4, 2)
  assert sharding.shard_batch(x, sharding.make_mesh(1)) is x
  assert sharding.shard_batch(x, None) is x


def test_single_process_helpers():
  assert sharding.is_lead()
  tree = {'x': jnp.arange(3)}
  assert sharding.local_copy(tree)['x'] is tree['x']  # already addressable
  host = sharding.to_host(tree)
  assert isinstance(host['x'], np.ndarray)
  np.testing.assert_array_equal(host['x'], [0, 1, 2])
  assert sharding.any_process(True) and not sharding.any_process(False)
  sharding.barrier('alone')  # returns at once
