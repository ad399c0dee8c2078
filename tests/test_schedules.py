"""evae_jax/state/schedules.py: run length, learning rates, KL warm-up and the
order of an epoch, against closed forms and their documented contracts.

Also tested elsewhere: the 8-stage Burda schedule at steps_per_epoch=10
and Algorithm 1's aligned minibatches of 100 (tests/test_baselines.py),
kl_warmup_factor's values against numpy (tests/test_remedies.py).
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from evae_jax.state import schedules


def _train(**fields):
  config = ml_collections.ConfigDict(dict(
      schedule='constant', num_epochs=7, learning_rate=1e-3, burda_stages=8))
  config.update(fields)
  return config


@pytest.mark.parametrize('stages', [1, 2, 5, 8])
def test_burda_total_epochs_is_the_geometric_sum(stages):
  config = _train(schedule='burda', burda_stages=stages, num_epochs=7)
  # sum_{i<S} 3^i = (3^S - 1) / 2, whatever num_epochs says.
  assert schedules.total_epochs(config) == (3 ** stages - 1) // 2
  assert schedules.total_epochs(_train(num_epochs=13)) == 13


def test_burda_stage_rate_is_their_rounded_formula():
  # Burda et al.'s code: base * round(10^(1 - i/7), 1) / 10.
  for base in (1e-3, 3e-4):
    for stage, digits in enumerate([10, 7.2, 5.2, 3.7, 2.7, 1.9, 1.4, 1.0]):
      got = schedules.burda_stage_rate(base, stage)
      np.testing.assert_allclose(got, base * digits / 10, rtol=1e-12)
      # ... which is the paper's unrounded base * 10^(-i/7) to within 3%.
      np.testing.assert_allclose(got, base * 10 ** (-stage / 7), rtol=0.03)


@pytest.mark.parametrize('steps_per_epoch,stages', [(7, 4), (1, 3)])
def test_burda_rates_switch_exactly_at_the_stage_boundaries(steps_per_epoch,
                                                            stages):
  config = _train(schedule='burda', burda_stages=stages, learning_rate=2e-3)
  lr = schedules.learning_rate(config, steps_per_epoch)
  rates = [schedules.burda_stage_rate(2e-3, i) for i in range(stages)]
  # Stage i starts after sum_{j<i} 3^j = (3^i - 1) / 2 epochs.
  starts = [(3 ** i - 1) // 2 * steps_per_epoch for i in range(stages)]
  end = schedules.total_epochs(config) * steps_per_epoch
  for i, start in enumerate(starts):
    np.testing.assert_allclose(lr(start), rates[i], rtol=1e-6)
    last = (starts[i + 1] if i + 1 < stages else end) - 1
    np.testing.assert_allclose(lr(last), rates[i], rtol=1e-6)
  # The last rate holds past the end (a continued run), and under jit.
  np.testing.assert_allclose(lr(end + 1000), rates[-1], rtol=1e-6)
  np.testing.assert_allclose(jax.jit(lr)(jnp.int32(starts[-1])), rates[-1],
                             rtol=1e-6)


def test_constant_schedule_is_the_learning_rate_at_every_step():
  lr = schedules.learning_rate(_train(learning_rate=3e-4), steps_per_epoch=5)
  for step in (0, 1, 4, 5, 10 ** 6):
    np.testing.assert_allclose(lr(step), 3e-4, rtol=1e-6)


def test_kl_warmup_endpoints_monotone_and_traced():
  steps = jnp.arange(0, 30)
  factors = np.asarray(jax.jit(jax.vmap(
      lambda t: schedules.kl_warmup_factor(t, 20, 0.1)))(steps))
  assert factors.dtype == np.float32
  np.testing.assert_allclose(factors[0], 0.1, rtol=1e-6)  # start at step 0
  np.testing.assert_allclose(factors[20:], 1.0, rtol=1e-6)  # 1 from N on
  assert np.all(factors[:20] < 1.0)
  assert np.all(np.diff(factors) >= 0) and np.all(np.diff(factors[:21]) > 0)
  assert 0.1 <= factors.min() and factors.max() <= 1.0


@pytest.mark.parametrize('n', [1, 2, 97])
def test_permutation_is_a_stable_permutation(n):
  key = jax.random.PRNGKey(4)
  order = np.asarray(schedules.permutation(key, n))
  assert sorted(order.tolist()) == list(range(n))
  np.testing.assert_array_equal(order, schedules.permutation(key, n))
  if n > 2:
    assert order.tolist() != list(range(n))
    assert not np.array_equal(
        order, schedules.permutation(jax.random.PRNGKey(5), n))


_STRATIFIED = jax.jit(schedules.stratified_order, static_argnums=2)


def _stratified(seed, counts, num_epitomes=None):
  assignments = np.repeat(np.arange(len(counts)), counts)
  assignments = np.random.RandomState(seed).permutation(assignments)
  order = _STRATIFIED(jax.random.PRNGKey(seed),
                      jnp.asarray(assignments, jnp.int32),
                      num_epitomes or len(counts))
  return assignments, np.asarray(order), order.dtype


def test_stratified_order_is_an_int32_permutation_even_with_empty_epitomes():
  # Epitomes 1 and 4 explain no example (num_epitomes > the largest id too).
  assignments, order, dtype = _stratified(0, [40, 0, 25, 35], num_epitomes=5)
  assert dtype == jnp.int32
  assert sorted(order.tolist()) == list(range(100))
  assignments, order, _ = _stratified(1, [100])  # a single epitome
  assert sorted(order.tolist()) == list(range(100))


def test_every_window_of_b_examples_is_proportionate():
  """The docstring's promise is for *every* window of B consecutive
  examples, not only the aligned minibatches: at most 2 off B n_y / n."""
  counts = np.array([500, 250, 150, 100])
  assignments, order, _ = _stratified(2, counts)
  visited = assignments[order]
  for batch in (20, 50, 100):
    for start in range(0, len(visited) - batch + 1, 7):
      got = np.bincount(visited[start:start + batch], minlength=4)
      want = batch * counts / counts.sum()
      assert np.all(np.abs(got - want) <= 2), (batch, start, got, want)


def test_stratified_order_shuffles_within_each_epitome():
  """The order of an epitome's own examples is random (fresh per key), not
  their index order; the same key gives the same order."""
  assignments, order, _ = _stratified(3, [60, 40])
  for y in (0, 1):
    members = order[assignments[order] == y]
    assert not np.all(np.diff(members) > 0)
  again = _STRATIFIED(jax.random.PRNGKey(3),
                      jnp.asarray(assignments, jnp.int32), 2)
  np.testing.assert_array_equal(order, again)
  other = _STRATIFIED(jax.random.PRNGKey(9),
                      jnp.asarray(assignments, jnp.int32), 2)
  assert not np.array_equal(order, other)
