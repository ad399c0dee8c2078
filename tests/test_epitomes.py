"""Masks (docs/maths.md) for the paper's settings, and their errors."""

import numpy as np
import pytest

from evae_jax import errors
from evae_jax import epitomes


def _windows(masks):
  return [tuple(np.flatnonzero(row)) for row in masks]


@pytest.mark.parametrize('d,k,s,starts', [
    (8, 3, None, [0, 3, 5]),          # Table 4: K = 3, D = 8, last at D - K
    (8, 2, 2, [0, 2, 4, 6]),          # Fig. 5 (left)
    (20, 2, 1, list(range(19))),      # Fig. 5/6: full overlap, E = D - K + 1
    (48, 4, None, list(range(0, 48, 4))),
    (50, 25, None, [0, 25]),          # Table 2
    (50, 50, 50, [0]),                # VAE
    (10, 4, 3, [0, 3, 6]),            # 6 + 4 = 10 ends at D: no extra
    (10, 4, 4, [0, 4, 6]),
])
def test_masks_match_windows(d, k, s, starts):
  masks = epitomes.make_masks(d, k, s)
  assert masks.shape == (len(starts), d)
  assert masks.dtype == np.float32
  assert _windows(masks) == [tuple(range(a, a + k)) for a in starts]
  assert set(np.unique(masks)) <= {0.0, 1.0}
  np.testing.assert_array_equal(masks.sum(1), k)   # exactly K units each
  assert (masks.sum(0) >= 1).all()                 # every unit covered
  assert epitomes.num_epitomes(d, k, s or k) == len(starts)


def test_stride_zero_or_none_means_non_overlapping():
  np.testing.assert_array_equal(epitomes.make_masks(12, 3, 0),
                                epitomes.make_masks(12, 3, 3))
  np.testing.assert_array_equal(epitomes.make_masks(12, 3),
                                epitomes.make_masks(12, 3, 3))


@pytest.mark.parametrize('d,k,s,needle', [
    (8, 9, 1, 'epitome_size=8'),
    (8, 0, 1, 'epitome_size=1'),
    (8, 3, 4, 'stride=3'),
    (8, 3, -1, 'stride=1'),
    (0, 1, 1, 'latent_dim=1'),
])
def test_invalid_settings_name_values_and_a_neighbour(d, k, s, needle):
  with pytest.raises(ValueError) as info:
    epitomes.make_masks(d, k, s)
  message = str(info.value)
  assert f'(D)={d}' in message and f'(K)={k}' in message
  assert needle in message
  assert isinstance(info.value, errors.EpitomeConfigError)


def test_non_integer_sizes_are_rejected():
  with pytest.raises(ValueError, match='integers'):
    epitomes.make_masks(8, 2.5, 1)


@pytest.mark.parametrize('stride', [0, None])
def test_stride_zero_means_k_in_every_function(stride):
  # configs: model.stride = 0 means s = K (non-overlapping epitomes).
  assert epitomes.num_epitomes(12, 3, stride) == 4
  assert epitomes.epitome_starts(12, 3, stride) == [0, 3, 6, 9]
  assert epitomes.num_epitomes(8, 3, stride) == len(
      epitomes.make_masks(8, 3, stride)) == 3
  epitomes.validate(8, 3, stride)
  assert epitomes.num_epitomes(8, 3) == 3
