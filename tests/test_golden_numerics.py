"""Training numerics are pinned: every model kind x objective gives the
recorded losses, gradients and two-step parameters to the bit on a CPU of
the instruction set they were recorded on, and every record belongs to
today's NUMERICS_VERSION (tests/golden_numerics.py says how to re-record)."""

import os

import jax
import numpy as np
import pytest

from evae_jax.storage import provenance
from tests import golden_numerics


@pytest.fixture(scope='module')
def recorded():
  """(arrays, numerics version, jax version, path) of this CPU's record, or
  of the first record when this CPU's instruction set has none."""
  paths = golden_numerics.recorded_paths()
  assert paths, 'no golden record: python -m tests.golden_numerics --record'
  path = (golden_numerics.GOLDEN if os.path.exists(golden_numerics.GOLDEN)
          else paths[0])
  return (*golden_numerics.load(path), path)


def test_every_record_belongs_to_todays_numerics_version():
  for path in golden_numerics.recorded_paths():
    _, version, _ = golden_numerics.load(path)
    assert version == provenance.NUMERICS_VERSION, (
        f'{path} was recorded for numerics version {version}, the code says '
        f'{provenance.NUMERICS_VERSION}: bump the version only together with '
        're-recording (python -m tests.golden_numerics --record).')


def test_every_case_is_recorded():
  for path in golden_numerics.recorded_paths():
    arrays, _, _ = golden_numerics.load(path)
    names = {key.rsplit('/', 1)[0] for key in arrays}
    assert names == {name for name, _, _ in golden_numerics.CASES}, path


def test_training_numerics_are_bit_identical_to_the_record(recorded):
  want, version, jax_version, path = recorded
  got = golden_numerics.compute()
  for key, value in got.items():
    assert np.all(np.isfinite(value)), key
  ours = path == golden_numerics.GOLDEN
  if jax_version != jax.__version__ or not ours:
    # Another XLA, or another CPU's vector width, may round differently:
    # then only gross changes are caught.
    for key in want:
      np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-5,
                                 err_msg=key)
    why = (f'recorded with jax {jax_version}, running {jax.__version__}'
           if ours else
           f'no record for this CPU ({golden_numerics.instruction_set()}; '
           f'compared with {os.path.basename(path)}): record one with '
           'python -m tests.golden_numerics --record')
    pytest.skip(f'{why}; compared within 1e-4, not to the bit')
  diffs = golden_numerics.differences(want, got)
  assert not diffs, (
      f'Training numerics changed (numerics version {version}, '
      f'{os.path.basename(path)}): '
      + ', '.join(f'{k} (max |diff| {v:.3g})' for k, v in diffs.items())
      + '. If intended, bump NUMERICS_VERSION in '
      'evae_jax/storage/provenance.py and '
      'run python -m tests.golden_numerics --record in the same commit.')


@pytest.mark.parametrize('flags,want', [
    ('fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16', 'avx512'),
    ('fpu sse2 avx avx2 fma', 'avx2'),
    ('fpu sse2 avx', 'avx'),
    ('fpu sse2', 'baseline'),
])
def test_the_instruction_set_is_the_widest_vector_extension(tmp_path, flags,
                                                            want):
  cpuinfo = tmp_path / 'cpuinfo'
  cpuinfo.write_text(f'processor\t: 0\nflags\t\t: {flags}\n\n'
                     f'processor\t: 1\nflags\t\t: {flags}\n')
  isa = golden_numerics.instruction_set(str(cpuinfo))
  assert isa.endswith('-' + want)
  assert golden_numerics.instruction_set(str(tmp_path / 'none')).endswith(
      '-unknown')


def test_the_comparison_sees_a_one_ulp_change(recorded):
  want = recorded[0]
  key = 'evae/point/grads'
  moved = dict(want)
  moved[key] = want[key].copy()
  moved[key][0] = np.nextafter(moved[key][0], np.float32(np.inf))
  assert golden_numerics.differences(want, moved) == {
      key: pytest.approx(abs(float(moved[key][0]) - float(want[key][0])))}
