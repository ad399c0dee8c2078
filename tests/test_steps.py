"""The compiled steps: one static options object from the config, and KL
warm-up reaching Algorithm 1's assignment."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from evae_jax import errors
from evae_jax import objectives
from evae_jax import state as state_lib
from evae_jax.train import steps


def test_step_options_carry_the_objective_and_the_remedies():
  config = test_config.get_config()
  config.train.objective = 'logsumexp'
  config.train.free_bits = 0.25
  config.train.free_bits_group = 2
  config.train.kl_warmup_steps = 100
  config.train.kl_warmup_start = 0.1
  config.train.z_dropout_rate = 0.125
  options = steps.StepOptions.from_config(config)
  assert (options.objective, options.kl_warmup_steps,
          options.kl_warmup_start) == ('logsumexp', 100, 0.1)
  assert options.loss == objectives.LossSettings(
      z_dropout_rate=0.125, num_samples=1, free_bits=0.25, free_bits_group=2)
  hash(options)  # a static argument of the compiled steps


def test_loss_options_are_loss_settings_plus_the_traced_values():
  """The static settings are declared once (`LossSettings`): the options an
  objective receives have exactly its fields besides the traced two, with
  the same defaults, and every one is a ``config.train`` field."""
  settings = objectives.LossSettings._fields
  assert objectives.LossOptions._fields == (
      ('kl_weight', 'assignments') + settings)
  default = objectives.LossOptions()
  assert default.settings == objectives.LossSettings()
  assert (default.kl_weight, default.assignments) == (1.0, None)
  assert set(settings) <= set(test_config.get_config().train.keys())
  given = objectives.LossOptions(kl_weight=0.5, num_samples=5, free_bits=0.5)
  assert given.settings == objectives.LossSettings(num_samples=5,
                                                   free_bits=0.5)


def test_algorithm_1_assigns_with_the_warmed_up_kl_weight():
  """At step 0 of a warm-up from 0, y* maximises the log-likelihood alone
  (the assignment of weight 0), not the KL-dominated objective of the large
  weight it warms up to."""
  config = test_config.get_config()
  state = state_lib.create_train_state(config, 64, jax.random.PRNGKey(0))
  states = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], state)
  images = jnp.asarray(np.random.RandomState(0).randint(0, 256, (50, 64)),
                       jnp.uint8)
  rngs = jax.random.PRNGKey(1)[None]
  base = steps.StepOptions(batch_size=25, per_epoch_assignment=True)
  warm = steps.StepOptions(batch_size=25, per_epoch_assignment=True,
                           kl_warmup_steps=10)
  weight = jnp.full((1,), 4000.0)
  got = steps.assign_dataset(states, images, rngs, weight, 0, options=warm)
  want = steps.assign_dataset(states, images, rngs, 0 * weight, 0,
                              options=base)
  plain = steps.assign_dataset(states, images, rngs, weight, 0, options=base)
  np.testing.assert_array_equal(got, want)
  assert not np.array_equal(got, plain)  # the weight matters here


def test_warming_up_an_objective_without_a_kl_term_raises():
  config = test_config.get_config()
  state = state_lib.create_train_state(config, 64, jax.random.PRNGKey(0))
  x = jnp.zeros((4, 64))
  with pytest.raises(errors.ObjectiveError, match='no KL term'):
    steps.train_step(state, x, jax.random.PRNGKey(1),
                     options=steps.StepOptions(
                         objective='iwae', kl_warmup_steps=10,
                         loss=objectives.LossSettings(num_samples=2)))


def test_step_options_are_frozen_and_equal_configs_give_equal_options():
  options = steps.StepOptions.from_config(test_config.get_config())
  again = steps.StepOptions.from_config(test_config.get_config())
  assert options == again and hash(options) == hash(again)
  with pytest.raises(dataclasses.FrozenInstanceError):
    options.kl_warmup_steps = 5
  assert steps.StepOptions().objective == 'point'  # library defaults


def test_options_select_the_compiled_step_and_equal_options_reuse_it():
  """The options object is the step's static argument: equal options (built
  separately) hit jit's cache, a changed field compiles a new program that
  computes something else, and the defaults are ``StepOptions()``."""
  config = test_config.get_config()
  state = state_lib.create_train_state(config, 64, jax.random.PRNGKey(0))
  x = (jax.random.uniform(jax.random.PRNGKey(1), (8, 64)) > 0.5).astype(
      jnp.float32)
  rng = jax.random.PRNGKey(2)

  def loss(objective='point', **settings):
    options = steps.StepOptions(objective=objective,
                                loss=objectives.LossSettings(**settings))
    return float(steps.train_step(state, x, rng, 0.5, options=options)[1]['loss'])

  # free_bits_group=3: options no other test compiles, so the cache counts
  # below are this test's own.
  base = loss(free_bits_group=3)
  compiled = steps.train_step._cache_size()  # pylint: disable=protected-access
  assert loss(free_bits_group=3) == base
  assert steps.train_step._cache_size() == compiled  # pylint: disable=protected-access
  assert loss(free_bits=0.375, free_bits_group=3) != base
  assert loss(objective='logsumexp', free_bits_group=3) != base
  assert steps.train_step._cache_size() == compiled + 2  # pylint: disable=protected-access
  default = steps.train_step(state, x, rng, 0.5)[1]['loss']
  assert float(default) == loss()
