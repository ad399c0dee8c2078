"""The paper's baselines (mVAE, KL-weighted and dropout VAE), Algorithm 1 and
the learning-rate schedules."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import test as test_config
from evae_jax import elbo
from evae_jax import objectives
from evae_jax import epitomes
from evae_jax.train import metric_writers
from evae_jax import models
from evae_jax.state import schedules
from evae_jax.train import loop as train


def _model_config(**overrides):
  config = test_config.get_config().model
  config.update(overrides)
  return config


@pytest.mark.parametrize('layers', [0, 1, 2])
@pytest.mark.parametrize('likelihood', ['bernoulli', 'gaussian'])
def test_closed_form_param_count_matches_flax(layers, likelihood):
  module = models.VAENetwork(latent_dim=7, output_dim=30, hidden_dim=11,
                       num_layers=layers, likelihood=likelihood)
  actual = models.count_params(models.init_params(module, jax.random.PRNGKey(0)))
  assert models.param_count(30, 7, 11, layers, likelihood) == actual


@pytest.mark.parametrize('d,k,layers,hidden', [
    (8, 4, 1, 500), (24, 4, 1, 500), (48, 4, 1, 500),   # Table 4
    (50, 5, 2, 500), (15, 5, 3, 1000), (25, 5, 2, 500),  # Fig. 3, Table 1
])
def test_mvae_matches_evae_parameter_count_within_5_percent(d, k, layers, hidden):
  cfg = _model_config(latent_dim=d, epitome_size=k, num_layers=layers,
                      hidden_dim=hidden)
  evae = models.make_model(cfg, 784)
  cfg.kind = 'mvae'
  mvae = models.make_model(cfg, 784)
  count = lambda m: models.count_params(
      jax.eval_shape(m.init, jax.random.PRNGKey(0)))
  assert mvae.num_components == d // k
  assert abs(count(mvae) / count(evae) - 1) < 0.05


def _mvae_and_data(seed=0):
  cfg = _model_config(kind='mvae', latent_dim=6, epitome_size=2, hidden_dim=8)
  model = models.make_model(cfg, 10)
  params = model.init(jax.random.PRNGKey(seed))
  x = (np.random.RandomState(seed).rand(5, 10) > 0.5).astype(np.float32)
  return model, params, x


def test_mvae_loss_is_the_best_independent_vae():
  model, params, x = _mvae_and_data()
  rng = jax.random.PRNGKey(1)
  loss, aux = jax.jit(lambda p: model.loss(p, x, rng))(params)
  # Brute force: each component alone is a K-unit VAE; the selection draw A
  # chooses and the independent scoring draw B scores.
  eps_rng, _ = jax.random.split(rng)
  sel_rng, _ = jax.random.split(elbo.selection_key(rng))

  def per_component(key):
    out = []
    for e in range(model.num_components):
      p_e = jax.tree_util.tree_map(lambda a: a[e], params)
      encode, dlp = models.bind(model.component.apply, p_e)
      terms = elbo.elbo_fn(encode, dlp, x, np.ones((1, 2), np.float32), key)
      out.append(np.asarray(terms.elbo[:, 0]))
    return np.stack(out, 1)
  select, score = per_component(sel_rng), per_component(eps_rng)
  y = select.argmax(1)
  np.testing.assert_array_equal(aux['assignments'], y)
  np.testing.assert_allclose(
      loss, np.mean(-score[np.arange(len(y)), y] + math.log(3)), rtol=1e-5)


def test_mvae_gradients_reach_only_the_assigned_components():
  model, params, x = _mvae_and_data()
  fixed = jnp.full((5,), 1, jnp.int32)
  grads = jax.grad(lambda p: model.loss(p, x, jax.random.PRNGKey(2),
                                        assignments=fixed)[0])(params)
  for leaf in jax.tree_util.tree_leaves(grads):
    assert np.all(np.asarray(leaf[0]) == 0) and np.all(np.asarray(leaf[2]) == 0)
    assert np.any(np.asarray(leaf[1]) != 0)


def test_mvae_decode_mean_uses_the_assigned_component():
  model, params, _ = _mvae_and_data()
  z = jax.random.normal(jax.random.PRNGKey(3), (4, 6))
  y = jnp.array([0, 2, 1, 2])
  got = model.decode_mean(params, z, y)
  for i in range(4):
    p_e = jax.tree_util.tree_map(lambda a: a[int(y[i])], params)
    want = model.component.apply({'params': p_e}, z[i:i + 1, 2 * y[i]:2 * y[i] + 2],
                                 method=models.VAENetwork.mean)
    np.testing.assert_allclose(got[i], want[0], rtol=1e-5, atol=1e-6)


def test_fixed_assignments_skip_the_selection():
  masks = epitomes.make_masks(4, 2)
  encode = lambda x: (x[:, :4], jnp.zeros((x.shape[0], 4)))
  decode = lambda z, x: -jnp.sum((x[:, :4] - z) ** 2, -1)
  x = jax.random.normal(jax.random.PRNGKey(0), (6, 4))
  y = jnp.array([0, 1, 1, 0, 1, 0])
  _, aux = objectives.callables.epitome_loss(encode, decode, x, masks, jax.random.PRNGKey(1),
                             assignments=y)
  np.testing.assert_array_equal(aux['assignments'], y)


def test_z_dropout_zeroes_and_rescales_units():
  masks = epitomes.make_masks(200, 200)
  encode = lambda x: (jnp.ones((x.shape[0], 200)), jnp.full((x.shape[0], 200), -30.0))
  seen = {}
  def decode(z, x):
    seen['z'] = z
    return jnp.zeros(z.shape[0])
  objectives.callables.epitome_loss(encode, decode, jnp.zeros((50, 1)), masks,
                    jax.random.PRNGKey(0), z_dropout_rate=0.25)
  z = np.asarray(seen['z'])
  kept = z[z != 0]
  np.testing.assert_allclose(kept, 1 / 0.75, rtol=1e-5)
  assert abs((z == 0).mean() - 0.25) < 0.02


def test_stratified_order_gives_proportionate_minibatches():
  assignments = jnp.asarray(np.repeat([0, 1, 2], [600, 300, 100]))
  assignments = jax.random.permutation(jax.random.PRNGKey(0), assignments)
  order = schedules.stratified_order(jax.random.PRNGKey(1), assignments, 3)
  assert sorted(np.asarray(order).tolist()) == list(range(1000))
  batches = np.asarray(assignments)[np.asarray(order)].reshape(10, 100)
  for batch in batches:
    counts = np.bincount(batch, minlength=3)
    assert np.all(np.abs(counts - [60, 30, 10]) <= 1), counts


def test_burda_schedule():
  config = test_config.get_config().train
  config.schedule = 'burda'
  assert schedules.total_epochs(config) == 3280
  lr = schedules.learning_rate(config, steps_per_epoch=10)
  starts = np.cumsum([0] + [3 ** i for i in range(8)])[:-1] * 10
  # Burda et al.'s code rounds 10^(1 - i/7) to one decimal.
  rates = [1e-3, 7.2e-4, 5.2e-4, 3.7e-4, 2.7e-4, 1.9e-4, 1.4e-4, 1e-4]
  for i, start in enumerate(starts):
    np.testing.assert_allclose(lr(start), rates[i], rtol=1e-5)
    if start:
      np.testing.assert_allclose(lr(start - 1), rates[i - 1], rtol=1e-5)


@pytest.mark.parametrize('overrides', [
    {'model.kind': 'mvae'},
    {'train.assignment': 'epoch'},
    {'model.kind': 'vae', 'train.kl_weight': 0.5},
    {'model.kind': 'vae', 'train.z_dropout_rate': 0.5},
])
def test_every_kind_trains_end_to_end(tmp_path, overrides):
  config = test_config.get_config()
  config.train.num_epochs = 3
  for key, value in overrides.items():
    section, field = key.split('.')
    config[section][field] = value
  train.train_and_evaluate(config, str(tmp_path))
  records = metric_writers.read_metrics(str(tmp_path))
  assert records[-1]['valid_bound'] > records[0]['valid_bound']
  if config.train.assignment == 'epoch':
    changes = [r['assignment_changes'] for r in records]
    assert changes[0] == 1.0 and all(0 <= c < 1 for c in changes[1:])
