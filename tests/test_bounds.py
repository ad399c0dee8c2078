"""The reported eVAE bounds are lower bounds: selection and scoring use
independent noise (a max over the reported noisy estimates would be biased
upward).

On a linear-Gaussian model whose ELBO_y and log p(x | y) are known in closed
form, the mean over many noise draws of each reported bound must match the
value of the bound it estimates (computed independently in float64 numpy)
and lie below log p(x). Choosing y* with the same draw that is scored would
estimate E[max_y ELBO^_y] > max_y ELBO_y instead.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import logsumexp

from evae_jax import elbo
from evae_jax import objectives
from evae_jax import epitomes
from evae_jax import evaluate
from tests.test_evaluate import LinearGaussian, N, D, SIGMA

DRAWS = 400
MASKS = epitomes.make_masks(D, 1, 1)  # E = 4 one-unit epitomes: close ELBOs.
E = MASKS.shape[0]


class _Model:
  """The model interface `evaluate.mean_bounds` expects, for LinearGaussian."""

  def __init__(self, lg):
    self.lg = lg
    self.masks = jnp.asarray(MASKS)

  def elbo_terms(self, params, x, rng):
    del params
    mu, logvar = self.lg.encode(x)
    eps = jax.random.normal(rng, mu.shape, mu.dtype)
    return (elbo.elbo_from_encoding(mu, logvar, eps, self.lg.decode_log_prob,
                                    x, self.masks), mu, logvar)

  def __hash__(self):
    return id(self)


def _data(lg, n=30, seed=1):
  rs = np.random.RandomState(seed)
  z = rs.randn(n, D) * MASKS[rs.randint(0, E, n)]
  return z @ lg.w.T + lg.b + SIGMA * rs.randn(n, N)


def _numpy_selection_draws(lg, x, draws=20000, seed=2):
  """(draws, n, E) single-sample ELBO estimates, float64, from numpy noise."""
  rs = np.random.RandomState(seed)
  mu = (x - lg.b) @ lg.a.T
  var = np.exp(lg.c)
  out = np.zeros((draws, len(x), E))
  for e, m in enumerate(MASKS):
    eps = rs.randn(draws, len(x), D)
    z = m * (mu + np.sqrt(var) * eps)
    ll = -0.5 * np.sum(np.log(2 * np.pi * SIGMA ** 2)
                       + (x - z @ lg.w.T - lg.b) ** 2 / SIGMA ** 2, -1)
    kl = 0.5 * np.sum(m * (mu ** 2 + var - 1 - np.log(var)), 1)
    out[..., e] = ll - kl
  return out


def _targets(lg, x):
  """Float64 values the two estimators must average to, and the truths."""
  exact = lg.elbo(x, MASKS)  # (n, E) true ELBO_y
  select = _numpy_selection_draws(lg, x)
  y = select.argmax(-1)
  point = np.take_along_axis(exact[None], y[..., None], -1)[..., 0]
  log_q = select - logsumexp(select, -1, keepdims=True)
  lse = np.sum(np.exp(log_q) * (exact[None] - log_q), -1)
  log_e = math.log(E)
  return {'point': point.mean(0).mean() - log_e,
          'lse': lse.mean(0).mean() - log_e,
          'max_elbo': exact.max(1).mean() - log_e,
          'lse_elbo': logsumexp(exact, 1).mean() - log_e,
          'log_p': (logsumexp(lg.log_p_given_y(x, MASKS), 1) - log_e).mean()}


def _mean_and_stderr(values):
  values = np.asarray(values, np.float64)
  return values.mean(), values.std() / math.sqrt(len(values))


def _check(name, draws, want, truths):
  mean, se = _mean_and_stderr(draws)
  assert abs(mean - want) < 4 * se + 1e-3, (name, mean, se, want)
  for truth in truths:
    assert mean < truth + 3 * se, (name, mean, se, truth)


def test_evaluation_bounds_are_unbiased_lower_bounds():
  lg = LinearGaussian(0)
  x = _data(lg)
  t = _targets(lg, x)
  assert t['max_elbo'] <= t['lse_elbo'] <= t['log_p']
  model, xj = _Model(lg), jnp.asarray(x, jnp.float32)
  point, lse = [], []
  for i in range(DRAWS):
    b = evaluate.mean_bounds(None, model, xj, jax.random.PRNGKey(i),
                             batch_size=len(x))
    point.append(b['bound'])
    lse.append(b['logsumexp_bound'])
  _check('bound', point, t['point'], [t['max_elbo'], t['log_p']])
  _check('logsumexp_bound', lse, t['lse'], [t['lse_elbo'], t['log_p']])


def test_training_losses_are_unbiased_negative_bounds():
  lg = LinearGaussian(0)
  x = _data(lg)
  t = _targets(lg, x)
  xj, masks = jnp.asarray(x, jnp.float32), jnp.asarray(MASKS)

  def losses(key):
    point, aux = objectives.callables.epitome_loss(lg.encode, lg.decode_log_prob, xj, masks,
                                   key)
    lse, _ = objectives.callables.epitome_loss(lg.encode, lg.decode_log_prob, xj, masks, key,
                               objective='logsumexp')
    return -point, jnp.mean(aux['bound']), -lse
  keys = jax.random.split(jax.random.PRNGKey(3), DRAWS)
  point, bound, lse = (np.asarray(a) for a in jax.jit(jax.vmap(losses))(keys))
  np.testing.assert_allclose(point, bound, rtol=1e-5)
  _check('point loss', point, t['point'], [t['max_elbo'], t['log_p']])
  _check('logsumexp loss', lse, t['lse'], [t['lse_elbo'], t['log_p']])
