"""Over-pruning remedies (free bits, KL warm-up): against independent float64
numpy computations; off means bit-identical to the plain objective; a unit
below the free bits gets no KL gradient; end to end, the reported bounds
stay the true ELBO."""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from evae_jax import errors
from evae_jax import objectives
from evae_jax import configuration
from evae_jax import elbo
from evae_jax import epitomes
from evae_jax import evaluate
from evae_jax import data as input_pipeline
from evae_jax.train import metric_writers
from evae_jax import models
from evae_jax.state import schedules
from evae_jax.runtime import seeds
from evae_jax.train import steps
from evae_jax import state as state_lib
from tests.conftest import cli

B, N, D = 8, 10, 6


def _numpy_free_bits(unit_kl, usage, free_bits, group):
  """Independent float64 reference, one group at a time."""
  unit_kl, usage = np.float64(unit_kl), np.float64(usage)
  out = np.zeros(len(unit_kl))
  for g in range(unit_kl.shape[1] // group):
    cols = slice(g * group, (g + 1) * group)
    kl = np.sum(usage[:, cols] * unit_kl[:, cols], axis=1)
    used = np.max(usage[:, cols], axis=1)
    average = kl.sum() / used.sum() if used.sum() else 0.0
    out += used * max(free_bits, average)
  return out


@pytest.mark.parametrize('group', [1, 2, 3])
@pytest.mark.parametrize('free_bits', [0.05, 0.5, 2.0])
def test_free_bits_kl_matches_numpy(group, free_bits):
  rs = np.random.RandomState(group)
  unit_kl = np.float32(rs.gamma(1.0, 0.5, (B, D)))
  masks = epitomes.make_masks(D, 2, 1)
  usage = masks[rs.randint(0, len(masks), B)]
  got = objectives.free_bits.free_bits_kl(jnp.asarray(unit_kl), jnp.asarray(usage), free_bits,
                          group)
  np.testing.assert_allclose(got, _numpy_free_bits(unit_kl, usage, free_bits,
                                                   group), rtol=1e-5)
  soft = rs.dirichlet(np.ones(len(masks)), B) @ masks  # logsumexp usage
  np.testing.assert_allclose(
      objectives.free_bits.free_bits_kl(jnp.asarray(unit_kl), jnp.asarray(soft, jnp.float32),
                        free_bits, group),
      _numpy_free_bits(unit_kl, soft, free_bits, group), rtol=1e-5)


def test_free_bits_below_every_kl_is_the_true_kl_on_average():
  rs = np.random.RandomState(0)
  unit_kl = np.float32(rs.uniform(1.0, 2.0, (B, D)))
  usage = epitomes.make_masks(D, 3, 3)[rs.randint(0, 2, B)]
  got = objectives.free_bits.free_bits_kl(unit_kl, usage, 0.5)
  np.testing.assert_allclose(np.mean(got), np.mean(np.sum(usage * unit_kl, 1)),
                             rtol=1e-5)


def _fns(seed=0):
  rs = np.random.RandomState(seed)
  wm = jnp.asarray(rs.randn(N, D) * 0.4, jnp.float32)
  wv = jnp.asarray(rs.randn(N, D) * 0.2 - 0.5, jnp.float32)
  wd = jnp.asarray(rs.randn(D, N) * 0.5, jnp.float32)
  encode = lambda x: (x @ wm, x @ wv)
  def decode_log_prob(z, x):
    logits = z @ wd
    return jnp.sum(x * logits - jax.nn.softplus(logits), -1)
  x = jnp.asarray(rs.rand(B, N) > 0.5, jnp.float32)
  return encode, decode_log_prob, x


@pytest.mark.parametrize('objective', ['point', 'logsumexp'])
@pytest.mark.parametrize('k', [2, 6])
def test_free_bits_loss_matches_numpy(objective, k):
  encode, dlp, x = _fns()
  masks = epitomes.make_masks(D, k, k)
  rng, kl_weight, free_bits = jax.random.PRNGKey(4), 0.7, 0.3
  loss, aux = objectives.callables.epitome_loss(encode, dlp, x, masks, rng, objective=objective,
                                kl_weight=kl_weight, free_bits=free_bits,
                                free_bits_group=2)
  mu, logvar = (np.float64(a) for a in encode(x))
  unit_kl = 0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar)
  log_e = math.log(len(masks))
  if objective == 'point':
    usage = masks[np.asarray(aux['assignments'])]
    fb = _numpy_free_bits(unit_kl, usage, free_bits, 2)
    want = np.mean(-(np.float64(aux['log_lik']) - kl_weight * fb) + log_e)
  else:
    # q_A from the selection draw A, the log-likelihoods of the scoring draw B.
    sel = elbo.elbo_fn(encode, dlp, x, masks,
                       jax.random.split(elbo.selection_key(rng))[0])
    score = elbo.elbo_fn(encode, dlp, x, masks, jax.random.split(rng)[0])
    w = np.float64(sel.log_lik) - kl_weight * np.float64(sel.kl)
    log_q = w - np.log(np.sum(np.exp(w - w.max(1, keepdims=True)), 1,
                              keepdims=True)) - w.max(1, keepdims=True)
    fb = _numpy_free_bits(unit_kl, np.exp(log_q) @ masks, free_bits, 2)
    ll = np.float64(score.log_lik)
    want = np.mean(-(np.sum(np.exp(log_q) * (ll - log_q), 1) - log_e)
                   + kl_weight * fb)
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  np.testing.assert_allclose(aux['free_bits_kl'], fb, rtol=1e-5)
  # The reported terms are the true ones.
  np.testing.assert_allclose(aux['elbo'], aux['log_lik'] - aux['kl'], rtol=1e-6)
  np.testing.assert_allclose(aux['bound'], aux['elbo'] - log_e, rtol=1e-6)


