"""scikit-learn's bundled 8x8 digits: the embedded default dataset, on
every machine without a download."""

from typing import Tuple

import numpy as np


def load_digits_images() -> Tuple[np.ndarray, np.ndarray]:
  """scikit-learn's bundled 8x8 digits (1797 images), as uint8 (train, test).

  The last 297 images (in a fixed shuffled order) are the test split.

  Returns:
    (train, test): (1500, 8, 8) and (297, 8, 8) uint8, the 17 grey levels
    0-16 scaled to [0, 255].
  """
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  images = datasets.load_digits().images  # values 0..16
  images = np.rint(images * (255.0 / 16.0)).astype(np.uint8)
  order = np.random.RandomState(0).permutation(len(images))
  images = images[order]
  return images[:1500], images[1500:]
