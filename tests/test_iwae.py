"""Importance-weighted epitomic objectives (`objectives.callables.iwae_loss`) against float64
numpy and the linear-Gaussian model whose log p(x) is known."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp

from evae_jax import elbo
from evae_jax import objectives
from evae_jax import epitomes
from tests.test_bounds import _data, _mean_and_stderr
from tests.test_evaluate import LinearGaussian, D, SIGMA

MASKS = epitomes.make_masks(D, 2, 1)  # E = 3 overlapping epitomes


def _numpy_log_weights(lg, x, eps, mask):
  """(k, B) float64 log w for masks (B, D), as in Burda et al."""
  mu = (x - lg.b) @ lg.a.T
  std = np.exp(0.5 * lg.c)
  z = mu + std * eps
  zm = mask * z
  log_px = -0.5 * np.sum(np.log(2 * np.pi * SIGMA ** 2)
                         + (x - zm @ lg.w.T - lg.b) ** 2 / SIGMA ** 2, -1)
  log_prior = -0.5 * (np.log(2 * np.pi) + z ** 2)
  log_q = -0.5 * (np.log(2 * np.pi) + lg.c + ((z - mu) / std) ** 2)
  return log_px + np.sum(mask * (log_prior - log_q), -1)


def _loss(lg, x, key, k, marginal=False, assignments=None, masks=MASKS):
  return objectives.callables.iwae_loss(lg.encode, lg.decode_log_prob,
                        jnp.asarray(x, jnp.float32), jnp.asarray(masks), key,
                        num_samples=k, marginal=marginal,
                        assignments=assignments)


def test_k1_is_the_point_objective_exactly():
  lg = LinearGaussian(0)
  x = jnp.asarray(_data(lg, 8), jnp.float32)
  key = jax.random.PRNGKey(0)
  point = lambda enc_w: objectives.callables.epitome_loss(
      lambda x_: (x_ @ enc_w, jnp.zeros((x_.shape[0], D))),
      lg.decode_log_prob, x, MASKS, key)[0]
  iwae = lambda enc_w: objectives.callables.epitome_loss(
      lambda x_: (x_ @ enc_w, jnp.zeros((x_.shape[0], D))),
      lg.decode_log_prob, x, MASKS, key, objective='iwae', num_samples=1)[0]
  w = jnp.asarray(lg.a.T, jnp.float32)
  assert float(point(w)) == float(iwae(w))
  chex.assert_trees_all_equal(jax.grad(point)(w), jax.grad(iwae)(w))


def test_matches_float64_numpy_on_the_same_noise():
  lg = LinearGaussian(1)
  x = _data(lg, 6)
  key, k = jax.random.PRNGKey(4), 7
  eps = np.asarray(jax.random.normal(jax.random.split(key)[0], (k, 6, D)),
                   np.float64)
  y = np.array([0, 1, 2, 0, 1, 2])
  loss, aux = _loss(lg, x, key, k, assignments=jnp.asarray(y))
  lw = _numpy_log_weights(lg, x, eps, MASKS[y])
  want = logsumexp(lw, 0) - math.log(k) - math.log(3)
  np.testing.assert_allclose(aux['bound'], want, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(loss, -want.mean(), rtol=1e-5)
  _, aux_m = _loss(lg, x, key, k, marginal=True)
  per = np.stack([logsumexp(_numpy_log_weights(lg, x, eps, m[None]), 0)
                  for m in MASKS])
  want_m = logsumexp(per, 0) - math.log(k) - math.log(3)
  np.testing.assert_allclose(aux_m['bound'], want_m, rtol=1e-5, atol=1e-4)
  # For the same samples the marginal is never below the point bound.
  assert np.all(np.asarray(aux_m['bound']) >= np.asarray(aux['bound']) - 1e-5)


def test_bounds_lie_below_log_p_and_rise_with_k():
  lg = LinearGaussian(0)
  x = _data(lg, 30)
  log_p = np.mean(logsumexp(lg.log_p_given_y(x, MASKS), 1) - math.log(3))
  for marginal in (False, True):
    means = []
    for k in (1, 5, 50):
      keys = jax.random.split(jax.random.PRNGKey(k), 200)
      draws = np.asarray(jax.jit(jax.vmap(
          lambda key: _loss(lg, x, key, k, marginal)[0]))(keys))
      mean, se = _mean_and_stderr(-draws)
      assert mean < log_p + 3 * se, (marginal, k, mean, se, log_p)
      means.append(mean)
    assert means[0] < means[1] < means[2], (marginal, means)
  # The marginal with k = 50 is within 0.05 nats of log p(x) here.
  assert log_p - means[2] < 0.05, (log_p, means)


def test_gradients_under_jit_and_vmap():
  lg = LinearGaussian(0)
  x = jnp.asarray(_data(lg, 4), jnp.float32)

  def loss(w, key, marginal):
    return objectives.callables.iwae_loss(lambda x_: (x_ @ w, jnp.zeros((x_.shape[0], D))),
                          lg.decode_log_prob, x, MASKS, key, num_samples=5,
                          marginal=marginal)[0]
  w = jnp.asarray(lg.a.T, jnp.float32)
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  for marginal in (False, True):
    g = jax.jit(jax.vmap(jax.grad(loss), (None, 0, None)),
                static_argnums=2)(w, keys, marginal)
    assert g.shape == (3,) + w.shape and np.all(np.isfinite(g))
    assert np.any(np.asarray(g) != 0)