@pytest.mark.parametrize('kind', ['evae', 'mvae'])
def test_free_bits_zero_is_bit_identical(kind):
  config = test_config.get_config()
  config.model.kind = kind
  model = models.make_model(config.model, N)
  params = model.init(jax.random.PRNGKey(0))
  _, _, x = _fns()
  rng = jax.random.PRNGKey(5)
  for objective in ('point', 'logsumexp'):
    plain = jax.jit(jax.value_and_grad(
        lambda p: model.loss(p, x, rng, objective=objective, kl_weight=0.5)[0]))
    off = jax.jit(jax.value_and_grad(
        lambda p: model.loss(p, x, rng, objective=objective, kl_weight=0.5,
                             free_bits=0.0, free_bits_group=3)[0]))
    (l0, g0), (l1, g1) = plain(params), off(params)
    assert np.asarray(l0).tobytes() == np.asarray(l1).tobytes()
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_array_equal(a, b), g0, g1)


def test_a_unit_below_the_free_bits_gets_no_kl_gradient():
  """The gradient of a unit whose minibatch KL is below lambda is that of
  the reconstruction alone; a unit above keeps its KL gradient."""
  encode, dlp, x = _fns(3)
  masks = epitomes.make_masks(D, D, D)  # a VAE: every unit carries KL
  mu0, logvar0 = encode(x)
  # Unit 0 nearly at the prior (KL ~ 1e-4), unit 1 far from it (KL ~ 2).
  mu0 = mu0.at[:, 0].set(0.01).at[:, 1].set(2.0)
  logvar0 = logvar0.at[:, 0].set(0.0)
  rng = jax.random.PRNGKey(6)

  def grad(**options):
    f = lambda mu: objectives.callables.epitome_loss(lambda _: (mu, logvar0), dlp, x, masks,
                                     rng, **options)[0]
    return np.asarray(jax.grad(f)(mu0))
  free = grad(free_bits=0.5)
  recon_only = grad(kl_weight=0.0)
  true_kl = grad()
  np.testing.assert_allclose(free[:, 0], recon_only[:, 0], rtol=1e-6)
  np.testing.assert_allclose(free[:, 1], true_kl[:, 1], rtol=1e-6)
  assert np.abs(true_kl[:, 0] - recon_only[:, 0]).max() > 1e-5


@pytest.mark.parametrize('start', [0.0, 0.25])
def test_kl_warmup_factor_matches_numpy(start):
  n = 40
  for step in [0, 1, 7, 39, 40, 41, 1000]:
    want = start + (1.0 - start) * min(step / n, 1.0)
    np.testing.assert_allclose(
        schedules.kl_warmup_factor(jnp.int32(step), n, start), want,
        rtol=1e-6)


def _state(kind='evae'):
  config = test_config.get_config()
  config.model.kind = kind
  return state_lib.create_train_state(config, N, jax.random.PRNGKey(0))


def test_warmup_weight_rises_with_the_global_step_and_off_is_identical():
  state = _state()
  _, _, x = _fns()
  rng = jax.random.PRNGKey(7)
  n, start, weight = 10, 0.2, 0.8
  for step in (0, 4, 10, 25):
    s = state.replace(step=jnp.asarray(step, jnp.int32))
    _, warm = steps.train_step(
        s, x, rng, weight,
        options=steps.StepOptions(kl_warmup_steps=n, kl_warmup_start=start))
    _, plain = steps.train_step(
        s, x, rng, weight * (start + (1 - start) * min(step / n, 1.0)))
    np.testing.assert_allclose(warm['kl_weight'],
                               weight * (start + (1 - start) * min(step / n, 1)),
                               rtol=1e-6)
    np.testing.assert_allclose(warm['loss'], plain['loss'], rtol=1e-6)
  # Off: the same program as a run without warm-up, bit for bit.
  a, ma = steps.train_step(state, x, rng, weight)
  b, mb = steps.train_step(
      state, x, rng, weight,
      options=steps.StepOptions(kl_warmup_steps=0, kl_warmup_start=0.5,
                                loss=objectives.LossSettings(free_bits=0.0)))
  assert 'kl_weight' not in mb
  for key in ma:
    assert np.asarray(ma[key]).tobytes() == np.asarray(mb[key]).tobytes()
  jax.tree_util.tree_map(lambda p, q: np.testing.assert_array_equal(p, q),
                         a.params, b.params)


