"""The user's own grey-scale or RGB images in an ``.npz`` file (local or
``gs://``), checked so that every malformed file gets a message naming the
fix; nothing is ever unpickled."""

import io
import os
from typing import Dict

import numpy as np

from evae_jax import errors
from evae_jax.storage import files

NPZ_SPLITS = ('train', 'valid', 'test')  # valid is optional
NPZ_CHANNELS = (1, 3)  # grey-scale, RGB


_NPZ_HOW = ('An images file for data.name=npz is written with '
            'numpy.savez(path, train=..., test=...) (optionally valid=...), '
            'each an image array of shape (n, H, W) or (n, H, W, 1) (grey-'
            'scale) or (n, H, W, 3) (RGB) with the same H x W (and channels), '
            'uint8 in [0, 255] or floats in [0, 1].')


def _npz_images(path: str, key: str, images) -> np.ndarray:
  """One split of an .npz as uint8 (n, H, W) (grey-scale) or (n, H, W, 3)
  (RGB), or a errors.DataError saying why not."""
  if images.dtype == object:
    raise errors.DataError(
        f'{path}: {key!r} is an array of Python objects, as numpy '
        'makes from images of different sizes (a ragged list); '
        f'resize the images to one H x W. {_NPZ_HOW}')
  shape = images.shape
  if images.ndim == 4 and shape[-1] == 1:
    images = images[..., 0]
  elif images.ndim == 4 and shape[-1] not in NPZ_CHANNELS:
    raise errors.DataError(
        f'{path}: {key!r} has shape {shape}, images with '
        f'{shape[-1]} channels; evae_jax models grey-scale or RGB '
        'images: convert them to (n, H, W) or (n, H, W, 3) (e.g. drop '
        f'an alpha channel). {_NPZ_HOW}')
  if images.ndim not in (3, 4):
    raise errors.DataError(
        f'{path}: {key!r} has shape {shape}; expected a batch of '
        f'images (n, H, W), (n, H, W, 1) or (n, H, W, 3). {_NPZ_HOW}')
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
  scale images of shape (n, H, W) or (n, H, W, 1), or RGB images (n, H, W,
  3), any H x W but the same shape in every split, each uint8 in [0, 255]
  or floating in [0, 1] (bool is taken as {0, 1}). Floats are stored as the
  pipeline stores every dataset, uint8: rounded to the nearest of 256
  levels per channel value. Other keys (labels,
  say) are ignored. Written e.g. by
  ``np.savez('mine.npz', train=train_images, test=test_images)``.

  Args:
    path: the file.

  Returns:
    dict with 'train', 'test' and, if present, 'valid': uint8 (n, H, W)
    or (n, H, W, 3).

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
        ', '.join(f'{k} ' + 'x'.join(map(str, size))
                  for k, size in sizes.items()) +
        f'); every split needs the same H x W (and channels). {_NPZ_HOW}')
  if len(parts['train']) < 2:
    raise errors.DataError(f'{path}: train holds {len(parts["train"])} image; '
                           f'training needs at least 2. {_NPZ_HOW}')
  return parts
