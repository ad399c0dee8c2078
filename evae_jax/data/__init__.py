"""Datasets as uint8 image arrays: tfds, local IDX files, TFD .mat, sklearn
digits, and the user's own images in an .npz file.

Every loader returns `Splits`: train / valid / test arrays of shape (n, H, W),
dtype uint8 in [0, 255]. Validation always comes out of the training split (or
the dataset's own validation split), never out of the test split. Turning
pixels into model inputs (scaling and binarisation) is `preprocess`, which
runs on the device inside the jitted step.
"""

import dataclasses
import gzip
import io
import logging
import os
import socket
import zlib
from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from evae_jax import errors
from evae_jax.storage import files

BINARIZATIONS = ('none', 'dynamic', 'fixed')
VALID_FROM = ('random', 'end')
TFDS_NAMES = ('mnist', 'fashion_mnist', 'binarized_mnist')
DATASET_NAMES = TFDS_NAMES + ('idx', 'tfd', 'digits', 'npz')
NPZ_SPLITS = ('train', 'valid', 'test')  # valid is optional
# tfds tries its mirror on Google Cloud Storage first for every dataset; if
# that host cannot be reached, a download would only retry for minutes.
_TFDS_PROBE_HOST = ('storage.googleapis.com', 443)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: '>i2', 0x0C: '>i4',
               0x0D: '>f4', 0x0E: '>f8'}


@dataclasses.dataclass(frozen=True)
class Splits:
  """Images of one dataset, uint8 (n, height, width) per split.

  Attributes:
    train: (n_train, H, W) uint8 training images.
    valid: (n_valid, H, W) uint8 validation images (carved out of the
      training split unless the dataset has its own).
    test: (n_test, H, W) uint8 test images.
  """
  train: np.ndarray
  valid: np.ndarray
  test: np.ndarray

  @property
  def image_shape(self) -> Tuple[int, int]:
    """(H, W) of every image."""
    return tuple(self.train.shape[1:])

  @property
  def num_pixels(self) -> int:
    """N = H * W, the length of a flattened image."""
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


def read_idx(path: str) -> np.ndarray:
  """Reads an MNIST-format IDX file (optionally gzipped).

  Args:
    path: file path.

  Returns:
    The array with the shape and dtype stored in its header.

  Raises:
    errors.DataError: if the file is missing, not IDX, or truncated.
  """
  if not os.path.isfile(path):
    raise errors.DataError(f'IDX file {path} does not exist.')
  try:
    with open(path, 'rb') as f:
      raw = f.read()
    if raw[:2] == b'\x1f\x8b':
      raw = gzip.decompress(raw)
  except (OSError, EOFError, zlib.error) as e:  # zlib: bad deflate stream
    raise errors.DataError(
        f'Cannot read {path} ({e}); the file looks truncated or '
        'corrupt: download it again.') from e
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
    raise errors.DataError(
        f'{path} is not an IDX file (bad magic number '
        f'{raw[:4].hex()}); expected MNIST-format files such as '
        'train-images-idx3-ubyte.gz.')
  ndim = raw[3]
  header = 4 + 4 * ndim
  if not 1 <= ndim <= 4 or len(raw) < header:
    raise errors.DataError(
        f'{path} has an IDX header with {ndim} dimensions (MNIST '
        'images have 3, labels 1) or is cut short inside its '
        'header: the file is corrupt; download it again.')
  shape = tuple(int(d) for d in np.frombuffer(raw[4:header], '>u4'))
  dtype = np.dtype(_IDX_DTYPES[raw[2]])
  expected = header + int(np.prod(shape)) * dtype.itemsize
  if len(raw) != expected:
    raise errors.DataError(
        f'{path} is truncated or padded: its header promises shape '
        f'{shape} ({expected} bytes) but the file has {len(raw)} '
        'bytes. Download it again.')
  return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def _find(directory: str, stem: str) -> str:
  for name in (stem + '.gz', stem):
    path = os.path.join(directory, name)
    if os.path.isfile(path):
      return path
  raise errors.DataError(
      f'{directory} has no {stem}.gz (or {stem}). An IDX data directory holds '
      'train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, '
      't10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz, as MNIST, '
      'Fashion-MNIST and Debian\'s dataset-fashion-mnist ship them; point '
      '--config.data.path at such a directory.')


def _load_idx_split(directory: str, prefix: str) -> np.ndarray:
  images = read_idx(_find(directory, f'{prefix}-images-idx3-ubyte'))
  labels = read_idx(_find(directory, f'{prefix}-labels-idx1-ubyte'))
  if images.ndim != 3 or images.dtype != np.uint8:
    raise errors.DataError(
        f'{prefix} images in {directory} have shape {images.shape} '
        f'and dtype {images.dtype}; expected uint8 (n, height, '
        'width).')
  if labels.shape[0] != images.shape[0]:
    raise errors.DataError(
        f'{directory}: {images.shape[0]} {prefix} images but '
        f'{labels.shape[0]} labels; the files are from different '
        'datasets or one is corrupt.')
  return images


