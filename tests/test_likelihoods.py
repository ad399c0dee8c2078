"""evae_jax.likelihoods against float64 numpy, and the argument-order trap
of bernoulli_log_prob (swapped arguments fail loudly where detectable)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from evae_jax import likelihoods

RS = np.random.RandomState(0)
LOGITS = (3.0 * RS.randn(4, 9)).astype(np.float32)
X = (RS.rand(4, 9) > 0.5).astype(np.float32)


def _bernoulli_numpy(logits, x):
  p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
  return np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=-1)


def test_bernoulli_log_prob_matches_numpy_positionally_and_by_keyword():
  expected = _bernoulli_numpy(LOGITS, X)
  np.testing.assert_allclose(likelihoods.bernoulli_log_prob(LOGITS, X),
                             expected, rtol=1e-5)
  np.testing.assert_allclose(
      likelihoods.bernoulli_log_prob(x=X, logits=LOGITS), expected, rtol=1e-5)


def test_gaussian_log_prob_matches_numpy():
  mean, logvar = RS.randn(4, 9), 0.5 * RS.randn(4, 9)
  x = RS.randn(4, 9)
  expected = np.sum(-0.5 * np.log(2 * np.pi * np.exp(logvar))
                    - 0.5 * (x - mean) ** 2 / np.exp(logvar), axis=-1)
  np.testing.assert_allclose(
      likelihoods.gaussian_log_prob(mean.astype(np.float32),
                                    logvar.astype(np.float32),
                                    x.astype(np.float32)), expected,
      rtol=1e-5)


def test_swapped_bernoulli_arguments_raise_and_say_so():
  with pytest.raises(ValueError) as info:
    likelihoods.bernoulli_log_prob(X, LOGITS)   # (x, logits): swapped
  message = str(info.value)
  assert 'bernoulli_log_prob(logits, x)' in message and '[0, 1]' in message
  assert 'swapped' in message


def test_unscaled_bernoulli_targets_raise():
  with pytest.raises(ValueError, match=r'\[0, 1\]'):
    likelihoods.bernoulli_log_prob(LOGITS, (X * 255).astype(np.uint8))


def test_grey_levels_and_traced_targets_are_accepted():
  grey = RS.rand(4, 9).astype(np.float32)
  np.testing.assert_allclose(likelihoods.bernoulli_log_prob(LOGITS, grey),
                             _bernoulli_numpy(LOGITS, grey), rtol=1e-5)
  # Under jit the values are unknown: no check, and no tracer error.
  jitted = jax.jit(likelihoods.bernoulli_log_prob)(LOGITS, X)
  np.testing.assert_allclose(jitted, _bernoulli_numpy(LOGITS, X), rtol=1e-5)
  grads = jax.grad(lambda l: jnp.sum(likelihoods.bernoulli_log_prob(l, X)))(
      jnp.asarray(LOGITS))
  np.testing.assert_allclose(grads, X - jax.nn.sigmoid(LOGITS), rtol=1e-5,
                             atol=1e-6)
