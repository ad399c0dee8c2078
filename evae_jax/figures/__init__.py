"""The PNG figures of a trained model: samples, reconstructions, manifolds."""

import hashlib
from typing import Any, Dict

import jax
import numpy as np

from evae_jax import metrics as metrics_lib
from evae_jax.storage import files
from evae_jax.runtime import seeds
from evae_jax import sampling
from evae_jax.figures import visualize

SAMPLES_PNG = 'samples.png'
RECONSTRUCTIONS_PNG = 'reconstructions.png'
MANIFOLDS_PNG = 'manifolds.png'
ACTIVITY_PNG = 'activity.png'
# --mode=sample's grid: not samples.png, which training and evaluation write
# (a fixed seed and count) and report.md shows.
SAMPLE_MODE_PNG = 'sample_mode.png'


def samples(params, model, num_samples: int, image_shape,
            seed: int = seeds.FIGURE_SEED) -> np.ndarray:
  """(num_samples, H, W) (or (num_samples, H, W, C) for colour images)
  decoder means of fresh samples (y uniform, z ~ N(0, I))."""
  x = sampling.generate(model, params, jax.random.PRNGKey(seed), num_samples)
  return np.asarray(x).reshape((num_samples,) + tuple(image_shape))


def _model_name(config) -> str:
  m = config.model
  if m.kind == 'vae':
    return f'VAE D={m.latent_dim}'
  return f'{m.kind} D={m.latent_dim} K={m.epitome_size}'


def _write_manifolds(params, model, config, image_shape,
                     workdir: str) -> None:
  """``manifolds.png``: up to 4 epitomes of 2 units, spread over the E."""
  masks = np.asarray(model.masks)
  grid = 10
  chosen = np.linspace(0, masks.shape[0] - 1, min(4, masks.shape[0]))
  chosen = np.unique(chosen.round().astype(int))
  manifolds = [np.asarray(sampling.epitome_manifold(
      model, params, int(e), grid)).reshape((-1,) + tuple(image_shape))
               for e in chosen]
  units = [np.flatnonzero(masks[e]) for e in chosen]
  # The grid values of `sampling.epitome_manifold`.
  values = np.asarray(jax.scipy.special.ndtri(np.linspace(0.05, 0.95, grid)))
  visualize.save_manifolds(
      files.join(workdir, MANIFOLDS_PNG), manifolds, grid,
      titles=[f'epitome {e} (units {a}, {b})'
              for e, (a, b) in zip(chosen, units)],
      axis_labels=[(f'$z_{{{a}}}$', f'$z_{{{b}}}$') for a, b in units],
      axis_values=values,
      title=f'{_model_name(config)}: decoder means over each 2-d epitome '
      '(other units 0)')


def figure_settings(config, dtype: str, splits) -> Dict[str, Any]:
  """What `write_sample_figures` draws depends on besides the parameters:
  the number of samples, the networks' dtype and the test images it
  reconstructs.

  Args:
    config: the run's config.
    dtype: the dtype the networks compute in (training: ``model.dtype``;
      evaluation: `evae_jax.models.evaluation_dtype`).
    splits: the dataset (`evae_jax.data.Splits`).

  Returns:
    A JSON-able dict; equal dicts on one checkpoint draw equal figures.
  """
  n = config.eval.num_image_samples
  images = np.ascontiguousarray(splits.test[:_num_reconstructed(n)])
  return {'num_image_samples': int(n), 'dtype': str(dtype),
          'images_sha256': hashlib.sha256(images.tobytes()).hexdigest(),
          'binarization': str(config.data.binarization)}


def _num_reconstructed(num_image_samples: int) -> int:
  """Test images in reconstructions.png."""
  return max(10, num_image_samples // 2)


def write_sample_figures(params, model, splits, config,
                         workdir: str) -> Dict[str, np.ndarray]:
  """Writes ``samples.png`` and ``reconstructions.png`` (test images on top,
  their reconstructions below a red line), and ``manifolds.png`` for 2-d
  epitomes, each titled with the model.

  Returns:
    The sample and reconstruction grids as uint8 images, for TensorBoard.
  """
  n = config.eval.num_image_samples
  shape = splits.image_shape
  name = _model_name(config)
  generated = samples(params, model, n, shape)
  visualize.save_grid(files.join(workdir, SAMPLES_PNG), generated,
                      title=f'{name}: {n} samples (decoder means, y uniform, '
                      'z ~ N(0, I))')
  x = metrics_lib.eval_inputs(splits.test[:_num_reconstructed(n)],
                              config.data)
  enc = metrics_lib.encode_dataset(params, model, x,
                                jax.random.PRNGKey(seeds.FIGURE_SEED))
  recon = sampling.reconstruct(model, params, x, enc.assignments)
  originals = np.asarray(x).reshape((-1,) + shape)
  visualize.save_reconstructions(
      files.join(workdir, RECONSTRUCTIONS_PNG), originals,
      np.asarray(recon).reshape((-1,) + shape),
      title=f'{name}: test images and their reconstructions',
      originals_label=originals_label(config.data.binarization))
  if int(np.asarray(model.masks).sum(axis=1)[0]) == 2:
    _write_manifolds(params, model, config, shape, workdir)
  return {'samples': visualize.image_grid(generated),
          'reconstructions': visualize.stacked_grids(
              originals, np.asarray(recon).reshape((-1,) + shape),
              num_cols=len(originals))}


def write_activity_figure(active_units, config, workdir: str) -> None:
  """Writes ``activity.png``: each unit's activity and KL (paper Fig. 1),
  from the 'active_units' entry of the evaluation's results."""
  visualize.save_activity_plot(
      files.join(workdir, ACTIVITY_PNG),
      np.asarray(active_units['activity']),
      np.asarray(active_units['per_unit_kl']),
      config.eval.active_threshold,
      title=_model_name(config))


def originals_label(binarization: str) -> str:
  """The label of the reconstructions figure's originals: with dynamic or
  fixed binarisation they are the binary draws the model is scored on
  (`evae_jax.metrics.eval_inputs`), not the grey-level images."""
  if binarization == 'none':
    return 'originals'
  return 'originals, binarised as scored'


def write_sample_mode_figure(x: np.ndarray, config, num_epitomes: int,
                             step: int, workdir: str) -> None:
  """Writes ``sample_mode.png``, the grid of ``--mode=sample``'s images,
  titled with the model (kind, D, K, E) and the checkpoint's step."""
  visualize.save_grid(files.join(workdir, SAMPLE_MODE_PNG), x,
                      title=f'{_model_name(config)} E={num_epitomes}, step '
                      f'{step}: {len(x)} samples (decoder means)')
