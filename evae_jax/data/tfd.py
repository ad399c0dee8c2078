"""The Toronto Face Database from the standard ``TFD_48x48.mat``."""

import os
from typing import Dict

import numpy as np

from evae_jax import errors


def load_tfd(path: str, fold: int = 0, include_unlabeled: bool = True
             ) -> Dict[str, np.ndarray]:
  """The Toronto Face Database from the standard ``TFD_48x48.mat``.

  The file holds ``images`` (n, 48, 48) uint8 and ``folds`` (n, 5): in fold f,
  0 = unlabeled, 1 = train, 2 = valid, 3 = test.

  Args:
    path: path of TFD_48x48.mat.
    fold: which of the 5 folds (0-4).
    include_unlabeled: train on the unlabeled images too (the usual choice
      for generative models).

  Returns:
    dict with 'train', 'valid', 'test' uint8 arrays, each (n, 48, 48).

  Raises:
    errors.DataError: the file is missing, unreadable or not in the
      layout of TFD_48x48.mat, or ``fold`` is not in 0-4.
  """
  import scipy.io  # pylint: disable=g-import-not-at-top
  if not path or not os.path.isfile(path):
    raise errors.DataError(
        f'TFD file {path!r} not found. TFD is not public: obtain '
        'TFD_48x48.mat from its authors and pass its location with '
        '--config.data.path=/path/to/TFD_48x48.mat.')
  try:
    mat = scipy.io.loadmat(path)
  except Exception as e:  # scipy raises several types for bad files.
    raise errors.DataError(
        f'{path} is not a readable MATLAB .mat file ({e}). Expected '
        'the standard TFD_48x48.mat (MATLAB v5 format).') from e
  if 'images' not in mat or 'folds' not in mat:
    raise errors.DataError(
        f'{path} lacks the "images" and "folds" variables of '
        'TFD_48x48.mat (found '
        f'{sorted(k for k in mat if not k.startswith("__"))}).'
    )
  images, folds = np.asarray(mat['images']), np.asarray(mat['folds'])
  if images.ndim != 3 or folds.shape != (images.shape[0], 5):
    raise errors.DataError(
        f'{path}: images {images.shape} and folds {folds.shape} do '
        'not match the TFD layout (n, 48, 48) and (n, 5).')
  if not 0 <= fold < 5:
    raise errors.DataError(f'data.tfd_fold={fold}; TFD has folds 0-4.')
  if images.dtype != np.uint8:
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
  f = folds[:, fold]
  train_mask = (f == 1) | ((f == 0) if include_unlabeled else False)
  return {'train': images[train_mask], 'valid': images[f == 2],
          'test': images[f == 3]}
