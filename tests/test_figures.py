"""evae_jax.figures: which files each writer makes, and that the figures of
a model are reproducible (fixed keys)."""

import os

import jax
import numpy as np
import scipy.stats
from PIL import Image

from configs import test as test_config
from evae_jax import figures
from evae_jax import data as input_pipeline
from evae_jax import sampling
from evae_jax import state as state_lib
from evae_jax.figures import visualize


def _model():
  config = test_config.get_config()
  splits = input_pipeline.load(config.data)
  state = state_lib.create_train_state(config, splits.num_pixels,
                                       jax.random.PRNGKey(0))
  return config, splits, state


def test_sample_figures_are_written_and_reproducible(tmp_path):
  config, splits, state = _model()
  grids = figures.write_sample_figures(state.params, state.model,
                                       splits, config, str(tmp_path))
  written = set(os.listdir(tmp_path))
  assert {figures.SAMPLES_PNG, figures.RECONSTRUCTIONS_PNG} <= written
  # configs/test.py has epitomes of 2 units: their manifolds are drawn too.
  assert (figures.MANIFOLDS_PNG in written) == (config.model.epitome_size == 2)
  assert grids['samples'].dtype == np.uint8
  again = figures.samples(state.params, state.model,
                          config.eval.num_image_samples, splits.image_shape)
  np.testing.assert_array_equal(
      again, figures.samples(state.params, state.model,
                             config.eval.num_image_samples, splits.image_shape))
  assert again.shape == (config.eval.num_image_samples,) + splits.image_shape


def test_stacked_grids_first_grid_above_the_band_second_below():
  rs = np.random.RandomState(0)
  top, bottom = rs.rand(6, 4, 3), rs.rand(6, 4, 3)
  grid = visualize.stacked_grids(top, bottom, num_cols=3)
  upper = visualize.image_grid(top, 3)
  lower = visualize.image_grid(bottom, 3)
  np.testing.assert_array_equal(grid[:len(upper)], upper)
  np.testing.assert_array_equal(grid[-len(lower):], lower)
  assert (grid[len(upper):-len(lower)] == visualize.BAND_GRAY).all()
  assert grid.shape[0] == len(upper) + visualize.BAND_PX + len(lower)


def test_the_tensorboard_reconstructions_have_a_band_between_the_halves(
    tmp_path):
  """Originals on top, a gray band, then the reconstructions (the PNG's red
  divider, in the grayscale image TensorBoard gets)."""
  config, splits, state = _model()
  grid = figures.write_sample_figures(state.params, state.model, splits,
                                      config, str(tmp_path))['reconstructions']
  h = splits.image_shape[0]
  top = grid[:h + 2]  # pad, one row of tiles, pad
  band = grid[h + 2:h + 2 + visualize.BAND_PX]
  assert (band == visualize.BAND_GRAY).all()
  assert grid.shape[0] == 2 * (h + 2) + visualize.BAND_PX
  assert (top[0] == 255).all() and (grid[-1] == 255).all()


def test_activity_and_sample_mode_figures(tmp_path):
  config, _, _ = _model()
  figures.write_activity_figure(
      {'activity': [0.3, 0.0, 0.1], 'per_unit_kl': [1.0, 0.0, 0.2]}, config,
      str(tmp_path))
  figures.write_sample_mode_figure(np.zeros((4, 8, 8)), config, 3, 26,
                                   str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == [figures.ACTIVITY_PNG,
                                          figures.SAMPLE_MODE_PNG]
  for name in os.listdir(tmp_path):
    with Image.open(tmp_path / name) as image:
      assert image.format == 'PNG'


def test_figures_name_the_model_and_each_manifold_its_epitome(tmp_path,
                                                               monkeypatch):
  config, splits, state = _model()
  calls = {}

  def spy(name):
    real = getattr(figures.visualize, name)
    def record(*args, **kwargs):
      calls[name] = (args, kwargs)
      return real(*args, **kwargs)
    monkeypatch.setattr(figures.visualize, name, record)

  for name in ('save_grid', 'save_reconstructions', 'save_manifolds'):
    spy(name)
  figures.write_sample_figures(state.params, state.model, splits, config,
                               str(tmp_path))
  model = f'D={config.model.latent_dim} K={config.model.epitome_size}'
  assert model in calls['save_grid'][1]['title']
  assert model in calls['save_reconstructions'][1]['title']
  # configs/test.py binarises dynamically: the originals are binary draws.
  assert (calls['save_reconstructions'][1]['originals_label']
          == 'originals, binarised as scored')
  args, kwargs = calls['save_manifolds']
  masks = np.asarray(state.model.masks)
  shown = [int(t.split()[1]) for t in kwargs['titles']]
  assert shown[0] == 0 and shown[-1] == masks.shape[0] - 1
  for e, title, (row, col) in zip(shown, kwargs['titles'],
                                  kwargs['axis_labels']):
    a, b = np.flatnonzero(masks[e])
    assert title == f'epitome {e} (units {a}, {b})'
    assert (row, col) == (f'$z_{{{a}}}$', f'$z_{{{b}}}$')
  # The values sampling.epitome_manifold gives the two units, row by row.
  manifold = np.asarray(sampling.epitome_manifold(state.model, state.params,
                                                  shown[0], args[2]))
  np.testing.assert_allclose(manifold.reshape(args[1][0].shape),
                             args[1][0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
      kwargs['axis_values'],
      scipy.stats.norm.ppf(np.linspace(0.05, 0.95, args[2])), rtol=1e-5)


def test_sample_mode_grid_names_the_model_and_its_step(tmp_path, monkeypatch):
  config, _, _ = _model()
  titles = []
  real = figures.visualize.save_grid
  monkeypatch.setattr(figures.visualize, 'save_grid', lambda *a, **k: (
      titles.append(k['title']), real(*a, **k)))
  figures.write_sample_mode_figure(np.zeros((4, 8, 8)), config, 5, 26,
                                   str(tmp_path))
  assert titles == [f'evae D={config.model.latent_dim} '
                    f'K={config.model.epitome_size} E=5, step 26: 4 samples '
                    '(decoder means)']


def test_only_binarised_originals_are_labelled_so():
  assert figures.originals_label('none') == 'originals'
  for binarization in ('dynamic', 'fixed'):
    assert 'binarised' in figures.originals_label(binarization)
