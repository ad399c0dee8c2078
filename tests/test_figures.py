"""evae_jax.figures: which files each writer makes, and that the figures of
a model are reproducible (fixed keys)."""

import os

import jax
import numpy as np
from PIL import Image

from configs import test as test_config
from evae_jax import figures
from evae_jax import input_pipeline
from evae_jax import state as state_lib


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


def test_activity_and_sample_mode_figures(tmp_path):
  config, _, _ = _model()
  figures.write_activity_figure(
      {'activity': [0.3, 0.0, 0.1], 'per_unit_kl': [1.0, 0.0, 0.2]}, config,
      str(tmp_path))
  figures.write_sample_mode_figure(np.zeros((4, 8, 8)), str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == [figures.ACTIVITY_PNG,
                                          figures.SAMPLE_MODE_PNG]
  for name in os.listdir(tmp_path):
    with Image.open(tmp_path / name) as image:
      assert image.format == 'PNG'
