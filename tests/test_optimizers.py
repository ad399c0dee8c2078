"""evae_jax/state/optimizers.py: each optimizer the config names, built from the
config's b1, b2 and eps and the given schedule, against float64
transcriptions of its update; a name the module does not know is refused.

Burda et al.'s Adam on a scalar with their b1 and eps, and that it is not
optax's Adam, is in tests/test_protocol.py.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from evae_jax import errors
from evae_jax import configuration
from evae_jax.configuration import defaults
from evae_jax.state import optimizers

B1, B2, EPS = 0.8, 0.95, 1e-3  # far from every default, to see them used
GRADS = np.random.RandomState(0).randn(6, 3) * [1.0, 0.01, 5.0]
RATES = [1e-2, 1e-2, 1e-2, 4e-3, 4e-3, 4e-3]
SCHEDULE = optax.join_schedules(
    [optax.constant_schedule(1e-2), optax.constant_schedule(4e-3)], [3])


def _train(name):
  return ml_collections.ConfigDict(dict(optimizer=name, adam_b1=B1,
                                        adam_b2=B2, adam_eps=EPS))


def _kingma_ba(grads, rates):
  """Adam of Kingma and Ba, float64: eps added to sqrt(v-hat)."""
  param, m, v, out = 0.0, 0.0, 0.0, []
  for t, (g, lr) in enumerate(zip(grads, rates), start=1):
    m = B1 * m + (1 - B1) * g
    v = B2 * v + (1 - B2) * g * g
    param = param - lr * (m / (1 - B1 ** t)) / (np.sqrt(v / (1 - B2 ** t))
                                                 + EPS)
    out.append(param)
  return np.array(out)


def _burda(grads, rates):
  """Burda et al.'s Adam, float64: v_0 = 1, the step from the moments
  before this gradient, eps added to sqrt(v)."""
  param, m, v, out = 0.0, 0.0, 1.0, []
  for t, (g, lr) in enumerate(zip(grads, rates), start=1):
    scale = lr * np.sqrt(1 - B2 ** t) / (1 - B1 ** t)
    param = param - scale * m / (np.sqrt(v) + EPS)
    m, v = B1 * m + (1 - B1) * g, B2 * v + (1 - B2) * g * g
    out.append(param)
  return np.array(out)


def _run(tx, params):
  """The parameters after each update of GRADS, the tree {'a': (3,) , 'b':
  (3,)} with 'b' receiving twice the gradient of 'a'."""
  state = tx.init(params)
  update = jax.jit(tx.update)
  out = []
  for g in GRADS:
    grads = {'a': jnp.float32(g), 'b': jnp.float32(2 * g)}
    updates, state = update(grads, state, params)
    params = optax.apply_updates(params, updates)
    out.append(params)
  return out


@pytest.mark.parametrize('name,reference', [('adam', _kingma_ba),
                                            ('burda_adam', _burda)])
def test_each_optimizer_is_its_update_with_the_configs_constants(name,
                                                                 reference):
  tx = optimizers.make_optimizer(_train(name), SCHEDULE)
  zeros = jnp.zeros(3, jnp.float32)
  got = _run(tx, {'a': zeros, 'b': zeros})
  for leaf, factor in (('a', 1.0), ('b', 2.0)):
    want = np.stack([reference(GRADS[:, i] * factor, RATES)
                     for i in range(3)], axis=1)
    np.testing.assert_allclose(np.stack([p[leaf] for p in got]), want,
                               rtol=2e-4, atol=1e-8)


def test_the_two_optimizers_differ():
  """burda_adam's first step moves nothing (m_0 = 0); Adam's moves every
  coordinate by about the learning rate."""
  zeros = {'a': jnp.zeros(3), 'b': jnp.zeros(3)}
  adam = _run(optimizers.make_optimizer(_train('adam'), SCHEDULE), zeros)
  burda = _run(optimizers.make_optimizer(_train('burda_adam'), SCHEDULE),
               zeros)
  np.testing.assert_array_equal(burda[0]['a'], 0.0)
  assert np.all(np.abs(adam[0]['a']) > 0.5e-2)


def test_burda_adam_state_starts_at_zero_mean_and_unit_second_moment():
  params = {'w': jnp.ones((2, 3)), 'b': jnp.ones(4, jnp.float32)}
  state = optimizers.scale_by_burda_adam().init(params)
  assert int(state.count) == 0 and state.count.dtype == jnp.int32
  for leaf in ('w', 'b'):
    np.testing.assert_array_equal(state.mu[leaf], np.zeros_like(params[leaf]))
    np.testing.assert_array_equal(state.nu[leaf], np.ones_like(params[leaf]))


def test_every_listed_optimizer_validates_and_others_are_refused():
  config = defaults.get_config()
  for name in optimizers.OPTIMIZERS:
    config.train.optimizer = name
    configuration.validate(config)
  config.train.optimizer = 'sgd'
  with pytest.raises(errors.ConfigError, match='train.optimizer'):
    configuration.validate(config)


def test_make_optimizer_refuses_a_name_it_does_not_know():
  with pytest.raises(ValueError, match='sgd'):
    optimizers.make_optimizer(_train('sgd'), SCHEDULE)
