"""Datasets as uint8 image arrays: tfds, local IDX files, TFD .mat, sklearn
digits, and the user's own images in an .npz file.

One module per source (`idx`, `npz`, `tfd`, `digits`, `tfds_source`), each
reading its files into uint8 arrays; `SOURCES` maps ``data.name`` to the
source, and `load` turns any of them into `Splits`: train / valid / test
arrays of shape (n, H, W) (or (n, H, W, C) for colour images), dtype
uint8 in [0, 255]. Validation always comes
out of the training split (or the dataset's own validation split), never
out of the test split. Turning pixels into model inputs (scaling and
binarisation) is `preprocess`, which runs on the device inside the jitted
step.
"""

import dataclasses
import logging
from typing import Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from evae_jax import errors
from evae_jax.data.digits import load_digits_images
from evae_jax.data.idx import load_idx_dir
from evae_jax.data.idx import read_idx
from evae_jax.data.npz import load_npz
from evae_jax.data.npz import NPZ_SPLITS
from evae_jax.data.tfd import load_tfd
from evae_jax.data.tfds_source import load_tfds
from evae_jax.data.tfds_source import TFDS_NAMES

BINARIZATIONS = ('none', 'dynamic', 'fixed')
VALID_FROM = ('random', 'end')

# (train, valid or None, test) uint8 images of one source; None: carve the
# validation images out of train (`_carve_valid`).
Source = Callable[..., Tuple[np.ndarray, Optional[np.ndarray], np.ndarray]]


def _digits(data_config):
  del data_config
  train, test = load_digits_images()
  return train, None, test


def _idx(data_config):
  train, test = load_idx_dir(data_config.path)
  return train, None, test


def _tfd(data_config):
  parts = load_tfd(data_config.path, data_config.tfd_fold,
                   data_config.tfd_include_unlabeled)
  return parts['train'], parts['valid'], parts['test']


def _npz(data_config):
  parts = load_npz(data_config.path)
  return parts['train'], parts.get('valid'), parts['test']


def _tfds(data_config):
  parts = load_tfds(data_config.name, data_config.data_dir,
                    data_config.download_timeout)
  return parts['train'], parts.get('validation'), parts['test']


# data.name -> its source. A new dataset is one module and one entry here.
SOURCES: Dict[str, Source] = {
    **{name: _tfds for name in TFDS_NAMES},
    'idx': _idx, 'tfd': _tfd, 'digits': _digits, 'npz': _npz}
DATASET_NAMES = tuple(SOURCES)


@dataclasses.dataclass(frozen=True)
class Splits:
  """Images of one dataset, uint8 (n, height, width) per split, or (n,
  height, width, channels) for colour images (an RGB .npz).

  Attributes:
    train: (n_train, H, W[, C]) uint8 training images.
    valid: (n_valid, H, W[, C]) uint8 validation images (carved out of the
      training split unless the dataset has its own).
    test: (n_test, H, W[, C]) uint8 test images.
  """
  train: np.ndarray
  valid: np.ndarray
  test: np.ndarray

  @property
  def image_shape(self) -> Tuple[int, ...]:
    """(H, W) of every grey-scale image, (H, W, C) of a colour one."""
    return tuple(self.train.shape[1:])

  @property
  def num_pixels(self) -> int:
    """N = H * W (* C), the length of a flattened image."""
    return int(np.prod(self.image_shape))

  def split(self, name: str) -> np.ndarray:
    """One split by name.

    Args:
      name: 'train', 'valid' or 'test'.

    Returns:
      (n, H, W) uint8 images of that split.

    Raises:
      errors.DataError: another name.
    """
    if name not in ('train', 'valid', 'test'):
      raise errors.DataError(
          f"Unknown split {name!r}; use 'train', 'valid' or 'test'.")
    return getattr(self, name)


def preprocess(pixels: jax.Array, rng: Optional[jax.Array],
               binarization: str) -> jax.Array:
  """uint8 pixels (..., H, W) or (..., N) -> float32 inputs (..., N) in [0, 1].

  Args:
    pixels: uint8 images.
    rng: key for 'dynamic' binarisation (a fresh Bernoulli draw per call);
      unused otherwise.
    binarization: 'none' (x / 255), 'dynamic' (x ~ Bernoulli(x / 255)) or
      'fixed' (the data were binarised once at load time; x / 255 in {0, 1}).

  Returns:
    float32 array with the image axes flattened.
  """
  x = pixels.astype(jnp.float32) / 255.0
  if pixels.ndim >= 3:
    x = x.reshape(pixels.shape[:-2] + (-1,))
  if binarization == 'dynamic':
    x = jax.random.bernoulli(rng, x).astype(jnp.float32)
  return x


