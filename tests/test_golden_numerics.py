"""Training numerics are pinned: every model kind x objective gives the
recorded losses, gradients and two-step parameters to the bit, and the
recorded file belongs to today's NUMERICS_VERSION (tests/golden_numerics.py
says how to re-record)."""

import jax
import numpy as np
import pytest

from evae_jax.storage import provenance
from tests import golden_numerics


@pytest.fixture(scope='module')
def recorded():
  return golden_numerics.load()


def test_the_golden_file_belongs_to_todays_numerics_version(recorded):
  _, version, _ = recorded
  assert version == provenance.NUMERICS_VERSION, (
      f'tests/golden/numerics.npz was recorded for numerics version '
      f'{version}, the code says {provenance.NUMERICS_VERSION}: bump the '
      'version only together with re-recording (python -m '
      'tests.golden_numerics --record).')


def test_every_case_is_recorded(recorded):
  arrays, _, _ = recorded
  names = {key.rsplit('/', 1)[0] for key in arrays}
  assert names == {name for name, _, _ in golden_numerics.CASES}


def test_training_numerics_are_bit_identical_to_the_record(recorded):
  want, version, jax_version = recorded
  got = golden_numerics.compute()
  for key, value in got.items():
    assert np.all(np.isfinite(value)), key
  if jax_version != jax.__version__:
    # Another XLA may round differently: then only gross changes are caught.
    for key in want:
      np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-5,
                                 err_msg=key)
    pytest.skip(f'recorded with jax {jax_version}, running {jax.__version__}:'
                ' compared within 1e-4, not to the bit')
  diffs = golden_numerics.differences(want, got)
  assert not diffs, (
      f'Training numerics changed (numerics version {version}): '
      + ', '.join(f'{k} (max |diff| {v:.3g})' for k, v in diffs.items())
      + '. If intended, bump NUMERICS_VERSION in '
      'evae_jax/storage/provenance.py and '
      'run python -m tests.golden_numerics --record in the same commit.')


def test_the_comparison_sees_a_one_ulp_change(recorded):
  want, _, _ = recorded
  key = 'evae/point/grads'
  moved = dict(want)
  moved[key] = want[key].copy()
  moved[key][0] = np.nextafter(moved[key][0], np.float32(np.inf))
  assert golden_numerics.differences(want, moved) == {
      key: pytest.approx(abs(float(moved[key][0]) - float(want[key][0])))}
