"""scikit-learn's bundled 8x8 digits: the embedded default dataset, on
every machine without a download."""

import importlib.util
import os
from typing import Tuple

import numpy as np


def _bundled_digits() -> np.ndarray:
  """scikit-learn's ``load_digits().images``, (1797, 8, 8) float64 in 0-16.

  Read from the file scikit-learn bundles (``datasets/data/digits.csv.gz``:
  64 pixels and the label per row) without importing scikit-learn, whose
  import takes over a second; through `sklearn.datasets.load_digits` where
  that file is not where this expects it.
  """
  spec = importlib.util.find_spec('sklearn')  # finds, does not import
  for root in (spec.submodule_search_locations or []) if spec else []:
    path = os.path.join(root, 'datasets', 'data', 'digits.csv.gz')
    if os.path.isfile(path):
      return np.loadtxt(path, delimiter=',')[:, :-1].reshape(-1, 8, 8)
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  return datasets.load_digits().images


def load_digits_images() -> Tuple[np.ndarray, np.ndarray]:
  """scikit-learn's bundled 8x8 digits (1797 images), as uint8 (train, test).

  The last 297 images (in a fixed shuffled order) are the test split.

  Returns:
    (train, test): (1500, 8, 8) and (297, 8, 8) uint8, the 17 grey levels
    0-16 scaled to [0, 255].
  """
  images = _bundled_digits()  # values 0..16
  images = np.rint(images * (255.0 / 16.0)).astype(np.uint8)
  order = np.random.RandomState(0).permutation(len(images))
  images = images[order]
  return images[:1500], images[1500:]
