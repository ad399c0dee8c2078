"""evae_jax/state/: the initial train state (shapes, optimizer, the
schedule's steps per epoch), what a checkpoint holds and its round trip,
and the models one config trains.

Restoring checkpoints written by earlier versions is in
tests/test_checkpoints.py; several members trained end to end in
tests/test_api.py and tests/test_scale.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from evae_jax.storage import checkpoints
from evae_jax import configuration
from evae_jax.state import schedules
from evae_jax import state as state_lib

PIXELS = 12


def _config(**train):
  config = test_config.get_config()
  config.model.hidden_dim = 5
  config.train.update(train)
  return config


@pytest.mark.parametrize('kind,num_epitomes,latent_dim', [('evae', 3, 6),
                                                          ('vae', 1, 6)])
def test_create_train_state_shapes(kind, num_epitomes, latent_dim):
  config = _config()
  config.model.kind = kind
  state = state_lib.create_train_state(config, PIXELS, jax.random.PRNGKey(0))
  assert int(state.step) == 0
  assert state.model.masks.shape == (num_epitomes, latent_dim)
  shapes = jax.tree_util.tree_map(jnp.shape, state.params)
  assert shapes['encoder']['Dense_0']['kernel'] == (PIXELS, 5)
  assert shapes['mu_head']['kernel'] == (5, latent_dim)
  assert shapes['logvar_head']['kernel'] == (5, latent_dim)
  assert shapes['decoder']['Dense_0']['kernel'] == (latent_dim, 5)
  assert shapes['out_head']['kernel'] == (5, PIXELS)
  # Adam's moments mirror the parameters and start at zero.
  adam = state.opt_state[0]
  assert jax.tree_util.tree_structure(adam.mu) == \
      jax.tree_util.tree_structure(state.params)
  assert all(not np.any(m) for m in jax.tree_util.tree_leaves(adam.nu))
  # Its leaves are the arrays only (step, params, opt_state), the model and
  # optimizer static: what checkpoints, vmap and sharding rely on.
  leaves = jax.tree_util.tree_leaves(state)
  want = jax.tree_util.tree_leaves((state.step, state.params,
                                    state.opt_state))
  assert len(leaves) == len(want)
  assert all(a is b for a, b in zip(leaves, want))


def test_the_key_decides_the_parameters():
  config = _config()
  a = state_lib.create_train_state(config, PIXELS, jax.random.PRNGKey(1))
  b = state_lib.create_train_state(config, PIXELS, jax.random.PRNGKey(1))
  c = state_lib.create_train_state(config, PIXELS, jax.random.PRNGKey(2))
  jax.tree_util.tree_map(np.testing.assert_array_equal, a.params, b.params)
  kernels = [s.params['encoder']['Dense_0']['kernel'] for s in (a, c)]
  assert not np.allclose(*kernels)


def test_the_schedule_counts_epochs_of_steps_per_epoch():
  """Adam under a constant gradient moves each parameter by the learning
  rate of the step (m-hat / sqrt(v-hat) = 1): Burda's stage 1 starts after
  1 epoch (2 steps) and stage 2 after 1 + 3 epochs (8 steps)."""
  config = _config(schedule='burda', learning_rate=1e-3)
  state = state_lib.create_train_state(config, PIXELS, jax.random.PRNGKey(0),
                                       steps_per_epoch=2)
  ones = jax.tree_util.tree_map(jnp.ones_like, state.params)
  bias = [float(state.params['out_head']['bias'][0])]
  update = jax.jit(lambda state: state.apply_gradients(grads=ones))
  for _ in range(9):
    state = update(state)
    bias.append(float(state.params['out_head']['bias'][0]))
  moves = -np.diff(bias)
  want = [schedules.burda_stage_rate(1e-3, i) for i in [0] * 2 + [1] * 6 + [2]]
  np.testing.assert_allclose(moves, want, rtol=1e-4)
  assert int(state.step) == 9


def test_burda_adam_state_is_built_from_the_config():
  config = _config(optimizer='burda_adam')
  state = state_lib.create_train_state(config, PIXELS, jax.random.PRNGKey(0))
  nu = jax.tree_util.tree_leaves(state.opt_state[0].nu)
  assert nu and all(np.all(np.asarray(v) == 1.0) for v in nu)


def test_state_tree_holds_what_a_checkpoint_needs():
  state = state_lib.create_train_state(_config(), PIXELS,
                                       jax.random.PRNGKey(0))
  tree = state_lib.state_tree(state)
  assert set(tree) == {'params', 'opt_state', 'step'}
  assert tree['step'].dtype == jnp.int32 and tree['params'] is state.params
  assignments = jnp.arange(4, dtype=jnp.int32)
  tree = state_lib.state_tree(state, assignments)
  assert set(tree) == {'params', 'opt_state', 'step', 'assignments'}
  assert tree['assignments'] is assignments


def test_restore_round_trip_and_max_step(tmp_path):
  config = _config()
  fresh = state_lib.create_train_state(config, PIXELS, jax.random.PRNGKey(0))
  ckpts = checkpoints.Checkpoints(str(tmp_path), keep=3)
  try:
    state, assignments, step = state_lib.restore(ckpts, fresh, num_train=7)
    assert step is None and state is fresh
    np.testing.assert_array_equal(assignments, np.full(7, -1))
    assert assignments.dtype == jnp.int32

    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 0.3),
                                   fresh.params)
    saved = {}
    for target in (1, 2):
      trained = fresh
      for _ in range(target):
        trained = trained.apply_gradients(grads=grads)
      labels = jnp.arange(7, dtype=jnp.int32) % 3 + target - 1
      ckpts.save(target, state_lib.state_tree(trained, labels))
      saved[target] = (trained, labels)

    for max_step, want in ((None, 2), (1, 1)):
      state, assignments, step = state_lib.restore(ckpts, fresh, 7, max_step)
      trained, labels = saved[want]
      assert step == want and int(state.step) == want
      np.testing.assert_array_equal(assignments, labels)
      jax.tree_util.tree_map(np.testing.assert_array_equal,
                             (state.params, state.opt_state),
                             (trained.params, trained.opt_state))
      assert state.model is fresh.model and state.tx is fresh.tx
  finally:
    ckpts.close()


def test_a_single_model_trains_in_the_workdir_itself():
  config = _config()
  assert state_lib.members(config) == [('', config)]
  config.train.kl_weights = (0.5,)  # one weight, one seed: still one model
  [(name, member)] = state_lib.members(config)
  assert name == ''


def test_members_are_seeds_times_kl_weights():
  config = _config(num_seeds=2, kl_weights=(0.5, 2.0))
  config.seed = 10
  before = config.to_dict()
  team = state_lib.members(config)
  assert [name for name, _ in team] == [
      'seed=10,kl_weight=0.5', 'seed=10,kl_weight=2',
      'seed=11,kl_weight=0.5', 'seed=11,kl_weight=2']
  assert [(m.seed, m.train.kl_weight) for _, m in team] == [
      (10, 0.5), (10, 2.0), (11, 0.5), (11, 2.0)]
  for _, member in team:
    # Each member is a single-model config of its own that validates.
    assert member.train.num_seeds == 1 and tuple(member.train.kl_weights) == ()
    assert member.model.to_dict() == config.model.to_dict()
    configuration.validate(member)
  assert len({id(m) for _, m in team}) == 4
  assert config.to_dict() == before  # the caller's config is untouched


def test_members_over_seeds_alone_are_named_by_seed():
  config = _config(num_seeds=3, kl_weight=0.25)
  team = state_lib.members(config)
  assert [name for name, _ in team] == ['seed=0', 'seed=1', 'seed=2']
  assert all(m.train.kl_weight == 0.25 for _, m in team)
