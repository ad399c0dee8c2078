"""evae_jax/marginal.py: log p(x), marginal over epitomes, against float64
references and a linear-Gaussian model whose log p(x) is closed form.

The public-API wrapper and its agreement with the per-epitome estimate
under jit are in tests/test_api.py; the importance-weighted training
objectives in tests/test_iwae.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

from evae_jax import epitomes
from evae_jax import marginal


def _reference(per_epitome):
  per = np.asarray(per_epitome, np.float64)
  return scipy.special.logsumexp(per, axis=-1) - np.log(per.shape[-1])


@pytest.mark.parametrize('num_epitomes', [1, 2, 7])
def test_log_marginal_matches_float64_logsumexp(num_epitomes):
  per = np.random.RandomState(num_epitomes).randn(5, num_epitomes) * 30 - 80
  got = marginal.log_marginal_from_per_epitome(jnp.float32(per))
  assert got.shape == (5,)
  np.testing.assert_allclose(got, _reference(np.float32(per)), rtol=1e-6)
  if num_epitomes == 1:  # one epitome: log p(x) = log p(x | y)
    np.testing.assert_allclose(got, np.float32(per[:, 0]), rtol=1e-6)


def test_log_marginal_of_extreme_values():
  per = np.array([
      [-1e4, -1e4 - 1.0, -1e4 - 50.0],  # far below exp's float32 range
      [3e3, 3e3, 3e3],  # far above it: equal terms give exactly max
      [-np.inf, -5.0, -np.inf],  # epitomes that cannot explain x
      [0.0, -1e30, -2.0],
  ], np.float32)
  got = np.asarray(marginal.log_marginal_from_per_epitome(per))
  assert np.all(np.isfinite(got)), got
  np.testing.assert_allclose(got, _reference(per), rtol=1e-6)
  np.testing.assert_allclose(got[1], 3e3, rtol=1e-7)  # logsumexp - log 3
  np.testing.assert_allclose(got[2], -5.0 - np.log(3), rtol=1e-6)
  # Every epitome impossible: log p(x) = -inf, not nan.
  none = marginal.log_marginal_from_per_epitome(
      jnp.full((1, 4), -jnp.inf))
  assert float(none[0]) == -np.inf


def test_log_marginal_lies_between_the_best_epitome_and_it_less_log_e():
  per = jnp.asarray(np.random.RandomState(0).randn(50, 6) * 10)
  got = marginal.log_marginal_from_per_epitome(per)
  best = per.max(axis=1)
  assert np.all(got <= best + 1e-5)
  assert np.all(got >= best - np.log(6) - 1e-5)


def test_log_marginal_under_vmap_and_jit():
  per = jnp.asarray(np.random.RandomState(1).randn(3, 4, 5), jnp.float32)
  batched = jax.vmap(marginal.log_marginal_from_per_epitome)(per)
  jitted = jax.jit(marginal.log_marginal_from_per_epitome)
  for i in range(3):
    np.testing.assert_allclose(batched[i], jitted(per[i]), rtol=1e-6)
    np.testing.assert_allclose(batched[i], _reference(per[i]), rtol=1e-5)


# A linear-Gaussian model: z ~ N(0, I_D), x | z ~ N(W (M_y z), SIGMA2 I_P).
# Then p(x | y) = N(x; 0, W_y W_y^T + SIGMA2 I) with W_y = W's columns of
# epitome y, and log p(x) = logsumexp_y log p(x | y) - log E in closed form.
# W has orthogonal columns, so the posterior of z_j under every epitome
# holding unit j is the same diagonal Gaussian: an encoder can be exact.
P, D, SIGMA2 = 6, 4, 0.3
_Q, _ = np.linalg.qr(np.random.RandomState(0).randn(P, D))
W = _Q * np.array([2.0, 1.0, 0.5, 1.5])  # orthogonal, norms 2, 1, 0.5, 1.5
X = np.random.RandomState(1).randn(3, P) * 1.5


def _decode_log_prob(z, x):
  mean = z @ jnp.asarray(W.T, jnp.float32)
  return jnp.sum(-0.5 * (jnp.log(2 * jnp.pi * SIGMA2)
                         + jnp.square(x - mean) / SIGMA2), axis=-1)


def _posterior():
  """The exact posterior of each unit: mean, log-variance, (D,) each per x."""
  norms2 = np.sum(W * W, axis=0)
  var = 1.0 / (1.0 + norms2 / SIGMA2)
  mean = (X @ W) / SIGMA2 * var
  return mean, np.broadcast_to(np.log(var), mean.shape)


def _exact_log_p(masks):
  per = []
  for mask in masks:
    wy = W * mask
    cov = wy @ wy.T + SIGMA2 * np.eye(P)
    _, logdet = np.linalg.slogdet(cov)
    quad = np.einsum('bi,ij,bj->b', X, np.linalg.inv(cov), X)
    per.append(-0.5 * (P * np.log(2 * np.pi) + logdet + quad))
  return scipy.special.logsumexp(np.stack(per, 1), axis=1) - np.log(len(masks))


def _encoder(shift=0.0, widen=0.0):
  mean, logvar = _posterior()

  def encode(x):
    del x
    return (jnp.asarray(mean + shift, jnp.float32),
            jnp.asarray(logvar + widen, jnp.float32))
  return encode


@pytest.mark.parametrize('masks,num_samples,chunk_size', [
    (epitomes.make_masks(D, 2, 1), 7, 3),  # 3 overlapping epitomes
    (np.ones((1, D), np.float32), 4, 4),  # a VAE
], ids=['epitomes', 'vae'])
def test_exact_posterior_gives_the_closed_form_log_likelihood(
    masks, num_samples, chunk_size):
  """With q the true posterior every importance weight is p(x | y): the
  estimate is log p(x) for any k and key, which pins the prior, q, the
  masking, the -log k (k = 7 is not a multiple of the chunk) and -log E."""
  got = marginal.iw_log_marginal_likelihood(
      _encoder(), _decode_log_prob, jnp.asarray(X, jnp.float32),
      jnp.asarray(masks), jax.random.PRNGKey(3), num_samples, chunk_size)
  assert got.shape == (X.shape[0],)
  np.testing.assert_allclose(got, _exact_log_p(masks), rtol=0, atol=2e-4)


def test_a_worse_encoder_is_a_lower_bound_that_tightens_with_k():
  masks = jnp.asarray(epitomes.make_masks(D, 2, 1))
  x = jnp.asarray(X, jnp.float32)
  log_p = _exact_log_p(np.asarray(masks))
  encode = _encoder(shift=0.8, widen=0.7)
  keys = jax.random.split(jax.random.PRNGKey(0), 64)
  means, ses = [], []
  for k in (1, 32):
    estimates = np.asarray(jax.jit(jax.vmap(
        lambda key, k=k: marginal.iw_log_marginal_likelihood(
            encode, _decode_log_prob, x, masks, key, k, k)))(keys))
    assert estimates.shape == (64, 3)
    means.append(estimates.mean(0))
    ses.append(estimates.std(0) / np.sqrt(64))
  means, ses = np.array(means), np.array(ses)
  # Below log p(x) in expectation (up to noise), and strictly so at k = 1.
  assert np.all(means < log_p + 3 * ses + 1e-4), (means, log_p)
  assert np.all(means[0] < log_p - 0.5), (means[0], log_p)
  # Tighter as k grows: k = 32 closes more than half of k = 1's gap.
  assert np.all(means[0] + 3 * (ses[0] + ses[1]) < means[1]), (means, ses)
  assert np.all(np.abs(means[1] - log_p) < 0.5 * np.abs(means[0] - log_p))

