"""The convolutional eVAE (model.network=conv) on colour images: an RGB .npz
trains through the command line, resumes exactly, evaluates, samples,
draws RGB figures and loads; every model kind runs on it; its parameter
count comes from the real initialisation, and the mVAE matches it."""

import json
import math
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest

import evae_jax
from evae_jax import configuration
from evae_jax import elbo
from evae_jax import errors
from evae_jax import models
from evae_jax.configs import conv_rgb
from evae_jax.configs import test as test_config
from evae_jax.evaluate import report
from evae_jax.figures import visualize
from evae_jax.models import conv
from evae_jax.storage import pinning
from evae_jax.train import loop as train
from tests.conftest import ROOT

SHAPE = (8, 8, 3)
# Tiny settings of configs/test.py's kind, for an RGB .npz of 96 + 32 images.
TINY = {'model.conv_channels': (4, 8), 'model.hidden_dim': 16,
        'model.latent_dim': 6, 'model.epitome_size': 2,
        'train.num_epochs': 1, 'train.batch_size': 16,
        'train.progress_bar': False, 'data.num_valid': 16,
        'eval.iw_samples': 8, 'eval.iw_chunk': 4, 'eval.iw_num_examples': 16,
        'eval.parzen_samples': 64, 'eval.parzen_valid': 16,
        'eval.num_examples': 32, 'eval.num_image_samples': 16}


def _write_npz(path, shape, seed=0):
  rs = np.random.RandomState(seed)
  images = lambda n: rs.randint(0, 256, (n,) + shape).astype(np.uint8)
  np.savez(path, train=images(96), test=images(32))
  return str(path)


def _config(path, **overrides):
  config = conv_rgb.get_config()
  config.data.path = path
  for field, value in {**TINY, **overrides}.items():
    section, name = field.split('.')
    config[section][name] = value
  return config


def _cli(workdir, *flags, mode='train'):
  return subprocess.run(
      [sys.executable, '-m', 'evae_jax.main', f'--workdir={workdir}',
       f'--mode={mode}', *flags], cwd=ROOT, capture_output=True, text=True,
      timeout=600)


@pytest.fixture(scope='module')
def rgb_npz(tmp_path_factory):
  return _write_npz(tmp_path_factory.mktemp('rgb') / 'rgb.npz', SHAPE)


@pytest.fixture(scope='module')
def cli_run(rgb_npz, tmp_path_factory):
  """A conv eVAE trained and evaluated through the command line, from a
  config file that builds on configs/conv_rgb.py, then sampled."""
  folder = tmp_path_factory.mktemp('cli')
  config_file = folder / 'tiny_conv_rgb.py'
  config_file.write_text(
      'from evae_jax.configs import conv_rgb\n\n'
      'def get_config():\n'
      '  config = conv_rgb.get_config()\n'
      f'  config.data.path = {rgb_npz!r}\n'
      + ''.join(f'  config.{k} = {v!r}\n' for k, v in TINY.items())
      + '  return config\n')
  workdir = str(folder / 'run')
  runs = {'train': _cli(workdir, f'--config={config_file}'),
          'evaluate': _cli(workdir, mode='evaluate')}
  for mode, run in runs.items():
    assert run.returncode == 0, (mode, run.stderr[-3000:])
  # --mode=sample's own function, in this process (a third command line
  # would add its start-up and compilation).
  report.sample_workdir(pinning.saved_config(workdir), workdir, 5)
  return workdir


def _numbers(tree):
  if isinstance(tree, dict):
    return [x for v in tree.values() for x in _numbers(v)]
  if isinstance(tree, list):
    return [x for v in tree for x in _numbers(v)]
  return [tree] if isinstance(tree, (int, float)) and not isinstance(
      tree, bool) else []


def test_the_cli_trains_evaluates_and_samples_a_conv_evae(cli_run):
  results = json.load(open(os.path.join(cli_run, 'eval.json')))
  assert math.isfinite(results['bound']['mean'])
  assert all(math.isfinite(x) for x in _numbers(results))
  assert os.path.getsize(os.path.join(cli_run, 'report.md')) > 0
  samples = np.load(os.path.join(cli_run, 'samples.npz'))['x']
  assert samples.shape == (5,) + SHAPE and samples.dtype == np.float32
  assert ((samples >= 0) & (samples <= 1)).all()