def load_idx_dir(directory: str) -> Tuple[np.ndarray, np.ndarray]:
  """(train, test) uint8 images from an MNIST-format IDX directory.

  Args:
    directory: a folder holding train-images-idx3-ubyte(.gz),
      train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) and
      t10k-labels-idx1-ubyte(.gz).

  Returns:
    (train, test), each (n, H, W) uint8.

  Raises:
    errors.DataError: not a directory, a file missing, unreadable or not
      IDX, images that are not uint8 (n, H, W), or labels that do not
      match the images in number.
  """
  if not directory or not os.path.isdir(directory):
    raise errors.DataError(
        f'data.path={directory!r} is not a directory. For data.name=idx, set '
        '--config.data.path to the folder holding the IDX .gz files (e.g. '
        '/usr/share/datasets/fashion-mnist after `apt install '
        'dataset-fashion-mnist`).')
  return _load_idx_split(directory, 'train'), _load_idx_split(directory, 't10k')


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


_NPZ_HOW = ('An images file for data.name=npz is written with '
            'numpy.savez(path, train=..., test=...) (optionally valid=...), '
            'each a grey-scale image array of shape (n, H, W) or (n, H, W, 1) '
            'with the same H x W, uint8 in [0, 255] or floats in [0, 1].')


def _npz_images(path: str, key: str, images) -> np.ndarray:
  """One split of an .npz as uint8 (n, H, W), or a errors.DataError saying
  why not."""
  if images.dtype == object:
    raise errors.DataError(
        f'{path}: {key!r} is an array of Python objects, as numpy '
        'makes from images of different sizes (a ragged list); '
        f'resize the images to one H x W. {_NPZ_HOW}')
  shape = images.shape
  if images.ndim == 4 and shape[-1] == 1:
    images = images[..., 0]
  elif images.ndim == 4:
    raise errors.DataError(
        f'{path}: {key!r} has shape {shape}, images with '
        f'{shape[-1]} channels; evae_jax models grey-scale '
        'images: convert them (e.g. average the channels) to (n, '
        f'H, W). {_NPZ_HOW}')
  if images.ndim != 3:
    raise errors.DataError(
        f'{path}: {key!r} has shape {shape}; expected a batch of '
        f'images (n, H, W) or (n, H, W, 1). {_NPZ_HOW}')
  if 0 in images.shape:
    raise errors.DataError(
        f'{path}: {key!r} is empty (shape {shape}); every split '
        f'needs at least one image. {_NPZ_HOW}')
  if images.dtype == np.uint8:
    return np.ascontiguousarray(images)
  if images.dtype == np.bool_:
    return images.astype(np.uint8) * np.uint8(255)
  if not np.issubdtype(images.dtype, np.floating):
    hint = (' (values in [0, 255]: save images.astype(np.uint8))'
            if np.issubdtype(images.dtype, np.integer) and images.min() >= 0
            and images.max() <= 255 else '')
    raise errors.DataError(
        f'{path}: {key!r} has dtype {images.dtype}; expected '
        f'uint8 in [0, 255] or floats in [0, 1]{hint}. {_NPZ_HOW}')
  finite = np.isfinite(images)
  if not finite.all():
    raise errors.DataError(
        f'{path}: {key!r} holds {int((~finite).sum())} NaN or '
        'infinite values; replace them (e.g. np.nan_to_num) or '
        f'drop those images. {_NPZ_HOW}')
  low, high = float(images.min()), float(images.max())
  if low < 0.0 or high > 1.0:
    hint = (' (they look like [0, 255] grey levels: divide by 255 or save '
            'them as uint8)' if low >= 0.0 and high <= 255.0 else '')
    raise errors.DataError(
        f'{path}: {key!r} holds floats in [{low:g}, {high:g}]; '
        f'float images must lie in [0, 1]{hint}. {_NPZ_HOW}')
  return np.rint(images.astype(np.float64) * 255.0).astype(np.uint8)


