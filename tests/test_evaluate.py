"""The paper's measurements against closed forms and direct numpy versions."""

import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from evae_jax import elbo
from evae_jax import epitomes
from evae_jax import evaluate
from evae_jax import state as state_lib
from tests.conftest import ROOT

N, D, SIGMA = 3, 4, 0.5


class LinearGaussian:
  """p(z) = N(0, I), p(x | z) = N(W z + b, SIGMA^2 I): log p(x | y) is closed form."""

  def __init__(self, seed=0):
    rs = np.random.RandomState(seed)
    self.w = rs.randn(N, D)
    self.b = rs.randn(N) * 0.3
    # An imperfect encoder near the exact posterior of the full-z model:
    # mean 0.9 * Sigma W^T (x - b) / SIGMA^2, variance 1.3 * diag(Sigma).
    cov = np.linalg.inv(np.eye(D) + self.w.T @ self.w / SIGMA ** 2)
    self.a = 0.9 * cov @ self.w.T / SIGMA ** 2
    self.c = np.log(1.3 * np.diag(cov))

  def _mu(self, x):
    return (x - self.b) @ self.a.T

  def encode(self, x):
    a, c = jnp.asarray(self.a, jnp.float32), jnp.asarray(self.c, jnp.float32)
    mu = (x - jnp.asarray(self.b, jnp.float32)) @ a.T
    return mu, jnp.broadcast_to(c, x.shape[:1] + (D,))

  def decode_log_prob(self, z, x):
    w, b = jnp.asarray(self.w, jnp.float32), jnp.asarray(self.b, jnp.float32)
    mean = z @ w.T + b
    return -0.5 * jnp.sum(jnp.log(2 * jnp.pi * SIGMA ** 2)
                          + (x - mean) ** 2 / SIGMA ** 2, -1)

  def log_p_given_y(self, x, masks):
    """Exact float64 log p(x | y) = log N(x; b, W M_y W^T + SIGMA^2 I)."""
    out = np.zeros((len(x), len(masks)))
    for e, m in enumerate(masks):
      wy = self.w * m[None, :]
      cov = wy @ wy.T + SIGMA ** 2 * np.eye(N)
      out[:, e] = multivariate_normal(self.b, cov).logpdf(x)
    return out

  def elbo(self, x, masks):
    """Exact float64 E_q[log p(x|y,z)] - KL for each epitome."""
    mu = self._mu(x)
    var = np.exp(self.c)
    out = np.zeros((len(x), len(masks)))
    for e, m in enumerate(masks):
      q_mu, q_var = m * mu, np.where(m > 0, var, 1.0)
      resid = x - (q_mu * m) @ self.w.T - self.b
      trace = np.sum((self.w * m) ** 2 * q_var, axis=1).sum()
      ll = (-0.5 * N * np.log(2 * np.pi * SIGMA ** 2)
            - 0.5 * (np.sum(resid ** 2, 1) + trace) / SIGMA ** 2)
      kl = 0.5 * np.sum(m * (mu ** 2 + var - 1 - np.log(var)), 1)
      out[:, e] = ll - kl
    return out


def _iw(model, x, masks, k, seed=0, chunk=50):
  return np.asarray(elbo.iw_log_likelihood(
      model.encode, model.decode_log_prob, jnp.asarray(x, jnp.float32),
      jnp.asarray(masks), jax.random.PRNGKey(seed), k, chunk), np.float64)


@pytest.mark.parametrize('k_size,stride', [(D, D), (2, 2), (2, 1)])
def test_iw_approaches_the_closed_form(k_size, stride):
  model = LinearGaussian()
  masks = epitomes.make_masks(D, k_size, stride)
  x = np.random.RandomState(1).randn(40, N)
  exact = model.log_p_given_y(x, masks)
  errors = {}
  for k in (1, 10, 2000):
    est = _iw(model, x, masks, k)
    errors[k] = np.mean(exact - est)
    # A lower bound in expectation: never above the truth beyond noise.
    assert np.mean(est - exact) < 0.05
  assert errors[1] > 1.0 and errors[1] > errors[10] > errors[2000]
  assert abs(errors[2000]) < 0.05
  # The marginal over epitomes equals the brute-force float64 mixture.
  marginal = logsumexp(_iw(model, x, masks, 2000, seed=1), axis=1)
  want = logsumexp(exact, axis=1)
  np.testing.assert_allclose(marginal, want, atol=0.3)
  assert abs(np.mean(marginal - want)) < 0.05


