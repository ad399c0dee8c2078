"""Mutual information I_q(x; z) (He et al.'s estimator) against a closed form
and an independent float64 numpy computation; active units at both
thresholds."""

import math

import jax
import numpy as np
import pytest
from scipy.special import logsumexp

from evae_jax import epitomes
from evae_jax import evaluate


def _numpy_mi(mu, logvar, eps, dims=None, rows=None, batch_size=0):
  """Independent float64 reference: one batch, one z at a time."""
  mu, logvar, eps = np.float64(mu), np.float64(logvar), np.float64(eps)
  dims = np.arange(mu.shape[1]) if dims is None else dims
  rows = np.arange(len(mu)) if rows is None else rows
  total, count = 0.0, 0
  batch_size = batch_size or len(mu)
  for start in range(0, len(mu), batch_size):
    members = [i for i in rows if start <= i < start + batch_size]
    for i in members:
      z = mu[i, dims] + np.exp(0.5 * logvar[i, dims]) * eps[i, dims]
      neg_entropy = -0.5 * np.sum(np.log(2 * np.pi) + 1 + logvar[i, dims])
      log_q = [np.sum(-0.5 * (np.log(2 * np.pi) + logvar[j, dims]
                              + (z - mu[j, dims]) ** 2
                              / np.exp(logvar[j, dims]))) for j in members]
      total += neg_entropy - (logsumexp(log_q) - math.log(len(members)))
      count += 1
  return total / count


def test_linear_gaussian_encoder_matches_the_closed_form():
  """x ~ N(0, s^2 I), q(z|x) = N(a x, sigma^2 I): q(z) = N(0, a^2 s^2 +
  sigma^2) and I = D/2 log(1 + a^2 s^2 / sigma^2)."""
  n, d, s, a, sigma = 3000, 2, 1.0, 2.0, 0.5
  x = np.random.RandomState(0).randn(n, d) * s
  mu = np.float32(a * x)
  logvar = np.full((n, d), 2 * math.log(sigma), np.float32)
  want = d / 2 * math.log(1 + a ** 2 * s ** 2 / sigma ** 2)
  got = evaluate.mutual_information(mu, logvar, jax.random.PRNGKey(0))
  assert abs(got - want) < 0.05, (got, want)
  # A mixture of 100 posteriors estimates q(z) less well (the estimate is
  # at most log 100 = 4.6 nats); here it stays near the true 2.83 nats.
  batched = evaluate.mutual_information(mu, logvar, jax.random.PRNGKey(0),
                                        batch_size=100)
  assert want - 0.3 < batched < want + 0.05


@pytest.mark.parametrize('batch_size', [0, 7])
def test_matches_numpy_with_masks_and_weights(batch_size):
  rs = np.random.RandomState(1)
  n, d = 20, 5
  mu = np.float32(rs.randn(n, d))
  logvar = np.float32(rs.randn(n, d) * 0.5 - 1.0)
  rng = jax.random.PRNGKey(2)
  eps = np.asarray(jax.random.normal(rng, (n, d)))
  np.testing.assert_allclose(
      evaluate.mutual_information(mu, logvar, rng, batch_size=batch_size),
      _numpy_mi(mu, logvar, eps, batch_size=batch_size), rtol=1e-5)
  dims, rows = np.array([1, 3]), np.flatnonzero(rs.rand(n) > 0.4)
  weights = np.zeros(n, bool)
  weights[rows] = True
  dim_mask = np.zeros(d, np.float32)
  dim_mask[dims] = 1
  np.testing.assert_allclose(
      evaluate.mutual_information(mu, logvar, rng, dim_mask=dim_mask,
                                  example_weights=weights,
                                  batch_size=batch_size),
      _numpy_mi(mu, logvar, eps, dims, rows, batch_size), rtol=1e-5)


def test_epitome_version_against_numpy_and_the_vae_case():
  rs = np.random.RandomState(3)
  n, d = 24, 6
  masks = epitomes.make_masks(d, 2, 2)
  mu = np.float32(rs.randn(n, d))
  logvar = np.float32(rs.randn(n, d) * 0.3 - 1.0)
  assignments = rs.randint(0, 2, n)  # epitome 2 is used by no example
  rng = jax.random.PRNGKey(4)
  eps = np.asarray(jax.random.normal(rng, (n, d)))
  got = evaluate.epitome_mutual_information(mu, logvar, assignments, masks, rng)
  chosen = masks[assignments]
  # Marginal: every unit, those outside y* at the prior N(0, 1).
  np.testing.assert_allclose(
      got['marginal'], _numpy_mi(chosen * mu, chosen * logvar, eps), rtol=1e-5)
  for y in range(2):
    np.testing.assert_allclose(
        got['per_epitome'][y],
        _numpy_mi(mu, logvar, eps, np.flatnonzero(masks[y]),
                  np.flatnonzero(assignments == y)), rtol=1e-5)
  assert math.isnan(got['per_epitome'][2])
  vae = evaluate.epitome_mutual_information(
      mu, logvar, np.zeros(n, int), np.ones((1, d), np.float32), rng)
  np.testing.assert_allclose(vae['marginal'],
                             evaluate.mutual_information(mu, logvar, rng),
                             rtol=1e-6)


def test_active_units_at_both_thresholds():
  activity = np.array([0.5, 0.015, 0.011, 0.02, 0.005])
  assert evaluate.active_unit_counts(activity) == {0.02: 1, 0.01: 4}
  assert evaluate.ACTIVE_THRESHOLDS == (0.02, 0.01)