def binarize_once(images: np.ndarray, seed: int) -> np.ndarray:
  """A fixed stochastic binarisation, as uint8 in {0, 255}.

  Args:
    images: uint8 grey levels in [0, 255], any shape.
    seed: the seed of the one draw (the same seed, the same binarisation).

  Returns:
    uint8 images of the same shape: 255 with probability images / 255,
    else 0.
  """
  rs = np.random.RandomState(seed)
  return np.where(rs.random_sample(images.shape) < images / 255.0, 255,
                  0).astype(np.uint8)


def _carve_valid(train: np.ndarray, num_valid: int, seed: int,
                 valid_from: str = 'random'):
  """(train, valid): ``num_valid`` images at random (seeded), or the last
  ``num_valid`` in file order (valid_from='end', Burda et al.'s split)."""
  if len(train) < 2:
    count = 'no images' if not len(train) else 'only 1 image'
    raise errors.DataError(
        f'The training split has {count}: check that data.path points to the '
        'complete dataset (the train-images file is empty or '
        'holds another split).')
  if not 0 < num_valid < len(train):
    raise errors.DataError(
        f'data.num_valid={num_valid} must be between 1 and '
        f'{len(train) - 1} (the training split has {len(train)} '
        f'images); e.g. --config.data.num_valid='
        f'{max(1, len(train) // 10)}.')
  if valid_from == 'end':
    return train[:-num_valid], train[-num_valid:]
  order = np.random.RandomState(seed).permutation(len(train))
  return train[order[num_valid:]], train[order[:num_valid]]


def pixel_mean(train: np.ndarray) -> np.ndarray:
  """The mean training pixel: the probability that a dynamically binarised
  pixel is on (for 'fixed', the mean of the binarised images).

  Args:
    train: (n, H, W) or (n, H, W, C) uint8 training images.

  Returns:
    (N,) float64 means in [0, 1], N = H * W (* C), channel-last.
  """

  return (train.reshape(len(train), -1).astype(np.float64).mean(0) / 255.0)


def load(data_config) -> Splits:
  """Loads the dataset described by ``config.data``.

  Args:
    data_config: with fields name, path, data_dir, binarization, num_valid,
      split_seed, tfd_fold, tfd_include_unlabeled, download_timeout.

  Returns:
    `Splits` of uint8 images; with binarization='fixed' they are already
    binarised (to {0, 255}) with the fixed seed ``split_seed``.

  Raises:
    errors.DataError: naming the problem and the fix.
  """
  name = data_config.name
  if data_config.binarization not in BINARIZATIONS:
    raise errors.DataError(
        f'data.binarization={data_config.binarization!r}; use one '
        f'of {BINARIZATIONS}.')
  if name not in SOURCES:
    raise errors.DataError(
        f'Unknown data.name={name!r}; use one of {DATASET_NAMES}.')
  train, valid, test = SOURCES[name](data_config)
  if valid is None:
    train, valid = _carve_valid(train, data_config.num_valid,
                                data_config.split_seed, data_config.valid_from)
  splits = Splits(train=train, valid=valid, test=test)
  for split in ('train', 'valid', 'test'):
    if len(splits.split(split)) == 0:
      raise errors.DataError(
          f'The {split} split of data.name={name!r} is empty; check '
          'data.path (and data.tfd_fold for TFD).')
    if splits.split(split).shape[1:] != train.shape[1:]:
      raise errors.DataError(
          f'The {split} images of data.name={name!r} are '
          f'{splits.split(split).shape[1:]} but the training images '
          f'are {train.shape[1:]}: the files in data.path come '
          'from different datasets. Use one dataset\'s files.')
  if data_config.binarization == 'fixed':
    splits = Splits(*(binarize_once(a, data_config.split_seed + i)
                      for i, a in enumerate((train, valid, test))))
  logging.info('Loaded %s: train %s, valid %s, test %s', name,
               splits.train.shape, splits.valid.shape, splits.test.shape)
  return splits
