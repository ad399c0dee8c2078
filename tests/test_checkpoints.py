"""evae_jax/storage/checkpoints.py: workdirs written by earlier versions still
restore, and a save that fails in orbax's background thread is an error,
not a hang.

``tests/fixtures/workdir-orbax-0.12.8`` is what this command wrote with
orbax-checkpoint 0.12.8 (evae_jax before it moved off orbax's deprecated
``ocp.utils.to_shape_dtype_struct`` and ``max_to_keep``), less its figures,
TensorBoard events and lock::

  python -m evae_jax.main --config=configs/test.py --workdir=W \\
      --config.train.num_epochs=2 --config.train.keep_checkpoints=1
"""

import errno
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import test as test_config
from evae_jax.storage import checkpoints
from evae_jax.evaluate import report
from evae_jax import state as state_lib
from evae_jax.train import loop as train
from tests.conftest import ROOT

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       'fixtures', 'workdir-orbax-0.12.8')
FIXTURE_STEP = 52  # 2 epochs of 26 steps


def _fixture_config(num_epochs=2):
  config = test_config.get_config()
  config.train.num_epochs = num_epochs
  config.train.keep_checkpoints = 1
  return config


def _copy_fixture(tmp_path):
  workdir = str(tmp_path / 'workdir')
  shutil.copytree(FIXTURE, workdir)
  return workdir


def test_a_checkpoint_written_by_orbax_0_12_8_restores_verified(tmp_path):
  workdir = _copy_fixture(tmp_path)
  config = _fixture_config()
  template = state_lib.create_train_state(config, 64, jax.random.PRNGKey(0))
  ckpts = checkpoints.Checkpoints(workdir, 1)
  try:
    tree, step = ckpts.restore_latest(state_lib.state_tree(
        template, np.full((1300,), -1, np.int32)))
    record = ckpts.record(FIXTURE_STEP)
  finally:
    ckpts.close()
  assert step == FIXTURE_STEP and int(tree['step']) == FIXTURE_STEP
  assert checkpoints.tree_checksum(tree) == record['checksum']
  assert record['config']['model']['hidden_dim'] == 16
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == [
      str(FIXTURE_STEP), checkpoints.CHECKSUMS_FILE]  # nothing moved aside


# A minute and more on two busy cores (compiling training, figures and the
# evaluation); the restore above is the quick check of the format.
@pytest.mark.slow
def test_a_checkpoint_written_by_orbax_0_12_8_resumes_and_evaluates(tmp_path):
  workdir = _copy_fixture(tmp_path)
  train.train_and_evaluate(_fixture_config(num_epochs=3), workdir)
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    steps = [json.loads(line)['step'] for line in f]
  assert steps == [26, 52, 78]  # resumed at 52, not retrained from 0
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == [
      '78', checkpoints.CHECKSUMS_FILE]
  results = report.evaluate_workdir(_fixture_config(num_epochs=3), workdir)
  assert np.isfinite(results['bound']['mean'])


def _long_path(root, length):
  """A folder path of ``length`` characters under ``root`` (not created)."""
  parts, left = [str(root)], length - len(str(root))
  while left > 0:
    name = 'd' * min(200, left - 1)
    parts.append(name)
    left -= len(name) + 1
  path = os.path.join(*parts)
  assert len(path) == length
  return path


def test_a_workdir_path_too_long_for_its_checkpoints_fails_at_once(tmp_path):
  """Without the check, orbax's first save failed in a background thread
  after a whole epoch, with tracebacks, and the error spoke of disk space."""
  workdir = _long_path(tmp_path, 4000)
  run = subprocess.run(
      [sys.executable, '-m', 'evae_jax.main', '--config=configs/test.py',
       f'--workdir={workdir}'], cwd=ROOT, capture_output=True, text=True,
      timeout=120)
  assert run.returncode == 2, run.stderr[-3000:]
  assert 'The workdir path is too long' in run.stderr
  assert 'Use a --workdir at least' in run.stderr
  assert 'Traceback' not in run.stderr and 'epoch 1' not in run.stdout
  assert not os.path.exists(workdir)


_SAVE_THAT_FAILS_IN_ORBAX_THREADS = '''
import json, sys
import numpy as np
from evae_jax.storage import checkpoints
tree = {'w': np.ones(3, np.float32), 'step': np.asarray(1, np.int32)}
def save(workdir, record=None):
  ckpts = checkpoints.Checkpoints(workdir, 2)
  try:
    ckpts.save(1, tree, record)
    return 'saved'
  except Exception as e:
    return f'{type(e).__name__}: {e}'
# A record that JSON cannot write: a TypeError in orbax's thread.
print(json.dumps(save(sys.argv[1], {'x': object()})))
checkpoints.check_path = lambda path: None  # let orbax meet the long path
print(json.dumps(save(sys.argv[2])))
'''


def test_a_save_that_fails_in_orbax_threads_is_an_error_not_a_hang(tmp_path):
  """Real processes: the failure of orbax's background save must come back
  from `save` as this module's error (main exits 2 on it), whatever its
  type, and the process must end."""
  long_workdir = _long_path(tmp_path, 4030)
  os.makedirs(long_workdir)
  run = subprocess.run(
      [sys.executable, '-c', _SAVE_THAT_FAILS_IN_ORBAX_THREADS,
       str(tmp_path / 'short'), long_workdir], cwd=ROOT, capture_output=True,
      text=True, timeout=120)
  assert run.returncode == 0, run.stderr[-3000:]
  bad_record, too_long = [json.loads(line) for line in
                          run.stdout.strip().splitlines()]
  assert bad_record.startswith('CheckpointError: Could not write the '
                               'checkpoint of step 1'), bad_record
  assert 'TypeError' in bad_record
  assert too_long.startswith('WorkdirError: '), too_long
  assert 'refused a path as too long' in too_long
  assert 'Use a shorter --workdir' in too_long


def test_the_newest_keep_steps_are_kept_and_restore(tmp_path):
  ckpts = checkpoints.Checkpoints(str(tmp_path), 2)
  try:
    for step in range(1, 5):
      ckpts.save(step, {'w': np.full(3, step, np.float32),
                        'step': np.asarray(step, np.int32)})
    assert ckpts.steps() == [3, 4]
    tree, step = ckpts.restore_latest({'w': np.zeros(3, np.float32),
                                       'step': np.asarray(0, np.int32)})
  finally:
    ckpts.close()
  assert step == 4 and tree['w'].tolist() == [4, 4, 4]


def test_a_failed_save_advises_freeing_disk_only_for_disk_errors(tmp_path):
  ckpts = checkpoints.Checkpoints(str(tmp_path / 'run'), 3)
  try:
    full = ckpts._write_error(5, OSError(errno.ENOSPC, 'No space left'))
    in_text = ckpts._write_error(5, RuntimeError(
        f'tensorstore: {os.strerror(errno.ENOSPC)} writing x'))
    other = ckpts._write_error(5, TypeError('unhashable type'))
  finally:
    ckpts.close()
  assert 'free disk space' in str(full) and 'free disk space' in str(in_text)
  assert 'free disk space' not in str(other)
  assert 'TypeError: unhashable type' in str(other)