def test_iw_with_one_sample_averages_to_the_elbo():
  model = LinearGaussian(2)
  masks = epitomes.make_masks(D, 2, 2)
  repeats = 20000
  x = np.repeat(np.random.RandomState(3).randn(2, N), repeats, axis=0)
  est = _iw(model, x, masks, 1, chunk=1).reshape(2, repeats, -1)
  stderr = est.std(1) / math.sqrt(repeats)
  want = model.elbo(x[::repeats], masks)
  assert np.all(np.abs(est.mean(1) - want) < 4 * stderr + 0.01)


def test_iw_surplus_samples_of_the_last_chunk_are_masked():
  """k = 2001 in chunks of 500 draws 2500 samples; counting the 499 extra
  (or dividing by 2500) would shift the estimate by up to log(2500/2001)."""
  model = LinearGaussian()
  masks = epitomes.make_masks(D, 2, 1)
  x = np.random.RandomState(4).randn(20, N)
  est = _iw(model, x, masks, 2001, chunk=500)
  assert est.shape == (20, 3) and np.all(np.isfinite(est))
  assert abs(np.mean(est - model.log_p_given_y(x, masks))) < 0.05


def test_parzen_matches_numpy():
  rs = np.random.RandomState(0)
  x = rs.rand(13, 6).astype(np.float32)
  samples = rs.rand(37, 6).astype(np.float32)
  for sigma in (0.1, 0.3, 1.0):
    got = evaluate.parzen_log_density(jnp.asarray(x), jnp.asarray(samples),
                                      sigma, batch_size=5, chunk=10)
    d2 = ((x[:, None, :].astype(np.float64) - samples[None]) ** 2).sum(-1)
    want = (logsumexp(-d2 / (2 * sigma ** 2), axis=1) - np.log(37)
            - 3 * np.log(2 * np.pi * sigma ** 2))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_parzen_sigma_selection_picks_the_best_of_the_grid():
  rs = np.random.RandomState(1)
  samples = rs.rand(200, 5).astype(np.float32)
  valid = rs.rand(50, 5).astype(np.float32)
  grid = np.logspace(-1, 0, 10)
  sigma, scores = evaluate.select_parzen_sigma(jnp.asarray(valid),
                                               jnp.asarray(samples), grid)
  direct = []
  for s in grid:
    d2 = ((valid[:, None].astype(np.float64) - samples[None]) ** 2).sum(-1)
    direct.append(np.mean(logsumexp(-d2 / (2 * s * s), axis=1) - np.log(200)
                          - 2.5 * np.log(2 * np.pi * s * s)))
  np.testing.assert_allclose(scores, direct, rtol=1e-4)
  assert sigma == grid[int(np.argmax(direct))]
  assert 0 < int(np.argmax(direct)) < 9   # an interior optimum was found


