"""Epitome masks: which latent units each epitome switches on (docs/maths.md).

An epitome is a window of ``epitome_size`` (K) contiguous latent units out of
``latent_dim`` (D). Windows start at 0, s, 2s, ... while they fit; if the last
window does not end at D, one more window starting at D - K is added so that
every unit is covered and every epitome has exactly K units. The mask matrix
M has shape (E, D) with M[e, d] = 1 inside epitome e.

Special cases: the plain VAE is D = K = s (E = 1); s = K gives
non-overlapping epitomes; s = 1 gives full overlap (E = D - K + 1).
"""

import math
from typing import List, Optional

import numpy as np
from evae_jax import errors


def resolve_stride(epitome_size: int, stride: Optional[int]) -> int:
  """The stride to use: ``stride``, or K (non-overlapping) if unset.

  Args:
    epitome_size: K.
    stride: s; None or 0 means s = K.

  Returns:
    s, an int: ``stride`` if set, else ``epitome_size``.
  """
  return epitome_size if not stride else stride


def validate(latent_dim: int, epitome_size: int,
             stride: Optional[int] = None) -> None:
  """Raises `errors.EpitomeConfigError` unless 1 <= K <= D and 1 <= s <= K.

  Args:
    latent_dim: D, the number of latent units.
    epitome_size: K, units per epitome.
    stride: s, offset between consecutive epitome starts; None or 0 means
      s = K (non-overlapping), as in `make_masks` and the config.

  Raises:
    errors.EpitomeConfigError: naming the values and a valid neighbouring
      setting.
  """
  stride = resolve_stride(epitome_size, stride)
  values = (latent_dim, epitome_size, stride)
  if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
             for v in values):
    raise errors.EpitomeConfigError(
        f'latent_dim, epitome_size and stride must be integers, got '
        f'latent_dim={latent_dim!r}, epitome_size={epitome_size!r}, '
        f'stride={stride!r}.')
  where = (f'latent_dim (D)={latent_dim}, epitome_size (K)={epitome_size}, '
           f'stride (s)={stride}')
  if latent_dim < 1:
    raise errors.EpitomeConfigError(
        f'Invalid epitomes: {where}; D must be >= 1. A valid neighbour: '
        f'latent_dim=1, epitome_size=1, stride=1.')
  if not 1 <= epitome_size <= latent_dim:
    fix = min(max(epitome_size, 1), latent_dim)
    raise errors.EpitomeConfigError(
        f'Invalid epitomes: {where}; K must satisfy 1 <= K <= D. A valid '
        f'neighbour: epitome_size={fix}, stride={min(max(stride, 1), fix)}.')
  if not 1 <= stride <= epitome_size:
    fix = min(max(stride, 1), epitome_size)
    raise errors.EpitomeConfigError(
        f'Invalid epitomes: {where}; s must satisfy 1 <= s <= K (a larger '
        f'stride would leave units in no epitome). A valid neighbour: '
        f'stride={fix}.')


def epitome_starts(latent_dim: int, epitome_size: int,
                   stride: Optional[int] = None) -> List[int]:
  """First unit of each epitome, in order (docs/maths.md).

  Args:
    latent_dim: D.
    epitome_size: K.
    stride: s; None or 0 means s = K.

  Returns:
    The E start indices: 0, s, 2s, ... while start + K <= D, plus D - K if the
    last of those does not end at D.

  Raises:
    errors.EpitomeConfigError: for an invalid (D, K, s).
  """
  validate(latent_dim, epitome_size, stride)
  stride = resolve_stride(epitome_size, stride)
  starts = list(range(0, latent_dim - epitome_size + 1, stride))
  if starts[-1] + epitome_size != latent_dim:
    starts.append(latent_dim - epitome_size)
  return starts


def num_epitomes(latent_dim: int, epitome_size: int,
                 stride: Optional[int] = None) -> int:
  """E, the number of epitomes for (D, K, s) (`epitome_starts`).

      E = floor((D - K) / s) + 1, plus 1 if (D - K) is not a multiple of s

  Args:
    latent_dim: D.
    epitome_size: K.
    stride: s; None or 0 means s = K.

  Returns:
    E >= 1 (1 for the VAE, D = K).

  Raises:
    errors.EpitomeConfigError: for an invalid (D, K, s).
  """
  return len(epitome_starts(latent_dim, epitome_size, stride))


def make_masks(latent_dim: int, epitome_size: int,
               stride: Optional[int] = None) -> np.ndarray:
  """The epitome mask matrix M.

  Args:
    latent_dim: D.
    epitome_size: K.
    stride: s; None or 0 means s = K (non-overlapping epitomes).

  Returns:
    masks: (num_epitomes, latent_dim) float32, M[e, d] = 1 iff unit d lies in
      epitome e; every row has exactly K ones and every column at least one.

  Raises:
    errors.EpitomeConfigError: for an invalid (D, K, s).
  """
  starts = epitome_starts(latent_dim, epitome_size, stride)
  units = np.arange(latent_dim)[None, :]
  starts = np.asarray(starts)[:, None]
  return ((units >= starts)
          & (units < starts + epitome_size)).astype(np.float32)


def log_num_epitomes(masks) -> float:
  """log E: the KL from a point-mass q(y|x) to the uniform prior p(y) (eq. 7).

      KL(delta(y*) || U{1..E}) = log E

  Args:
    masks: (E, D) epitome masks (any array with a shape).

  Returns:
    log E, a Python float (0 for a VAE).
  """
  return math.log(masks.shape[0])
