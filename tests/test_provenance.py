"""Each run records the code that trained and evaluated it: the package
version, the git commit (dirty or not) and the numerics version, per start of
training, copied into eval.json and report.md."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from evae_jax.storage import provenance
from tests import golden_numerics
from tests.conftest import ROOT


def _starts(tmp_path, steps):
  path = tmp_path / provenance.CODE_JSONL
  path.write_text(''.join(
      json.dumps({'step': s, 'version': '0', 'commit': f'c{i}',
                  'dirty': False, 'numerics': i}) + '\n'
      for i, s in enumerate(steps)))
  return str(tmp_path)


def test_a_start_that_trained_nothing_is_not_counted(tmp_path):
  # killed before its first save at step 0, rerun from 0; resumed at 26;
  # a start at the final step (figures only) trained nothing either.
  workdir = _starts(tmp_path, [0, 0, 26, 52])
  assert [(s['step'], s['commit']) for s in
          provenance.trained_with(workdir, 52)] == [(0, 'c1'), (26, 'c2')]
  assert len(provenance.trained_with(workdir)) == 3


def test_damaged_lines_are_skipped_and_no_file_is_an_empty_record(tmp_path):
  workdir = _starts(tmp_path, [0, 10])
  with open(os.path.join(workdir, provenance.CODE_JSONL), 'a') as f:
    f.write('{"step": 12, "ver\n[]\n')
  assert [s['step'] for s in provenance.trained_with(workdir, 20)] == [0, 10]
  assert provenance.trained_with(str(tmp_path / 'elsewhere')) == []


def test_the_code_version_names_this_checkout():
  code = provenance.code_version()
  head = subprocess.run(['git', '-C', ROOT, 'rev-parse', 'HEAD'],
                        capture_output=True, text=True)
  if head.returncode:
    pytest.skip('not a git checkout')
  assert code['commit'] == head.stdout.strip()
  assert isinstance(code['dirty'], bool)
  assert code['numerics'] == provenance.NUMERICS_VERSION
  import evae_jax
  assert code['version'] == evae_jax.__version__


def test_a_package_outside_git_records_no_commit(tmp_path, monkeypatch):
  monkeypatch.setattr(provenance, '_PACKAGE_DIR', str(tmp_path))
  provenance._git_state.cache_clear()
  try:
    code = provenance.code_version()
  finally:
    provenance._git_state.cache_clear()
  assert code['commit'] is None and code['dirty'] is None


def test_eval_json_and_report_name_the_code(one_epoch_workdir, tmp_path):
  from configs import test as test_config
  from evae_jax.evaluate import report
  workdir = str(tmp_path / 'run')
  shutil.copytree(one_epoch_workdir, workdir)
  config = test_config.get_config()
  config.train.num_epochs = 1
  results = report.evaluate_workdir(config, workdir)
  code = json.load(open(os.path.join(workdir, 'eval.json')))['code']
  assert code == json.loads(json.dumps(results['code']))
  assert [s['step'] for s in code['trained_with']] == [0]
  assert code['evaluated_with'] == provenance.code_version()
  assert code['trained_with'][0]['numerics'] == provenance.NUMERICS_VERSION
  text = open(os.path.join(workdir, 'report.md')).read()
  assert f'numerics {provenance.NUMERICS_VERSION}' in text


def test_rerecording_changed_numbers_needs_a_new_version(tmp_path,
                                                         monkeypatch):
  source = golden_numerics.recorded_paths()[0]
  golden = tmp_path / os.path.basename(golden_numerics.GOLDEN)
  other = tmp_path / 'numerics-other-isa.npz'
  shutil.copy(source, other)
  monkeypatch.setattr(golden_numerics, 'GOLDEN', str(golden))
  want, version, _ = golden_numerics.load(str(other))
  moved = {k: v + np.float32(1e-3) for k, v in want.items()}
  monkeypatch.setattr(golden_numerics, 'compute', lambda: moved)
  # A first record for this CPU carries the others' version.
  monkeypatch.setattr(provenance, 'NUMERICS_VERSION', version + 1)
  assert golden_numerics.record() == 2 and not golden.exists()
  monkeypatch.setattr(provenance, 'NUMERICS_VERSION', version)
  assert golden_numerics.record() == 0 and other.exists()
  monkeypatch.setattr(golden_numerics, 'compute',
                      lambda: {k: v + np.float32(1e-3) for k, v in
                               moved.items()})
  assert golden_numerics.record() == 2  # same version, other numbers
  monkeypatch.setattr(provenance, 'NUMERICS_VERSION', version + 1)
  assert golden_numerics.record() == 0
  assert golden_numerics.load()[1] == version + 1
  assert not other.exists()  # the other CPU's record held the old version
  assert golden_numerics.recorded_paths() == [str(golden)]
  monkeypatch.setattr(provenance, 'NUMERICS_VERSION', version + 2)
  assert golden_numerics.record() == 2  # a bump without a change
