"""The compiled steps: options from the config, and KL warm-up reaching
Algorithm 1's assignment."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from evae_jax import errors
from evae_jax import objectives
from evae_jax import state as state_lib
from evae_jax import steps


def test_step_options_carry_the_objective_and_the_remedies():
  config = test_config.get_config()
  config.train.objective = 'logsumexp'
  config.train.free_bits = 0.25
  config.train.free_bits_group = 2
  config.train.kl_warmup_steps = 100
  config.train.kl_warmup_start = 0.1
  options = steps.StepOptions.from_config(config)
  assert (options.objective, options.free_bits, options.free_bits_group,
          options.kl_warmup_steps, options.kl_warmup_start) == (
              'logsumexp', 0.25, 2, 100, 0.1)
  hash(options)  # a static argument of the compiled steps


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
    steps.train_step(state, x, jax.random.PRNGKey(1), objective='iwae',
                     num_samples=2, kl_warmup_steps=10)
