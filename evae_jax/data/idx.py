"""MNIST-format IDX files: the original MNIST and Fashion-MNIST as their
authors ship them (``train-images-idx3-ubyte.gz`` and the rest)."""

import gzip
import os
import zlib
from typing import Tuple

import numpy as np

from evae_jax import errors

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: '>i2', 0x0C: '>i4',
               0x0D: '>f4', 0x0E: '>f8'}


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