@pytest.mark.parametrize('overrides,message', [
    ({'free_bits': -0.1}, 'train.free_bits'),
    ({'free_bits': 0.5, 'free_bits_group': 0}, 'train.free_bits_group'),
    ({'free_bits': 0.5, 'free_bits_group': 4}, 'does not divide the 6'),
    ({'kl_warmup_steps': -1}, 'train.kl_warmup_steps'),
    ({'kl_warmup_steps': 10, 'kl_warmup_start': 1.5}, 'kl_warmup_start'),
    ({'objective': 'iwae', 'free_bits': 0.5}, 'no KL weight'),
    ({'objective': 'iwae', 'kl_warmup_steps': 5}, 'kl_warmup_steps=5'),
])
def test_remedy_settings_are_validated(overrides, message):
  config = test_config.get_config()
  for key, value in overrides.items():
    config.train[key] = value
  with pytest.raises(errors.ConfigError, match=message):
    configuration.validate(config)


def _true_bound(workdir, config):
  """eval.json's bound recomputed from the saved parameters with
  `elbo.elbo_fn` (true KL): the report's draws, batch by batch."""
  from evae_jax.evaluate import report
  state, splits = report.load_trained(config, workdir)
  ec = config.eval
  x = evaluate.eval_inputs(splits.split(ec.split)[:ec.num_examples],
                           config.data)
  encode, dlp = models.bind(state.model.module.apply, state.params)
  base = jax.random.fold_in(jax.random.PRNGKey(seeds.EVAL_SEED),
                            seeds.EVAL_BOUNDS)
  bounds = []
  for i in range(-(-len(x) // ec.batch_size)):
    xb = x[i * ec.batch_size:(i + 1) * ec.batch_size]
    key = jax.random.fold_in(base, i)
    score = elbo.elbo_fn(encode, dlp, xb, state.model.masks, key)
    select = elbo.elbo_fn(encode, dlp, xb, state.model.masks,
                          elbo.selection_key(key))
    bounds.append(elbo.point_estimate_bound(select.elbo, score.elbo))
  return float(np.mean(np.concatenate(bounds)))


@pytest.mark.parametrize('flags', [
    ('--config.train.free_bits=0.5', '--config.train.free_bits_group=2'),
    ('--config.train.kl_warmup_steps=30', '--config.train.kl_warmup_start=0.1'),
])
def test_cli_end_to_end_reports_the_true_bound(tmp_path, flags):
  workdir = str(tmp_path / 'run')
  flags = flags + ('--config.train.num_epochs=1',)
  result = cli(workdir, *flags)
  assert result.returncode == 0, result.stderr[-3000:]
  result = cli(workdir, *flags, mode='evaluate')
  assert result.returncode == 0, result.stderr[-3000:]
  config = test_config.get_config()
  config.train.num_epochs = 1
  for flag in flags:
    key, value = flag[len('--config.'):].split('=')
    section, name = key.split('.')
    config[section][name] = type(config[section][name])(value)
  results = json.load(open(os.path.join(workdir, 'eval.json')))
  np.testing.assert_allclose(results['bound']['mean'],
                             _true_bound(workdir, config), rtol=1e-5)
  records = [r for r in metric_writers.read_metrics(workdir)
             if 'train_loss' in r]
  assert records
  if 'free_bits' in flags[0]:
    # What was optimised differs from the true bound that is reported.
    last = records[-1]
    assert 'train_free_bits_kl' in last
    assert abs(last['train_loss'] + last['train_bound']) > 1e-3
  else:
    assert 0.1 < records[0]['train_kl_weight'] < 1.0
    assert records[-1]['train_kl_weight'] < 1.0  # 26 steps < 30


def test_free_bits_for_the_mvae_use_its_flat_layout():
  config = test_config.get_config()
  config.model.kind = 'mvae'
  model = models.make_model(config.model, N)
  params = model.init(jax.random.PRNGKey(0))
  _, _, x = _fns()
  loss, aux = model.loss(params, x, jax.random.PRNGKey(8), kl_weight=0.5,
                         free_bits=0.2, free_bits_group=2)
  mu, logvar = (np.float64(a) for a in model.encode(params, x))
  unit_kl = 0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar)
  masks = np.asarray(model.masks)
  fb = _numpy_free_bits(unit_kl, masks[np.asarray(aux['assignments'])], 0.2, 2)
  np.testing.assert_allclose(aux['free_bits_kl'], fb, rtol=1e-5)
  np.testing.assert_allclose(
      loss, np.mean(-(np.float64(aux['log_lik']) - 0.5 * fb)
                    + math.log(len(masks))), rtol=1e-5)