def test_the_figures_of_rgb_images_are_in_colour(cli_run):
  for name in ('samples.png', 'reconstructions.png', 'sample_mode.png'):
    assert os.path.getsize(os.path.join(cli_run, name)) > 0, name
  # The originals are random RGB images: colours that no grey level and no
  # red divider line gives (green and blue apart).
  png = matplotlib.image.imread(os.path.join(cli_run, 'reconstructions.png'))
  assert (np.abs(png[..., 1] - png[..., 2]) > 0.2).mean() > 0.01


def test_an_rgb_grid_keeps_each_tile_and_its_colours():
  images = np.random.RandomState(0).rand(5, 4, 3, 3)
  grid = visualize.image_grid(images, num_cols=3, pad=1)
  assert grid.shape == (2 * 5 + 1, 3 * 4 + 1, 3)
  np.testing.assert_array_equal(grid[1 + 5:1 + 5 + 4, 1 + 4:1 + 4 + 3],
                                (images[4] * 255).round().astype(np.uint8))
  assert (grid[0] == 255).all()
  grey = visualize.image_grid(images[..., 0])
  assert grey.ndim == 2
  assert visualize.stacked_grids(images, images).shape[-1] == 3


def test_load_gives_the_bound_of_the_checkpointed_network(cli_run, rgb_npz):
  m = evae_jax.load(cli_run)
  assert m.image_shape == SHAPE
  x = m.splits.test[:8]
  assert x.shape == (8,) + SHAPE
  rng = jax.random.PRNGKey(3)
  # The same bound from the parameters alone, through the network and the
  # ELBO of evae_jax.elbo (eq. 7: y* on one draw, scored on another).
  module = conv.conv_module(m.config.model, SHAPE, 6, 16)
  inputs = jnp.asarray(x.reshape(8, -1), jnp.float32) / 255.0
  encode, decode_log_prob = models.bind(module.apply, m.params)
  terms = lambda key: elbo.elbo_fn(encode, decode_log_prob, inputs,
                                   m.masks, key).elbo
  score, select = terms(rng), terms(elbo.selection_key(rng))
  y = np.argmax(np.asarray(select), 1)
  want = np.asarray(score)[np.arange(8), y] - math.log(m.num_epitomes)
  np.testing.assert_allclose(m.bound(x, rng), want, rtol=1e-5, atol=1e-4)
  assert m.sample(0, 3).shape == (3,) + SHAPE
  assert m.reconstruct(x, 0).shape == (8,) + SHAPE


def _params(workdir):
  return jax.tree_util.tree_leaves(evae_jax.load(workdir).params)


def test_resume_continues_exactly(rgb_npz, tmp_path):
  straight = str(tmp_path / 'straight')
  train.train_and_evaluate(_config(rgb_npz, **{'train.num_epochs': 2}),
                           straight)
  interrupted = str(tmp_path / 'interrupted')
  train.train_and_evaluate(_config(rgb_npz), interrupted)
  train.train_and_evaluate(_config(rgb_npz, **{'train.num_epochs': 2}),
                           interrupted)
  assert evae_jax.load(interrupted).step == evae_jax.load(straight).step == 10
  for a, b in zip(_params(straight), _params(interrupted)):
    np.testing.assert_array_equal(a, b)


def test_a_grey_scale_npz_trains_with_conv(tmp_path):
  path = _write_npz(tmp_path / 'grey.npz', SHAPE[:2])
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(_config(path, **{
      'model.likelihood': 'bernoulli', 'data.binarization': 'dynamic',
      'model.output_bias_init': 'train_mean'}), workdir)
  m = evae_jax.load(workdir)
  assert m.image_shape == SHAPE[:2]
  assert m.model.image_shape == SHAPE[:2] + (1,)
  assert m.sample(0, 4).shape == (4,) + SHAPE[:2]
  bound = m.bound(m.splits.test[:4], 0)
  assert np.isfinite(bound).all()
  assert os.path.getsize(os.path.join(workdir, 'samples.png')) > 0
  # A model file of it loads without the workdir, to the same bound.
  path = str(tmp_path / 'grey_conv.npz')
  evae_jax.export(workdir, path)
  np.testing.assert_array_equal(
      evae_jax.load(path).bound(m.splits.test[:4], 0), bound)


def _model_config(**overrides):
  config = test_config.get_config().model
  config.update({'network': 'conv', 'conv_channels': (4, 8), **overrides})
  return config


KIND_CASES = (('evae', 'bernoulli'), ('vae', 'gaussian'), ('mvae', 'gaussian'))