def test_active_units_on_known_covariance():
  rs = np.random.RandomState(0)
  n = 20000
  stds = np.array([1.0, 0.3, 0.1, 0.5])   # variances 1, 0.09, 0.01, 0.25
  mu = rs.randn(n, 4) * stds
  masks = epitomes.make_masks(4, 2, 2)  # units {0,1} and {2,3}
  all_first = np.zeros(n, np.int32)
  activity, count = evaluate.active_units(jnp.asarray(mu), all_first,
                                          jnp.asarray(masks), 0.02)
  np.testing.assert_allclose(activity, [1.0, 0.09, 0, 0], atol=0.03)
  assert count == 2
  # Half the examples in each epitome: E[u] is mu_u or 0, variance halves
  # (and the zero mass adds mean^2 p(1-p), zero here as means are zero).
  half = (np.arange(n) % 2).astype(np.int32)
  activity, count = evaluate.active_units(jnp.asarray(mu), half,
                                          jnp.asarray(masks), 0.02)
  np.testing.assert_allclose(activity, stds ** 2 / 2, rtol=0.05, atol=0.002)
  assert count == 3   # 0.5, 0.045, 0.005, 0.125
  usage = evaluate.epitome_usage(half, 2)
  np.testing.assert_array_equal(usage, [n // 2, n // 2])


def test_per_unit_kl():
  mu = jnp.array([[1.0, 2.0], [0.0, -1.0]])
  logvar = jnp.zeros((2, 2))
  masks = jnp.array([[1.0, 0.0], [0.0, 1.0]])
  kl = evaluate.per_unit_kl(mu, logvar, jnp.array([0, 1]), masks)
  np.testing.assert_allclose(kl, [0.25, 0.25])   # (0.5 + 0) / 2 and (0 + 0.5) / 2


def test_evaluate_and_sample_modes_end_to_end(tmp_path):
  workdir = str(tmp_path / 'run')
  run = lambda *args: subprocess.run(
      [sys.executable, '-m', 'evae_jax.main', '--config=configs/test.py',
       f'--workdir={workdir}', *args], cwd=ROOT, capture_output=True,
      text=True, timeout=300)
  missing = run('--mode=evaluate')
  assert missing.returncode == 2 and 'train first' in missing.stderr
  assert run().returncode == 0
  result = run('--mode=evaluate')
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.load(open(os.path.join(workdir, 'eval.json')))
  for key in ('bound', 'logsumexp_bound', 'iw_log_likelihood', 'active_units',
              'epitome_usage', 'parzen', 'num_params'):
    assert key in report
  assert report['logsumexp_bound']['mean'] >= report['bound']['mean']
  assert sum(report['epitome_usage']) == report['num_examples'] == 100
  from configs import test as test_config  # pylint: disable=g-import-not-at-top
  # eval.json names the checkpoint it measured: the last epoch here.
  assert report['checkpoint_epochs'] == test_config.get_config().train.num_epochs
  last = json.loads(open(os.path.join(workdir, 'metrics.jsonl')).readlines()[-1])
  assert report['step'] == last['step']
  assert len(report['active_units']['activity']) == 6
  text = open(os.path.join(workdir, 'report.md')).read()
  assert 'Parzen' in text and 'active units' in text and 'k = 8' in text
  for png in ('samples.png', 'reconstructions.png', 'activity.png',
              'manifolds.png'):
    assert os.path.getsize(os.path.join(workdir, png)) > 0
  result = run('--mode=sample', '--num_samples=9')
  assert result.returncode == 0, result.stderr[-3000:]
  x = np.load(os.path.join(workdir, 'samples.npz'))['x']
  assert x.shape == (9, 8, 8) and x.dtype == np.float32
  assert 0.0 <= x.min() and x.max() <= 1.0


def test_report_labels_match_what_was_computed(tmp_path):
  """Parzen on binary pixels says so; a sigma at the grid's edge is flagged;
  a dropout VAE's report says which model is evaluated."""
  import configs.test as test_config
  from evae_jax import data as input_pipeline
  from evae_jax.evaluate import markdown, report
  config = test_config.get_config()
  config.model.kind = 'vae'
  config.data.binarization = 'fixed'
  config.train.z_dropout_rate = 0.5
  config.eval.parzen_sigma_min_log10 = -3.0  # far too narrow a grid
  config.eval.parzen_sigma_max_log10 = -2.5
  config.eval.parzen_num_sigmas = 2
  splits = input_pipeline.load(config.data)
  state = state_lib.create_train_state(config, splits.num_pixels,
                                       jax.random.PRNGKey(0))
  results = report.compute_metrics(state, splits, config)
  assert results['parzen']['sigma_at_edge']
  assert results['parzen']['pixels'].startswith('binary')
  text = markdown.report_markdown(results, config, str(tmp_path))
  assert 'scored on binary' in text and 'at an edge of the grid' in text
  assert 'dropout-free model' in text
  config.data.binarization = 'dynamic'
  assert markdown.parzen_pixels('dynamic').startswith('real-valued')