def load_npz(path: str) -> Dict[str, np.ndarray]:
  """The user's own images from an .npz file (local or ``gs://``).

  The file holds ``train`` and ``test`` (and optionally ``valid``): grey-
  scale images of shape (n, H, W) or (n, H, W, 1), any H x W but the same
  in every split, each uint8 in [0, 255] or floating in [0, 1] (bool is
  taken as {0, 1}). Floats are stored as the pipeline stores every dataset,
  uint8: rounded to the nearest of 256 grey levels. Other keys (labels,
  say) are ignored. Written e.g. by
  ``np.savez('mine.npz', train=train_images, test=test_images)``.

  Args:
    path: the file.

  Returns:
    dict with 'train', 'test' and, if present, 'valid': uint8 (n, H, W).

  Raises:
    errors.DataError: the file is missing, unreadable or malformed (missing
      keys, wrong dtype or shape, NaN, out-of-range values, empty or ragged
      arrays, splits of different image sizes), naming the fix.
  """
  if not path:
    raise errors.DataError(
        f'data.name=npz needs data.path: pass '
        f'--config.data.path=/path/to/images.npz. {_NPZ_HOW}')
  try:
    present = (files.isfile(path) if files.is_remote(path)
               else os.path.isfile(path))
  except Exception:  # pylint: disable=broad-except
    present = False
  if not present:
    raise errors.DataError(
        f'data.path={path!r} is not a file. Pass '
        f'--config.data.path=/path/to/images.npz. {_NPZ_HOW}')
  try:
    archive = np.load(io.BytesIO(files.read_bytes(path)), allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
      raise ValueError('a single .npy array, not an .npz archive')
    keys = sorted(archive.files)
    if 'train' not in keys or 'test' not in keys:
      raise errors.DataError(
          f'{path} holds {keys or "no arrays"} but needs at least '
          f"'train' and 'test' ('valid' optional). {_NPZ_HOW}")
    raw = {k: archive[k] for k in NPZ_SPLITS if k in keys}
  except errors.DataError:
    raise
  except ValueError as e:
    if 'Object arrays' in str(e):
      raise errors.DataError(
          f'{path} holds arrays of Python objects, as numpy makes '
          'from images of different sizes (a ragged list); '
          f'resize the images to one H x W. {_NPZ_HOW}') from e
    raise errors.DataError(f'{path} is not a readable .npz file ({e}). '
                           f'{_NPZ_HOW}') from e
  except Exception as e:  # pylint: disable=broad-except
    # zipfile.BadZipFile, EOFError, OSError: truncated or not a zip at all.
    raise errors.DataError(
        f'{path} is not a readable .npz file ({type(e).__name__}: '
        f'{e}); it may be truncated or another format. '
        f'{_NPZ_HOW}') from e
  parts = {k: _npz_images(path, k, v) for k, v in raw.items()}
  sizes = {k: v.shape[1:] for k, v in parts.items()}
  if len(set(sizes.values())) > 1:
    raise errors.DataError(
        f'{path}: the splits hold images of different sizes (' +
        ', '.join(f'{k} {h}x{w}' for k, (h, w) in sizes.items()) +
        f'); every split needs the same H x W. {_NPZ_HOW}')
  if len(parts['train']) < 2:
    raise errors.DataError(f'{path}: train holds {len(parts["train"])} image; '
                           f'training needs at least 2. {_NPZ_HOW}')
  return parts


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


def _network_reachable(host_port, timeout: float) -> bool:
  try:
    socket.create_connection(host_port, timeout=timeout).close()
    return True
  except OSError:
    return False


def load_tfds(name: str, data_dir: str = '', timeout: float = 5.0
              ) -> Dict[str, np.ndarray]:
  """A tfds image dataset as uint8 arrays, preparing it if it is not yet.

  Fails within ``timeout`` seconds, instead of retrying for minutes, when the
  dataset is not prepared and the download server cannot be reached.

  Args:
    name: a tfds name of `TFDS_NAMES`.
    data_dir: the tfds data folder ('' = tfds's default).
    timeout: seconds to wait for the download server.

  Returns:
    {tfds split name: (n, H, W) uint8} (binarized_mnist scaled from {0, 1}
    to {0, 255}).

  Raises:
    errors.DataError: the dataset is not prepared and the download server
      cannot be reached.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder(name, data_dir=data_dir or None,
                         file_format='array_record')
  if not builder.is_prepared():
    if not _network_reachable(_TFDS_PROBE_HOST, timeout):
      raise errors.DataError(
          f'tfds dataset {name!r} is not prepared in {builder.data_dir} and '
          'its download server cannot be reached (no network?). Either '
          'prepare it on a machine with network and copy the tfds data_dir '
          '(--config.data.data_dir), or use local MNIST-format IDX files: '
          '--config.data.name=idx --config.data.path=DIR.')
    builder.download_and_prepare()
  splits = {}
  for split in builder.info.splits:
    source = builder.as_data_source(split=split)
    images = np.stack([np.asarray(ex['image']) for ex in source])
    splits[split] = images.reshape(images.shape[:3]).astype(np.uint8)
  if name == 'binarized_mnist':  # stored as {0, 1}
    splits = {k: v * np.uint8(255) for k, v in splits.items()}
  return splits


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
    train: (n, H, W) uint8 training images.

  Returns:
    (N,) float64 means in [0, 1], N = H * W.
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
  valid = None
  if name == 'digits':
    train, test = load_digits_images()
  elif name == 'idx':
    train, test = load_idx_dir(data_config.path)
  elif name == 'tfd':
    parts = load_tfd(data_config.path, data_config.tfd_fold,
                     data_config.tfd_include_unlabeled)
    train, valid, test = parts['train'], parts['valid'], parts['test']
  elif name == 'npz':
    parts = load_npz(data_config.path)
    train, test, valid = parts['train'], parts['test'], parts.get('valid')
  elif name in TFDS_NAMES:
    parts = load_tfds(name, data_config.data_dir, data_config.download_timeout)
    train, test, valid = parts['train'], parts['test'], parts.get('validation')
  else:
    raise errors.DataError(
        f'Unknown data.name={name!r}; use one of {DATASET_NAMES}.')
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