@pytest.mark.parametrize('kind,likelihood', KIND_CASES)
def test_every_kind_runs_on_the_conv_network(kind, likelihood):
  assert {kind for kind, _ in KIND_CASES} == set(models.MODEL_KINDS)
  model = models.make_model(_model_config(kind=kind, likelihood=likelihood,
                                          conv_channels=(4,)),
                            (7, 9, 3))  # H, W odd: the decoder crops
  params = jax.jit(model.init)(jax.random.PRNGKey(0))  # eager: slow vmap
  x = np.random.RandomState(0).rand(5, 7 * 9 * 3).astype(np.float32)
  loss, grads = jax.jit(jax.value_and_grad(
      lambda p: model.loss(p, x, jax.random.PRNGKey(1))[0]))(params)
  assert np.isfinite(loss)
  assert all(np.isfinite(g).all() for g in jax.tree_util.tree_leaves(grads))
  # Shapes only: tracing, not compiling.
  terms, mu, _ = jax.eval_shape(model.elbo_terms, params, x,
                                jax.random.PRNGKey(2))
  e, d = model.masks.shape
  assert terms.elbo.shape == (5, e) and mu.shape == (5, d)
  mean = jax.eval_shape(model.decode_mean, params, jnp.zeros((5, d)),
                        jnp.zeros(5, jnp.int32))
  assert mean.shape == (5, 7 * 9 * 3)


@pytest.mark.parametrize('network', models.NETWORKS)
@pytest.mark.parametrize('shape', [(8, 8, 3), (7, 9), (5, 6, 1)])
@pytest.mark.parametrize('likelihood', models.LIKELIHOODS)
def test_the_parameter_count_is_that_of_the_real_params(network, shape,
                                                        likelihood):
  config = _model_config(network=network, likelihood=likelihood,
                         num_layers=2)
  params = models.make_model(config, shape).init(jax.random.PRNGKey(0))
  assert models.network_param_count(config, shape, 6, 16) == (
      models.count_params(params))
  if network == 'mlp':
    assert models.param_count(int(np.prod(shape)), 6, 16, 2, likelihood) == (
        models.count_params(params))


def test_the_mvae_matches_the_conv_evae_parameter_count():
  config = _model_config(latent_dim=8, epitome_size=2, hidden_dim=64,
                         num_layers=2)
  evae = models.count_params(
      jax.eval_shape(models.make_model(config, SHAPE).init,
                     jax.random.PRNGKey(0)))
  config.kind = 'mvae'
  mvae = models.make_model(config, SHAPE)
  width = mvae.component.hidden_dim
  assert width == models.mixture_hidden_dim(config, SHAPE)
  assert isinstance(mvae.component, models.ConvVAENetwork)

  def components(h):  # E components of width h, counted from their init
    config.mvae_hidden_dim = h
    return models.count_params(jax.eval_shape(
        models.make_model(config, SHAPE).init, jax.random.PRNGKey(0)))
  off = {h: abs(components(h) - evae) for h in (width - 1, width, width + 1)}
  assert off[width] == min(off.values())  # the count grows with h
  assert off[width] / evae < 0.05


def test_the_network_fields_define_the_run(rgb_npz):
  saved = configuration.config_as_dict(_config(rgb_npz))
  for field, value in (('network', 'mlp'), ('conv_channels', (4, 16)),
                       ('conv_kernel_size', 3)):
    requested = _config(rgb_npz, **{f'model.{field}': value})
    assert pinning.config_changes(
        saved, configuration.config_as_dict(requested)) == [f'model.{field}']
  # A run saved before model.network existed counts as the MLP it was.
  del saved['model']['network']
  assert pinning.config_changes(saved, configuration.config_as_dict(
      _config(rgb_npz, **{'model.network': 'mlp'}))) == []


@pytest.mark.parametrize('field,value,words', [
    ('network', 'resnet', "use one of ('mlp', 'conv')"),
    ('conv_channels', (), 'non-empty tuple of positive integers'),
    ('conv_channels', (8, 0), 'non-empty tuple of positive integers'),
    ('conv_kernel_size', 5, 'use one of (3, 4)')])
def test_invalid_network_fields_are_refused(rgb_npz, field, value, words):
  config = _config(rgb_npz, **{f'model.{field}': value})
  with pytest.raises(errors.ConfigError, match=re.escape(words)):
    configuration.validate(config)
