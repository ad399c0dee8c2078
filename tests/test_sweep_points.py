"""Every point of every sweep in configs/sweeps/ trains, evaluates and
samples, at a tiny size (the mVAE once crashed when K did not divide D, and
the sweep recorded those points as failed)."""

import glob
import importlib.util
import os

import jax
import numpy as np
import pytest

import configs.test as test_config
from evae_jax import configuration
from evae_jax import figures
from evae_jax import data as input_pipeline
from evae_jax.evaluate import report
from evae_jax import state as state_lib
from evae_jax.train import steps
from tests.conftest import ROOT

MODEL_FIELDS = ('kind', 'latent_dim', 'epitome_size', 'stride')


def _sweep_shapes():
  """The distinct (kind, D, K, s) of all sweep points."""
  shapes = set()
  for path in sorted(glob.glob(os.path.join(ROOT, 'configs', 'sweeps', '*.py'))):
    if path.endswith('__init__.py'):
      continue
    spec = importlib.util.spec_from_file_location('sweep', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    base = module.get_config()
    for point in module.sweep():
      shapes.add(tuple(point.get(f'model.{f}', base.model[f])
                       for f in MODEL_FIELDS))
  return sorted(shapes)


# Shapes no sweep has now but that once crashed the mVAE (K = 6 does not
# divide D = 8 and its last epitome overlaps the one before): kept in the loop.
EXTRA_SHAPES = (('mvae', 8, 6, 0),)
SHAPES = sorted(set(_sweep_shapes()) | set(EXTRA_SHAPES))


def _category(shape):
  kind, d, k, s = shape
  return kind, kind != 'vae' and d % k != 0, s == 1


def _params():
  """One point per category runs by default (kind, K divides D, overlap);
  the rest of the loop (~4 min here) is opt-in: pytest -m slow."""
  seen, params = set(), []
  for shape in SHAPES:
    marks = [pytest.mark.slow] if _category(shape) in seen else []
    seen.add(_category(shape))
    params.append(pytest.param(shape, marks=marks,
                               id='-'.join(map(str, shape))))
  return params


@pytest.fixture(scope='module')
def splits():
  return input_pipeline.load(test_config.get_config().data)


def test_the_sweeps_cover_the_failing_mvae_points():
  assert ('mvae', 8, 3, 0) in _sweep_shapes()  # Table 4's K = 3 at D = 8
  assert ('mvae', 8, 6, 0) in SHAPES
  assert len(SHAPES) > 40


@pytest.mark.parametrize('shape', _params())
def test_sweep_point_trains_evaluates_and_samples(shape, splits):
  config = test_config.get_config()
  for field, value in zip(MODEL_FIELDS, shape):
    config.model[field] = value
  config.model.hidden_dim = 8
  config.eval.iw_samples = 2
  config.eval.iw_chunk = 2
  config.eval.iw_num_examples = 4
  config.eval.num_examples = 20
  config.eval.parzen_samples = 10
  config.eval.parzen_valid = 5
  configuration.validate(config)
  state = state_lib.create_train_state(config, splits.num_pixels,
                                   jax.random.PRNGKey(0))
  # The model owns the masks its config implies (mVAE: one block each).
  masks = state.model.masks
  np.testing.assert_array_equal(
      masks, configuration.masks_from_config(config.model))
  x = input_pipeline.preprocess(splits.train[:10], jax.random.PRNGKey(1),
                                'dynamic')
  state, metrics = steps.train_step(state, x, jax.random.PRNGKey(2))
  assert np.isfinite(float(metrics['loss']))
  results = report.compute_metrics(state, splits, config)
  assert np.isfinite(results['iw_log_likelihood']['marginal']['mean'])
  assert results['active_units']['count'] <= masks.shape[1]
  assert len(results['epitome_usage']) == masks.shape[0]
  images = figures.samples(state.params, state.model, 3,
                           splits.image_shape)
  assert images.shape == (3,) + splits.image_shape
